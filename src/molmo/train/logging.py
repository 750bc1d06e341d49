"""Run observability from rank 0: one log line per step, `metrics.jsonl` (always), TensorBoard and Weights &
Biases when asked for, a progress bar, MFU where the accelerator's peak is known, and a PNG loss curve.

    logger = MetricsLogger(out_dir, cfg, rank, start_step)
    logger.log({"step": 1, "loss": 2.3, ...}); logger.plot(out_dir / "loss.png")
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

# Dense bf16 peak FLOP/s by device name fragment (vendor datasheets).
PEAK_BF16_FLOPS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 70e12, "L4": 121e12}


def peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16_FLOPS.items() if k in name), None)


class MetricsLogger:
    def __init__(self, out: Path, cfg: Any, rank: int, start_step: int):
        self.rank, self.cfg, self.out = rank, cfg, Path(out)
        self.enabled = rank == 0
        self._peak: float | None = None
        self._peak_known = False
        if not self.enabled:
            return
        self.path = self.out / "metrics.jsonl"
        if self.path.exists():  # a resumed run drops records past its checkpoint
            keep = [line for line in self.path.read_text().splitlines()
                    if line.strip() and json.loads(line).get("step", 0) <= start_step]
            self.path.write_text("".join(k + "\n" for k in keep))
        self.file = open(self.path, "a")
        self.bar = tqdm(total=cfg.steps, initial=start_step, desc="train", unit="step", dynamic_ncols=True)
        self.tb = self.wandb = None
        if cfg.tensorboard:
            from torch.utils.tensorboard import SummaryWriter
            self.tb = SummaryWriter(str(self.out / "tensorboard"))
        if cfg.wandb:
            import wandb
            self.wandb = wandb.init(project=cfg.wandb, config=cfg.to_dict(), dir=str(self.out), resume="allow")

    def mfu(self, flops_per_s: float, device: torch.device) -> float | None:
        if not self._peak_known:
            self._peak, self._peak_known = peak_flops(device), True
        return flops_per_s / self._peak if self._peak else None

    def log(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        step = record["step"]
        val = {k.replace("val_loss", "val"): v for k, v in record.items() if k.startswith("val_loss")}
        if step % self.cfg.log_every == 0 or val:
            parts = [f"step {step}/{self.cfg.steps}", f"loss {record['loss']:.4f}"]
            parts += [f"{k} {v:.4f}" for k, v in val.items()]
            parts.append("lr " + " ".join(f"{k[3:]}={v:.2e}" for k, v in record.items() if k.startswith("lr/")))
            parts.append("|g| " + " ".join(f"{k[10:]}={v:.2f}" for k, v in record.items()
                                            if k.startswith("grad_norm/")))
            parts.append(f"{record['tokens_per_s']:.0f} tok/s")
            if "mfu" in record:
                parts.append(f"mfu {100 * record['mfu']:.1f}%")
            self.bar.write(" | ".join(parts))
        self.bar.update(1)
        if self.tb is not None:
            for k, v in record.items():
                if k != "step":
                    self.tb.add_scalar(k, v, step)
        if self.wandb is not None:
            self.wandb.log(record, step=step)

    def close(self) -> None:
        if not self.enabled:
            return
        self.file.close()
        self.bar.close()
        if self.tb is not None:
            self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()

    def plot(self, path: Path) -> Path | None:
        return plot_loss(self.out / "metrics.jsonl", path) if self.enabled else None


def plot_loss(metrics: Path, path: Path, title: str | None = None) -> Path | None:
    """Training loss (raw and smoothed) and validation loss against the step."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in Path(metrics).read_text().splitlines() if line.strip()]
    if not rows:
        return None
    steps = [r["step"] for r in rows]
    loss = [r["loss"] for r in rows]
    window = max(1, len(loss) // 50)
    smooth = [sum(loss[max(0, i - window + 1): i + 1]) / len(loss[max(0, i - window + 1): i + 1])
              for i in range(len(loss))]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    ax.plot(steps, loss, alpha=0.3, label="train loss")
    ax.plot(steps, smooth, label=f"train loss (mean of {window})")
    val = [(r["step"], r["val_loss"]) for r in rows if "val_loss" in r]
    if val:
        ax.plot(*zip(*val), "o-", label="validation loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title or Path(metrics).parent.name)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = Path(path).with_suffix(".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
    return Path(path)
