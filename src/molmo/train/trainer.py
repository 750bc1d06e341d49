"""The training loop: one CPU process to many GPUs (torchrun + FSDP2), the Molmo recipe's loss normalisation,
per-group LR/clipping, atomic DCP checkpoints with exact resume, validation loss, logs and a loss curve.

    python -m molmo.train tiny-sft --steps=100                         # one process
    torchrun --nproc-per-node 2 -m molmo.train tiny-sft --steps=100    # FSDP2 (gloo on CPU, nccl on GPU)

Loss: Σ w·CE / Σ w over the whole global batch (every micro-batch on every rank) plus the z-loss
normalised the same way. Each rank scales its micro-batch sums by world/Σw so that FSDP's gradient
averaging gives exactly the gradient of that global objective.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from pathlib import Path

import torch
import torch.distributed as dist

from molmo.checkpoint.hub import resolve_model
from molmo.model.loss import token_loss
from molmo.precision import fast_bf16
from molmo.train import checkpointing
from molmo.train.config import TrainConfig
from molmo.checkpoint.lora import apply_lora
from molmo.train.batches import build_loader, open_dataset, require_data, steps_for, validation_sets
from molmo.train.inference_eval import InferenceEvals, missing_benchmarks
from molmo.train.logging import MetricsLogger
from molmo.train.optim import build_optimizer, clip_per_group, set_learning_rates
from molmo.train.runs import hold_run_folder
from molmo.train.setup import build_model_and_processor, load_sharded, shard_model

MODEL_KEYS = ("input_ids", "images", "image_masks", "image_input_idx", "position_ids", "subsegment_ids")


class TrainingError(RuntimeError):
    """The run cannot continue (non-finite loss, bad data); the message names the step."""


def _dist_setup() -> tuple[int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return rank, world, device


def _all_sum(x: torch.Tensor) -> torch.Tensor:
    if dist.is_initialized():
        dist.all_reduce(x)
    return x


def _to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _autocast(cfg: TrainConfig, device: torch.device):
    """bf16 autocast for the single-process path; under FSDP the MixedPrecisionPolicy casts instead."""
    enabled = cfg.precision == "bf16" and not dist.is_initialized()
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


def micro_batch_loss(model, batch: dict[str, torch.Tensor], z_loss: float, autocast) -> tuple[torch.Tensor, ...]:
    """(ce_sum, z_sum, weight_sum) of one micro-batch, residual dropout keyed on its response tokens."""
    with autocast:
        out = model(**{k: batch[k] for k in MODEL_KEYS if k in batch}, response_mask=batch["loss_masks"] > 0)
    return token_loss(out.logits, batch["labels"], batch["loss_masks"], z_loss)


@torch.no_grad()
def validation_loss(model, cfg: TrainConfig, processor, rank: int, world: int, device, dataset=None) -> float:
    model.eval()
    totals = torch.zeros(2, device=device)
    for (batch,) in build_loader(cfg, processor, rank, world, validation=True, dataset=dataset):
        batch = _to(batch, device)
        ce, _, w = micro_batch_loss(model, batch, 0.0, _autocast(cfg, device))
        totals += torch.stack([ce.float(), w.float()])
    model.train()
    totals = _all_sum(totals)
    return float(totals[0] / totals[1].clamp(min=1))


def train(cfg: TrainConfig) -> Path:
    """Run (or resume) the configured training; returns the exported checkpoint directory (or out_dir)."""
    owns_process_group = not dist.is_initialized()
    rank, world, device = _dist_setup()
    # before any work: a folder another process trains is refused at once (held until this process ends)
    run_lock = hold_run_folder(cfg.out_dir) if rank == 0 else None  # noqa: F841
    # Missing PixMo / academic files (and evaluation benchmarks) fail here, before the model is even built.
    require_data(cfg.data, missing_benchmarks(cfg))
    evals = InferenceEvals.open(cfg)
    train_data = open_dataset(cfg)
    cfg = dataclasses.replace(cfg, steps=steps_for(cfg, sum(len(c) for c in train_data.collections)))
    val_sets = validation_sets(cfg) if cfg.eval_every else {}
    if cfg.precision == "auto":  # resolved once, so the run folder's config.json says what the run used
        cfg = dataclasses.replace(cfg, precision="bf16" if fast_bf16(device) else "fp32")
        if rank == 0:
            print(f"precision: {cfg.precision} (auto on {device.type})", flush=True)
    out = Path(cfg.out_dir)
    torch.manual_seed(cfg.seed)
    sharded_load = world > 1 and bool(cfg.init) and cfg.lora.rank == 0  # LoRA adapters need real weights
    model, processor, tokenizer_dir = build_model_and_processor(cfg, on_meta=sharded_load)
    if cfg.lora.rank > 0:
        apply_lora(model, cfg.lora)
    if not sharded_load:
        model.to(device)
    model = shard_model(model, cfg, world, device)
    if sharded_load:
        model = load_sharded(model, resolve_model(cfg.init), device)
    optimizer = build_optimizer(model, cfg.optim)
    start = checkpointing.resume(out, model, optimizer)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(cfg.to_json())
    logger = MetricsLogger(out, cfg, rank, start)
    train_loader = build_loader(cfg, processor, rank, world, start_step=start, dataset=train_data)
    if start:  # the stored data state must describe the same stream, or the resumed run sees other data
        saved = checkpointing.trainer_state(out).get("data")
        if saved is not None:
            train_loader.batch_sampler.sampler.stream.check_state(saved)
    loader = iter(train_loader)
    model.train()
    n_params = sum(p.numel() for p in model.parameters())
    for step in range(start + 1, cfg.steps + 1):
        t0 = time.perf_counter()
        torch.manual_seed(cfg.seed + 1_000_003 * step + rank)  # dropout draws depend only on (step, rank)
        batches = [_to(b, device) for b in next(loader)]
        data_wait = time.perf_counter() - t0  # near 0 unless the loader (drawing images, packing) falls behind
        weight = sum(((b["labels"] >= 0) * b["loss_masks"]).sum().float() for b in batches)
        global_weight = _all_sum(weight.clone()).clamp(min=1e-6)
        sums = torch.zeros(2, device=device)
        tokens = 0
        for i, batch in enumerate(batches):
            if hasattr(model, "set_requires_gradient_sync"):
                model.set_requires_gradient_sync(i == len(batches) - 1)
            ce, z, _ = micro_batch_loss(model, batch, cfg.z_loss, _autocast(cfg, device))
            ((ce + z) * world / global_weight).backward()
            sums += torch.stack([ce.detach().float(), z.detach().float()])
            tokens += int((batch["input_ids"] != -1).sum())
        sums = _all_sum(sums) / global_weight
        loss = float(sums.sum())
        if not math.isfinite(loss):
            raise TrainingError(f"loss is {loss} at step {step}; stopping. The last good checkpoint is "
                                f"{checkpointing.latest(out) or 'none'} (lower the learning rate or check the data).")
        lrs = set_learning_rates(optimizer, cfg.optim, step, cfg.steps)
        norms = clip_per_group(optimizer, cfg.optim.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        tokens = int(_all_sum(torch.tensor(float(tokens), device=device)))
        dt = time.perf_counter() - t0
        record = {"step": step, "loss": loss, "ce": float(sums[0]), "z_loss": float(sums[1]),
                  **{f"lr/{k}": v for k, v in lrs.items()}, **{f"grad_norm/{k}": v for k, v in norms.items()},
                  "tokens_per_s": tokens / dt, "step_time": dt, "data_wait": data_wait}
        mfu = logger.mfu(6 * n_params * tokens / dt / world, device)
        if mfu is not None:
            record["mfu"] = mfu
        if cfg.eval_every and step % cfg.eval_every == 0:
            for name, val_data in val_sets.items():
                record[name] = validation_loss(model, cfg, processor, rank, world, device, val_data)
        if evals is not None and evals.due(step):
            record.update(evals.run(model, processor.tokenizer, processor.config, step, out, rank, world))
        logger.log(record)
        if step % cfg.save_every == 0 or step == cfg.steps:
            data_state = train_loader.batch_sampler.sampler.state(step)
            checkpointing.save(out, step, model, optimizer, rank, {"data": data_state})
    logger.close()
    exported = out
    if cfg.export:
        exported = checkpointing.export(out / "model", model, tokenizer_dir, processor, rank, cfg.lora)
    if rank == 0:
        logger.plot(out / "loss.png")
    if dist.is_initialized():
        dist.barrier()
        if owns_process_group:  # left to exit, gloo's worker threads can abort the interpreter's teardown
            dist.destroy_process_group()
    return exported
