"""Optimizer groups and frozen parameters, the per-group LR schedule, per-group gradient clipping."""

from __future__ import annotations

import math

import pytest
import torch

from molmo.model.config import preset
from molmo.model.molmo import MolmoModel
from molmo.train.config import GroupOptim, OptimConfig
from molmo.train.optim import (build_optimizer, clip_per_group, decays, learning_rate, param_group_name,
                               set_learning_rates)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return MolmoModel(preset("tiny-qwen2"))


def test_groups_and_frozen_embedding(model):
    opt = build_optimizer(model, OptimConfig())
    params = {id(p): n for n, p in model.named_parameters()}
    by_group = {}
    for g in opt.param_groups:
        by_group.setdefault(g["group"], set()).update(params[id(p)] for p in g["params"])
    assert "llm.embed.new_embedding" in by_group["connector"]
    assert {"vision.pad_embed", "vision.projector.w1.weight", "vision.pooling.wq.weight"} <= by_group["connector"]
    assert all(n.startswith("vision.vit.") for n in by_group["vit"])
    assert "llm.lm_head.weight" in by_group["llm"]
    assert not model.llm.embed.embedding.requires_grad  # the released recipe freezes it
    assert all("llm.embed.embedding" != n for names in by_group.values() for n in names)
    assert sum(len(v) for v in by_group.values()) == sum(1 for p in model.parameters() if p.requires_grad)
    with pytest.raises(ValueError, match="no optimizer group"):
        param_group_name("something.else")


def test_weight_decay_follows_the_recipe_names(model):
    decayed = {n for n, p in model.named_parameters() if decays(n, p)}
    assert {"vision.vit.patch_embedding.weight", "vision.pad_embed", "llm.lm_head.weight"} <= decayed
    assert not decayed & {"llm.embed.new_embedding", "llm.embed.embedding", "vision.vit.positional_embedding"}
    assert not any("norm" in n or n.endswith(".bias") for n in decayed)
    assert decays("_orig_mod.llm.blocks.0.attn.wq.weight", torch.zeros(2, 2))  # wrappers' prefixes are ignored
    assert not decays("module.llm.embed.new_embedding", torch.zeros(2, 2))


def test_freeze_flags(model):
    build_optimizer(model, OptimConfig(freeze_vit=True, freeze_embedding=False))
    assert not any(p.requires_grad for p in model.vision.vit.parameters())
    assert model.llm.embed.embedding.requires_grad
    build_optimizer(model, OptimConfig())  # restore for other tests


def test_schedule_matches_formula():
    peak, warm, total = 2e-4, 10, 110
    assert learning_rate(5, peak, warm, total) == pytest.approx(peak * 5 / 10)
    assert learning_rate(10, peak, warm, total) == pytest.approx(peak)
    assert learning_rate(total, peak, warm, total) == pytest.approx(0.1 * peak)
    mid = learning_rate(60, peak, warm, total)
    assert mid == pytest.approx(0.1 * peak + 0.9 * peak * (1 + math.cos(math.pi * 0.5)) / 2)
    lrs = [learning_rate(s, peak, warm, total) for s in range(warm, total + 1)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))  # monotone decay after warm-up


def test_per_group_rates(model):
    cfg = OptimConfig(connector=GroupOptim(1.0, 4), vit=GroupOptim(2.0, 8), llm=GroupOptim(3.0, 0))
    opt = build_optimizer(model, cfg)
    lrs = set_learning_rates(opt, cfg, 2, 100)
    assert lrs == pytest.approx({"connector": 0.5, "vit": 0.5, "llm": learning_rate(2, 3.0, 0, 100)})
    for g in opt.param_groups:
        assert g["lr"] == lrs[g["group"]]


def test_clipping_is_per_group(model):
    opt = build_optimizer(model, OptimConfig())
    for g in opt.param_groups:
        for p in g["params"]:
            p.grad = torch.full_like(p, {"connector": 1e-4, "vit": 10.0, "llm": 1.0}[g["group"]])
    before = {name: math.sqrt(sum(float(p.grad.pow(2).sum()) for g in opt.param_groups if g["group"] == name
                                  for p in g["params"])) for name in ("connector", "vit", "llm")}
    norms = clip_per_group(opt, 1.0)
    assert norms == pytest.approx(before, rel=1e-5)
    after = {name: math.sqrt(sum(float(p.grad.pow(2).sum()) for g in opt.param_groups if g["group"] == name
                                 for p in g["params"])) for name in norms}
    assert after["vit"] == pytest.approx(1.0, rel=1e-4) and after["llm"] == pytest.approx(1.0, rel=1e-4)
    assert after["connector"] == pytest.approx(before["connector"], rel=1e-6)  # small groups are untouched
    for p in model.parameters():
        p.grad = None
