"""Stream safetensors shards straight into a model's parameters, one tensor (and, across a dtype change, one
bounded chunk) at a time, so loading never holds a second copy of the weights.

The safetensors layout is an 8-byte little-endian header length, a JSON header (name -> dtype, shape,
byte range) and the raw little-endian data. Reading is done with `readinto` into the parameter's own
memory when the dtypes match (zero extra bytes) or through a reusable 32 MB buffer when they do not.
Plain reads are used rather than a memory map because mapped pages count towards the process's RSS
until unmapped: a map of a 15 GB shard would cost 15 GB of RSS on top of the model.

Each FSDP2 rank reads only the rows of its own dim-0 shard (`DTensor` parameters).

    readers = [ShardReader(p) for p in shard_paths]
    stream_into(model, plan)   # plan: our name -> TensorSource(reader, file name, layout)
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

CHUNK_BYTES = 32 << 20

_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
           "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
           "BOOL": torch.bool, "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2}


class ShardFormatError(ValueError):
    """A file is not a readable safetensors shard (truncated, bad header)."""


@dataclass(frozen=True)
class TensorInfo:
    dtype: torch.dtype
    shape: tuple[int, ...]
    begin: int  # absolute byte offsets in the file
    end: int


class ShardReader:
    """The header of one safetensors file; tensors are read on demand."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        size = self.path.stat().st_size
        with open(self.path, "rb") as f:
            raw = f.read(8)
            if len(raw) < 8:
                raise ShardFormatError(f"{self.path}: too short for a safetensors file ({size} bytes)")
            (n,) = struct.unpack("<Q", raw)
            if n > size - 8:
                raise ShardFormatError(f"{self.path}: header length {n} exceeds the file size {size}")
            try:
                header = json.loads(f.read(n))
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise ShardFormatError(f"{self.path}: unreadable safetensors header ({e})") from None
        self.metadata = header.pop("__metadata__", None) or {}
        self.tensors: dict[str, TensorInfo] = {}
        for name, h in header.items():
            if h["dtype"] not in _DTYPES:
                raise ShardFormatError(f"{self.path}: tensor {name} has unsupported dtype {h['dtype']}")
            begin, end = h["data_offsets"]
            info = TensorInfo(_DTYPES[h["dtype"]], tuple(h["shape"]), 8 + n + begin, 8 + n + end)
            if info.end > size or end - begin != math.prod(info.shape) * info.dtype.itemsize:
                raise ShardFormatError(f"{self.path}: tensor {name} lies outside the file or has a wrong size "
                                       f"(truncated download?)")
            self.tensors[name] = info

    def read(self, name: str) -> torch.Tensor:
        """One whole tensor in its file dtype (used where the layout changes, e.g. MoE experts)."""
        info = self.tensors[name]
        out = torch.empty(info.shape, dtype=info.dtype)
        self.read_into(name, out)
        return out

    def read_into(self, name: str, dest: torch.Tensor, first_row: int = 0) -> None:
        """Fill `dest` (any dtype / device, contiguous) from the tensor's rows first_row .. first_row +
        len(dest); dest's elements must match that row range in number."""
        info = self.tensors[name]
        row_bytes = (info.end - info.begin) // max(info.shape[0], 1) if info.shape else info.end - info.begin
        start = info.begin + first_row * row_bytes
        flat = dest.view(-1)
        with open(self.path, "rb", buffering=0) as f:
            f.seek(start)
            if flat.device.type == "cpu" and flat.dtype == info.dtype:
                _read_exact(f, flat.view(torch.uint8), self.path)
                return
            per_chunk = max(1, CHUNK_BYTES // info.dtype.itemsize)
            buf = torch.empty(min(per_chunk, flat.numel()), dtype=info.dtype)
            for at in range(0, flat.numel(), per_chunk):
                n = min(per_chunk, flat.numel() - at)
                _read_exact(f, buf[:n].view(torch.uint8), self.path)
                flat[at:at + n].copy_(buf[:n])


def _read_exact(f, dest_bytes: torch.Tensor, path: Path) -> None:
    view = memoryview(dest_bytes.numpy()).cast("B")
    got = 0
    while got < len(view):
        n = f.readinto(view[got:])
        if not n:
            raise ShardFormatError(f"{path}: file ends early (truncated download?)")
        got += n


@dataclass(frozen=True)
class TensorSource:
    reader: ShardReader
    name: str  # the name in the file
    layout: Callable[[torch.Tensor], torch.Tensor] | None = None  # file layout -> ours, if it differs

    @property
    def info(self) -> TensorInfo:
        return self.reader.tensors[self.name]


def _local_rows(param: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(the tensor this process fills, its first row in the full tensor): a DTensor sharded on dim 0 (FSDP2's
    layout, rows split as torch.chunk does) gives its local shard; anything else is filled whole."""
    from torch.distributed.tensor import DTensor, Shard

    if not isinstance(param, DTensor):
        return param.data, 0
    if len(param.placements) != 1 or param.placements[0] != Shard(0):
        raise ValueError(f"streaming load supports 1-D dim-0 sharding only, got {param.placements}")
    mesh = param.device_mesh
    rows_per_rank = math.ceil(param.shape[0] / mesh.size())
    return param.to_local(), mesh.get_local_rank() * rows_per_rank


@torch.no_grad()
def stream_into(model: torch.nn.Module, plan: dict[str, TensorSource],
                on_tensor: Callable[[str, torch.Tensor], None] | None = None) -> None:
    """Fill every parameter / persistent buffer of `model` (already allocated, e.g. by `to_empty`) from its
    source, converting to the parameter's dtype and device on the way. `on_tensor(name, filled)` is called
    once per tensor after it is filled (the place for integrity checks)."""
    targets = dict(model.named_parameters())
    targets.update((k, v) for k, v in model.named_buffers() if k in plan)
    for name, source in plan.items():
        dest, first_row = _local_rows(targets[name])
        if dest.numel() == 0:
            continue
        if source.layout is None:
            source.reader.read_into(source.name, dest, first_row)
        else:
            full = source.layout(source.reader.read(source.name))
            dest.copy_(full[first_row:first_row + dest.shape[0]])
        if on_tensor is not None:
            on_tensor(name, dest)
