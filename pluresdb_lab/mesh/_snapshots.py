"""Snapshots: every op of a database and its version vector in one file, to seed new peers.

A snapshot file holds two msgpack objects: a header (format, version, peer id, time,
version vector, op count) and the array of ops. The header is read without the ops.
Files are written to a temporary name, fsynced and renamed, so a listed snapshot is
always whole.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, TypedDict

import msgpack

from pluresdb_lab.errors import CorruptDatabaseError, NotFoundError

FORMAT = "pluresdb-snapshot"
SUFFIX = ".pdbsnap"


class SnapshotInfo(TypedDict):
    """One snapshot file: its id, path, creation time, op count, size and version vector."""

    id: str
    path: str
    created: float
    peer_id: str
    ops: int
    bytes: int
    version_vector: dict[str, int]


def write(folder: Path, peer_id: str, ops: list[dict[str, Any]]) -> SnapshotInfo:
    """Store `ops` (everything `ops_since({})` returned) as a new snapshot."""
    vv: dict[str, int] = {}
    for op in ops:  # the vector is derived from the ops, so the two always agree
        vv[op["o"]] = max(vv.get(op["o"], 0), op["s"])
    created = time.time()
    snapshot_id = time.strftime("%Y%m%dT%H%M%S", time.gmtime(created)) + f"-{os.urandom(3).hex()}"
    header = {"format": FORMAT, "v": 1, "peer": peer_id, "created": created, "vv": vv}
    header["ops"] = len(ops)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{snapshot_id}{SUFFIX}"
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as out:
        out.write(msgpack.packb(header, use_bin_type=True))
        out.write(msgpack.packb(ops, use_bin_type=True))
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    return _info(path, header)


def _info(path: Path, header: dict[str, Any]) -> SnapshotInfo:
    return SnapshotInfo(
        id=path.name.removesuffix(SUFFIX),
        path=str(path),
        created=float(header["created"]),
        peer_id=str(header["peer"]),
        ops=int(header["ops"]),
        bytes=path.stat().st_size,
        version_vector=dict(header["vv"]),
    )


def _unpacker(path: Path, source: Any) -> Any:
    unpacker = msgpack.Unpacker(source, raw=False, strict_map_key=False, max_buffer_size=0)
    try:
        header = next(unpacker)
    except (StopIteration, ValueError, msgpack.UnpackException) as exc:
        raise CorruptDatabaseError(f"snapshot {path} has no readable header ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CorruptDatabaseError(f"{path} is not a PluresDB snapshot")
    return header, unpacker


def listing(folder: Path) -> list[SnapshotInfo]:
    """Every snapshot in `folder`, oldest first."""
    infos = []
    for path in sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []:
        with open(path, "rb") as source:
            header, _ = _unpacker(path, source)
        infos.append(_info(path, header))
    return infos


def find(folder: Path, snapshot_id: str) -> Path:
    path = folder / f"{snapshot_id}{SUFFIX}"
    if "/" in snapshot_id or not path.is_file():
        raise NotFoundError(f"no snapshot {snapshot_id!r} in {folder}; see mesh.snapshots()")
    return path


def read_ops(path: Path) -> list[Any]:
    """The ops of a snapshot file."""
    with open(path, "rb") as source:
        header, unpacker = _unpacker(path, source)
        try:
            ops = next(unpacker)
        except (StopIteration, ValueError, msgpack.UnpackException) as exc:
            raise CorruptDatabaseError(f"snapshot {path} is truncated ({exc})") from None
    if not isinstance(ops, list) or len(ops) != header["ops"]:
        raise CorruptDatabaseError(
            f"snapshot {path} does not hold the {header['ops']} ops it lists"
        )
    return ops
