"""Offset probe: does the image token an object falls in say where inside the token the object is?

Pointing finer than the token grid needs it (research.tiny_molmo.point_grid_ceiling: naming the right token's
centre caps F1 well below the target). It draws white 224 px images with one circle (the grounding check's
radius and colours) at a uniform place, encodes each at one crop, takes the token of the crop view whose cell
holds the circle's centre, and fits a ridge readout from it to the centre's offset inside the cell (x and y as
fractions of the cell, 0-1) on the first 80% of the images. On the rest it reports the mean absolute error
(saying the cell's centre: 0.25) and how often the readout picks the right quarter of the cell, i.e. the right
ViT patch of the 2x2 the token pools (chance 0.25). The same readout is fitted to the attention pooling's output
and to the mean of the four ViT patch features the token pools (the pooling's query; order-free, as the pooling
is), to tell which part of the vision side loses the offset. A second readout, from the same features to the
centre's place in the whole image (x and y as fractions of the image), says whether the token also tells the
decoder *which* cell it is: its mean absolute error (in image widths) and how often it lands in the right cell.

    python -m research.tiny_molmo.offset_probe training/tiny-molmo/tiny-bind-circles/model --n 1500
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from PIL import Image, ImageDraw
from tqdm import tqdm

from research.tiny_molmo.real_tokens import vision_stages
from research.tiny_molmo.token_probe import ridge_predict

COLOURS = ("red", "blue", "green")


def one_circle(rng: np.random.Generator, size: int = 224, radius: int = 15) -> tuple[Image.Image, tuple[float, float]]:
    """A white image with one circle of a random probe colour, and its centre (pixels)."""
    x, y = (float(v) for v in rng.uniform(radius + 5, size - radius - 5, 2))
    img = Image.new("RGB", (size, size), "white")
    ImageDraw.Draw(img).ellipse([x - radius, y - radius, x + radius, y + radius],
                                fill=COLOURS[int(rng.integers(len(COLOURS)))])
    return img, (x, y)


def ridge_offsets(features: np.ndarray, offsets: np.ndarray, n_train: int, alpha: float = 10.0
                  ) -> tuple[float, float]:
    """Mean absolute error of a ridge readout of the (x, y) offsets, and how often it lands in the right quarter
    of the cell, fitted on the first n_train rows and scored on the rest."""
    pred, truth = np.clip(ridge_predict(features, offsets, n_train, alpha), 0, 1), offsets[n_train:]
    quarter = np.all((pred >= 0.5) == (truth >= 0.5), axis=1)
    return float(np.abs(pred - truth).mean()), float(quarter.mean())


def ridge_places(features: np.ndarray, places: np.ndarray, grid: int, n_train: int, alpha: float = 10.0
                 ) -> tuple[float, float]:
    """Mean absolute error of a ridge readout of the centre's place in the image (0-1) and how often it falls in
    the right cell of the `grid` x `grid` tokens, fitted on the first n_train rows and scored on the rest."""
    pred, truth = np.clip(ridge_predict(features, places, n_train, alpha), 0, 1 - 1e-9), places[n_train:]
    cell = np.all(np.floor(pred * grid) == np.floor(truth * grid), axis=1)
    return float(np.abs(pred - truth).mean()), float(cell.mean())


def centre_cell(centre: tuple[float, float], image_size: tuple[int, int], grid: int
                ) -> tuple[tuple[int, int], tuple[float, float]]:
    """The (column, row) of the grid cell that holds `centre` (pixels) and the centre's offset inside it (0-1)."""
    cx, cy = centre[0] / image_size[0] * grid, centre[1] / image_size[1] * grid
    return (int(cx), int(cy)), (cx - int(cx), cy - int(cy))


@torch.no_grad()
def probe_features(checkpoint: str, n: int, seed: int = 0
                   ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, int]:
    """Per image: the centre's token and what it pools ({"tokens", "pooled", "ViT mean"}), the offsets inside the
    cell, the centre's place in the image (fractions), and the token grid's side."""
    from molmo.api import Molmo
    api = Molmo.from_pretrained(checkpoint)
    cfg = api.processor.processor.config
    grid, per_token, patches_w = cfg.tokens_grid[0], cfg.pool_h, cfg.patch_grid[1]
    rng = np.random.default_rng(seed)
    feats: dict[str, list[np.ndarray]] = {}
    offsets, places = [], []
    for _ in tqdm(range(n), desc="encoding", unit="image"):
        image, centre = one_circle(rng)
        (tx, ty), offset = centre_cell(centre, image.size, grid)
        stages = vision_stages(api, image, 1)  # view 1: the one crop, the whole image at the crop size
        patches = [(ty * per_token + i) * patches_w + tx * per_token + j
                   for i in range(per_token) for j in range(per_token)]
        feats.setdefault("tokens", []).append(stages["tokens"][1, ty * grid + tx].float().numpy())
        feats.setdefault("pooled", []).append(stages["pooled"][1, ty * grid + tx].float().numpy())
        feats.setdefault("ViT mean", []).append(stages["ViT"][1, patches].mean(0).float().numpy())
        offsets.append(offset)
        places.append((centre[0] / image.size[0], centre[1] / image.size[1]))
    return {k: np.stack(v) for k, v in feats.items()}, np.array(offsets), np.array(places), grid


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoints", nargs="+")
    p.add_argument("--n", type=int, default=1500, help="images (80%% fit the readout, 20%% score it)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    n_train = int(0.8 * args.n)
    print(f"{'checkpoint':<60} {'stage':<12} offset in the cell: mean abs error (centre: 0.25), right quarter "
          f"(chance 0.25) | place in the image: mean abs error, right cell")
    for ckpt in args.checkpoints:
        feats, offsets, places, grid = probe_features(ckpt, args.n, args.seed)
        for stage, x in feats.items():
            err, quarter = ridge_offsets(x, offsets, n_train)
            place_err, cell = ridge_places(x, places, grid, n_train)
            print(f"{ckpt:<60} {stage:<12} {err:>6.3f} {quarter:>6.2f} | {place_err:>6.3f} {cell:>6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
