"""Token probe: do a checkpoint's image tokens (connector outputs) hold per-colour object counts, linearly?

It draws the grounding check's three-colour circle images, averages each image's tokens (the global view's,
and all views'), fits a ridge readout to the three per-colour counts on the first images and reports rounded
accuracy per colour (and for the total) on the rest. It is the ceiling a language model reaches by attending
evenly to the image tokens and reading them out linearly; compare it before and after a fine-tuning run to see
whether training kept or lost what the tokens say. The same readout of the mean ViT features that the
connector pools (the selected layers) and of the mean pooled features (before the projector) tells which
part of the vision side loses the counts.

    python -m research.tiny_molmo.token_probe runs/tiny-pretrain/model runs/gc-binding/run/model
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

from research.tiny_molmo.grounding_check import write_circle_counting
from research.tiny_molmo.real_tokens import vision_stages

COLOURS = {"red": (255, 0, 0), "blue": (0, 0, 255), "green": (0, 128, 0)}


def colour_counts(image: Image.Image) -> list[int]:
    """Connected blobs of each probe colour (the circles never touch)."""
    pixels = np.asarray(image.convert("RGB")).astype(int)
    return [ndimage.label(np.abs(pixels - rgb).sum(-1) < 30)[1] for rgb in COLOURS.values()]


def ridge_predict(features: np.ndarray, targets: np.ndarray, n_train: int, alpha: float) -> np.ndarray:
    """A ridge readout fitted on the first n_train rows (features standardised on them): its predictions for the
    rest."""
    x = (features - features[:n_train].mean(0)) / (features[:n_train].std(0) + 1e-6)
    a = np.c_[x, np.ones(len(x))]
    w = np.linalg.solve(a[:n_train].T @ a[:n_train] + alpha * np.eye(a.shape[1]), a[:n_train].T @ targets[:n_train])
    return a[n_train:] @ w


def ridge_readout_accuracy(features: np.ndarray, targets: np.ndarray, n_train: int, alpha: float = 1.0
                           ) -> tuple[np.ndarray, float]:
    """Rounded accuracy per target column, and of the summed prediction against the summed target, of a ridge
    fit on the first n_train rows (features standardised on them) and scored on the rest."""
    pred, truth = ridge_predict(features, targets, n_train, alpha), targets[n_train:]
    return (np.rint(pred) == truth).mean(0), float((np.rint(pred.sum(1)) == truth.sum(1)).mean())


@torch.no_grad()
def mean_features(checkpoint: str | Path, images: list[Image.Image], max_crops: int = 4
                  ) -> dict[str, np.ndarray]:
    """[n, d] means of the ViT features, the pooled features and the image tokens, over the global view and
    over all views: keys "ViT, global view", "ViT, all views", "pooled, …", "tokens, …"."""
    from molmo.api import Molmo
    api = Molmo.from_pretrained(checkpoint)
    out: dict[str, list[np.ndarray]] = {}
    for image in images:
        for name, x in vision_stages(api, image, max_crops).items():
            out.setdefault(f"{name}, global view", []).append(x[0].mean(0).float().numpy())
            out.setdefault(f"{name}, all views", []).append(x.reshape(-1, x.shape[-1]).mean(0).float().numpy())
    return {k: np.stack(v) for k, v in out.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoints", nargs="+")
    p.add_argument("--images", type=int, default=800)
    p.add_argument("--train", type=int, default=600, help="images the readout is fitted on; the rest score it")
    p.add_argument("--out", default="runs/token-probe-images")
    args = p.parse_args(argv)
    root = Path(args.out)
    write_circle_counting(root, args.images, seed=5, colours=tuple(COLOURS))  # seed 5: no check trains on it
    images = [Image.open(root / f"{i}.png").convert("RGB") for i in range(args.images)]
    counts = np.array([colour_counts(im) for im in images], float)
    for ckpt in args.checkpoints:
        for view, feats in mean_features(ckpt, images).items():
            per_colour, total = ridge_readout_accuracy(feats, counts, args.train)
            shown = " ".join(f"{c} {a:.2f}" for c, a in zip(COLOURS, per_colour))
            print(f"{ckpt} | {view}: {shown} | total {total:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
