"""Dense vision pre-training of the embedded model's ViT on generated scenes (stage 0 of the tiny recipe).

The released Molmo starts from a pre-trained CLIP; the tiny model has no such tower, and trained from scratch
through the language model alone it sits on a long plateau where it ignores the image. The generators know
every object's mask, colour and shape, the clock hands and the bar heights, so this stage trains the ViT with
cheap dense supervision on random views (the letter-boxed global view and square crops, like the
pre-processor's; optionally crops centred on one object): per-patch parts, colours, shapes, object centres (and
their offset in the patch), bar values and letters, clock-hand directions and, on the global view, the patch's
place in the image; per region (an object, a clock hand, a bar; read from the mean feature over its patches, as
the connector's pooled tokens see it) the shape, the hand's direction and the bar's value; per view the object
count and clock time, and on every patch the view's count of objects per colour and per shape
(`attribute_counts`), and on every clock-face patch both hands' directions (`face_time`: the time in every
token). The heads are thrown away; the ViT weights initialise `molmo train tiny-pretrain`.

    molmo train tiny-vision                       # 2000 steps, ~46 min on 2 CPU cores
    molmo train tiny-vision --init_vit=runs/tiny-vision/vit.safetensors --region_weight=1 \
        --out_dir=runs/tiny-vision-regions        # continue a run with the per-region heads
    molmo train tiny-vision --steps=50 --out_dir=runs/try
    molmo train tiny-vision --steps=8000 --out_dir=runs/long   # run again after a stop: it resumes
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn
from torch.utils.data import DataLoader, IterableDataset

from molmo.data.generators.cache import GeneratedCache, draw
from molmo.data.generators.scenes import SHAPES
from molmo.model.config import MolmoConfig, preset
from molmo.model.connector import VisionBackbone
from molmo.model.init import init_weights
from molmo.model.molmo import MolmoModel
from molmo.precision import fast_bf16
from molmo.preprocess.config import PreprocessorConfig
from molmo.preprocess.crops import _resize, normalize, patchify, resize_and_pad
from molmo.train import checkpointing
from molmo.train.optim import decays
from molmo.train.runs import hold_run_folder
from molmo.train.vision_labels import COLOUR_NAMES, MAX_BARS, MAX_COUNT, PARTS, scene_labels, view_labels

# Per-patch head outputs, in order: (name, width).
PATCH_OUTPUTS = (("part", len(PARTS)), ("colour", len(COLOUR_NAMES)), ("shape", len(SHAPES)), ("centre", 1),
                 ("value", 1), ("bar", MAX_BARS), ("offset", 2), ("hands", 4), ("position", 2))
IMAGE_OUTPUTS = (("hour", 12), ("minute", 60), ("count", MAX_COUNT + 1))
# Per-region outputs, read from the mean feature over a region's patches (an object, a clock hand, a bar): what
# the connector's pooled tokens must carry, without asking every patch to see the whole object.
REGION_OUTPUTS = (("region_shape", len(SHAPES)), ("region_angle", 2), ("region_value", 1))
# Every patch also predicts the view's count of object centres per colour and per shape (scaled by 1/4); a head
# of its own, so that checkpoints from before it still resume.
COUNT_OUTPUTS = (("attribute_counts", len(COLOUR_NAMES) + len(SHAPES)),)
# Every patch of a clock face predicts both hands' directions (sin, cos): the time in every image token.
TIME_OUTPUTS = (("face_time", 4),)
MIN_REGION_COVER = 0.3  # patch-equivalents of a region the view must show for it to get a target

VIT_FILE = "vit.safetensors"


@dataclass(frozen=True)
class VisionPretrainConfig:
    model: str = "tiny-molmo"
    sources: tuple[tuple[str, float, dict], ...] = (
        ("points", 0.5, {}), ("clocks", 0.3, {}), ("docs", 0.2, {"doc_kind": "bar"}))
    steps: int = 400
    images_per_step: int = 8
    views_per_image: int = 6  # view 0 is the global (letter-boxed) view, the rest random square crops
    global_view: bool = True  # False: every view is a crop (e.g. a shape phase on object crops alone)
    # Share of the crops centred on one object, clock hand or bar, with a side of object_zoom x its half-size.
    # Random crops and the global view show most objects small or cut off, and there this ViT does not learn
    # shapes in thousands of steps; centred on whole objects it starts to at once.
    object_crops: float = 0.0
    object_zoom: tuple[float, float] = (2.5, 8.0)
    lr: float = 1e-3
    warmup: int = 40
    weight_decay: float = 0.05
    seed: int = 0
    workers: int = 1
    precision: str = "auto"  # "bf16" | "fp32" | "auto": bf16 where the device computes it fast (molmo.precision)
    device: str = "auto"  # "auto": the GPU when there is one, else the CPU
    out_dir: str = "runs/tiny-vision"
    log_every: int = 25
    save_every: int = 200  # the ViT weights are rewritten (atomically) this often, and at the end
    init_vit: str | None = None  # continue from an earlier run's vit.safetensors (the heads start afresh)
    # A run whose out_dir holds a checkpoint (written every save_every steps) resumes from it: ViT, heads,
    # optimizer and step, with fresh images; run the same command again after an interruption.
    region_weight: float = 0.0  # > 0 adds the per-region heads (object shape, hand direction, bar value)
    # Multipliers of single head losses, e.g. (("hour", 0), ("minute", 0)) leaves out the per-view time heads
    # that never leave chance; "*" sets the rest: (("*", 0), ("shape", 1), ("region_shape", 1)) trains shapes only.
    loss_weights: tuple[tuple[str, float], ...] = ()
    generated_cache: str = ""  # "" | "auto" | a folder: where drawn images are kept (molmo.data.generators.cache)

    def __post_init__(self):
        heads = {n for n, _ in PATCH_OUTPUTS + COUNT_OUTPUTS + TIME_OUTPUTS + IMAGE_OUTPUTS + REGION_OUTPUTS}
        unknown = {n for n, _ in self.loss_weights} - heads - {"*"}
        if unknown:
            raise ValueError(f"loss_weights names unknown heads {sorted(unknown)}; known: {sorted(heads)}")


class DenseHeads(nn.Module):
    """Linear per-patch and per-region heads, and a small MLP on attention-pooled patch features for the
    per-image targets, so that a few patches (a clock's hands) are not drowned in a mean over all of them."""

    def __init__(self, dim: int, queries: int = 4):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.patch = nn.Linear(dim, sum(w for _, w in PATCH_OUTPUTS))
        self.pool = nn.Linear(dim, queries)  # one softmax over the patches per query
        self.image = nn.Sequential(nn.Linear(queries * dim, dim), nn.GELU(),
                                   nn.Linear(dim, sum(w for _, w in IMAGE_OUTPUTS)))
        self.region = nn.Linear(dim, sum(w for _, w in REGION_OUTPUTS))  # made last: earlier runs' init is kept
        # added later still: checkpoints from before these heads resume without them
        self.counts = nn.Linear(dim, sum(w for _, w in COUNT_OUTPUTS))
        self.time = nn.Linear(dim, sum(w for _, w in TIME_OUTPUTS))

    def forward(self, feats: torch.Tensor, regions: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """feats [V, P, dim], regions [V, P, R] coverage -> patch (with the per-patch counts appended), image and
        region ([V, R, ...]) logits."""
        x = self.norm(feats)
        patch = torch.cat([self.patch(x), self.counts(x), self.time(x)], dim=-1)
        return patch, self.image(attention_pool(self.pool, x).flatten(1)), self.region(region_means(x, regions))


def attention_pool(scores: nn.Linear, feats: torch.Tensor) -> torch.Tensor:
    """feats [V, P, dim] -> [V, queries, dim]: one softmax over the patches per output of `scores`."""
    return scores(feats).softmax(dim=1).transpose(1, 2) @ feats


def region_means(feats: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
    """feats [V, P, dim], coverage [V, P, R] -> each region's coverage-weighted mean feature [V, R, dim]."""
    return regions.transpose(1, 2) @ feats / regions.sum(1).clamp_min(1e-6)[..., None]


class DenseViews(IterableDataset):
    """An endless stream of (patches, targets) views of freshly generated images."""

    def __init__(self, cfg: VisionPretrainConfig, pre: PreprocessorConfig, grid: int, start_step: int = 0):
        self.cfg, self.pre, self.grid, self.start_step = cfg, pre, grid, start_step

    def _view(self, image: np.ndarray, labels, rng: np.random.Generator, global_view: bool) -> dict:
        size = self.pre.base_image_input_size
        h, w = image.shape[:2]
        if global_view:
            pixels, mask = resize_and_pad(image, size)
            rows, cols = np.nonzero(mask)
            pad = (cols.min() / size[1], rows.min() / size[0], 1 - (cols.max() + 1) / size[1],
                   1 - (rows.max() + 1) / size[0])
            box = (0.0, 0.0, float(w), float(h))
        else:
            centred = self.cfg.object_crops > 0 and rng.random() < self.cfg.object_crops
            x0, y0, side = self._object_crop(labels, rng, w, h) if centred else (None, None, None)
            if side is None:
                side = rng.uniform(0.3, 0.85) * min(h, w)
                x0, y0 = rng.uniform(0, w - side), rng.uniform(0, h - side)
            box, pad = (x0, y0, x0 + side, y0 + side), None
            crop = image[int(y0):int(math.ceil(y0 + side)), int(x0):int(math.ceil(x0 + side))]
            pixels = _resize(torch.from_numpy(crop.astype(np.float32) / 255.0), tuple(size), "bilinear", True).numpy()
        t = view_labels(labels, box, self.grid, pad)
        t["patches"] = patchify(normalize(pixels, self.pre), self.pre.patch_size)
        t["time"] = np.array([labels.hour, labels.minute] if global_view else [-1, -1], np.int64)
        return t

    def _object_crop(self, labels, rng: np.random.Generator, w: int, h: int) -> tuple:
        """(x0, y0, side) of a square crop around a random region, slightly off-centre; Nones if none."""
        ids = np.unique(labels.region)
        ids = ids[ids > 0]
        if not len(ids):
            return None, None, None
        ys, xs = np.nonzero(labels.region == rng.choice(ids))
        half = max(xs.max() - xs.min(), ys.max() - ys.min(), 2) / 2
        side = min(rng.uniform(*self.cfg.object_zoom) * half, w, h)
        jitter = rng.uniform(-0.4, 0.4, 2) * half
        x0 = float(np.clip((xs.max() + xs.min()) / 2 - side / 2 + jitter[0], 0, w - side))
        y0 = float(np.clip((ys.max() + ys.min()) / 2 - side / 2 + jitter[1], 0, h - side))
        return x0, y0, side

    def __iter__(self) -> Iterator[dict]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        # A resumed run draws new images: its stream starts past the images the earlier steps used.
        rng = np.random.default_rng([self.cfg.seed, worker] + ([self.start_step] if self.start_step else []))
        cache = GeneratedCache.at(self.cfg.generated_cache)
        for kind, seed, index, options in image_stream(self.cfg, worker, workers, self.start_step):
            item = draw(kind, seed, index, cache, **options)
            image = np.asarray(item.image.convert("RGB"))
            labels = scene_labels(item)
            for v in range(self.cfg.views_per_image):
                yield self._view(image, labels, rng, global_view=v == 0 and self.cfg.global_view)


def image_stream(cfg: VisionPretrainConfig, worker: int = 0, workers: int = 1,
                 start_step: int = 0) -> Iterator[tuple[str, int, int, dict]]:
    """The (kind, seed, index, options) of the images one data worker draws, in order: image `index` goes to
    worker `index % workers`, and its kind is drawn at the sources' rates by the worker's own RNG (apart from
    the crops' RNG, so `molmo train --pregenerate` can list a run's images without making its views)."""
    rng = np.random.default_rng([cfg.seed, worker, 1] + ([start_step] if start_step else []))
    rates = np.array([s[1] for s in cfg.sources], float)
    index = worker + start_step * cfg.images_per_step
    while True:
        kind, _, options = cfg.sources[int(rng.choice(len(cfg.sources), p=rates / rates.sum()))]
        yield kind, 10_000 + cfg.seed, index, options
        index += workers


def run_images(cfg: VisionPretrainConfig, steps: int | None = None) -> Iterator[tuple[str, int, int, dict]]:
    """Every image a run of `steps` (default: the config's) draws from its start: the DataLoader takes whole
    batches from its workers in turn, so worker w makes batches w, w + workers, …"""
    steps = cfg.steps if steps is None else steps
    workers = max(1, cfg.workers)
    for w in range(workers):
        batches = len(range(w, steps, workers))
        yield from itertools.islice(image_stream(cfg, w, workers), batches * cfg.images_per_step)


def collate_views(views: list[dict]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.stack([v[k] for v in views])) for k in views[0]}


def _masked_mse(pred: torch.Tensor, target: torch.Tensor, weight: float = 1.0) -> torch.Tensor | None:
    keep = torch.isfinite(target)
    return weight * F.mse_loss(pred[keep], target[keep].float()) if keep.any() else None


def dense_loss(patch_logits: torch.Tensor, image_logits: torch.Tensor, region_logits: torch.Tensor,
               b: dict, region_weight: float = 0.0, weights: tuple[tuple[str, float], ...] = ()
               ) -> tuple[torch.Tensor, dict]:
    outputs = PATCH_OUTPUTS + COUNT_OUTPUTS + TIME_OUTPUTS
    out = dict(zip([n for n, _ in outputs], patch_logits.float().split([w for _, w in outputs], -1)))
    losses = {"part": F.binary_cross_entropy_with_logits(out["part"], b["part"].float())}
    for name in ("colour", "shape", "bar"):
        target = b[name].float()
        covered = target.sum(-1) > 0.2  # patches mostly on an object/bar: soft cross-entropy over its classes
        if covered.any():
            t = target[covered] / target[covered].sum(-1, keepdim=True)
            losses[name] = -(t * F.log_softmax(out[name][covered], -1)).sum(-1).mean()
    losses["centre"] = F.binary_cross_entropy_with_logits(out["centre"].squeeze(-1), b["centre"].float(),
                                                          pos_weight=patch_logits.new_tensor(8.0))
    for name, pred, weight in (("value", torch.sigmoid(out["value"].squeeze(-1)), 10.0),
                               ("offset", torch.sigmoid(out["offset"]), 10.0), ("hands", out["hands"], 1.0),
                               ("face_time", out["face_time"], 1.0),
                               ("position", torch.sigmoid(out["position"]), 10.0)):
        loss = _masked_mse(pred, b[name], weight)
        if loss is not None:
            losses[name] = loss
    counts = (b["attribute_counts"] / 4)[:, None, :].expand_as(out["attribute_counts"])  # the view's, on every patch
    loss = _masked_mse(out["attribute_counts"], counts)
    if loss is not None:
        losses["attribute_counts"] = loss
    hour_l, minute_l, count_l = image_logits.float().split([w for _, w in IMAGE_OUTPUTS], dim=-1)
    for name, logits, target in (("hour", hour_l, b["time"][:, 0]), ("minute", minute_l, b["time"][:, 1]),
                                 ("count", count_l, b["count"])):
        keep = target >= 0
        if keep.any():
            losses[name] = F.cross_entropy(logits[keep], target[keep])
    accuracy = None
    if region_weight > 0:
        region_losses, accuracy = _region_losses(region_logits, b)
        losses.update({k: region_weight * v for k, v in region_losses.items()})
    weight = dict(weights)  # names checked by VisionPretrainConfig
    total = sum(weight.get(k, weight.get("*", 1.0)) * v for k, v in losses.items())
    logged = {k: float(v.detach()) for k, v in losses.items()}
    if accuracy is not None:
        logged["region_shape_acc"] = accuracy  # logged only
    return total, logged


def _region_losses(region_logits: torch.Tensor, b: dict) -> tuple[dict[str, torch.Tensor], float | None]:
    """The per-region losses, and the shape accuracy (None when no view shows a shaped region)."""
    losses, accuracy = {}, None
    shown = b["regions"].sum(1) >= MIN_REGION_COVER  # [V, R]
    shape_l, angle, value = region_logits.float().split([w for _, w in REGION_OUTPUTS], -1)
    keep = shown & (b["region_shape"] >= 0)
    if keep.any():
        losses["region_shape"] = F.cross_entropy(shape_l[keep], b["region_shape"][keep])
        accuracy = float((shape_l[keep].argmax(-1) == b["region_shape"][keep]).float().mean())
    for name, pred, weight in (("region_angle", angle, 1.0), ("region_value", torch.sigmoid(value), 10.0)):
        target = b[name].view(*shown.shape, -1).masked_fill(~shown[..., None], float("nan"))  # hidden: no target
        loss = _masked_mse(pred, target, weight)
        if loss is not None:
            losses[name] = loss
    return losses, accuracy


def preprocessor_for_model(mcfg: MolmoConfig) -> PreprocessorConfig:
    v = mcfg.vision
    return PreprocessorConfig.released().replace(base_image_input_size=tuple(v.image_size), patch_size=v.patch_size,
                                                 overlap_margins=(2, 2))


def sincos_positions(grid: int, dim: int) -> torch.Tensor:
    """[grid*grid, dim] fixed 2D sine-cosine position codes (half the channels for x, half for y). A from-scratch
    ViT whose position embedding starts at the 0.02 init has ~20x more pixel than position signal and learns
    shapes, hand directions and places very slowly; starting from these codes it can tell patches apart at once."""
    quarter = dim // 4
    freqs = 1.0 / (100.0 ** (torch.arange(quarter, dtype=torch.float32) / quarter))
    ys, xs = torch.meshgrid(torch.arange(grid, dtype=torch.float32), torch.arange(grid, dtype=torch.float32),
                            indexing="ij")
    codes = [f(c.reshape(-1, 1) * freqs) for c in (xs, ys) for f in (torch.sin, torch.cos)]
    out = torch.cat(codes, dim=1)
    return F.pad(out, (0, dim - out.shape[1]))


def lr_factor(cfg: VisionPretrainConfig, step: int) -> float:
    """Linear warm-up, then a cosine from 1 to 0.1 at cfg.steps."""
    return min(1.0, (step + 1) / cfg.warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, step / cfg.steps))))


def _save_vit(vit: nn.Module, path: Path, cfg: VisionPretrainConfig, step: int) -> Path:
    tmp = path.with_suffix(".tmp")
    save_file({k: v.detach().contiguous() for k, v in vit.state_dict().items()}, str(tmp),
              metadata={"model": cfg.model, "step": str(step)})
    tmp.replace(path)  # atomic: a half-written file never replaces a good one
    return path


def train_vision(cfg: VisionPretrainConfig) -> Path:
    """Run the stage and write out_dir/vit.safetensors (+ config and a metrics log). Returns the weights path."""
    torch.manual_seed(cfg.seed)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device)
    if cfg.precision == "auto":  # resolved once; vision_config.json records what the run used
        cfg = dataclasses.replace(cfg, precision="bf16" if fast_bf16(device) else "fp32")
    print(f"vision stage on {device.type}, precision {cfg.precision}", flush=True)
    mcfg = preset(cfg.model)
    model = MolmoModel(mcfg)
    init_weights(model, seed=cfg.seed)  # the same init the later stages would start from
    backbone: VisionBackbone = model.vision
    vit = backbone.vit
    grid = mcfg.vision.grid[0]
    if cfg.init_vit:
        from molmo.train.setup import load_vit
        load_vit(model, Path(cfg.init_vit))
    else:
        with torch.no_grad():  # the last grid*grid rows; a class token, when there is one, keeps row 0
            vit.positional_embedding[-grid * grid:] = sincos_positions(grid, mcfg.vision.width)
    feat_dim = mcfg.vision.width * len(mcfg.connector.vit_layers)
    heads = DenseHeads(feat_dim)
    vit.to(device), heads.to(device)
    decay, no_decay = [], []  # the fine-tuning recipe's rule (optim.decays)
    for name, p in [*vit.named_parameters(), *heads.named_parameters()]:
        (decay if decays(name, p) else no_decay).append(p)
    params = decay + no_decay
    opt = torch.optim.AdamW([{"params": decay}, {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr,
                            betas=(0.9, 0.95), weight_decay=cfg.weight_decay)
    out = Path(cfg.out_dir)
    run_lock = hold_run_folder(out)  # noqa: F841 (held until the process ends)
    trained = nn.ModuleDict({"vit": vit, "heads": heads})
    # 0 unless out_dir holds a checkpoint of this stage
    start = checkpointing.resume(out, trained, opt, new_prefixes=("heads.counts", "heads.time"))
    data = DenseViews(cfg, preprocessor_for_model(mcfg), grid, start)
    loader = DataLoader(data, batch_size=cfg.images_per_step * cfg.views_per_image, collate_fn=collate_views,
                        num_workers=cfg.workers, persistent_workers=cfg.workers > 0,
                        pin_memory=device.type == "cuda")
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")
    log_path = out / "metrics.jsonl"
    kept = [line for line in log_path.read_text().splitlines() if json.loads(line)["step"] < start] if start else []
    log = open(log_path, "w")  # a resumed run drops the records logged after its checkpoint
    log.writelines(line + "\n" for line in kept)
    t0 = time.time()
    for step, batch in zip(range(start, cfg.steps), loader):
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        for group in opt.param_groups:
            group["lr"] = cfg.lr * lr_factor(cfg, step)
        with autocast:
            feats = backbone.vit_features(batch["patches"])
            patch_logits, image_logits, region_logits = heads(feats, batch["regions"])
        loss, parts = dense_loss(patch_logits, image_logits, region_logits, batch, cfg.region_weight,
                                 cfg.loss_weights)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % cfg.log_every == 0 or step == cfg.steps - 1:
            rec = {"step": step, "loss": float(loss.detach()), **parts, "lr": cfg.lr * lr_factor(cfg, step + 1),
                   "elapsed_s": round(time.time() - t0, 1)}
            log.write(json.dumps(rec) + "\n")
            log.flush()
            print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in rec.items()),
                  flush=True)
        if (step + 1) % cfg.save_every == 0 and step + 1 < cfg.steps:
            _save_vit(vit, out / VIT_FILE, cfg, step + 1)
            checkpointing.save(out, step + 1, trained, opt, rank=0)
    path = _save_vit(vit, out / VIT_FILE, cfg, cfg.steps)
    checkpointing.save(out, cfg.steps, trained, opt, rank=0)  # a later run with more --steps goes on from here
    (out / "vision_config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=1))
    return path
