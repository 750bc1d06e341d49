"""Parity with transformers' own implementations on tiny random configs: convert their weights with our
converter, load with our loader, compare ViT hidden states and decoder logits."""

from __future__ import annotations

import json

import pytest
import torch

transformers = pytest.importorskip("transformers")

from molmo.checkpoint.convert import build_molmo, convert_llm, convert_vision  # noqa: E402
from molmo.checkpoint.io import load_molmo  # noqa: E402
from molmo.preprocess.crops import patchify  # noqa: E402

ATOL = 1e-4


def save_hf(model, path):
    model.save_pretrained(path, safe_serialization=True)
    return path


def tiny_clip(tmp_path, seed=0):
    torch.manual_seed(seed)
    cfg = transformers.CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=4,
                                        num_attention_heads=2, image_size=56, patch_size=14, hidden_act="quick_gelu")
    return save_hf(transformers.CLIPVisionModel(cfg).eval(), tmp_path / "clip")


def tiny_siglip(tmp_path, seed=0):
    torch.manual_seed(seed)
    cfg = transformers.SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=4,
                                          num_attention_heads=2, image_size=56, patch_size=14)
    return save_hf(transformers.SiglipVisionModel(cfg).eval(), tmp_path / "siglip")


def tiny_qwen2(tmp_path, seed=0):
    torch.manual_seed(seed)
    cfg = transformers.Qwen2Config(vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, rope_theta=1e6,
                                   max_position_embeddings=256, tie_word_embeddings=False, eos_token_id=127)
    return save_hf(transformers.Qwen2ForCausalLM(cfg).eval(), tmp_path / "qwen2")


def tiny_olmo2(tmp_path, seed=0):
    torch.manual_seed(seed)
    cfg = transformers.Olmo2Config(vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                   num_attention_heads=4, max_position_embeddings=256, eos_token_id=127,
                                   pad_token_id=0, tie_word_embeddings=False)
    return save_hf(transformers.Olmo2ForCausalLM(cfg).eval(), tmp_path / "olmo2")


def tiny_olmoe(tmp_path, seed=0):
    torch.manual_seed(seed)
    cfg = transformers.OlmoeConfig(vocab_size=128, hidden_size=64, intermediate_size=32, num_hidden_layers=2,
                                   num_attention_heads=4, num_experts=8, num_experts_per_tok=2,
                                   max_position_embeddings=256, eos_token_id=127, pad_token_id=0)
    return save_hf(transformers.OlmoeForCausalLM(cfg).eval(), tmp_path / "olmoe")


def _randomize(model):
    # Untrained HF inits leave norms at 1 and biases at 0; perturb so the comparison exercises them.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def hf_model(cls, path):
    return cls.from_pretrained(path).eval()


@pytest.mark.parametrize("maker,cls", [(tiny_clip, "CLIPVisionModel"), (tiny_siglip, "SiglipVisionModel")])
def test_vit_hidden_states_match(tmp_path, maker, cls):
    path = maker(tmp_path)
    hf = getattr(transformers, cls).from_pretrained(path).eval()
    _randomize(hf).save_pretrained(path)
    molmo_dir = build_molmo(path, tiny_qwen2(tmp_path), tmp_path / "molmo", vit_layers=(-1, -2))
    model, cfg = load_molmo(molmo_dir)
    pixels = torch.randn(2, 3, 56, 56)
    with torch.no_grad():
        want = hf(pixel_values=pixels, output_hidden_states=True).hidden_states
        patches = torch.stack([torch.from_numpy(patchify(p.permute(1, 2, 0).numpy(), 14)) for p in pixels])
        got = model.vision.vit(patches)
    assert len(got) == len(want) - 1
    for i, h in enumerate(got):
        torch.testing.assert_close(h, want[i + 1], atol=ATOL, rtol=0)


@pytest.mark.parametrize("maker,cls", [(tiny_qwen2, "Qwen2ForCausalLM"), (tiny_olmo2, "Olmo2ForCausalLM"),
                                       (tiny_olmoe, "OlmoeForCausalLM")])
def test_decoder_logits_match(tmp_path, maker, cls):
    path = maker(tmp_path)
    hf = _randomize(getattr(transformers, cls).from_pretrained(path).eval())
    hf.save_pretrained(path)
    molmo_dir = build_molmo(tiny_clip(tmp_path), path, tmp_path / "molmo")
    model, cfg = load_molmo(molmo_dir)
    ids = torch.randint(0, 128, (2, 11))
    with torch.no_grad():
        want = hf(input_ids=ids).logits
        got = model(ids).logits
    torch.testing.assert_close(got, want, atol=ATOL, rtol=0)


def test_converted_config_describes_the_model(tmp_path):
    out = build_molmo(tiny_siglip(tmp_path), tiny_olmoe(tmp_path), tmp_path / "m", vit_num_layers=3)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model_type"] == "molmoe" and cfg["moe_num_experts"] == 8
    assert cfg["vision_backbone"]["kind"] == "siglip" and cfg["vision_backbone"]["image_num_layers"] == 3
    model, mcfg = load_molmo(out)
    assert not mcfg.vision.class_token and mcfg.vision.patch_bias and mcfg.llm.num_experts == 8
    with pytest.raises(ValueError, match="exceeds"):
        convert_vision(json.loads((tmp_path / "siglip" / "config.json").read_text()), {}, num_layers=9)
    with pytest.raises(ValueError, match="unsupported LLM"):
        convert_llm({"model_type": "llama"}, {})


def test_ff_proj_halves_order_is_up_then_gate():
    cfg = {"model_type": "qwen2", "hidden_size": 2, "num_hidden_layers": 1, "num_attention_heads": 1,
           "intermediate_size": 3, "vocab_size": 4}
    eye = torch.zeros(2, 2)
    state = {"model.embed_tokens.weight": torch.zeros(4, 2), "model.norm.weight": torch.ones(2),
             "lm_head.weight": torch.zeros(4, 2), "model.layers.0.input_layernorm.weight": torch.ones(2),
             "model.layers.0.post_attention_layernorm.weight": torch.ones(2),
             "model.layers.0.mlp.up_proj.weight": torch.full((3, 2), 1.0),
             "model.layers.0.mlp.gate_proj.weight": torch.full((3, 2), 2.0),
             "model.layers.0.mlp.down_proj.weight": torch.zeros(2, 3),
             "model.layers.0.self_attn.o_proj.weight": eye}
    for p in "qkv":
        state[f"model.layers.0.self_attn.{p}_proj.weight"] = eye
    _, out = convert_llm(cfg, state)
    ff = out["model.transformer.blocks.0.ff_proj.weight"]
    assert (ff[:3] == 1).all() and (ff[3:] == 2).all()
