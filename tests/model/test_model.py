"""Model behaviour: KV-cache decoding, batching, bf16, MoE math, attention masks, configs."""

from __future__ import annotations

import json

import pytest
import torch

from molmo.model.config import from_hf_config, molmo_7b_d, molmo_7b_o, molmoe_1b, preset, tiny_moe, tiny_qwen2
from molmo.model.generation import generate
from molmo.model.llm import build_attention_mask
from molmo.model.molmo import MolmoModel


def random_images(cfg, n_crops, seed):
    g = torch.Generator().manual_seed(seed)
    v = cfg.vision
    images = torch.randn(1, n_crops, v.num_patches, v.patch_dim, generator=g)
    masks = torch.ones(1, n_crops, v.num_patches)
    tokens = (v.grid[0] // 2) * (v.grid[1] // 2)
    idx = torch.arange(1, 1 + n_crops * tokens).view(1, n_crops, tokens)
    return images, masks, idx


def test_kv_cache_decoding_equals_full_forward(random_model):
    cfg = tiny_qwen2()
    model = random_model(cfg)
    images, masks, idx = random_images(cfg, 2, seed=1)
    prompt = torch.randint(0, 500, (1, 1 + idx.numel() + 5))
    out = generate(model, {"input_ids": prompt, "images": images, "image_masks": masks, "image_input_idx": idx},
                   max_new_tokens=6)
    full = torch.cat([prompt, out.sequences], dim=1)
    with torch.no_grad():
        logits = model(full, images=images, image_masks=masks, image_input_idx=idx).logits
    greedy = logits[0, prompt.shape[1] - 1:-1].argmax(-1)
    assert torch.equal(greedy, out.sequences[0])


def test_batch_equals_single_with_different_crop_counts(random_model):
    cfg = tiny_qwen2()
    model = random_model(cfg)
    rows = []
    for n_crops, n_text, seed in ((3, 4, 1), (1, 9, 2)):
        images, masks, idx = random_images(cfg, n_crops, seed)
        ids = torch.randint(0, 500, (1, 1 + idx.numel() + n_text), generator=torch.Generator().manual_seed(seed))
        rows.append((ids, images, masks, idx))
    singles = [generate(model, {"input_ids": i, "images": im, "image_masks": m, "image_input_idx": x},
                        max_new_tokens=5).sequences[0] for i, im, m, x in rows]
    t = max(r[0].shape[1] for r in rows)
    n = max(r[1].shape[1] for r in rows)
    ids = torch.full((2, t), -1)
    images = torch.full((2, n, *rows[0][1].shape[2:]), -1.0)
    masks = torch.full((2, n, rows[0][2].shape[2]), -1.0)
    idx = torch.full((2, n, rows[0][3].shape[2]), -1)
    for b, (i, im, m, x) in enumerate(rows):
        ids[b, : i.shape[1]] = i[0]
        images[b, : im.shape[1]], masks[b, : m.shape[1]], idx[b, : x.shape[1]] = im[0], m[0], x[0]
    batched = generate(model, {"input_ids": ids, "images": images, "image_masks": masks, "image_input_idx": idx},
                       max_new_tokens=5)
    for b in range(2):
        assert torch.equal(batched.sequences[b], singles[b])


def test_bf16_forward_runs_and_is_close(random_model):
    cfg = tiny_qwen2()
    model = random_model(cfg)
    images, masks, idx = random_images(cfg, 2, seed=1)
    ids = torch.randint(0, 500, (1, 1 + idx.numel() + 5))
    kw = dict(image_masks=masks, image_input_idx=idx)
    with torch.no_grad():
        ref = model(ids, images=images, **kw).logits
        low = model.to(torch.bfloat16)(ids, images=images.bfloat16(), **kw).logits
    assert low.dtype == torch.bfloat16
    assert torch.isfinite(low).all()
    assert (low.float() - ref).abs().max() < 0.1 * ref.abs().max()


def test_moe_matches_naive_per_token_loop(random_model):
    cfg = tiny_moe()
    model = random_model(cfg)
    moe = model.llm.blocks[0].mlp
    x = torch.randn(2, 5, cfg.llm.d_model)
    with torch.no_grad():
        got = moe(x)
        want = torch.zeros_like(x)
        probs = torch.softmax(moe.router(x).float(), -1)
        for b in range(2):
            for t in range(5):
                w, e = probs[b, t].topk(cfg.llm.experts_top_k)
                for wi, ei in zip(w, e):
                    h = torch.nn.functional.silu(moe.w_gate[ei] @ x[b, t]) * (moe.w_up[ei] @ x[b, t])
                    want[b, t] += wi * (moe.w_down[ei] @ h)
    assert torch.allclose(got, want, atol=1e-5)


def test_attention_mask_subsegment_rule():
    sub = torch.tensor([[10000, 10000, 1, 1, 2, 2]])
    mask = build_attention_mask(torch.ones(1, 6, dtype=torch.bool), 6, sub, torch.float32)[0, 0] == 0
    # conversation 2 sees the image and itself, not conversation 1; image tokens see only the image
    assert mask[4].tolist() == [True, True, False, False, True, False]
    assert mask[3].tolist() == [True, True, True, True, False, False]
    assert mask[1].tolist() == [True, True, False, False, False, False]


def test_prompt_longer_than_context_is_rejected(random_model):
    cfg = tiny_qwen2()
    cfg = cfg.replace(llm=cfg.llm.__class__(**{**cfg.llm.__dict__, "max_position_embeddings": 16}))
    model = random_model(cfg)
    with pytest.raises(ValueError, match="exceeds the model context"):
        generate(model, {"input_ids": torch.zeros(1, 14, dtype=torch.long)}, max_new_tokens=4)


def test_released_presets_parameter_count():
    # arch-spec §0: Molmo-7B-D has 8,021,025,280 parameters (checked against the released index)
    with torch.device("meta"):
        model = MolmoModel(molmo_7b_d())
    assert sum(p.numel() for p in model.parameters()) == 8_021_025_280
    assert molmo_7b_o().llm.norm_after and molmoe_1b().llm.num_experts == 64
    with pytest.raises(ValueError, match="unknown model preset"):
        preset("molmo-8b")


def test_hf_config_round_trip(conformance_dir):
    raw = json.loads((conformance_dir / "models" / "tiny_olmo" / "config.json").read_text())
    cfg = from_hf_config(raw)
    assert cfg.llm.qk_norm and cfg.llm.norm_after and cfg.llm.kv_heads == 5
    assert cfg.vision.num_positions == 577 and cfg.image_token_ids()["<im_patch>"] == 386
    assert from_hf_config(cfg.to_dict()) == cfg


def test_left_padded_batch_matches_unpadded_forward(random_model):
    model = random_model(tiny_qwen2())
    ids = torch.randint(0, 500, (1, 7))
    padded = torch.cat([torch.full((1, 3), -1), ids], dim=1)
    with torch.no_grad():
        want = model(ids).logits
        got = model(padded).logits[:, 3:]
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_sampling_stop_strings_and_streaming(random_model):
    model = random_model(tiny_qwen2())
    ids = torch.randint(0, 500, (2, 6))
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a = generate(model, {"input_ids": ids}, max_new_tokens=8, temperature=1.0, top_p=0.9, generator=g1)
    b = generate(model, {"input_ids": ids}, max_new_tokens=8, temperature=1.0, top_p=0.9, generator=g2)
    assert a.tokens == b.tokens  # seeded sampling is reproducible
    streamed = []
    greedy = generate(model, {"input_ids": ids[:1]}, max_new_tokens=8, on_token=lambda r, t: streamed.append(t))
    assert streamed == greedy.tokens[0]
    decode = lambda toks: "".join(f"<{t}>" for t in toks)  # noqa: E731
    toks = greedy.tokens[0]
    first = toks.index(toks[2])  # where that token (hence its text) first appears
    cut = generate(model, {"input_ids": ids[:1]}, max_new_tokens=8, stop_strings=[decode([toks[2]])], decode=decode)
    assert cut.tokens[0] == toks[:first] and cut.finish_reasons == ["stop"]
    eos = generate(model, {"input_ids": ids[:1]}, max_new_tokens=8, eos_token_ids=[toks[1]])
    assert eos.tokens[0] == toks[: toks.index(toks[1])] and eos.finish_reasons == ["stop"]

    # should_stop decides when decoding ends (sharded evaluation keeps a finished rank stepping with the others)
    asked: list[bool] = []
    kept = generate(model, {"input_ids": ids[:1]}, max_new_tokens=8, eos_token_ids=[toks[0]],
                    should_stop=lambda done: asked.append(done) or False)
    assert kept.tokens == [[]] and asked == [True] * 8 and kept.sequences.shape == (1, 8)
    early = generate(model, {"input_ids": ids[:1]}, max_new_tokens=8, should_stop=lambda done: True)
    assert early.tokens[0] == toks[:1] and early.finish_reasons == ["length"]


@pytest.mark.parametrize("name", ["tiny-molmo", "tiny-moe"])
def test_init_scales_each_towers_residual_outputs_by_its_own_depth(name):
    from molmo.model.init import init_weights
    cfg = preset(name)
    model = MolmoModel(cfg)
    init_weights(model, seed=0)
    vit_block, llm_block = model.vision.vit.blocks[0], model.llm.blocks[0]
    ffn_out = llm_block.mlp.w_down if cfg.llm.num_experts else llm_block.mlp.ff_out.weight
    for weight, layers in ((vit_block.attention.wo.weight, cfg.vision.layers),
                           (vit_block.feed_forward.w2.weight, cfg.vision.layers),
                           (llm_block.attn.attn_out.weight, cfg.llm.layers), (ffn_out, cfg.llm.layers)):
        assert float(weight.std()) == pytest.approx(0.02 / (2 * layers) ** 0.5, rel=0.1)
    assert float(llm_block.mlp.ff_proj.weight.std() if not cfg.llm.num_experts else llm_block.mlp.w_up.std()) \
        == pytest.approx(0.02, rel=0.1)


def test_tiny_molmo_preset_describes_the_shipped_model():
    """`tiny-molmo` is the architecture that ships; the training chain's candidate is its own preset."""
    import dataclasses
    from molmo.api import DEFAULT_MODEL_DIR
    from molmo.checkpoint.io import read_config
    shipped = read_config(DEFAULT_MODEL_DIR)
    ours = preset("tiny-molmo")
    assert ours.vision == shipped.vision and ours.llm == shipped.llm
    assert dataclasses.replace(ours.connector, image_scale=1.0) == dataclasses.replace(shipped.connector,
                                                                                       image_scale=1.0)
    assert preset("tiny-molmo-v2").llm == dataclasses.replace(shipped.llm, qk_norm=False)
    # the crop budget it was trained with, so commands without --max-crops give it what it saw
    from molmo.preprocess.config import PreprocessorConfig
    from molmo.train.tiny_presets import TINY_DATA
    assert PreprocessorConfig.from_json(DEFAULT_MODEL_DIR / "preprocessor_config.json").max_crops == \
        TINY_DATA.max_crops


def test_config_kinds_are_documented_choices_that_stay_plain_strings_in_json():
    import json

    from molmo.model.config import MolmoConfig, Pooling, VisionKind

    cfg = preset("tiny-molmo")
    assert cfg.connector.pooling is Pooling.ATTENTION_MEANQ and cfg.connector.pooling == "attention-meanq"
    written = json.loads(json.dumps(cfg.to_dict()))
    assert written["connector"]["pooling"] == "attention-meanq" and written["vision"]["kind"] == "clip"
    assert MolmoConfig.from_dict(written) == cfg and MolmoConfig.from_dict(written).vision.kind is VisionKind.CLIP
    with pytest.raises(ValueError, match=r"ConnectorConfig.pooling must be one of \['attention-meanq', 'attention', 'none'\], got 'mean'"):
        cfg.connector.__class__(pooling="mean")
