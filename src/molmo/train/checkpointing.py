"""Training checkpoints: torch DCP (sharded, every rank writes its part) for resume, and the export of the
final model to our safetensors format.

A checkpoint is written to `checkpoints/step_N.tmp/` (with `checksums.json` over its files), then renamed to
`step_N/` and `checkpoints/latest` is replaced atomically, so a kill during a save leaves the previous checkpoint
usable. The newest `KEEP` complete checkpoints are kept; older ones are removed only after a newer one is complete.
A `latest` that names a missing or incomplete checkpoint falls back to the newest complete one (with a warning),
or stops with an error when none is left; damaged files stop the resume with one line naming the file.

    step = resume(out_dir, model, optimizer)      # 0 when there is nothing to resume
    save(out_dir, step, model, optimizer, rank)
    export(out_dir / "model", model, tokenizer_dir, processor, rank)
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import warnings

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint import DefaultLoadPlanner
from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict, get_state_dict,
                                                     set_state_dict)

from molmo.checkpoint.integrity import IntegrityError, check_dcp, skip_checksums, verify_checksums, write_checksums
from molmo.checkpoint.io import save_state

KEEP = 2
# Single-process runs use DCP without a process group, which it announces on every call.
warnings.filterwarnings("ignore", message="torch.distributed is disabled")


def _barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def complete_checkpoints(root: Path) -> list[Path]:
    """`step_N` folders whose save finished (DCP index and trainer state written), oldest first."""
    found = [p for p in Path(root).glob("step_*") if re.fullmatch(r"step_\d+", p.name) and p.is_dir()
             and (p / ".metadata").is_file() and (p / "trainer_state.json").is_file()]
    return sorted(found, key=lambda p: int(p.name[5:]))


def latest(out: Path) -> Path | None:
    """The checkpoint to resume from: the one `checkpoints/latest` names, else the newest complete one; None when
    there is none (a fresh run). A pointer to nothing with no complete checkpoint left is an error, so a run
    never silently restarts from step 1 over its own output."""
    root = Path(out) / "checkpoints"
    pointer = root / "latest"
    good = complete_checkpoints(root)
    if not pointer.exists():
        return good[-1] if good else None
    name = pointer.read_text().strip()
    if name and (root / name) in good:
        return root / name
    if not good:
        raise IntegrityError(f"{pointer} names {name!r}, which is missing or incomplete, and {root} holds no complete "
                             f"checkpoint; move {root} away to start afresh")
    warnings.warn(f"{pointer} names {name!r}, which is missing or incomplete; resuming from the newest complete "
                  f"checkpoint {good[-1].name}", stacklevel=2)
    return good[-1]


def save(out: Path, step: int, model, optimizer, rank: int, extra: dict | None = None) -> Path:
    """`extra` (e.g. the data sampler's state) is stored beside the step in trainer_state.json."""
    root = Path(out) / "checkpoints"
    final, tmp = root / f"step_{step:07d}", root / f"step_{step:07d}.tmp"
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    _barrier()
    model_state, optim_state = get_state_dict(model, optimizer)
    dcp.save({"model": model_state, "optim": optim_state}, checkpoint_id=str(tmp))
    _barrier()
    if rank == 0:
        (tmp / "trainer_state.json").write_text(json.dumps({"step": step, **(extra or {})}))
        write_checksums(tmp, [p.name for p in tmp.iterdir() if p.is_file()])
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        pointer = root / "latest.tmp"
        pointer.write_text(final.name)
        os.replace(pointer, root / "latest")
        for old in complete_checkpoints(root)[:-KEEP]:
            if old != final:
                shutil.rmtree(old, ignore_errors=True)
    _barrier()
    return final


def trainer_state(out: Path) -> dict:
    """The latest checkpoint's trainer_state.json ({} when there is no checkpoint)."""
    path = latest(out)
    return json.loads((path / "trainer_state.json").read_text()) if path is not None else {}


def resume(out: Path, model, optimizer, new_prefixes: tuple[str, ...] = ()) -> int:
    """Load the latest checkpoint under `out` and return its step (0 if none). Parameters whose names start with
    one of `new_prefixes` (a head added after the checkpoint was written) may be missing and start fresh."""
    path = latest(out)
    if path is None:
        return 0
    check_dcp(path)
    if not skip_checksums():
        verify_checksums(path)
    model_state, optim_state = get_state_dict(model, optimizer)
    state = {"model": model_state, "optim": optim_state}
    saved = dcp.FileSystemReader(str(path)).read_metadata().state_dict_metadata
    missing = [k for k in model_state if f"model.{k}" not in saved and not k.startswith(new_prefixes)]
    if missing:
        raise RuntimeError(f"checkpoint {path} does not match the model: missing {missing[:5]}")
    # Partial load: parameters that never received a gradient (e.g. an unused ViT layer) have no
    # optimizer state in the checkpoint and keep their fresh state.
    dcp.load(state, checkpoint_id=str(path), planner=DefaultLoadPlanner(allow_partial_load=True))
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
    step = json.loads((path / "trainer_state.json").read_text())["step"]
    if not dist.is_initialized() or dist.get_rank() == 0:
        print(f"resumed from {path} (step {step})", flush=True)
    return step


def export(path: Path, model, tokenizer_dir: Path, processor, rank: int, lora=None) -> Path:
    """Gather the full state dict (all ranks take part) and write our format from rank 0. With a LoRA config
    the adapter goes to `path/../adapter` and `path` gets the merged model."""
    state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if rank == 0 and lora is not None and lora.rank > 0:
        from molmo.checkpoint.lora import merge_state_dict, save_adapter
        save_adapter(Path(path).parent / "adapter", state, lora)
        state = merge_state_dict(state, lora)
    if rank == 0:
        extra = {"tokenizer.json": Path(tokenizer_dir) / "tokenizer.json"}
        tmp_pre = Path(path).parent / "preprocessor_config.json.tmp"
        tmp_pre.write_text(json.dumps(processor.config.to_dict(), indent=2))
        extra["preprocessor_config.json"] = tmp_pre
        config = getattr(model, "config")
        save_state({k: v.to(torch.float32) for k, v in state.items()}, config, path, extra)
        tmp_pre.unlink()
    _barrier()
    return Path(path)
