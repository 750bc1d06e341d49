"""Forward conformance: run the tiny reference checkpoints on the stored inputs of
`<root>/forward/index.json` and compare logits, image features, ViT features, greedy generations and
training losses with the reference outputs (tolerances from the conformance README).

    molmo conformance ../shared/conformance --only forward
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from molmo.checkpoint.io import load_molmo
from molmo.conformance.cases import CaseResult, fixture_dir, fixture_file, run_case
from molmo.model.generation import generate
from molmo.model.loss import token_ce, token_loss

ATOL_LOGITS = 5e-4
ATOL_LOSS = 1e-4


def _model_for(root: Path, name: str, cache: dict):
    if name not in cache:
        cache[name] = load_molmo(fixture_dir(root / "models" / name))
    return cache[name]


def _image_inputs(d, batched: bool) -> dict[str, torch.Tensor]:
    if "images_f16" not in d:
        return {}
    add = (lambda a: a) if batched else (lambda a: a[None])
    return {
        "images": torch.from_numpy(add(d["images_f16"].astype(np.float32))),
        "image_masks": torch.from_numpy(add(d["image_masks"])),
        "image_input_idx": torch.from_numpy(add(d["image_input_idx"]).astype(np.int64)),
    }


def _inference_case(root: Path, case: dict, cache: dict) -> CaseResult:
    d = np.load(fixture_file(root / "forward" / f"{case['case']}.npz"))
    model, cfg = _model_for(root, case["model"], cache)
    ids = torch.from_numpy(d["input_ids"])
    inputs = _image_inputs(d, batched=True)
    with torch.no_grad():
        out = model(ids, **inputs)
        vit = None
        if inputs:
            first = inputs["images"][:, 0]
            vit = model.vision.vit_features(first).numpy()
    pos = d["logits_positions"]
    valid = d["input_ids"][:, pos] != -1
    diffs = {"logits": float(np.abs(out.logits[:, pos].numpy() - d["logits"])[valid].max())}
    if inputs:
        real = (d["images_f16"] != -1).any(axis=(2, 3))  # [B, N] real crops only
        diffs["image_features"] = float(np.abs(out.image_features.numpy() - d["image_features"])[real].max())
        diffs["vit_features"] = float(np.abs(vit - d["vit_features_crop0"]).max())
    want = d["generated_ids"]
    gen = generate(model, {"input_ids": ids, **inputs}, max_new_tokens=want.shape[1],
                   eos_token_ids=[cfg.eos_token_id])
    got = gen.sequences.numpy()
    if got.shape[1] < want.shape[1]:  # all rows stopped early: the reference continues with EOS
        got = np.pad(got, ((0, 0), (0, want.shape[1] - got.shape[1])), constant_values=cfg.eos_token_id)
    gen_ok = bool((got == want).all())
    worst = max(diffs.values())
    ok = worst <= ATOL_LOGITS and gen_ok
    detail = " ".join(f"{k}={v:.2e}" for k, v in diffs.items()) + f" generation={'exact' if gen_ok else 'DIFFERS'}"
    return CaseResult("forward", case["case"], ok, worst, detail)


def _training_case(root: Path, case: dict, cache: dict) -> CaseResult:
    d = np.load(fixture_file(root / "forward" / f"{case['case']}.npz"))
    model, _ = _model_for(root, case["model"], cache)
    t = lambda k: torch.from_numpy(d[k])[None]  # noqa: E731
    kwargs = {"position_ids": t("position_ids")}
    if "subsegment_ids" in d:
        kwargs["subsegment_ids"] = t("subsegment_ids")
    with torch.no_grad():
        out = model(t("input_ids"), **_image_inputs(d, batched=False), **kwargs)
    labels, masks = t("labels"), t("loss_masks")
    parts = token_loss(out.logits, labels, masks)
    loss = float(parts.ce_sum / parts.weight_sum)
    ce = token_ce(out.logits, labels)[0].numpy()
    sel = d["loss_masks"] > 0
    diffs = {
        "logits": float(np.abs(out.logits[0].numpy() - d["logits"]).max()),
        "token_ce": float(np.abs(ce - d["token_ce"])[sel].max()),
        "loss": abs(loss - float(d["loss"])),
    }
    ok = diffs["logits"] <= ATOL_LOGITS and diffs["token_ce"] <= ATOL_LOGITS and diffs["loss"] <= ATOL_LOSS
    detail = " ".join(f"{k}={v:.2e}" for k, v in diffs.items())
    return CaseResult("forward", case["case"], ok, max(diffs.values()), detail)


def run_cases(root: Path) -> list[CaseResult]:
    root = Path(root)
    cases = json.loads(fixture_file(root / "forward" / "index.json").read_text())
    cache: dict = {}
    results = []
    for case in cases:
        check = _training_case if "messages" in case else _inference_case
        results.append(run_case("forward", case["case"], lambda: check(root, case, cache)))
    return results
