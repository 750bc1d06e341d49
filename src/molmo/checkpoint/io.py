"""Load and save Molmo checkpoints without transformers' remote code.

- Released HF-format directories: `config.json` + `model.safetensors` or sharded `model-*.safetensors`
  with `model.safetensors.index.json`; names mapped by `molmo.checkpoint.names`.
- Our own format: `config.json` (with `"format": "molmo"`) + `model.safetensors` in our names, written
  atomically (temporary folder, then rename), plus any tokenizer / pre-processor files given.

    model, cfg = load_molmo("Molmo-7B-D-0924", dtype=torch.bfloat16)
    save_molmo(model, "out/ckpt")
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from molmo.checkpoint.integrity import check_finite, verify_folder, write_checksums
from molmo.checkpoint.names import to_ours
from molmo.model.config import MolmoConfig, from_hf_config
from molmo.model.molmo import Molmo


class CheckpointError(ValueError):
    """A checkpoint directory is missing files or has missing / unexpected / mis-shaped tensors."""


def read_config(path: str | Path) -> MolmoConfig:
    path = Path(path)
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        raise CheckpointError(f"{path}: no config.json (is this a Molmo checkpoint directory?)")
    try:
        return from_hf_config(json.loads(cfg_file.read_text()))
    except (KeyError, TypeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{cfg_file}: cannot read Molmo config ({e!r})") from e


def read_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    index = path / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        missing = [s for s in shards if not (path / s).is_file()]
        if missing:
            raise CheckpointError(f"{path}: shard file(s) listed in the index are missing: {missing}")
        state: dict[str, torch.Tensor] = {}
        for shard in shards:
            state.update(load_file(str(path / shard)))
        return state
    single = path / "model.safetensors"
    if not single.is_file():
        raise CheckpointError(f"{path}: no model.safetensors or model.safetensors.index.json")
    return load_file(str(single))


def load_state(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Strict load with a message naming every missing, unexpected and mis-shaped tensor."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    bad_shape = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
                 for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or bad_shape:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)}: {missing[:8]}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)}: {unexpected[:8]}")
        if bad_shape:
            parts.append(f"shape mismatch {len(bad_shape)}: {bad_shape[:8]}")
        raise CheckpointError(f"{source}: tensors do not match the model config — " + "; ".join(parts))
    model.load_state_dict(state, strict=True)


def load_molmo(path: str | Path, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"
               ) -> tuple[Molmo, MolmoConfig]:
    path = Path(path)
    config = read_config(path)
    verify_folder(path)  # checksums and file structure first: one line naming a damaged file
    state = read_tensors(path)
    ours = json.loads((path / "config.json").read_text()).get("format") == "molmo"
    if not ours:
        try:
            state = to_ours(state, config)
        except KeyError as e:
            raise CheckpointError(f"{path}: {e.args[0]}") from e
    with torch.device("meta"):
        model = Molmo(config)
    model = model.to_empty(device="cpu")
    model.llm.rotary.reset_buffers()
    load_state(model, {k: v.float() for k, v in state.items()}, str(path))
    check_finite(model.state_dict().items(), path)
    return model.to(device=device, dtype=dtype).eval(), config


def save_molmo(model: Molmo, path: str | Path, extra_files: dict[str, str | Path] | None = None) -> Path:
    """Write model.safetensors + config.json (+ extra files, name -> source path) atomically."""
    return save_state(model.state_dict(), model.config, path, extra_files)


def save_state(state: dict[str, torch.Tensor], config: MolmoConfig, path: str | Path,
               extra_files: dict[str, str | Path] | None = None) -> Path:
    """`save_molmo` for a state dict (e.g. gathered from a sharded model): the directory is replaced whole,
    so a kill during the write leaves the previous checkpoint intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; a checkpoint folder is as readable as any other
    try:
        state = {k: v.detach().contiguous().cpu() for k, v in state.items()}
        save_file(state, str(tmp / "model.safetensors"))
        (tmp / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
        for name, src in (extra_files or {}).items():
            shutil.copyfile(src, tmp / name)
        write_checksums(tmp, [p.name for p in tmp.iterdir() if p.is_file()])
        if path.exists():
            old = path.with_name(path.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path
