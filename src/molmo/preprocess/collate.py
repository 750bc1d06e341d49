"""Collation: a list of processor outputs -> a padded torch batch (arch-spec §5.2). Sequences are
right-padded with -1 (ids, labels) / 0 (loss weights); crops are padded per example with all -1 crops,
their masks with -1 and their image_input_idx with -1 (never inserted). Text-only examples mix with image
examples.

    batch = collate([ex1, ex2], pad_to_length=2304)
"""

from __future__ import annotations

import numpy as np
import torch

PAD = {"input_ids": -1, "labels": -1, "loss_masks": 0.0, "position_ids": 0, "subsegment_ids": -1}


def collate(examples: list[dict[str, np.ndarray]], *, pad_to_length: int | None = None,
            max_crops: int | None = None) -> dict[str, torch.Tensor]:
    if not examples:
        raise ValueError("cannot collate an empty list of examples")
    seq = max(len(e["input_ids"]) for e in examples)
    length = pad_to_length if pad_to_length is not None else seq
    batch: dict[str, torch.Tensor] = {}
    for key, pad in PAD.items():
        if not any(key in e for e in examples):
            continue
        rows = []
        for e in examples:
            if key in e:
                v = e[key][:length]  # truncation drops the tail (and its loss tokens)
            elif key == "subsegment_ids":
                v = np.full(len(e["input_ids"][:length]), 10000, np.int64)
            elif key == "position_ids":
                v = np.arange(len(e["input_ids"][:length]), dtype=np.int64)
            else:
                continue
            rows.append(np.pad(v, (0, length - len(v)), constant_values=pad))
        batch[key] = torch.from_numpy(np.stack(rows))
    with_images = [e for e in examples if "images" in e]
    if with_images:
        n = max(e["images"].shape[0] for e in with_images)
        if max_crops is not None:
            n = max(n, max_crops)
        p, d = with_images[0]["images"].shape[1:]
        t = with_images[0]["image_input_idx"].shape[1]
        images = np.full((len(examples), n, p, d), -1, np.float32)
        masks = np.full((len(examples), n, p), -1, np.float32)
        idx = np.full((len(examples), n, t), -1, np.int64)
        for b, e in enumerate(examples):
            if "images" not in e:
                continue
            k = e["images"].shape[0]
            images[b, :k], masks[b, :k] = e["images"], e["image_masks"]
            ii = e["image_input_idx"]
            idx[b, :k] = np.where(ii >= length, -100, ii)  # features beyond a truncation are dropped
        batch.update(images=torch.from_numpy(images), image_masks=torch.from_numpy(masks),
                     image_input_idx=torch.from_numpy(idx))
    return batch
