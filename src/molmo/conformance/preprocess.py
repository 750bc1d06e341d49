"""Pre-processing conformance: rebuild the reference pre-processor's arrays for every case of
`<root>/preprocess/index.json` (released settings, real Qwen2 token ids) and the training cases of
`<root>/forward/index.json` (fixture crop settings, char stand-in tokenizer), and compare.

Exact: input_ids, image_input_idx, tiling, n_crops, labels, position ids, sub-segment ids.
Within 1e-6: image_masks, loss weights. Within 1e-3: pixels (torch bilinear vs the reference's TF resize);
the training crops are stored as float16, so they are compared at float16 precision.

    molmo conformance ../shared/conformance --only preprocess
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from molmo.conformance.cases import CaseResult, fixture_file, run_case
from molmo.preprocess.config import PreprocessorConfig
from molmo.text.special_tokens import ImageTokenIds
from molmo.preprocess.processor import MolmoProcessor
from molmo.text.tokenizer import CharTokenizer

LAYOUT_FILE = "real_tokenizer_layout_chelsea.json"  # the released tokenizer's ids for the one prompt used
ATOL_PIXELS = 1e-3
ATOL_MASKS = 1e-6


class _FixedTextTokenizer:
    """Stands in for the real tokenizer: the reference's token ids for the one prompt text it used."""

    def __init__(self, layout: dict):
        self.table = {layout["processed_text"]: list(layout["text_token_ids"])}
        self.eos_token_id = layout["eos_token_id"]
        self.bos_token_id = layout["bos_id_used"]
        self.image_token_ids = ImageTokenIds.from_mapping(layout["special_token_ids"])

    def encode(self, text: str) -> list[int]:
        if text not in self.table:
            raise KeyError(f"no reference token ids for text {text!r}")
        return self.table[text]


def load_fixture_image(root: Path, name: str) -> np.ndarray:
    meta = json.loads(fixture_file(root / "images" / "images.json").read_text())
    file = meta.get(name, {}).get("file")
    if not file and name.endswith("2x"):  # documented as np.repeat(np.repeat(base, 2, 0), 2, 1), not stored
        base = load_fixture_image(root, name[:-2])
        return np.repeat(np.repeat(base, 2, axis=0), 2, axis=1)
    if not file:
        raise KeyError(f"{root / 'images' / 'images.json'} lists no image {name!r}")
    return np.asarray(Image.open(fixture_file(root / file)).convert("RGB"))


def _compare(diffs: dict, exact: dict) -> tuple[bool, float, str]:
    tol = {"pixels": ATOL_PIXELS, "crop_stats": ATOL_PIXELS, "images": ATOL_PIXELS}
    ok = all(exact.values()) and all(v <= tol.get(k, ATOL_MASKS) for k, v in diffs.items())
    bad = [k for k, v in exact.items() if not v]
    detail = " ".join(f"{k}={v:.2e}" for k, v in diffs.items())
    detail += " exact:" + ("all" if not bad else "FAILED " + ",".join(bad))
    return ok, max(diffs.values(), default=0.0), detail


def _preprocess_case(root: Path, case: dict) -> CaseResult:
    layout = json.loads(fixture_file(root / "preprocess" / LAYOUT_FILE).read_text())
    processor = MolmoProcessor(_FixedTextTokenizer(layout), PreprocessorConfig.released())
    prompt = layout["prompt"]
    ref = np.load(fixture_file(root / "preprocess" / f"{case['case']}.npz"))
    proc = MolmoProcessor(processor.tokenizer, processor.config.replace(
        max_crops=case["max_crops"], overlap_margins=tuple(case["overlap_margins"])))
    image = load_fixture_image(root, case["image"])
    ex = proc.encode(image, prompt=prompt)
    img = proc.image_inputs(image)
    exact = {
        "input_ids": np.array_equal(ex["input_ids"], ref["input_ids"]),
        "image_input_idx": np.array_equal(ex["image_input_idx"], ref["image_input_idx"]),
        "tiling": np.array_equal(img["tiling"], ref["tiling"]),
        "n_crops": ex["images"].shape[0] == case["n_crops"],
    }
    diffs = {}
    if ex["image_masks"].shape == ref["image_masks"].shape:
        diffs["image_masks"] = float(np.abs(ex["image_masks"] - ref["image_masks"]).max())
        sub = ex["images"][:, ref["patch_sub_idx"]]
        diffs["pixels"] = float(np.abs(sub - ref["pixels_sub"]).max())
        images = ex["images"].reshape(ex["images"].shape[0], -1, 3).astype(np.float64)
        stats = np.concatenate([images.mean(axis=1), images.std(axis=1)], axis=1)
        diffs["crop_stats"] = float(np.abs(stats - ref["crop_stats"]).max())
    else:
        exact["shapes"] = False
    ok, worst, detail = _compare(diffs, exact)
    return CaseResult("preprocess", case["case"], ok, worst, detail)


def _training_case(root: Path, case: dict) -> CaseResult:
    ref = np.load(fixture_file(root / "forward" / f"{case['case']}.npz"))
    model_cfg = json.loads(fixture_file(root / "models" / case["model"] / "config.json").read_text())
    tok = CharTokenizer(model_cfg["embedding_size"], model_cfg["eos_token_id"])
    cp = case["crop_params"]
    cfg = PreprocessorConfig(base_image_input_size=tuple(cp["base_image_input_size"]),
                             patch_size=cp["image_patch_size"], overlap_margins=tuple(cp["overlap_margins"]),
                             max_crops=case["max_crops"])
    messages = case["messages"]
    lists = messages if isinstance(messages[0], list) else [messages]
    ex = MolmoProcessor(tok, cfg).encode(load_fixture_image(root, case["image"]), message_lists=lists,
                                          multi_annotation_weighting=case.get("loss_token_weighting"))
    exact = {k: np.array_equal(ex[k], ref[k]) for k in ("input_ids", "labels", "position_ids", "image_input_idx")}
    if "subsegment_ids" in ref:
        exact["subsegment_ids"] = "subsegment_ids" in ex and np.array_equal(ex["subsegment_ids"], ref["subsegment_ids"])
    diffs = {}
    if ex["loss_masks"].shape == ref["loss_masks"].shape and ex["images"].shape == ref["images_f16"].shape:
        diffs["loss_masks"] = float(np.abs(ex["loss_masks"] - ref["loss_masks"]).max())
        diffs["image_masks"] = float(np.abs(ex["image_masks"] - ref["image_masks"]).max())
        ours16 = ex["images"].astype(np.float16).astype(np.float32)
        diffs["images"] = float(np.abs(ours16 - ref["images_f16"].astype(np.float32)).max())
    else:
        exact["shapes"] = False
    ok, worst, detail = _compare(diffs, exact)
    return CaseResult("preprocess", case["case"], ok, worst, detail)


def run_cases(root: Path) -> list[CaseResult]:
    root = Path(root)
    cases = json.loads(fixture_file(root / "preprocess" / "index.json").read_text())
    results = [run_case("preprocess", case["case"], lambda: _preprocess_case(root, case)) for case in cases]
    forward_index = root / "forward" / "index.json"
    if forward_index.is_file():  # the training cases are optional: a folder may hold pre-processing only
        for case in json.loads(forward_index.read_text()):
            if "messages" in case:
                results.append(run_case("preprocess", case["case"], lambda: _training_case(root, case)))
    return results
