"""Op application: how an op, local, replayed from the WAL or from a peer, becomes
stored state (merge, install, derived-state tracking, new-node segments, batch rows).

`Core` is the base class of each piece of `Database` (`_writes`, `_reads`, `_edges`,
`_subscriptions`, `_history`, `_replication`, `_storage_ops`): it types the state they
share (set by `Database.__init__`) and holds the op application every write and
replication path runs through. A base class, not a `_Host` Protocol per piece as
`_search_api` has: the pieces share a dozen attributes and call the op application
constantly, so they subclass the one place that types them and read `self._store`,
`self._merge(...)` directly. The methods one piece calls on another are declared here
for the type checker only (under TYPE_CHECKING, so nothing shadows the real ones).
"""

from __future__ import annotations

import builtins
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from pluresdb_lab._values import EDGE_TYPE, Change, Node, Subscription
from pluresdb_lab.engine import _ingest
from pluresdb_lab.engine._analytics import SqlRunner
from pluresdb_lab.engine._clock import HybridClock, hlc_seconds
from pluresdb_lab.engine._compaction import Compactor
from pluresdb_lab.engine._crdt import NodeState, apply_delete, apply_put, encode_meta
from pluresdb_lab.engine._instrument import Instrumentation, NodeSize, utf8_size
from pluresdb_lab.engine._model import node_from_row
from pluresdb_lab.engine._ops import Op, batch_from_bytes, encode_op_payload, encode_record
from pluresdb_lab.engine._segments import KIND_BATCH, KIND_DELETE, KIND_PUT, SCHEMA, constant
from pluresdb_lab.engine._store import Row, Store
from pluresdb_lab.errors import StorageError

if TYPE_CHECKING:
    from pluresdb_lab._values import Direction

log = logging.getLogger("pluresdb_lab")

BULK_ROWS = 1024  # a batch of new nodes at least this big becomes its own segment

_KINDS = {"put": KIND_PUT, "del": KIND_DELETE, "batch": KIND_BATCH}


@dataclass(frozen=True, slots=True)
class Merged:
    """A write merged into a node but not yet installed."""

    before: NodeState | None
    state: NodeState
    row: Row
    change: Change | None


class Core:
    """The state the pieces of Database share, and how ops are applied to it."""

    path: Path | None
    max_node_bytes: int
    instrumentation: Instrumentation
    peer_id: str
    closed: bool
    _lock: threading.RLock
    _store: Store
    _compactor: Compactor
    _vv: dict[str, int]  # origin -> highest seq applied
    _clock: HybridClock
    _dims: dict[str, int]  # type ("" for untyped) -> vector dimension
    _pending: dict[str, dict[int, Op]]  # peers' ops waiting for their predecessors
    _subscriptions: builtins.list[Subscription]
    _op_listeners: builtins.list[Subscription]
    _sql: SqlRunner
    # derived state, built on first use and kept current by `_track` (None: not built)
    _counts: Counter[str | None] | None
    _adjacency: dict[str, dict[str, set[str]]] | None
    _conflicted: set[str] | None
    _visible: tuple[int, pa.Table, dict[str, pa.Table]] | None
    _keys: tuple[int, int] | None  # (write generation, distinct keys)

    if TYPE_CHECKING:
        # Database (lifecycle)
        def _open(self) -> None: ...
        def _saved_state(self) -> dict[str, Any]: ...

        # _writes
        def _put(
            self,
            node_id: str,
            data: dict[str, Any],
            *,
            type_name: str | None,
            vector: Any = None,
            internal: bool = False,
        ) -> Node: ...
        def _write_batch(self, batch: pa.Table) -> int: ...
        def delete(self, id: str) -> bool: ...

        # _reads
        def _node(self, state: NodeState) -> Node: ...
        def get(self, id: str) -> Node | None: ...
        def _visible_rows(self) -> tuple[pa.Table, dict[str, pa.Table]]: ...
        def _rows_of_type(self, type_name: str | None) -> pa.Table: ...
        def _type_counts(self) -> Counter[str | None]: ...
        def sql(
            self, query: str, params: builtins.list[Any] | dict[str, Any] | None = None
        ) -> pa.Table: ...

        # _edges
        def _incident_edges(
            self, node_id: str, label: str | None, direction: Direction
        ) -> set[str]: ...
        def _edge_index(self, edge: str, data: dict[str, Any], *, add: bool) -> None: ...

        # _subscriptions
        def _announce(self, op: Op, batch: pa.Table | None = None) -> None: ...
        def _notify(self, changes: builtins.list[Change]) -> None: ...

    def _merge(
        self,
        op: Op,
        now: float,
        *,
        local: bool,
        row_op: Op | None = None,
        before: NodeState | None = None,
    ) -> Merged:
        """The node's next state after `op`, its version row, and the change readers see."""
        node_id = op["i"]
        if before is None:
            before = self._store.state(node_id)
        state = before.clone() if before else NodeState(node_id)
        if op["k"] == "del":
            apply_delete(state, origin=op["o"], hlc=op["h"], ctr=op["c"], deps=op["d"])
        else:
            apply_put(
                state,
                origin=op["o"],
                hlc=op["h"],
                ctr=op["c"],
                deps=op["d"],
                patch=op["p"],
                type_=(op["t"],) if "t" in op else None,
                vector=(op["v"],) if "v" in op else None,
            )
        seen_before = before.visible() if before else (False, None, {}, None)
        changed = state.visible() != seen_before
        state.rev += 1
        if changed:
            state.version += 1
            state.time = max(state.time, hlc_seconds(op["h"]))
        row = {
            "id": node_id,
            "rev": state.rev,
            "version": state.version,
            "time": now,
            "written": state.time,
            "origin": op["o"],
            "seq": op["s"],
            "hlc": op["h"],
            "ctr": op["c"],
            "kind": _KINDS[op["k"]],
            "changed": changed,
            "type": state.type,
            "data": json.dumps(state.data, separators=(",", ":")),
            "vector": state.vector,
            "deleted": not state.exists,
            "conflicted": bool(state.siblings),
            "meta": encode_meta(state),
            "op": encode_op_payload(row_op or op),
        }
        change = None
        if changed and self._subscriptions:  # only built when someone listens
            node = self._node(state) if state.exists else None
            kind = "put" if state.exists else "delete"
            change = Change(node_id, state.type, kind, node, op["o"], local)
        return Merged(before, state, row, change)

    def _install(self, merged: Merged, op: Op) -> None:
        before, state = merged.before, merged.state
        self._store.add_version(state, merged.row)
        self._vv[op["o"]] = max(self._vv.get(op["o"], 0), op["s"])
        if state.vector is not None:
            self._dims.setdefault(state.type or "", len(state.vector) // 4)
        self._track(before, state)

    def _track(self, before: NodeState | None, after: NodeState) -> None:
        """Keep type counts, edge adjacency and the conflicted set current."""
        was = before is not None and before.exists
        if self._counts is not None:
            if was:
                assert before is not None
                self._counts[before.type] -= 1
            if after.exists:
                self._counts[after.type] += 1
        if self._adjacency is not None:
            if was and before is not None and before.type == EDGE_TYPE:
                self._edge_index(before.id, before.data, add=False)
            if after.exists and after.type == EDGE_TYPE:
                self._edge_index(after.id, after.data, add=True)
        if self._conflicted is not None:
            if after.siblings:
                self._conflicted.add(after.id)
            else:
                self._conflicted.discard(after.id)

    def _after_write(self) -> None:
        """Flush a full memtable. The write that filled it is already in the WAL, so a
        flush that fails (a full disk) must not fail that write: the rows stay in the
        memtable and the WAL, and the next write or close tries again."""
        if not self._store.needs_flush():
            return
        try:
            self._store.flush(self._saved_state())
        except StorageError as exc:
            log.warning("flushing the memtable failed; it stays in the WAL: %s", exc)

    def _apply(self, op: Op, now: float, *, log_it: bool, remote: bool = False) -> None:
        """Apply one op (from a peer, or replayed from the WAL)."""
        if op["s"] <= self._vv.get(op["o"], 0):
            return
        if op["k"] == "batch":
            batch = op.pop("_t", None)
            if batch is None:
                batch = batch_from_bytes(op["r"])
            clean = {k: v for k, v in op.items() if k != "_t"}
            deps_empty = pc.all(pc.equal(pc.binary_length(batch.column("deps")), 0)).as_py()
            if (
                remote
                and batch.num_rows >= BULK_ROWS
                and deps_empty is not False
                and not self._store.ids_present(batch.column("id")).any()
            ):
                self._bulk_insert(batch, clean)
                return
            if log_it:
                self._store.log(encode_record([clean], now))
            self._apply_batch_rows(clean, batch, now, local=not remote)
            return
        merged = self._merge(op, now, local=not remote)
        if log_it:
            self._store.log(encode_record([op], now))
        self._install(merged, op)
        if merged.change:
            self._notify([merged.change])
        self._announce(op)

    def _bulk_insert(self, fresh: pa.Table, op: Op) -> None:
        """New nodes of one batch op, all at once, as one segment."""
        n = fresh.num_rows
        self._insert_new(
            fresh,
            constant(op["o"], n, pa.string()),
            constant(op["s"], n, pa.int64()),
            constant(op["h"], n, pa.int64()),
        )
        self._announce(op, fresh)

    def _insert_new(
        self,
        fresh: pa.Table,
        origins: pa.Array,
        seqs: pa.Array,
        hlcs: pa.Array,
        *,
        also: Sequence[Merged] = (),
    ) -> None:
        """Rows that create nodes unknown here, written by ops that saw nothing before
        them (ctr 1, no deps), stored as one L0 segment without Python work per row,
        together with the merged rows `also` (updates of the same call). Each row keeps
        its op's origin, seq and clock, so `ops_since` can rebuild it. Nothing in memory
        changes until the segment is stored."""
        n = fresh.num_rows
        now = time.time()
        written = pc.divide(pc.cast(pc.shift_right(hlcs, 16), pa.float64()), pa.scalar(1000.0))
        table = pa.table(
            {
                "id": fresh.column("id"),
                "rev": constant(1, n, pa.int64()),
                "version": constant(1, n, pa.int64()),
                "time": constant(now, n, pa.float64()),
                "written": written,
                "origin": origins,
                "seq": seqs,
                "hlc": hlcs,
                "ctr": constant(1, n, pa.int64()),
                "kind": constant(KIND_BATCH, n, pa.int8()),
                "changed": constant(True, n, pa.bool_()),
                "type": fresh.column("type"),
                "data": fresh.column("data"),
                "vector": fresh.column("vector"),
                "deleted": constant(False, n, pa.bool_()),
                "conflicted": constant(False, n, pa.bool_()),
                "meta": constant(b"", n, pa.binary()),
                "op": constant(b"", n, pa.binary()),
            },
            schema=SCHEMA,
        )
        if also:
            table = pa.concat_tables([table, pa.Table.from_pylist([m.row for m in also], SCHEMA)])
        tops = table.group_by("origin").aggregate([("seq", "max"), ("hlc", "max")])
        vv = dict(self._vv)
        for top in tops.to_pylist():
            vv[top["origin"]] = max(vv.get(top["origin"], 0), top["seq_max"])
            self._clock.observe(top["hlc_max"])
        dims = self._dims_of(table)
        self._store.add_segment(table, {"vv": vv, "hlc": self._clock.last, "dims": dims})
        self._store.bytes_ingested += fresh.column("data").nbytes
        self._vv, self._dims = vv, dims
        for merged in also:
            self._track(merged.before, merged.state)
        if self._counts is not None:
            for entry in pc.value_counts(fresh.column("type")).to_pylist():
                self._counts[entry["values"]] += entry["counts"]
        edges = table.filter(pc.equal(table.column("type"), EDGE_TYPE))
        if self._adjacency is not None and edges.num_rows:
            for row in edges.select(["id", "data"]).to_pylist():
                self._edge_index(row["id"], json.loads(row["data"]), add=True)
        if self._subscriptions:
            self._notify(
                [
                    Change(
                        r["id"],
                        r["type"],
                        "put",
                        node_from_row(r),
                        r["origin"],
                        r["origin"] == self.peer_id,
                    )
                    for r in table.slice(0, fresh.num_rows).to_pylist()
                ]
                + [m.change for m in also if m.change]
            )

    def _dims_of(self, table: pa.Table) -> dict[str, int]:
        """The vector dimensions once `table` is stored: the first vector stored for a
        type fixes that type's dimension."""
        dims = dict(self._dims)
        with_vectors = table.filter(pc.is_valid(table.column("vector")))
        if not with_vectors.num_rows:
            return dims
        firsts = with_vectors.group_by("type", use_threads=False).aggregate([("vector", "first")])
        for row in firsts.to_pylist():
            dims.setdefault(row["type"] or "", len(row["vector_first"]) // 4)
        return dims

    def _apply_batch_rows(
        self, op: Op, batch: pa.Table, now: float, *, local: bool
    ) -> builtins.list[NodeSize]:
        """Merge and install a batch op's rows; returns each node's id, type and size."""
        merges = self._merge_batch_rows(op, batch, now, local=local)
        for merged in merges:
            self._install(merged, op)
        self._vv[op["o"]] = max(self._vv.get(op["o"], 0), op["s"])
        self._notify([m.change for m in merges if m.change])
        self._announce(op, batch)
        return [size_of(m) for m in merges]

    def _merge_batch_rows(
        self, op: Op, batch: pa.Table, now: float, *, local: bool
    ) -> builtins.list[Merged]:
        """A batch op's rows merged in order (a row sees the rows before it of the same
        node), without installing anything."""
        merges: builtins.list[Merged] = []
        latest: dict[str, NodeState] = {}
        for row in batch.to_pylist():
            sub: Op = {
                "o": op["o"],
                "s": op["s"],
                "h": op["h"],
                "k": "put",
                "i": row["id"],
                "c": row["ctr"],
                "d": _ingest.unpack_deps(row["deps"]),
                "p": json.loads(row["data"]),
            }
            if row["type"] is not None:
                sub["t"] = row["type"]
            if row["vector"] is not None:
                sub["v"] = row["vector"]
            payload = {k: v for k, v in sub.items() if k not in ("o", "s", "h")} | {"k": "batch"}
            merged = self._merge(
                sub, now, local=local, row_op=payload, before=latest.get(row["id"])
            )
            latest[row["id"]] = merged.state
            merges.append(merged)
        return merges


def size_of(merged: Merged) -> NodeSize:
    """A merged write's id, type and stored JSON bytes."""
    return merged.row["id"], merged.state.type, utf8_size(merged.row["data"])
