"""Build an initial Molmo from the base checkpoints it is trained from (arch-spec §4.4): an HF-format
vision tower (CLIP / MetaCLIP `CLIPVisionModel`, `SiglipVisionModel`, DINOv2 `Dinov2Model`) and an HF-format
LLM (`Qwen2ForCausalLM`, `Olmo2ForCausalLM`, `OlmoeForCausalLM`), both from local directories. The output is a
released-format Molmo directory (released parameter names, `config.json` with the vision extension keys,
the LLM's tokenizer with the five image tokens added) that `molmo.checkpoint.io.load_molmo` reads. The
connector and the 128 new token embeddings are freshly initialised (seeded).

    molmo convert --vision clip-vit-large-patch14-336 --llm Qwen2-7B --out molmo-7b-d-init --vit-layers 23
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import save_file
from tqdm import tqdm

from molmo.checkpoint.io import CheckpointError, read_tensors
from molmo.model.config import from_hf_config
from molmo.model.molmo import MolmoModel
from molmo.text.special_tokens import IMAGE_TOKEN_NAMES, ImageTokenIds

V = "model.vision_backbone.image_vit."
T = "model.transformer."


def _read(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    if not (path / "config.json").is_file():
        raise CheckpointError(f"{path}: no config.json (expected an HF-format model directory)")
    return json.loads((path / "config.json").read_text()), read_tensors(path)


def _strip_vision_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in state.items():
        if "text_model" in k or k.startswith(("head.", "vision_model.head.", "logit_", "text_projection",
                                               "visual_projection", "layernorm.", "pooler.")):
            continue
        out[k.split("vision_model.", 1)[-1]] = v
    return out


# ---------------------------------------------------------------------------------- vision towers

def convert_vision(cfg: dict, state: dict[str, torch.Tensor], num_layers: int | None = None
                   ) -> tuple[dict, dict[str, torch.Tensor]]:
    """Returns the `vision_backbone` extension config and tensors in released names."""
    cfg = cfg.get("vision_config", cfg)
    model_type = cfg.get("model_type", "clip_vision_model")
    kind = "siglip" if "siglip" in model_type else "dino" if "dinov2" in model_type else "clip"
    state = _strip_vision_prefix(state)
    layers = cfg["num_hidden_layers"] if num_layers is None else num_layers
    if layers > cfg["num_hidden_layers"]:
        raise ValueError(f"--vit-layers {layers} exceeds the tower's {cfg['num_hidden_layers']} layers")
    width, heads, patch, size = cfg["hidden_size"], cfg["num_attention_heads"], cfg["patch_size"], cfg["image_size"]
    out: dict[str, torch.Tensor] = {}
    if kind == "dino":
        emb = "embeddings."
        conv = state[emb + "patch_embeddings.projection.weight"]
        out[V + "patch_embedding.bias"] = state[emb + "patch_embeddings.projection.bias"]
        out[V + "class_embedding"] = state[emb + "cls_token"].reshape(width)
        pos = state[emb + "position_embeddings"].reshape(-1, width)
        layer_fmt = "encoder.layer.{i}."
        names = {"attention.wq": "attention.attention.query", "attention.wk": "attention.attention.key",
                 "attention.wv": "attention.attention.value", "attention.wo": "attention.output.dense",
                 "feed_forward.w1": "mlp.fc1", "feed_forward.w2": "mlp.fc2", "attention_norm": "norm1",
                 "ffn_norm": "norm2"}
    else:
        conv = state["embeddings.patch_embedding.weight"]
        if kind == "siglip":
            out[V + "patch_embedding.bias"] = state["embeddings.patch_embedding.bias"]
        else:
            out[V + "class_embedding"] = state["embeddings.class_embedding"]
            out[V + "pre_ln.weight"] = state["pre_layrnorm.weight"]
            out[V + "pre_ln.bias"] = state["pre_layrnorm.bias"]
        pos = state["embeddings.position_embedding.weight"]
        layer_fmt = "encoder.layers.{i}."
        names = {"attention.wq": "self_attn.q_proj", "attention.wk": "self_attn.k_proj",
                 "attention.wv": "self_attn.v_proj", "attention.wo": "self_attn.out_proj",
                 "feed_forward.w1": "mlp.fc1", "feed_forward.w2": "mlp.fc2", "attention_norm": "layer_norm1",
                 "ffn_norm": "layer_norm2"}
    # Conv [width, 3, p, p] -> linear over patch vectors in (dy, dx, channel) order.
    out[V + "patch_embedding.weight"] = conv.permute(0, 2, 3, 1).reshape(width, -1).contiguous()
    out[V + "positional_embedding"] = pos
    for i in range(layers):
        src = layer_fmt.format(i=i)
        dst = f"{V}transformer.resblocks.{i}."
        for ours, theirs in names.items():
            for suffix in ("weight", "bias"):
                out[f"{dst}{ours}.{suffix}"] = state[f"{src}{theirs}.{suffix}"]
        if kind == "dino":
            out[dst + "lambda1"] = state[src + "layer_scale1.lambda1"]
            out[dst + "lambda2"] = state[src + "layer_scale2.lambda1"]
    act = {"quick_gelu": "quick_gelu", "gelu_pytorch_tanh": "gelu_pytorch_tanh"}.get(cfg.get("hidden_act"), "gelu")
    vision = {
        "kind": kind, "image_default_input_size": [size, size], "image_patch_size": patch,
        "image_emb_dim": width, "image_num_heads": heads, "image_num_key_value_heads": heads,
        "image_num_layers": layers, "image_head_dim": width // heads,
        "image_mlp_dim": cfg["intermediate_size"], "image_mlp_activations": act,
        "image_num_pos": pos.shape[0], "image_norm_eps": cfg.get("layer_norm_eps", 1e-5),
    }
    return vision, out


# ---------------------------------------------------------------------------------- language models

def convert_llm(cfg: dict, state: dict[str, torch.Tensor]) -> tuple[dict, dict[str, torch.Tensor]]:
    """Qwen2 / Olmo2 / OLMoE -> released Molmo decoder tensors and config keys."""
    model_type = cfg.get("model_type")
    if model_type not in ("qwen2", "olmo2", "olmoe"):
        raise ValueError(f"unsupported LLM model_type {model_type!r} (expected qwen2, olmo2 or olmoe)")
    d, layers = cfg["hidden_size"], cfg["num_hidden_layers"]
    heads = cfg["num_attention_heads"]
    kv = cfg.get("num_key_value_heads") or heads
    out: dict[str, torch.Tensor] = {
        T + "wte.embedding": state["model.embed_tokens.weight"],
        T + "ln_f.weight": state["model.norm.weight"],
        T + "ff_out.weight": state.get("lm_head.weight", state["model.embed_tokens.weight"]),
    }
    for i in tqdm(range(layers), desc=f"converting {model_type} layers", leave=False):
        src, dst = f"model.layers.{i}.", f"{T}blocks.{i}."
        qkv = [state[f"{src}self_attn.{p}_proj.weight"] for p in "qkv"]
        out[dst + "att_proj.weight"] = torch.cat(qkv, 0)
        if f"{src}self_attn.q_proj.bias" in state:
            out[dst + "att_proj.bias"] = torch.cat([state[f"{src}self_attn.{p}_proj.bias"] for p in "qkv"], 0)
        out[dst + "attn_out.weight"] = state[f"{src}self_attn.o_proj.weight"]
        if model_type in ("olmo2", "olmoe"):
            out[dst + "q_norm.weight"] = state[f"{src}self_attn.q_norm.weight"]
            out[dst + "k_norm.weight"] = state[f"{src}self_attn.k_norm.weight"]
        if model_type == "olmo2":  # norm-after blocks
            out[dst + "attn_norm.weight"] = state[f"{src}post_attention_layernorm.weight"]
            out[dst + "ff_norm.weight"] = state[f"{src}post_feedforward_layernorm.weight"]
        else:
            out[dst + "attn_norm.weight"] = state[f"{src}input_layernorm.weight"]
            out[dst + "ff_norm.weight"] = state[f"{src}post_attention_layernorm.weight"]
        if model_type == "olmoe":
            out.update(_olmoe_experts(cfg, state, src, dst))
        else:  # released halves order: ff_proj = cat(up, gate)
            out[dst + "ff_proj.weight"] = torch.cat([state[f"{src}mlp.up_proj.weight"],
                                                     state[f"{src}mlp.gate_proj.weight"]], 0)
            out[dst + "ff_out.weight"] = state[f"{src}mlp.down_proj.weight"]
    vocab = cfg["vocab_size"]
    keys = {
        "model_type": "molmoe" if model_type == "olmoe" else "molmo",
        "hidden_size": d, "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": kv,
        "head_dim": cfg.get("head_dim") or d // heads,
        "intermediate_size": cfg["intermediate_size"] if model_type == "olmoe" else 2 * cfg["intermediate_size"],
        "qkv_bias": T + "blocks.0.att_proj.bias" in out, "attention_layer_norm": model_type != "qwen2",
        "norm_after": model_type == "olmo2", "clip_qkv": cfg.get("clip_qkv"),
        "rope_theta": cfg.get("rope_theta") or (cfg.get("rope_parameters") or {}).get("rope_theta", 10000.0),
        "layer_norm_eps": cfg.get("rms_norm_eps", 1e-6), "vocab_size": vocab, "embedding_size": vocab,
        "max_position_embeddings": cfg.get("max_position_embeddings", 4096),
        "eos_token_id": cfg.get("eos_token_id"),
    }
    if model_type == "olmoe":
        keys.update(moe_num_experts=cfg["num_experts"], moe_top_k=cfg["num_experts_per_tok"],
                    norm_topk_prob=cfg.get("norm_topk_prob", False))
    return keys, out


def _olmoe_experts(cfg: dict, state: dict[str, torch.Tensor], src: str, dst: str) -> dict[str, torch.Tensor]:
    """OLMoE experts -> the megablocks layout (w1 = gate, v1 = up, w2 = down^T, experts stacked on dim 0).
    Accepts the hub's per-expert names and transformers 5's fused `gate_up_proj` / `down_proj`."""
    e = cfg["num_experts"]
    out = {dst + "ffn.router.layer.weight": state[f"{src}mlp.gate.weight"]}
    if f"{src}mlp.experts.gate_up_proj" in state:
        gate, up = state[f"{src}mlp.experts.gate_up_proj"].chunk(2, dim=1)  # [E, h, d] each
        down = state[f"{src}mlp.experts.down_proj"]  # [E, d, h]
    else:
        gate = torch.stack([state[f"{src}mlp.experts.{j}.gate_proj.weight"] for j in range(e)])
        up = torch.stack([state[f"{src}mlp.experts.{j}.up_proj.weight"] for j in range(e)])
        down = torch.stack([state[f"{src}mlp.experts.{j}.down_proj.weight"] for j in range(e)])
    out[dst + "ffn.experts.mlp.w1"] = gate.reshape(-1, gate.shape[-1]).contiguous()
    out[dst + "ffn.experts.mlp.v1"] = up.reshape(-1, up.shape[-1]).contiguous()
    out[dst + "ffn.experts.mlp.w2"] = down.transpose(1, 2).reshape(-1, down.shape[1]).contiguous()
    return out


# ---------------------------------------------------------------------------------- assembly

def _fresh_connector(config: dict, seed: int) -> dict[str, torch.Tensor]:
    """Connector + new token embeddings, initialised like a new Molmo (seeded)."""
    torch.manual_seed(seed)
    with torch.device("meta"):
        probe = MolmoModel(from_hf_config(config))
    out = {}
    for name, p in probe.named_parameters():
        if name.startswith(("vision.pooling", "vision.projector", "vision.pad_embed", "llm.embed.new_embedding")):
            t = torch.empty(p.shape)
            if name == "vision.pad_embed" or name.endswith("bias"):
                t.zero_()
            elif name == "llm.embed.new_embedding":
                t.normal_(0, 0.02)
            else:
                t.normal_(0, 1 / math.sqrt(p.shape[-1]))
            released = name.replace("vision.pooling.", "model.vision_backbone.image_pooling_2d.").replace(
                "vision.projector.", "model.vision_backbone.image_projector.").replace(
                "vision.pad_embed", "model.vision_backbone.pad_embed").replace(
                "llm.embed.new_embedding", T + "wte.new_embedding")
            out[released] = t
    return out


def _tokenizer_with_image_tokens(llm_dir: Path, out_dir: Path, embedding_size: int) -> dict[str, int] | None:
    """Copy tokenizer.json, padding it to the embedding size, then adding the five image tokens so that
    they land on the first new embedding rows (the official rule, arch-spec §4.5)."""
    src = llm_dir / "tokenizer.json"
    if not src.is_file():
        return None
    from tokenizers import AddedToken, Tokenizer

    tok = Tokenizer.from_file(str(src))
    n = tok.get_vocab_size(with_added_tokens=True)
    if n > embedding_size:
        raise ValueError(f"tokenizer has {n} tokens, more than the embedding size {embedding_size}")
    tok.add_special_tokens([AddedToken(f"|<EXTRA_TOKENS_{i}>|", special=True) for i in range(embedding_size - n)])
    tok.add_special_tokens([AddedToken(t, special=True) for t in IMAGE_TOKEN_NAMES])
    tok.save(str(out_dir / "tokenizer.json"))
    vocab = tok.get_vocab(with_added_tokens=True)
    return {t: vocab[t] for t in IMAGE_TOKEN_NAMES}


def build_molmo(vision_dir: str | Path, llm_dir: str | Path, out_dir: str | Path, *,
                vit_num_layers: int | None = None, vit_layers: tuple[int, ...] = (-2, -9), seed: int = 0) -> Path:
    vision_dir, llm_dir, out_dir = Path(vision_dir), Path(llm_dir), Path(out_dir)
    vcfg, vstate = _read(vision_dir)
    lcfg, lstate = _read(llm_dir)
    vision, tensors = convert_vision(vcfg, vstate, vit_num_layers)
    keys, llm_tensors = convert_llm(lcfg, lstate)
    tensors.update(llm_tensors)
    config = {
        "architectures": ["MolmoForCausalLM"], **keys, "vision_backbone": vision, "vit_layers": list(vit_layers),
        "image_pooling_2d": "attention-meanq", "image_pooling_h": 2, "image_pooling_w": 2,
        "image_projector": "mlp", "image_padding_embed": "pad_and_partial_pad", "additional_vocab_size": 128,
        "special_token_ids": ImageTokenIds.after_vocabulary(keys["embedding_size"]).to_mapping(),
    }
    tensors.update(_fresh_connector(config, seed))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        special = _tokenizer_with_image_tokens(llm_dir, tmp, keys["embedding_size"])
        if special:
            config["special_token_ids"] = special
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp / "model.safetensors"))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
