"""Replication: the version vector, `ops_since` (ops rebuilt from stored version rows)
and `apply_ops` (peers' ops applied in per-origin sequence order; early arrivals
wait), with runs of ops that only create new nodes stored as one segment.

Each version row keeps the op that made it (its payload, or nothing for nodes created
by a bulk write, whose row *is* the op's row); `collect_ops` regroups them by
(origin, seq).
"""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pluresdb_lab._checks import check_op_list
from pluresdb_lab.engine import _ingest
from pluresdb_lab.engine._apply import Core
from pluresdb_lab.engine._instrument import measured
from pluresdb_lab.engine._ops import (
    Op,
    batch_from_bytes,
    batch_to_bytes,
    check_op,
    decode_op_payload,
)
from pluresdb_lab.engine._segments import constant
from pluresdb_lab.engine._validate import check_vv

FRESH_RUN_ROWS = 256  # ops from peers that create this many new nodes: one segment
_NEW_ROWS = pa.schema(
    [("id", pa.string()), ("type", pa.string()), ("data", pa.string()), ("vector", pa.binary())]
)


class _CreationRun:
    """Consecutive ops from peers that only create nodes: gathered to store at once."""

    def __init__(self) -> None:
        self.ops: list[Op] = []
        self.ids: set[str] = set()
        self.rows = 0

    def add(self, op: Op) -> None:
        self.ops.append(op)
        if op["k"] == "put":
            self.ids.add(op["i"])
            self.rows += 1
        else:
            self.ids.update(op["_t"].column("id").to_pylist())
            self.rows += op["_t"].num_rows

    def clear(self) -> None:
        self.ops.clear()
        self.ids.clear()
        self.rows = 0

    def table(self) -> tuple[pa.Table, pa.Array, pa.Array, pa.Array]:
        """The rows, and each row's origin, seq and clock."""
        parts: list[pa.Table] = []
        puts: list[Op] = []
        sizes: list[int] = []

        def close_puts() -> None:
            if puts:
                parts.append(
                    pa.table(
                        {
                            "id": [p["i"] for p in puts],
                            "type": [p.get("t") for p in puts],
                            "data": [json.dumps(p["p"], separators=(",", ":")) for p in puts],
                            "vector": [p.get("v") for p in puts],
                        },
                        schema=_NEW_ROWS,
                    )
                )
                puts.clear()

        for op in self.ops:
            if op["k"] == "put":
                puts.append(op)
                sizes.append(1)
            else:
                close_puts()
                parts.append(op["_t"].select(_NEW_ROWS.names).cast(_NEW_ROWS))
                sizes.append(op["_t"].num_rows)
        close_puts()
        repeat = pa.array(np.repeat(np.arange(len(self.ops)), sizes))
        origins = pa.array([op["o"] for op in self.ops], pa.string()).take(repeat)
        seqs = pa.array([op["s"] for op in self.ops], pa.int64()).take(repeat)
        hlcs = pa.array([op["h"] for op in self.ops], pa.int64()).take(repeat)
        return pa.concat_tables(parts), origins, seqs, hlcs


class ReplicationMixin(Core):
    """version_vector, ops_since and apply_ops."""

    @measured("version_vector")
    def version_vector(self) -> dict[str, int]:
        """peer id -> highest sequence number applied from it."""
        with self._lock:
            self._open()
            return {k: v for k, v in self._vv.items() if v > 0}

    @measured("ops_since")
    def ops_since(self, version_vector: dict[str, int] | None = None) -> builtins.list[Op]:
        """Every op this database holds that `version_vector` does not cover."""
        seen = check_vv(version_vector)
        with self._lock:
            self._open()
            sources = list(self._store.sources())
        return collect_ops(sources, seen)

    @measured("apply_ops")
    def apply_ops(self, ops: Iterable[Op]) -> int:
        """Queue peers' ops by origin and sequence, then apply every run that is complete."""
        check_op_list(ops)
        checked = [check_op(op) for op in ops]
        batches = {id(op): batch_from_bytes(op["r"]) for op in checked if op["k"] == "batch"}
        applied = 0
        with self._lock:
            self._open()
            for op in checked:
                origin, seq = op["o"], op["s"]
                if seq > self._vv.get(origin, 0):
                    waiting = self._pending.setdefault(origin, {})
                    if seq not in waiting:
                        waiting[seq] = dict(op)
                        if op["k"] == "batch":
                            waiting[seq]["_t"] = batches[id(op)]
            ready: list[Op] = []
            for origin in list(self._pending):
                waiting = self._pending[origin]
                nxt = self._vv.get(origin, 0) + 1
                while nxt in waiting:
                    ready.append(waiting.pop(nxt))
                    nxt += 1
                if not waiting:
                    del self._pending[origin]
            self._apply_ready(ready)
            applied = len(ready)
            self._after_write()
        self._store.commit_all()
        return applied

    def _apply_ready(self, ready: builtins.list[Op]) -> None:
        """Apply peers' ops whose predecessors are all here, in order. Runs of ops that
        only create nodes unknown here (a catch-up, typically) are stored together as
        one segment; everything else goes through the merge one op at a time."""
        run = _CreationRun()
        for op in ready:
            if self._creates_only(op, run):
                run.add(op)
                continue
            self._settle(run)
            self._clock.observe(op["h"])
            self._apply(op, time.time(), log_it=True, remote=True)
        self._settle(run)

    def _creates_only(self, op: Op, run: _CreationRun) -> bool:
        """Whether the op only creates nodes unknown here, each its first write with
        nothing seen before (so the merge would just copy it)."""
        if op["k"] == "put":
            return (
                op["c"] == 1
                and not op["d"]
                and op["i"] not in run.ids
                and not self._store.has(op["i"])
            )
        batch = op.get("_t")
        if op["k"] != "batch" or batch is None:
            return False
        ids = batch.column("id")
        return bool(
            pc.all(pc.equal(batch.column("ctr"), 1)).as_py()
            and pc.all(pc.equal(pc.binary_length(batch.column("deps")), 0)).as_py()
            and not self._store.ids_present(ids).any()
            and run.ids.isdisjoint(ids.to_pylist())
        )

    def _settle(self, run: _CreationRun) -> None:
        if run.rows >= FRESH_RUN_ROWS:
            rows, origins, seqs, hlcs = run.table()
            self._insert_new(rows, origins, seqs, hlcs)
            for op in run.ops:
                self._announce(op, op.get("_t"))
        else:
            for op in run.ops:
                self._clock.observe(op["h"])
                self._apply(op, time.time(), log_it=True, remote=True)
        run.clear()


def collect_ops(sources: list[pa.Table], seen: dict[str, int]) -> list[Op]:
    """Every op stored in `sources` (tables of version rows) that `seen` lacks, sorted
    by origin and sequence. Rows of one batch op are gathered from every source."""
    ops: dict[tuple[str, int], Op] = {}
    batch_rows: dict[tuple[str, int], list[dict[str, Any]]] = {}
    bulk_rows: dict[tuple[str, int], list[pa.Table]] = {}
    for table in sources:
        _gather(table, seen, ops, batch_rows, bulk_rows)
    for key, op in ops.items():
        if op["k"] == "batch":
            tables = bulk_rows.get(key, [])
            if key in batch_rows:
                tables.append(_ingest.rows_to_batch(batch_rows[key]))
            op["r"] = batch_to_bytes(pa.concat_tables(tables).sort_by("id"))
    return sorted(ops.values(), key=lambda op: (op["o"], op["s"]))


def _gather(
    table: pa.Table,
    seen: dict[str, int],
    ops: dict[tuple[str, int], Op],
    batch_rows: dict[tuple[str, int], list[dict[str, Any]]],
    bulk_rows: dict[tuple[str, int], list[pa.Table]],
) -> None:
    if not table.num_rows:
        return
    origins = pa.array(list(seen), pa.string())
    floors = np.array([*seen.values(), 0], dtype=np.int64)
    found = pc.fill_null(pc.index_in(table.column("origin"), value_set=origins), len(seen))
    where = found.to_numpy(zero_copy_only=False).astype(np.int64)
    wanted = table.filter(pa.array(table.column("seq").to_numpy() > floors[where]))
    if not wanted.num_rows:
        return
    fresh = wanted.filter(pc.equal(pc.binary_length(wanted.column("op")), 0))
    for (origin, seq), (rows, hlc) in _group_fresh(fresh):
        ops.setdefault((origin, seq), {"o": origin, "s": seq, "h": hlc, "k": "batch"})
        bulk_rows.setdefault((origin, seq), []).append(rows)
    rest = wanted.filter(pc.greater(pc.binary_length(wanted.column("op")), 0))
    for row in rest.select(["id", "origin", "seq", "hlc", "op"]).to_pylist():
        payload = decode_op_payload(row["op"])
        key = (row["origin"], row["seq"])
        if payload["k"] == "batch":
            ops.setdefault(key, {"o": key[0], "s": key[1], "h": row["hlc"], "k": "batch"})
            batch_rows.setdefault(key, []).append(payload | {"i": row["id"]})
        else:
            ops[key] = payload | {"o": key[0], "s": key[1], "h": row["hlc"]}


def _group_fresh(fresh: pa.Table) -> list[tuple[tuple[str, int], tuple[pa.Table, int]]]:
    """Rows of bulk-written nodes grouped back into their batch ops."""
    if not fresh.num_rows:
        return []
    keys = fresh.group_by(["origin", "seq"]).aggregate([("hlc", "max")]).to_pylist()
    groups = []
    for key in keys:
        mask = pc.and_(
            pc.equal(fresh.column("origin"), key["origin"]),
            pc.equal(fresh.column("seq"), key["seq"]),
        )
        part = fresh.filter(mask)
        n = part.num_rows
        batch = pa.table(
            {
                "id": part.column("id"),
                "type": part.column("type"),
                "data": part.column("data"),
                "vector": part.column("vector"),
                "ctr": constant(1, n, pa.int64()),
                "deps": constant(b"", n, pa.binary()),
            }
        )
        groups.append(((key["origin"], key["seq"]), (batch, key["hlc_max"])))
    return groups
