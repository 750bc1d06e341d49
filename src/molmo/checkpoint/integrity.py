"""Integrity of weight files and training checkpoints: checksums written at save and checked at load, structural
checks of safetensors and torch DCP files before they are read, and a NaN/Inf check of loaded weights. Every
failure is one `IntegrityError` line that names the damaged file.

    write_checksums(folder, ["model.safetensors", "config.json"])   # at save, inside the temporary folder
    verify_folder(folder)          # at load: checksums (unless MOLMO_SKIP_CHECKSUM=1), then safetensors headers
    check_finite(model.named_parameters(), folder)                   # after load
    check_dcp(step_folder)         # before torch.distributed.checkpoint reads a training checkpoint

A folder without `checksums.json` (released checkpoints, older saves) is checked structurally only.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Iterable

import torch

CHECKSUM_FILE = "checksums.json"
SKIP_ENV = "MOLMO_SKIP_CHECKSUM"  # "1": do not hash files at load (the structural checks still run)
_CHUNK = 8 << 20
_MAX_HEADER = 100 << 20  # safetensors caps its JSON header at 100 MB


class IntegrityError(ValueError):
    """A checkpoint or weight file is damaged: truncated, garbage, a checksum mismatch or non-finite values."""


def skip_checksums() -> bool:
    return os.environ.get(SKIP_ENV, "").strip().lower() in ("1", "true", "yes")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def write_checksums(folder: str | Path, names: Iterable[str]) -> Path:
    """Hash the named files of `folder` into `folder/checksums.json` (written atomically)."""
    folder = Path(folder)
    table = {"algorithm": "sha256", "files": {name: sha256_file(folder / name) for name in sorted(names)}}
    tmp = folder / (CHECKSUM_FILE + ".tmp")
    tmp.write_text(json.dumps(table, indent=1))
    os.replace(tmp, folder / CHECKSUM_FILE)
    return folder / CHECKSUM_FILE


def verify_checksums(folder: str | Path) -> bool:
    """Check every file listed in `folder/checksums.json`; False when the folder has no checksum table."""
    folder = Path(folder)
    table_file = folder / CHECKSUM_FILE
    if not table_file.is_file():
        return False
    try:
        files = json.loads(table_file.read_text())["files"]
        assert isinstance(files, dict)
    except (ValueError, KeyError, TypeError, AssertionError, UnicodeDecodeError) as e:
        raise IntegrityError(f"{table_file}: not a readable checksum table ({type(e).__name__})") from None
    for name, expected in files.items():
        file = folder / name
        if not file.is_file():
            raise IntegrityError(f"{file}: listed in {CHECKSUM_FILE} but missing")
        if sha256_file(file) != expected:
            raise IntegrityError(f"{file}: checksum mismatch, the file is damaged or changed since it was saved "
                                 f"(set {SKIP_ENV}=1 to load it anyway)")
    return True


def check_safetensors(file: str | Path) -> None:
    """The header parses and every tensor's bytes lie inside the file (catches truncation and garbage)."""
    file = Path(file)
    size = file.stat().st_size
    with open(file, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise IntegrityError(f"{file}: not a safetensors file ({size} bytes, too short for a header)")
        (n,) = struct.unpack("<Q", head)
        if n > min(_MAX_HEADER, size - 8):
            raise IntegrityError(f"{file}: not a safetensors file or truncated (header length {n} for a file of "
                                 f"{size} bytes)")
        raw = f.read(n)
    try:
        header = json.loads(raw)
        assert isinstance(header, dict)
        ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
    except (ValueError, KeyError, TypeError, IndexError, AssertionError, UnicodeDecodeError):
        raise IntegrityError(f"{file}: not a safetensors file (its header is not valid JSON tensor metadata)") from None
    data = size - 8 - n
    need = max(ends, default=0)
    if need > data:
        raise IntegrityError(f"{file}: truncated, the header lists {need} bytes of tensor data but the file holds "
                             f"{data}")


def verify_folder(folder: str | Path) -> None:
    """Load-time check of a weights folder: checksums (unless skipped), then every safetensors file's structure."""
    folder = Path(folder)
    if not skip_checksums():
        verify_checksums(folder)
    for file in sorted(folder.glob("*.safetensors")):
        check_safetensors(file)


def check_finite(named_tensors: Iterable[tuple[str, torch.Tensor]], source: str | Path) -> None:
    bad = [name for name, t in named_tensors if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise IntegrityError(f"{source}: weights hold NaN or Inf in {len(bad)} tensor(s), first {bad[:3]}")


def check_dcp(folder: str | Path) -> None:
    """A DCP checkpoint folder: `.metadata` unpickles and every `.distcp` file holds the byte ranges it lists."""
    from torch.distributed.checkpoint import FileSystemReader

    folder = Path(folder)
    meta_file = folder / ".metadata"
    if not meta_file.is_file():
        raise IntegrityError(f"{meta_file}: missing, the checkpoint is incomplete")
    try:
        meta = FileSystemReader(str(folder)).read_metadata()
        storage = meta.storage_data
        needed: dict[str, int] = {}
        for info in storage.values():
            needed[info.relative_path] = max(needed.get(info.relative_path, 0), info.offset + info.length)
    except Exception as e:  # noqa: BLE001 - unpickling garbage raises anything
        raise IntegrityError(f"{meta_file}: not a readable checkpoint index ({type(e).__name__})") from None
    for name, need in sorted(needed.items()):
        file = folder / name
        if not file.is_file():
            raise IntegrityError(f"{file}: missing, listed in {meta_file.name}")
        if file.stat().st_size < need:
            raise IntegrityError(f"{file}: truncated, {file.stat().st_size} bytes where {meta_file.name} "
                                 f"lists data up to byte {need}")
