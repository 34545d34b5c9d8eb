"""Storage statistics, measured from the files on disk and the segments in memory.

Live versus superseded bytes apportion each segment file's real size by the share of
its row payload (data + CRDT metadata + op) that belongs to each node's newest version.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from pluresdb_lab._values import LevelStats, StorageStats
from pluresdb_lab.engine._segments import Segment
from pluresdb_lab.engine._store import Store


def folder_bytes(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except FileNotFoundError:  # removed by a compaction while we walked
                continue
    return total


def _payload(table: pa.Table) -> pa.Array:
    return pc.add(
        pc.add(pc.binary_length(table.column("data")), pc.binary_length(table.column("meta"))),
        pc.binary_length(table.column("op")),
    )


def _live_share(segment: Segment, current: pa.Table) -> float:
    """Fraction of the segment's payload that is some node's newest version."""
    rows = segment.table.select(["id", "rev"]).append_column("bytes", _payload(segment.table))
    total = pc.sum(rows.column("bytes")).as_py() or 0
    if not total:
        return 1.0
    newest = current.select(["id", "rev"])
    live = rows.join(newest, keys=["id", "rev"], join_type="inner")
    return float((pc.sum(live.column("bytes")).as_py() or 0) / total)


def distinct_keys(visible: pa.Table) -> int:
    if not visible.num_rows:
        return 0
    con = duckdb.connect()
    try:
        con.register("current_nodes", visible.select(["data"]))
        row = con.execute(  # a field set to null is a deleted field: not a key
            "SELECT count(DISTINCT j.key) FROM current_nodes, json_each(current_nodes.data) AS j "
            "WHERE j.type != 'NULL'"
        ).fetchone()
    finally:
        con.close()
    return int(row[0]) if row else 0


def measure(store: Store, nodes: int, keys: int) -> StorageStats:
    """Storage statistics of `store` (call with the database lock held); `keys` comes
    from `distinct_keys`, which the caller runs outside the lock."""
    current = store.current()
    in_memory = store.folder is None
    used = superseded = 0
    per_level: dict[int, list[Segment]] = {}
    for segment in store.segments:
        per_level.setdefault(segment.level, []).append(segment)
        size = segment.table.nbytes if in_memory else segment.size
        share = _live_share(segment, current)
        used += round(size * share)
        superseded += size - round(size * share)
    used += store.wal_bytes
    levels = [
        LevelStats(
            level,
            len(segs),
            sum(s.table.nbytes if in_memory else s.size for s in segs),
            sum(s.rows for s in segs),
        )
        for level, segs in sorted(per_level.items())
    ]
    if store.folder is not None:
        total = folder_bytes(store.folder)
    else:  # the memtable's rows count too
        total = used + superseded + store.memtable_table().nbytes
    free = shutil.disk_usage(store.folder).free if store.folder is not None else 0
    segment_bytes = used - store.wal_bytes + superseded
    newest = used - store.wal_bytes
    info: dict[str, Any] = {
        "write_amplification": store.bytes_compacted / store.bytes_ingested
        if store.bytes_ingested
        else 0.0,
        "space_amplification": segment_bytes / newest if newest else 0.0,
    }
    return StorageStats(
        total_bytes=total,
        used_bytes=used,
        superseded_bytes=superseded,
        free_bytes=free,
        nodes=nodes,
        keys=keys,
        levels=levels,
        wal_bytes=store.wal_bytes,
        compaction_level=max((s.level for s in store.segments), default=0),
        segments=len(store.segments),
        compactions=store.compactions,
        in_memory=in_memory,
        **info,
    )
