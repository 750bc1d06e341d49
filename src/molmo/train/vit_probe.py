"""Probe a frozen ViT: can a small attention-pooling classifier read the clock hour or the object count from
its features on the global view? Compared with the same probe on a randomly initialised ViT, it shows what the
dense vision stage taught, independent of the language model.

    python -m molmo.train.vit_probe clocks --vit runs/tiny-vision/vit.safetensors
    python -m molmo.train.vit_probe points --vit runs/tiny-vision/vit.safetensors --train 2000
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

from molmo.model.config import preset
from molmo.model.init import init_weights
from molmo.model.molmo import Molmo
from molmo.train.setup import load_vit
from molmo.train.vision_labels import MAX_COUNT
from molmo.train.vision_pretrain import DenseViews, VisionPretrainConfig, collate_views, preprocessor_for_model


class AttentionProbe(nn.Module):
    """A few learned attention poolings over the patches, then a small MLP."""

    def __init__(self, dim: int, classes: int, queries: int = 4):
        super().__init__()
        self.score = nn.Linear(dim, queries)
        self.out = nn.Sequential(nn.Linear(queries * dim, 256), nn.GELU(), nn.Linear(256, classes))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        weights = self.score(feats).softmax(dim=1)  # [B, patches, queries]
        return self.out((weights.transpose(1, 2) @ feats).flatten(1))


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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("kind", choices=("clocks", "points"), help="clocks: read the hour; points: count the objects")
    p.add_argument("--vit", required=True, help="vit.safetensors from `molmo train tiny-vision`")
    p.add_argument("--train", type=int, default=500)
    p.add_argument("--test", type=int, default=150)
    args = p.parse_args(argv)
    mcfg = preset("tiny-molmo")
    cfg = VisionPretrainConfig(sources=((args.kind, 1.0, {}),), views_per_image=1, seed=7)  # unseen images
    views = iter(DenseViews(cfg, preprocessor_for_model(mcfg), mcfg.vision.grid[0]))
    batch = collate_views([next(views) for _ in range(args.train + args.test)])
    target, classes = (batch["time"][:, 0], 12) if args.kind == "clocks" else (batch["count"], MAX_COUNT + 1)
    majority = target[args.train:].bincount().max().item() / args.test
    for name in ("trained", "random"):
        model = Molmo(mcfg)
        init_weights(model, seed=0)
        if name == "trained":
            load_vit(model, Path(args.vit))
        with torch.no_grad():
            feats = torch.cat([model.vision.vit_features(x) for x in batch["patches"].split(64)])
        acc = probe_accuracy(feats, target, args.train, classes)
        print(f"{args.kind}: {name} ViT, probe test accuracy {acc:.3f} (most frequent class {majority:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
