"""Fixtures for trainer tests: a small own-data set of circle images (counting, QA, captions) and a
matching tiny-model training config that runs in seconds on CPU."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from molmo.train.config import DataConfig, DataSource, OptimConfig, TrainConfig, GroupOptim


def write_circles(root: Path, n: int = 24, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        img = Image.new("RGB", (160, 128), "white")
        draw = ImageDraw.Draw(img)
        pts = []
        for _ in range(int(rng.integers(0, 4))):
            x, y = int(rng.integers(12, 148)), int(rng.integers(12, 116))
            draw.ellipse([x - 8, y - 8, x + 8, y + 8], fill="red")
            pts.append([x, y])
        img.save(root / f"{i}.png")
        lines += [{"image": f"{i}.png", "task": "count", "label": "red circle", "points": pts},
                  {"image": f"{i}.png", "question": "What colour are the circles?", "answer": "red"},
                  {"image": f"{i}.png", "task": "caption", "answer": f"A white picture with {len(pts)} red circles."}]
    (root / "data.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return root / "data.jsonl"


@pytest.fixture(scope="session")
def circles(tmp_path_factory) -> Path:
    return write_circles(tmp_path_factory.mktemp("circles"))


@pytest.fixture
def tiny_cfg(circles, tmp_path) -> TrainConfig:
    src = DataSource("circles", "owndata", path=str(circles))
    return TrainConfig(
        model="tiny-qwen2", out_dir=str(tmp_path / "run"), steps=4, global_batch=4, micro_batch=2,
        data=DataConfig(sources=(src,), validation=(DataSource("val", "owndata", path=str(circles), size=4),),
                        stage="sft", sequence_length=400, max_crops=2, num_workers=0),
        optim=OptimConfig(connector=GroupOptim(1e-3, 2), vit=GroupOptim(1e-3, 2), llm=GroupOptim(1e-3, 2),
                          freeze_embedding=False),
        preprocessor={"overlap_margins": [2, 2]}, precision="fp32", residual_dropout=0.1,
        response_residual_dropout=0.0, save_every=2, export=False)
