"""Tables read without holding them in Python: the rows of a parquet / JSON / JSONL file set behind one index,
parquet memory-mapped (converted once, batch by batch, to an uncompressed Arrow IPC file in the table cache,
`$MOLMO_TABLE_CACHE`, default ~/.cache/molmo/tables; the OS shares its pages between ranks and workers), and
`LazyExamples`, a sequence of examples built from their rows only when indexed. RAM stays flat with the table
size: what stays resident are a few integer arrays (row order and group offsets), not row objects. JSON/JSONL
files (small hand-made tables) are parsed into memory.

    rows = TableSet.open("pixmo/points/")             # every table file below the folder
    gid = rows.group_ids("image_url")                 # int64 per row: first-seen order of each url
    rows.take([3, 17])                                # -> [{column: value}, …] for those rows only
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from molmo.data.example import RawExample


class TableError(ValueError):
    """A table (PixMo, academic) that cannot be read: the message names the file and the problem."""


def cache_dir() -> Path:
    return Path(os.environ.get("MOLMO_TABLE_CACHE") or Path.home() / ".cache" / "molmo" / "tables")


def _arrow_cache(path: Path) -> Path:
    """The memory-mappable copy of a parquet file (written once; the name changes when the file does)."""
    import pyarrow.parquet as pq

    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:24]
    target = cache_dir() / f"{path.stem}.{key}.arrow"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with pq.ParquetFile(path) as pf, pa.OSFile(str(tmp), "wb") as sink:
            with pa.ipc.new_file(sink, pf.schema_arrow) as writer:
                for batch in pf.iter_batches(batch_size=4096):  # one batch in memory at a time
                    writer.write_batch(batch)
    except Exception as e:  # noqa: BLE001 - pyarrow raises many types for corrupt files
        tmp.unlink(missing_ok=True)
        raise TableError(f"{path}: not a readable parquet file ({e})") from e
    os.replace(tmp, target)
    return target


def _map_random(path: Path) -> mmap.mmap:
    """The file mapped read-only, with read-ahead off: examples are read in random order, and read-ahead would
    pull ~128 KB of neighbouring rows into the page cache for each one."""
    with open(path, "rb") as f:
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    if hasattr(mapped, "madvise") and hasattr(mmap, "MADV_RANDOM"):
        mapped.madvise(mmap.MADV_RANDOM)
    return mapped


def _json_rows(path: Path) -> list[dict[str, Any]]:
    text = path.read_text()
    try:
        if path.suffix == ".jsonl":
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            data = json.loads(text)
            rows = data.get("rows", data.get("data")) if isinstance(data, dict) else data
    except json.JSONDecodeError as e:
        raise TableError(f"{path}: invalid JSON ({e.msg} at line {e.lineno})") from e
    if not isinstance(rows, list):
        raise TableError(f"{path}: expected a list of rows, or an object with 'rows' or 'data'")
    rows = [r["row"] if isinstance(r, dict) and set(r) >= {"row"} and isinstance(r["row"], dict) else r for r in rows]
    for i, r in enumerate(rows):
        if not isinstance(r, dict):
            raise TableError(f"{path}: row {i} is not an object")
    return rows


class TableFile:
    """One table file: parquet memory-mapped through its Arrow cache, JSON/JSONL parsed."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.table: pa.Table | None = None
        self.rows: list[dict] | None = None
        if self.path.suffix == ".parquet":
            reader = pa.ipc.open_file(pa.BufferReader(pa.py_buffer(_map_random(_arrow_cache(self.path)))))
            self.batches = [reader.get_batch(k) for k in range(reader.num_record_batches)]  # zero-copy views
            self.table = pa.Table.from_batches(self.batches, schema=reader.schema)
            self.batch_starts = np.cumsum([0] + [b.num_rows for b in self.batches])
            self.columns = set(self.table.column_names)
            self.n = self.table.num_rows
        else:
            self.rows = _json_rows(self.path)
            self.columns = set().union(*(r.keys() for r in self.rows)) if self.rows else set()
            self.n = len(self.rows)

    def column(self, name: str) -> pa.ChunkedArray | pa.Array:
        """A column as Arrow (nulls where a JSON row lacks it)."""
        if self.table is not None:
            if name not in self.columns:
                return pa.nulls(self.n)
            return self.table.column(name)
        return pa.array([r.get(name) for r in self.rows], from_pandas=False) if self.rows else pa.nulls(0)

    def take(self, local: np.ndarray) -> list[dict[str, Any]]:
        if self.table is not None:  # slice the record batch holding each row (Table.take would gather columns)
            out = []
            for i in np.asarray(local, np.int64):
                k = int(np.searchsorted(self.batch_starts, i, side="right")) - 1
                out.extend(self.batches[k].slice(int(i - self.batch_starts[k]), 1).to_pylist())
            return out
        return [self.rows[int(i)] for i in local]

    def missing_columns(self, required: Sequence[str]) -> tuple[int, list[str]] | None:
        """(first row, missing columns) of the first row lacking a required column, or None."""
        if self.table is not None:
            missing = [c for c in required if c not in self.columns]
            return (0, missing) if missing and self.n else None
        for i, row in enumerate(self.rows):
            missing = [c for c in required if c not in row]
            if missing:
                return i, missing
        return None


class TableSet:
    """The rows of several table files under one global row index (file order, then row order)."""

    def __init__(self, files: list[TableFile]):
        self.files = files
        self.offsets = np.cumsum([0] + [f.n for f in files])

    @classmethod
    def open(cls, paths: Sequence[Path]) -> "TableSet":
        return cls([TableFile(p) for p in paths])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def column(self, name: str) -> pa.ChunkedArray:
        chunks = []
        for f in self.files:
            col = f.column(name)
            chunks.extend(col.chunks if isinstance(col, pa.ChunkedArray) else [col])
        types = {c.type for c in chunks if not pa.types.is_null(c.type)}
        target = types.pop() if len(types) == 1 else None
        if target is not None:
            chunks = [c.cast(target) if pa.types.is_null(c.type) else c for c in chunks]
        elif types:
            chunks = [pa.array(c.to_pylist(), pa.string()) if c.type != pa.string() else c for c in chunks]
        return pa.chunked_array(chunks, type=target) if chunks else pa.chunked_array([], pa.null())

    def file_of(self, rows: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.offsets, rows, side="right") - 1

    def take(self, rows: np.ndarray) -> list[tuple[Path, int, dict[str, Any]]]:
        """(file, row number in that file, row) for global row numbers, in the order given."""
        rows = np.asarray(rows, np.int64)
        out: list[Any] = [None] * len(rows)
        which = self.file_of(rows)
        for k in np.unique(which):
            pos = np.flatnonzero(which == k)
            local = rows[pos] - self.offsets[k]
            for p, i, row in zip(pos, local, self.files[k].take(local)):
                out[p] = (self.files[k].path, int(i), row)
        return out

    def group_ids(self, name: str) -> tuple[np.ndarray, pa.Array]:
        """(group id per row, the distinct values in first-seen order) of a key column; nulls get -1."""
        return self.group_ids_of(self.column(name))

    @staticmethod
    def group_ids_of(col: pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
        uniques = pc.unique(col).drop_null() if len(col) else pa.array([], pa.string())
        gid = np.asarray(pc.index_in(col, value_set=uniques).fill_null(-1).to_numpy(zero_copy_only=False), np.int64)
        pa.default_memory_pool().release_unused()  # hand the hash tables' memory back to the OS
        return gid, uniques


def group_rows(gid: np.ndarray, keep_row: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """(row order, offsets): rows of group g (kept ones, in row order) are order[offsets[g]:offsets[g + 1]]."""
    rows = np.flatnonzero(keep_row & (gid >= 0))
    order = rows[np.argsort(gid[rows], kind="stable")]
    offsets = np.concatenate([[0], np.cumsum(np.bincount(gid[rows], minlength=n_groups))])
    return order, offsets


def iter_strings(values: pa.Array | pa.ChunkedArray, chunk: int = 65536):
    """Python strings of an Arrow column, a slice at a time (never the whole column as Python objects)."""
    for start in range(0, len(values), chunk):
        yield from values.slice(start, chunk).to_pylist()


class LazyExamples(Sequence[RawExample]):
    """Examples built on access: example e is `build(rows, e)` of its row numbers `order[offsets[e]:offsets[e+1]]`
    (a grouped dataset: all rows of one image; otherwise one row each). Slicing gives a view, not a list."""

    def __init__(self, rows: TableSet, order: np.ndarray, offsets: np.ndarray,
                 build: Callable[[list[tuple[Path, int, dict]], int], RawExample], index: np.ndarray | None = None):
        self.rows, self.order, self.offsets, self.build = rows, order, offsets, build
        self.index = np.arange(len(offsets) - 1) if index is None else index

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, e):
        if isinstance(e, slice):
            return LazyExamples(self.rows, self.order, self.offsets, self.build, self.index[e])
        if not -len(self) <= e < len(self):
            raise IndexError(f"example {e} out of range ({len(self)} examples)")
        g = int(self.index[e])
        return self.build(self.rows.take(self.order[self.offsets[g]:self.offsets[g + 1]]), g)

    def __iter__(self):
        return (self[e] for e in range(len(self)))


__all__ = ["LazyExamples", "TableError", "TableFile", "TableSet", "cache_dir", "group_rows", "iter_strings"]
