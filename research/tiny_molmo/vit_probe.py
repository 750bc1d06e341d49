"""Probe a frozen ViT: can a small attention-pooling classifier read the clock hour or the object count from
its features on the global view, or an object's shape from its features on a crop centred on it (mean over the
object's patches, as a pooled image token sees it)? Compared with the same probe on a randomly initialised ViT,
it shows what the dense vision stage taught, independent of the language model. For clocks it also reads the
hour from two fixed poolings: the mean over all patches (what an evenly attending language model gets) and the
mean over the hour hand's patches picked by the label (what the features say once the hour hand is found).

    python -m research.tiny_molmo.vit_probe clocks --vit runs/tiny-vision/vit.safetensors
    python -m research.tiny_molmo.vit_probe points --vit runs/tiny-vision/vit.safetensors --train 2000
    python -m research.tiny_molmo.vit_probe shapes --vit runs/tiny-vision/vit.safetensors --zoom 10 25  # inference scale
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

from molmo.data.generators.scenes import SHAPES
from molmo.model.config import preset
from molmo.model.init import init_weights
from molmo.model.molmo import MolmoModel
from molmo.train.setup import load_vit
from molmo.train.vision_labels import MAX_COUNT, PARTS
from molmo.train.vision_pretrain import (MIN_REGION_COVER, DenseViews, VisionPretrainConfig, attention_pool,
                                         collate_views, preprocessor_for_model, region_means)


class AttentionProbe(nn.Module):
    """A few learned attention poolings over the patches, then a small MLP."""

    def __init__(self, dim: int, classes: int, queries: int = 4):
        super().__init__()
        self.score = nn.Linear(dim, queries)
        self.out = nn.Sequential(nn.Linear(queries * dim, 256), nn.GELU(), nn.Linear(256, classes))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.out(attention_pool(self.score, feats).flatten(1))


def probe_accuracy(feats: torch.Tensor, target: torch.Tensor, n_train: int, classes: int, epochs: int = 300) -> float:
    torch.manual_seed(0)
    feats = (feats - feats[:n_train].mean((0, 1))) / (feats[:n_train].std((0, 1)) + 1e-6)
    probe = AttentionProbe(feats.shape[-1], classes)
    opt = torch.optim.AdamW(probe.parameters(), lr=1e-3, weight_decay=0.05)
    for _ in range(epochs):
        loss = nn.functional.cross_entropy(probe(feats[:n_train]), target[:n_train])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float((probe(feats[n_train:]).argmax(-1) == target[n_train:]).float().mean())


def centre_regions(batch: dict[str, torch.Tensor], grid: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per view, the coverage [P] of the shaped region nearest the view's centre, and its shape (-1 if none)."""
    cover = batch["regions"].float()  # [V, P, R]
    mass = cover.sum(1)
    pos = torch.stack(torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij"), -1).reshape(-1, 2)
    centroid = torch.einsum("vpr,pc->vrc", cover, pos.float()) / mass.clamp_min(1e-6)[..., None]
    dist = (centroid - (grid - 1) / 2).norm(dim=-1)
    usable = (mass >= MIN_REGION_COVER) & (batch["region_shape"] >= 0)
    nearest = dist.masked_fill(~usable, float("inf")).argmin(-1)
    rows = torch.arange(len(nearest))
    shape = torch.where(usable[rows, nearest], batch["region_shape"][rows, nearest], -1)
    return cover[rows, :, nearest], shape


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("kind", choices=("clocks", "points", "shapes"),
                   help="clocks: read the hour; points: count the objects; shapes: the shape of the centred object")
    p.add_argument("--vit", required=True, help="vit.safetensors from `molmo train tiny-vision`")
    p.add_argument("--train", type=int, default=500)
    p.add_argument("--test", type=int, default=150)
    p.add_argument("--zoom", type=float, nargs=2, default=(2.5, 8.0),
                   help="shapes: crop side / the object's half-size (4 crops show objects at about 10-25)")
    args = p.parse_args(argv)
    mcfg = preset("tiny-molmo")
    grid = mcfg.vision.grid[0]
    source = "points" if args.kind == "shapes" else args.kind
    cfg = VisionPretrainConfig(sources=((source, 1.0, {}),), seed=7,  # seed 7: images no training run uses
                               views_per_image=2 if args.kind == "shapes" else 1, object_crops=1.0,
                               object_zoom=tuple(args.zoom))
    views = iter(DenseViews(cfg, preprocessor_for_model(mcfg), grid))
    n = args.train + args.test
    if args.kind == "shapes":  # keep the crops (odd views) that centre a shaped object
        batch = collate_views([v for i, v in zip(range(4 * n), views) if i % 2][:2 * n])
        cover, target = centre_regions(batch, grid)
        keep = torch.nonzero(target >= 0).squeeze(1)[:n]
        batch, cover, target, classes = {"patches": batch["patches"][keep]}, cover[keep], target[keep], len(SHAPES)
    else:
        batch = collate_views([next(views) for _ in range(n)])
        target, classes = (batch["time"][:, 0], 12) if args.kind == "clocks" else (batch["count"], MAX_COUNT + 1)
    majority = target[args.train:].bincount().max().item() / args.test
    for name in ("trained", "random"):
        model = MolmoModel(mcfg)
        init_weights(model, seed=0)
        if name == "trained":
            load_vit(model, Path(args.vit))
        with torch.no_grad():
            feats = torch.cat([model.vision.vit_features(x) for x in batch["patches"].split(64)])
        if args.kind == "shapes":  # the object's coverage-weighted mean feature
            feats = region_means(feats, cover[..., None])
        acc = probe_accuracy(feats, target, args.train, classes)
        print(f"{args.kind}: {name} ViT, probe test accuracy {acc:.3f} (most frequent class {majority:.3f})")
        if args.kind == "clocks":
            for pooling, weights in (("all patches", torch.ones(feats.shape[:2])),
                                     ("the hour hand's patches", batch["part"][..., PARTS.index("hour_hand")] > 0)):
                weights = weights.float() / weights.float().sum(1, keepdim=True).clamp_min(1)
                pooled = (weights[..., None] * feats).sum(1, keepdim=True)
                print(f"  the mean over {pooling}: {probe_accuracy(pooled, target, args.train, classes):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
