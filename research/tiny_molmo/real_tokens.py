"""Real image features for the decoder check: circle images encoded by a frozen checkpoint's vision side.

The decoder check (`research.tiny_molmo.decoder_check`) normally feeds ideal codes. With `--tokens-from CKPT`
it feeds these instead: the grounding check's circle images (0-4 circles of each of red, blue and green on
white), each encoded once by CKPT at one crop, keeping both views' image tokens (the global view, then the one
crop the processor adds at that budget; the connector's output, what the decoder reads) or, with
`--token-stage`, the attention pooling's output before the projector or the selected ViT layers' patch
features. Comparing the decoder's learning curve on these with its curve on ideal codes separates the tokens'
form from the rest of the real pipeline (prompt format, crops, learning rates).

Encoded sets are cached under the given folder, keyed by checkpoint, count, seed and stage:

    python -m research.tiny_molmo.decoder_check --tokens-from training/tiny-molmo/tiny-pretrain/model --steps 400
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from research.tiny_molmo.grounding_check import draw_circles

COLOURS = ("red", "blue", "green")  # the decoder check's first three question words, in its order
STAGES = ("tokens", "pooled", "ViT")  # the connector's output, its attention pooling's, the selected ViT layers'


@torch.no_grad()
def vision_stages(api, image, max_crops: int) -> dict[str, torch.Tensor]:
    """What one encoder pass computes for an image, per view: {"ViT": [views, patches, d], "pooled":
    [views, T, d], "tokens": [views, T, d_model]}; `api` is a `molmo.api.Molmo` with a pooling connector."""
    vision = api.model.vision
    if vision.pooling is None:
        raise ValueError("reading the connector's stages needs a pooling connector; this model has none")
    seen: dict[str, torch.Tensor] = {}
    hooks = [vision.vit.register_forward_hook(lambda m, a, out: seen.__setitem__("ViT", vision.select_layers(out))),
             vision.pooling.register_forward_hook(lambda m, a, out: seen.__setitem__("pooled", out))]
    try:
        inputs = api.processor.encode(image, "", max_crops)
        tokens = api.model.encode_images(torch.tensor(inputs["images"])[None],
                                         torch.tensor(inputs["image_masks"])[None])[0]  # [views, T, d]
    finally:
        for hook in hooks:
            hook.remove()
    return {"ViT": seen["ViT"], "pooled": seen["pooled"].view(*tokens.shape[:2], -1), "tokens": tokens}


def encode_views(checkpoint: str | Path, images, stage: str = "tokens", desc: str = "encoding") -> torch.Tensor:
    """[n, 2, T, d] float32 features at `stage` of each image's views at one crop: the global view, then the crop."""
    from molmo.api import Molmo
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}")
    api = Molmo.from_pretrained(checkpoint)
    return torch.stack([vision_stages(api, image, 1)[stage].float()
                        for image in tqdm(images, desc=desc, unit="image")])


def token_scenes(checkpoint: str | Path, n: int, seed: int, cache: Path, max_count: int = 4, stage: str = "tokens"
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """(features [n, 2, T, d] at `stage`, per-colour counts [n, 3]) for n circle images drawn from `seed`, cached
    on disk."""
    key = hashlib.sha1(f"{Path(checkpoint).resolve()}|{n}|{seed}|{max_count}|{stage}|views".encode()).hexdigest()[:12]
    path = cache / f"tokens-{key}.safetensors"
    if path.exists():
        stored = load_file(str(path))
        return stored["tokens"], stored["counts"]
    rng = np.random.default_rng(seed)
    images, counts = [], []
    for _ in range(n):
        image, drawn = draw_circles(rng, COLOURS, max_count=max_count)
        images.append(image)
        counts.append(drawn)
    tokens = encode_views(checkpoint, images, stage, desc=f"encoding {n} circle images ({stage})")
    counts = torch.tensor(counts)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file({"tokens": tokens.contiguous(), "counts": counts}, str(tmp))
    tmp.replace(path)
    return tokens, counts


class TokenPool:
    """Batches of (tokens, asked colour, its count) drawn from encoded images. The colour is drawn per use from
    the first `asked_colours` colours (all by default; 1 asks always about red: counting among distractors
    without binding a question word), or, with `fixed_questions`, drawn once per image, as in a dataset that
    asks one question per image."""

    def __init__(self, tokens: torch.Tensor, counts: torch.Tensor, asked_colours: int = 0,
                 fixed_questions: bool = False):
        self.tokens, self.counts = tokens, counts
        self.asked_colours = asked_colours or counts.shape[1]
        self.fixed = None
        if fixed_questions:
            self.fixed = torch.randint(0, self.asked_colours, (len(tokens),), generator=torch.Generator().manual_seed(0))

    def _asked(self, rows: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if self.fixed is not None:
            return self.fixed[rows]
        return torch.randint(0, self.asked_colours, (len(rows),), generator=gen)

    def draw(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rows = torch.randint(0, len(self.tokens), (n,), generator=gen)
        asked = self._asked(rows, gen)
        return self.tokens[rows], asked, self.counts[rows, asked]

    def all(self, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every image once, each with one drawn colour (the test set)."""
        asked = torch.randint(0, self.asked_colours, (len(self.tokens),), generator=gen)
        return self.tokens, asked, self.counts.gather(1, asked[:, None])[:, 0]
