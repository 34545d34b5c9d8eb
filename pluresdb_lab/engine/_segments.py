"""Immutable segment files: node versions as a compressed Arrow IPC file.

Rows are sorted by (id, version). A segment is read once into memory (decompressed)
and indexed by a fixed-width byte array of its ids, so finding a node is one binary
search in numpy, with no Python object per node.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from pluresdb_lab.engine._folder import raise_if_full
from pluresdb_lab.errors import CorruptDatabaseError

KIND_PUT, KIND_DELETE, KIND_BATCH = 0, 1, 2

SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("rev", pa.int64()),  # every applied write to the node, 1, 2, ...
        ("version", pa.int64()),  # visible versions only: bumps when `changed`
        ("time", pa.float64()),  # local commit time, epoch seconds (drives as_of)
        ("written", pa.float64()),  # when the visible state was written, at its origin
        ("origin", pa.string()),
        ("seq", pa.int64()),
        ("hlc", pa.int64()),
        ("ctr", pa.int64()),
        ("kind", pa.int8()),
        ("changed", pa.bool_()),  # did this version change what readers see?
        ("type", pa.string()),
        ("data", pa.string()),  # JSON object; null values are deleted fields
        ("vector", pa.binary()),  # float32 bytes
        ("deleted", pa.bool_()),
        ("conflicted", pa.bool_()),  # has concurrent writes that LWW resolved
        ("meta", pa.binary()),  # CRDT metadata (see _crdt.encode_meta)
        ("op", pa.binary()),  # the write that made this version (see _ops)
    ]
)
BATCH_ROWS = 65_536


def sort_rows(table: pa.Table) -> pa.Table:
    return table.sort_by([("id", "ascending"), ("rev", "ascending")])


def id_index(ids: pa.Array) -> npt.NDArray[np.bytes_]:
    """Fixed-width byte strings of `ids` (utf-8, NUL padded), for np.searchsorted."""
    ids = ids.cast(pa.string())
    n = len(ids)
    if n == 0:
        return np.array([], dtype="S1")
    offsets = np.frombuffer(ids.buffers()[1], dtype=np.int32)[ids.offset : ids.offset + n + 1]
    data = np.frombuffer(ids.buffers()[2], dtype=np.uint8)
    lengths = np.diff(offsets)
    width = max(int(lengths.max()), 1)
    out = np.zeros((n, width), dtype=np.uint8)
    rows = np.repeat(np.arange(n), lengths)
    starts = np.repeat(offsets[:-1], lengths)
    cols = np.arange(offsets[0], offsets[-1]) - starts
    out[rows, cols] = data[offsets[0] : offsets[-1]]
    return out.view(f"S{width}").ravel()


def last_per_id(index: npt.NDArray[np.bytes_]) -> npt.NDArray[np.bool_]:
    """Mask of each id's last (newest) row in an id-sorted index."""
    mask = np.ones(len(index), dtype=bool)
    if len(index) > 1:
        mask[:-1] = index[1:] != index[:-1]
    return mask


class _ColumnReader:
    """Reads single values straight from an Arrow array's buffers: a point lookup
    costs about a microsecond per column instead of building an Arrow scalar."""

    def __init__(self, array: pa.Array) -> None:
        self.kind = "binary" if pa.types.is_binary(array.type) else "str"
        self.nulls = array.is_null().to_numpy(zero_copy_only=False) if array.null_count else None
        if pa.types.is_string(array.type) or pa.types.is_binary(array.type):
            if not pa.types.is_binary(array.type):
                self.kind = "str"
            n = len(array)
            self.offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)[
                array.offset : array.offset + n + 1
            ]
            data = array.buffers()[2]
            self.data = memoryview(data) if data is not None else memoryview(b"")
        else:
            self.kind = "scalar"
            self.values = array.to_numpy(zero_copy_only=False)

    def get(self, i: int) -> Any:
        if self.nulls is not None and self.nulls[i]:
            return None
        if self.kind == "scalar":
            return self.values[i].item()
        blob = self.data[int(self.offsets[i]) : int(self.offsets[i + 1])]
        return str(blob, "utf-8") if self.kind == "str" else bytes(blob)


@dataclass
class Segment:
    """One segment file, loaded."""

    path: Path
    level: int
    number: int
    table: pa.Table
    index: npt.NDArray[np.bytes_]
    crc: int
    size: int

    @property
    def rows(self) -> int:
        return int(self.table.num_rows)

    def span(self, node_id: str) -> tuple[int, int]:
        """Row range [start, stop) holding `node_id`'s versions."""
        key = node_id.encode("utf-8", "surrogatepass")
        if len(key) > self.index.dtype.itemsize or not len(self.index):
            return (0, 0)
        start = int(np.searchsorted(self.index, key, side="left"))
        stop = int(np.searchsorted(self.index, key, side="right"))
        return (start, stop)

    def newest(self, node_id: str) -> int | None:
        """Row of the node's newest version here, or None (one binary search)."""
        key = node_id.encode("utf-8", "surrogatepass")
        index = self.index
        if not len(index) or len(key) > index.dtype.itemsize:
            return None
        i = int(index.searchsorted(key, side="right"))
        return i - 1 if i and index[i - 1] == key else None

    def row(self, i: int, columns: tuple[str, ...] = tuple(SCHEMA.names)) -> dict[str, Any]:
        return {name: self._reader(name).get(i) for name in columns}

    def _reader(self, name: str) -> _ColumnReader:
        reader = self._readers.get(name)
        if reader is None:
            reader = self._readers[name] = _ColumnReader(self.table.column(name).combine_chunks())
        return reader

    def __post_init__(self) -> None:
        self._readers: dict[str, _ColumnReader] = {}

    def describe(self) -> dict[str, Any]:
        return {
            "file": self.path.name,
            "level": self.level,
            "rows": self.rows,
            "bytes": self.size,
            "crc32": self.crc,
        }


def write_segment(path: Path, table: pa.Table, *, level: int, number: int) -> Segment:
    """Write rows (already sorted) as a compressed Arrow IPC file, fsynced. On failure
    (a full disk) the temporary file is gone and nothing else changed."""
    table = table.cast(SCHEMA)
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    sink = pa.BufferOutputStream()  # in memory first: the CRC needs the bytes anyway
    with pa.ipc.new_file(sink, SCHEMA, options=options) as w:
        w.write_table(table, max_chunksize=BATCH_ROWS)
    blob = sink.getvalue()
    tmp = path.with_suffix(".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        try:
            view = memoryview(blob)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        outcome = "The database is unchanged: its data stays in its other files."
        raise_if_full(exc, f"writing segment file {path}", outcome)
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    table = table.combine_chunks()
    return Segment(
        path,
        level,
        number,
        table,
        id_index(table.column("id").chunk(0) if table.num_rows else pa.array([], pa.string())),
        zlib.crc32(blob),
        blob.size,
    )


def read_segment(path: Path, *, level: int, number: int, crc: int) -> Segment:
    """Load a segment, verifying its checksum; a bad file is named in the error."""
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise CorruptDatabaseError(
            f"segment file {path} listed in the manifest is missing; restore it from a backup"
        ) from None
    if zlib.crc32(blob) != crc:
        raise CorruptDatabaseError(
            f"segment file {path} fails its checksum (the file is damaged); restore the "
            "database from a backup"
        )
    try:
        table = pa.ipc.open_file(pa.py_buffer(blob)).read_all().combine_chunks()
    except (pa.ArrowInvalid, OSError) as exc:
        raise CorruptDatabaseError(f"segment file {path} cannot be decoded: {exc}") from None
    ids = table.column("id")
    index = id_index(ids.chunk(0) if ids.num_chunks else pa.array([], pa.string()))
    return Segment(path, level, number, table, index, crc, len(blob))


def constant(value: Any, n: int, dtype: pa.DataType) -> pa.Array:
    return pa.repeat(pa.scalar(value, dtype), n)


def is_in(ids: pa.Array | pa.ChunkedArray, values: pa.Array) -> pa.Array:
    return pc.is_in(ids, value_set=values)
