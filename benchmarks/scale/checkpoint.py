"""A 0.5B-class random Molmo in the released HF layout (Qwen2-0.5B-shaped decoder: d_model 896, 24 layers,
14 heads, 2 KV heads, 151,936-row vocabulary; a narrower 6-layer ViT of width 256), written tensor by tensor
into ~400 MB bf16 shards with an index, so writing it needs little memory.

    from scale.checkpoint import write_released_checkpoint, small_molmo_config
    write_released_checkpoint(tmp_dir)
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from molmo.checkpoint.names import to_released
from molmo.model.config import ConnectorConfig, LLMConfig, MolmoConfig, VisionConfig

SHARD_BYTES = 400 << 20


def small_molmo_config() -> MolmoConfig:
    llm = LLMConfig(d_model=896, layers=24, heads=14, kv_heads=2, head_dim=64, ffn_hidden=4864, qkv_bias=True,
                    rope_theta=1e6, norm_eps=1e-6, vocab_size=151936, embedding_size=151936,
                    max_position_embeddings=4096)
    vision = VisionConfig(width=256, layers=6, heads=4, head_dim=64, mlp_dim=1024)
    return MolmoConfig(vision=vision, connector=ConnectorConfig(vit_layers=(-1, -3)), llm=llm, eos_token_id=151643)


def released_config_json(cfg: MolmoConfig) -> dict:
    """config.json keys as the released checkpoints spell them (read back by `from_hf_config`)."""
    llm, v, c = cfg.llm, cfg.vision, cfg.connector
    return {
        "model_type": "molmo", "hidden_size": llm.d_model, "num_hidden_layers": llm.layers,
        "num_attention_heads": llm.heads, "num_key_value_heads": llm.kv_heads, "head_dim": llm.head_dim,
        "intermediate_size": 2 * llm.ffn_hidden, "qkv_bias": llm.qkv_bias, "rope_theta": llm.rope_theta,
        "layer_norm_eps": llm.norm_eps, "vocab_size": llm.vocab_size, "embedding_size": llm.embedding_size,
        "additional_vocab_size": llm.additional_vocab_size, "max_position_embeddings": llm.max_position_embeddings,
        "eos_token_id": cfg.eos_token_id, "vit_layers": list(c.vit_layers),
        "vision_backbone": {
            "image_default_input_size": list(v.image_size), "image_patch_size": v.patch_size,
            "image_emb_dim": v.width, "image_num_layers": v.layers, "image_num_heads": v.heads,
            "image_head_dim": v.head_dim, "image_mlp_dim": v.mlp_dim, "image_num_pos": v.num_positions,
        },
    }


@torch.no_grad()
def write_released_checkpoint(out: str | Path, cfg: MolmoConfig | None = None, seed: int = 0) -> tuple[Path, int]:
    """Random bf16 weights (std 0.02, norms 1) in released names; returns (dir, bf16 weight bytes)."""
    from molmo.model.molmo import MolmoModel

    cfg = cfg or small_molmo_config()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with torch.device("meta"):
        meta = MolmoModel(cfg)
    g = torch.Generator().manual_seed(seed)
    shards: list[dict[str, torch.Tensor]] = [{}]
    size, total = 0, 0
    for name, p in meta.state_dict().items():
        is_norm = name.endswith("norm.weight") or "ln_" in name
        t = torch.ones(p.shape) if is_norm else torch.randn(p.shape, generator=g) * 0.02
        ((released, tensor),) = to_released({name: t.to(torch.bfloat16)}, cfg).items()
        if size and size + tensor.nbytes > SHARD_BYTES:
            shards.append({})
            size = 0
        shards[-1][released] = tensor.contiguous()
        size += tensor.nbytes
        total += tensor.nbytes
    weight_map = {}
    for i, shard in enumerate(shards):
        file = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(out / file))
        weight_map.update({k: file for k in shard})
    shards.clear()
    (out / "model.safetensors.index.json").write_text(json.dumps({"metadata": {"total_size": total},
                                                                  "weight_map": weight_map}))
    (out / "config.json").write_text(json.dumps(released_config_json(cfg), indent=1))
    return out, total
