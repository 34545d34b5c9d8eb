"""The embedded database: the public API of DESIGN §2-5 over one Store.

Every write, local or from a peer, is an op (see `_ops`). A local write is validated,
merged into a copy of the node's state, logged to the WAL, then installed; it is
acknowledged once the WAL policy says it is durable. `apply_ops` runs peers' ops
through the same merge, in per-origin sequence order (early arrivals wait).
"""

from __future__ import annotations

import builtins
import hashlib
import json
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pluresdb_lab.engine import _ingest
from pluresdb_lab.engine._analytics import SqlRunner, nodes_table, typed_table
from pluresdb_lab.engine._backup import Backup, list_backups, write_backup
from pluresdb_lab.engine._clock import HybridClock, hlc_seconds
from pluresdb_lab.engine._compaction import CompactionReport, Compactor
from pluresdb_lab.engine._crdt import (
    NodeState,
    apply_delete,
    apply_put,
    conflict_id,
    encode_meta,
)
from pluresdb_lab.engine._identity import Identity
from pluresdb_lab.engine._index_sorted import SortedIndex
from pluresdb_lab.engine._instrument import (
    BULK_NODES,
    Instrumentation,
    NodeSize,
    largest,
    measured,
    utf8_size,
)
from pluresdb_lab.engine._model import (
    EDGE_TYPE,
    Change,
    Conflict,
    Node,
    Subscription,
    Version,
    WriteInfo,
    node_from_row,
    to_datetime,
    to_vector,
)
from pluresdb_lab.engine._ops import (
    Op,
    batch_from_bytes,
    batch_to_bytes,
    check_op,
    decode_record,
    encode_op_payload,
    encode_record,
)
from pluresdb_lab.engine._profiler import Profiler
from pluresdb_lab.engine._replication import collect_ops
from pluresdb_lab.engine._search_api import SearchMixin
from pluresdb_lab.engine._segments import KIND_BATCH, KIND_DELETE, KIND_PUT, SCHEMA, constant
from pluresdb_lab.engine._snapshot import Snapshot
from pluresdb_lab.engine._stats import StorageStats, distinct_keys, measure
from pluresdb_lab.engine._store import Progress, RecoveryReport, Row, Store
from pluresdb_lab.engine._transfer import export_rows, read_file, write_file
from pluresdb_lab.engine._validate import (
    check_fields,
    check_fsync,
    check_id,
    check_options,
    check_type,
    check_vector,
    check_vv,
    encode_json,
)
from pluresdb_lab.errors import (
    BackupError,
    DatabaseClosedError,
    InvalidDataError,
    InvalidOpError,
    NodeTooLargeError,
    NotFoundError,
    ReservedNameError,
    StorageError,
)

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("pluresdb_lab")

BULK_ROWS = 1024  # a batch of new nodes at least this big becomes its own segment
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


EDGE_FIELDS = ("from", "to", "label")
Direction = Literal["out", "in", "both"]

_KINDS = {"put": KIND_PUT, "del": KIND_DELETE, "batch": KIND_BATCH}


@dataclass(frozen=True, slots=True)
class Merged:
    """A write merged into a node but not yet installed."""

    before: NodeState | None
    state: NodeState
    row: Row
    change: Change | None


def edge_id(src: str, dst: str, label: str) -> str:
    """Edges are nodes with a deterministic id, so linking twice is idempotent."""
    digest = hashlib.blake2b(json.dumps([src, label, dst]).encode(), digest_size=12)
    return f"_e:{digest.hexdigest()}"


class Database(SearchMixin):
    """An embedded PluresDB database; open it with `pluresdb_lab.connect`."""

    reports_progress = True
    """Long calls (compact, backup, import) call `progress(done, total)` as they go and
    stop when it returns False."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        *,
        fsync: str = "interval",
        retention: float | None = None,
        max_node_bytes: int = 1 << 20,
        auto_compact: bool = True,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.fsync = check_fsync(fsync)
        self.max_node_bytes, retention = check_options(max_node_bytes, retention)
        self.instrumentation = Instrumentation()
        self.profiler = Profiler(self)
        self.closed = False
        self._lock = threading.RLock()
        self._store = Store(self.path, self.fsync, retention)
        saved, records, self.recovery = self._store.open()
        compactor: Compactor | None = None
        try:
            self.identity = Identity.load_or_create(self.path)
            self.peer_id: str = self.identity.peer_id
            if self._store.manifest.get("peer_id") != self.peer_id:
                self._store.remember("peer_id", self.peer_id)
            self._vv: dict[str, int] = {k: int(v) for k, v in saved.get("vv", {}).items()}
            self._clock = HybridClock(int(saved.get("hlc", 0)))
            self._dims: dict[str, int] = dict(saved.get("dims", {}))
            self._pending: dict[str, dict[int, Op]] = {}
            self._subscriptions: list[Subscription] = []
            self._op_listeners: list[Subscription] = []
            self._counts: Counter[str | None] | None = None
            self._adjacency: dict[str, dict[str, set[str]]] | None = None
            self._conflicted: set[str] | None = None
            self._sql = SqlRunner()
            self._visible: tuple[int, pa.Table, dict[str, pa.Table]] | None = None
            self._keys: tuple[int, int] | None = None  # (write generation, distinct keys)
            for payload in records:
                ops, applied_at = decode_record(payload)
                for op in ops:
                    self._apply(op, applied_at, log_it=False)
            compactor = Compactor(self._store, self._lock, auto=auto_compact)
            self._compactor = compactor
            self._store.on_flush = compactor.nudge
            if records:
                self.recovery = RecoveryReport(
                    len(records), self.recovery.torn_bytes, self.recovery.wal_file
                )
            self._open_indexes()
        except BaseException:
            if compactor is not None:
                compactor.close()
            self._store.release()
            raise

    # -- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = str(self.path) if self.path else ":memory:"
        return (
            f"<pluresdb_lab.Database {where} peer={self.peer_id}{' closed' if self.closed else ''}>"
        )

    def close(self) -> None:
        """Flush the WAL and release the folder. Closing twice is harmless."""
        with self._lock:
            if self.closed:
                return
            self._close_indexes()
            self.closed = True
        self._compactor.close()
        with self._lock:
            self._store.close(self._saved_state())

    def _open(self) -> None:
        if self.closed:
            raise DatabaseClosedError(
                "this database is closed; open it again with pluresdb_lab.connect()"
            )

    def _saved_state(self) -> dict[str, Any]:
        return {"vv": dict(self._vv), "hlc": self._clock.last, "dims": dict(self._dims)}

    # -- writes ------------------------------------------------------------------------

    @measured("put", about="id")
    def put(
        self,
        id: str,
        data: dict[str, Any],
        *,
        type: str | None = None,
        vector: Sequence[float] | np.ndarray[Any, Any] | None = None,
    ) -> Node:
        """Merge `data` into node `id` (None deletes a field); returns the node.

        Args:
            id: the node id.
            data: fields to set; a field given as None is deleted.
            type: the node's type; None keeps the current one.
            vector: an embedding; its length is fixed per type by the first vector.
        """
        return self._put(id, data, type_name=type, vector=vector)

    def _put(
        self,
        node_id: str,
        data: dict[str, Any],
        *,
        type_name: str | None,
        vector: Any = None,
        internal: bool = False,
    ) -> Node:
        check_id(node_id)
        check_fields(data)
        check_type(type_name, internal=internal)
        patch_text = encode_json(data, max_bytes=self.max_node_bytes, what=f"node {node_id!r}")
        with self._lock:
            self._open()
            current = self._store.state(node_id)
            space = type_name if type_name is not None else (current.type if current else None)
            vec = None
            if vector is not None:
                vec = check_vector(vector, self._dims.get(space or "")).tobytes()
            ctr, deps = (current or NodeState(node_id)).next_dot(self.peer_id)
            op: Op = {"k": "put", "i": node_id, "c": ctr, "d": deps, "p": json.loads(patch_text)}
            if type_name is not None:
                op["t"] = type_name
            if vec is not None:
                op["v"] = vec
            position, state, size = self._write_local(op, current)
            self.instrumentation.note(nbytes=len(patch_text), nodes=((node_id, state.type, size),))
            self._after_write()
        self._store.commit(position)
        return self._node(state)

    def _write_local(self, op: Op, before: NodeState | None) -> tuple[int, NodeState, int]:
        """Stamp, merge, log and install a local put/delete op (lock held); returns the
        WAL position, the node's new state and its stored JSON bytes."""
        position, [(state, size)] = self._write_together([(op, before)])
        return position, state, size

    def _write_together(
        self, writes: builtins.list[tuple[Op, NodeState | None]]
    ) -> tuple[int, builtins.list[tuple[NodeState, int]]]:
        """Stamp, merge, log and install local put/delete ops of distinct nodes as one
        WAL record (lock held), so a crash keeps all of them or none. Returns the WAL
        position, and each node's new state and stored JSON bytes."""
        seq = self._vv.get(self.peer_id, 0)
        now = time.time()
        merges: builtins.list[Merged] = []
        for op, before in writes:
            seq += 1
            op["o"], op["s"], op["h"] = self.peer_id, seq, self._clock.now()
            merged = self._merge(op, now, local=True, before=before)
            size = utf8_size(merged.row["data"])
            if size > self.max_node_bytes:
                raise NodeTooLargeError(
                    f"node {op['i']!r} would be {size:,} bytes of JSON, over the "
                    f"limit of {self.max_node_bytes:,} (max_node_bytes); split it"
                )
            merges.append(merged)
        ops = [op for op, _ in writes]
        position = self._store.log(encode_record(ops, now))
        for op, merged in zip(ops, merges, strict=True):
            self._install(merged, op)
        self._notify([m.change for m in merges if m.change])
        for op in ops:
            self._announce(op)
        return position, [(m.state, utf8_size(m.row["data"])) for m in merges]

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

    @measured("put_many")
    def put_many(
        self,
        records: Iterable[dict[str, Any]] | pd.DataFrame | pa.Table,
        *,
        type: str | None = None,
        id_field: str = "id",
        vector_field: str | None = None,
    ) -> int:
        """Write many nodes in one operation; returns how many.

        Args:
            records: a list of dicts, a pandas DataFrame or an Arrow table. Each record's
                `id_field` is the node id, `vector_field` (if given) its vector, and every
                other key a data field (a missing value deletes that field, as in `put`).
            type: the type of every node written (None keeps existing types).
            id_field: the key or column holding node ids.
            vector_field: the key or column holding vectors.
        """
        check_type(type)
        with self._lock:
            self._open()
            dims = dict(self._dims)
        batch = _ingest.to_batch(
            records,
            type_name=type,
            id_field=id_field,
            vector_field=vector_field,
            max_bytes=self.max_node_bytes,
            dims=dims,
        )
        of_type = "" if type is None else f" of type {type}"
        self.instrumentation.note(detail=f"{batch.num_rows:,} records{of_type}")
        return self._write_batch(batch)

    def _write_batch(self, batch: pa.Table) -> int:
        """Write a checked batch (BATCH_SCHEMA) as one operation (two when it both creates
        many new nodes and updates existing ones); returns the rows written."""
        with self._lock:
            self._open()
            if not batch.num_rows:
                return 0
            nbytes = batch.column("data").nbytes
            present = self._store.ids_present(batch.column("id"))
            position = 0
            fresh = batch.filter(pa.array(~present))
            if fresh.num_rows >= BULK_ROWS:
                written = self._bulk_write(fresh, batch.filter(pa.array(present)))
            else:
                batch = self._stamp_dots(batch)
                op = self._next_local_op(batch_to_bytes(batch))
                position = self._store.log(encode_record([op], time.time()))
                written = self._apply_batch_rows(op, batch, time.time(), local=True)
            self.instrumentation.note(nbytes=nbytes, nodes=written)
            self._after_write()
            total = len(present)
        self._store.commit(position)
        return total

    def _next_local_op(self, rows: bytes = b"", *, after: int = 0) -> Op:
        seq = self._vv.get(self.peer_id, 0) + 1 + after
        return {"o": self.peer_id, "s": seq, "h": self._clock.now(), "k": "batch", "r": rows}

    def _bulk_write(self, fresh: pa.Table, updates: pa.Table) -> builtins.list[NodeSize]:
        """A put_many with many new nodes: one op creates them, a second updates the
        existing ones, and both are stored in one new segment, so a crash keeps the
        whole call or none of it. Returns the largest rows written."""
        create = self._next_local_op()
        merges: builtins.list[Merged] = []
        if updates.num_rows:
            updates = self._stamp_dots(updates)
            update = self._next_local_op(batch_to_bytes(updates), after=1)
            merges = self._merge_batch_rows(update, updates, time.time(), local=True)
        n = fresh.num_rows
        self._insert_new(
            fresh,
            constant(create["o"], n, pa.string()),
            constant(create["s"], n, pa.int64()),
            constant(create["h"], n, pa.int64()),
            also=merges,
        )
        self._announce(create, fresh)
        written = _largest_rows(fresh)
        if merges:
            self._announce(update, updates)
            written = largest(written + [_size_of(m) for m in merges])
        return written

    def _stamp_dots(self, batch: pa.Table) -> pa.Table:
        """Give rows of existing nodes their ctr and deps (a local write sees all)."""
        ctrs, deps = [], []
        for node_id in batch.column("id").to_pylist():
            state = self._store.state(node_id)
            ctr, dep = (state or NodeState(node_id)).next_dot(self.peer_id)
            ctrs.append(ctr)
            deps.append(_ingest.pack_deps(dep))
        batch = batch.set_column(
            batch.schema.get_field_index("ctr"), "ctr", pa.array(ctrs, pa.int64())
        )
        return batch.set_column(
            batch.schema.get_field_index("deps"), "deps", pa.array(deps, pa.binary())
        )

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
        return [_size_of(m) for m in merges]

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

    @measured("delete", about="id")
    def delete(self, id: str) -> bool:
        """Delete node `id` and its edges; False when there was no such node."""
        check_id(id)
        with self._lock:
            self._open()
            state = self._store.state(id)
            if state is None or not state.exists:
                return False
            doomed = (
                [] if state.type == EDGE_TYPE else sorted(self._incident_edges(id, None, "both"))
            )
            deletes: builtins.list[tuple[Op, NodeState | None]] = []
            for node_id in [*doomed, id]:
                before = self._store.state(node_id)
                assert before is not None
                ctr, deps = before.next_dot(self.peer_id)
                deletes.append(({"k": "del", "i": node_id, "c": ctr, "d": deps}, before))
            position, _ = self._write_together(deletes)
            self._after_write()
        self._store.commit(position)
        return True

    # -- reads -------------------------------------------------------------------------

    def _node(self, state: NodeState) -> Node:
        return Node(
            state.id,
            state.type,
            state.visible_data(),
            to_vector(state.vector),
            to_datetime(state.time),
            state.version,
        )

    @measured("get", about="id")
    def get(self, id: str) -> Node | None:
        """The node with this id, or None."""
        check_id(id)
        with self._lock:
            self._open()
            row = self._store.latest(id)
        if row is None or row["deleted"]:
            return None
        data = row["data"]
        size = len(data) if data.isascii() else len(data.encode())  # utf8_size, inlined
        self.instrumentation.note(nodes=((id, row["type"], size),))
        return node_from_row(row)

    @measured("get_many")
    def get_many(self, ids: Iterable[str]) -> list[Node | None]:
        """Nodes for `ids`, in the same order, None where absent."""
        if isinstance(ids, (str, bytes)):
            raise InvalidDataError("get_many() takes a list of ids; use get() for one id")
        ids = [check_id(i) for i in ids]
        with self._lock:
            self._open()
            rows = [self._store.latest(i) for i in ids]
        found = [r for r in rows if r is not None and not r["deleted"]]
        self.instrumentation.note(
            nodes=largest([(r["id"], r["type"], utf8_size(r["data"])) for r in found]),
            detail=f"{len(ids):,} ids",
        )
        return [None if r is None or r["deleted"] else node_from_row(r) for r in rows]

    def _visible_rows(self) -> tuple[pa.Table, dict[str, pa.Table]]:
        """Current, undeleted version rows sorted by id, and typed tables made so far."""
        generation = self._store._generation
        if self._visible is None or self._visible[0] != generation:
            current = self._store.current()
            table = current.filter(pc.invert(current.column("deleted")))
            self._visible = (generation, table, {})
        return self._visible[1], self._visible[2]

    def _rows_of_type(self, type_name: str | None) -> pa.Table:
        check_type(type_name, internal=True)
        rows, _ = self._visible_rows()
        if type_name is None:
            return rows
        return rows.filter(pc.equal(rows.column("type"), type_name))

    @measured("count", about="type")
    def count(self, type: str | None = None) -> int:
        """How many nodes (of one type, when given) exist."""
        check_type(type, internal=True)
        with self._lock:
            self._open()
            counts = self._type_counts()
            return counts.get(type, 0) if type is not None else sum(counts.values())

    def _type_counts(self) -> Counter[str | None]:
        if self._counts is None:
            rows, _ = self._visible_rows()
            counts: Counter[str | None] = Counter()
            for entry in pc.value_counts(rows.column("type")).to_pylist():
                counts[entry["values"]] = entry["counts"]
            self._counts = counts
        return self._counts

    @measured("types")
    def types(self) -> dict[str | None, int]:
        """Node count per type (None for untyped nodes)."""
        with self._lock:
            self._open()
            return {t: c for t, c in sorted(self._type_counts().items(), key=_type_key) if c > 0}

    @measured("list", about="type")
    def list(self, type: str | None = None, limit: int = 100, offset: int = 0) -> list[Node]:
        """Nodes sorted by id, `limit` of them from `offset`."""
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in (limit, offset)):
            raise InvalidDataError(f"limit and offset are integers, got {limit!r} and {offset!r}")
        if limit < 0 or offset < 0:
            raise InvalidDataError("limit and offset cannot be negative")
        with self._lock:
            self._open()
            rows = self._rows_of_type(type).slice(offset, limit)
        return [node_from_row(r) for r in rows.to_pylist()]

    # -- edges -------------------------------------------------------------------------

    @measured("link", about=("src", "label", "dst"))
    def link(self, src: str, dst: str, label: str, data: dict[str, Any] | None = None) -> Node:
        """Create (or update) the edge `src -[label]-> dst`; both nodes must exist."""
        check_id(src)
        check_id(dst)
        if not isinstance(label, str) or not label:
            raise InvalidDataError(f"an edge label is a non-empty string, got {label!r}")
        data = dict(check_fields({} if data is None else data))
        taken = [f for f in EDGE_FIELDS if f in data]
        if taken:
            raise ReservedNameError(
                f"edge data cannot use the field names {taken}: they hold the edge's ends"
            )
        for end in (src, dst):
            if self.get(end) is None:
                raise NotFoundError(f"cannot link: there is no node {end!r}")
        fields = {"from": src, "to": dst, "label": label, **data}
        return self._put(edge_id(src, dst, label), fields, type_name=EDGE_TYPE, internal=True)

    @measured("unlink", about=("src", "label", "dst"))
    def unlink(self, src: str, dst: str, label: str) -> bool:
        """Remove the edge `src -[label]-> dst`; False when there was none."""
        check_id(src)
        check_id(dst)
        if not isinstance(label, str) or not label:
            raise InvalidDataError(f"an edge label is a non-empty string, got {label!r}")
        return self.delete(edge_id(src, dst, label))

    @measured("neighbors", about="id")
    def neighbors(
        self, id: str, label: str | None = None, direction: Direction = "out"
    ) -> builtins.list[Node]:
        """Nodes one edge away from `id`, sorted by id."""
        if direction not in ("out", "in", "both"):
            raise InvalidDataError(f"direction is 'out', 'in' or 'both', got {direction!r}")
        check_id(id)
        with self._lock:
            self._open()
            if self.get(id) is None:
                raise NotFoundError(f"there is no node {id!r}")
            others: set[str] = set()
            for edge in self._incident_edges(id, label, direction):
                data = self._store.state(edge)
                assert data is not None
                ends = (data.data["from"], data.data["to"])
                others.update(e for e in ends if e != id or ends[0] == ends[1])
            nodes = [self.get(other) for other in sorted(others)]
        return [n for n in nodes if n is not None]

    def _incident_edges(self, node_id: str, label: str | None, direction: Direction) -> set[str]:
        edges = self._edge_adjacency()
        found: set[str] = set()
        if direction in ("out", "both"):
            found |= edges["out"].get(node_id, set())
        if direction in ("in", "both"):
            found |= edges["in"].get(node_id, set())
        if label is not None:
            found = {e for e in found if self._edge_label(e) == label}
        return found

    def _edge_label(self, edge: str) -> str | None:
        state = self._store.state(edge)
        return state.data.get("label") if state else None

    def _edge_adjacency(self) -> dict[str, dict[str, set[str]]]:
        if self._adjacency is None:
            self._adjacency = {"out": {}, "in": {}}
            for row in self._rows_of_type(EDGE_TYPE).select(["id", "data"]).to_pylist():
                self._edge_index(row["id"], json.loads(row["data"]), add=True)
        return self._adjacency

    def _edge_index(self, edge: str, data: dict[str, Any], *, add: bool) -> None:
        assert self._adjacency is not None
        for side, key in (("out", "from"), ("in", "to")):
            end = data.get(key)
            if end is None:
                continue
            bucket = self._adjacency[side].setdefault(end, set())
            if add:
                bucket.add(edge)
            else:
                bucket.discard(edge)

    # -- subscriptions -----------------------------------------------------------------

    def subscribe(
        self, callback: Callable[[Change], None], *, id: str | None = None, type: str | None = None
    ) -> Subscription:
        """Call `callback(change)` after every change (local or replicated) that matches."""
        if not callable(callback):
            raise InvalidDataError("subscribe() needs a callable")
        if id is not None:
            check_id(id)
        if type is not None and not isinstance(type, str):
            raise InvalidDataError(f"the type filter is a string or None, got {type!r}")
        sub = Subscription(callback, id, type, self._unsubscribe)
        with self._lock:
            self._open()
            self._subscriptions.append(sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subscriptions:
                self._subscriptions.remove(sub)

    def on_op(self, callback: Callable[[Op], None]) -> Subscription:
        """Call `callback(op)` with every op once applied, local or from a peer, in
        the order applied (what a replication link streams). The callback runs while
        the database lock is held: it must be quick and must not call back in."""
        if not callable(callback):
            raise InvalidDataError("on_op() needs a callable")
        sub = Subscription(callback, None, None, self._drop_op_listener)  # type: ignore[arg-type]
        with self._lock:
            self._open()
            self._op_listeners.append(sub)
        return sub

    def _drop_op_listener(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._op_listeners:
                self._op_listeners.remove(sub)

    def _announce(self, op: Op, batch: pa.Table | None = None) -> None:
        if not self._op_listeners:
            return
        public = {k: v for k, v in op.items() if k != "_t"}
        if public["k"] == "batch" and not public.get("r") and batch is not None:
            public["r"] = batch_to_bytes(
                batch.select(["id", "type", "data", "vector", "ctr", "deps"])
            )
        for sub in tuple(self._op_listeners):
            try:
                sub.callback(public)  # type: ignore[arg-type]
            except Exception:
                log.exception("an op listener raised; it stays registered")

    def _notify(self, changes: builtins.list[Change]) -> None:
        for change in changes:
            for sub in tuple(self._subscriptions):
                if sub.active and sub.wants(change):
                    try:
                        sub.callback(change)
                    except Exception:
                        log.exception("a change subscriber raised; it stays subscribed")

    # -- history -----------------------------------------------------------------------

    @measured("history", about="id")
    def history(self, id: str) -> builtins.list[Version]:
        """Every visible version of node `id`, oldest first."""
        check_id(id)
        with self._lock:
            self._open()
            rows = self._store.versions(id)
        if not rows:
            raise NotFoundError(f"there is no node {id!r} and never was")
        return [
            Version(
                r["version"],
                to_datetime(r["written"]),
                r["origin"],
                r["type"],
                {k: v for k, v in json.loads(r["data"]).items() if v is not None},
                r["deleted"],
            )
            for r in rows
            if r["changed"]
        ]

    @measured("restore", about="id")
    def restore(self, id: str, version: int) -> Node:
        """Make version `version` of node `id` current again (as a new version)."""
        versions = {v.version: v for v in self.history(id)}
        if version not in versions:
            raise NotFoundError(
                f"node {id!r} has no version {version}; it has versions "
                f"{min(versions)}..{max(versions)}"
            )
        old = versions[version]
        if old.deleted:
            self.delete(id)
            node = self.get(id)
            return node if node is not None else Node(id, old.type, {}, None, None, 0)
        current = self.get(id)
        patch: dict[str, Any] = dict.fromkeys(current.data if current else (), None)
        patch.update(old.data)
        return self._put(id, patch, type_name=old.type, internal=True)

    @measured("as_of", about="when")
    def as_of(self, when: datetime | float | int) -> Snapshot:
        """A read-only view of the database as it was at `when`."""
        if isinstance(when, datetime):
            seconds = when.timestamp()
        elif isinstance(when, (int, float)) and not isinstance(when, bool):
            seconds = float(when)
        else:
            raise InvalidDataError(
                f"as_of() takes a datetime or epoch seconds, got {type(when).__name__}"
            )
        with self._lock:
            self._open()
            rows = self._store.all_rows()
        return Snapshot(rows, seconds, self._sql)

    # -- analytics ---------------------------------------------------------------------

    @measured("scan", about="type")
    def scan(self, type: str | None = None) -> pa.Table:
        """Current nodes as stored: id, type, data (JSON text), vector (float32 bytes),
        written (epoch seconds). The raw form indexes and exports read."""
        with self._lock:
            self._open()
            return self._rows_of_type(type).select(["id", "type", "data", "vector", "written"])

    @measured("to_arrow", about="type")
    def to_arrow(self, type: str | None = None) -> pa.Table:
        """Current nodes as an Arrow table: typed columns for one type, else JSON data."""
        check_type(type, internal=True)
        with self._lock:
            self._open()
            return self._typed(type)

    def _typed(self, type_name: str | None) -> pa.Table:
        """`to_arrow` without its instrumentation (lock held); typed tables are cached."""
        if type_name is None:
            return nodes_table(self._rows_of_type(None))
        _, cache = self._visible_rows()
        if type_name not in cache:
            cache[type_name] = typed_table(self._rows_of_type(type_name))
        return cache[type_name]

    def to_pandas(self, type: str | None = None) -> pd.DataFrame:
        """`to_arrow(type)` as a pandas DataFrame."""
        frame: pd.DataFrame = self.to_arrow(type).to_pandas()
        return frame

    @measured("sql", about="query")
    def sql(
        self, query: str, params: builtins.list[Any] | dict[str, Any] | None = None
    ) -> pa.Table:
        """Run SQL (DuckDB) over the current state: one view per type, and `nodes`."""
        with self._lock:
            self._open()
            rows, cache = self._visible_rows()
            result = self._sql.run(query, params, rows, cache)
            self.instrumentation.note(nbytes=result.nbytes)
            return result

    # -- replication -------------------------------------------------------------------

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
        """Apply ops from peers in any order; duplicates are ignored. Returns how many
        were applied now (ops that arrive before their predecessors wait for them)."""
        if isinstance(ops, (dict, str, bytes)) or not isinstance(ops, Iterable):
            raise InvalidOpError(f"apply_ops() takes a list of ops, got {type(ops).__name__}")
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

    # -- conflicts ---------------------------------------------------------------------

    @measured("conflicts", about="id")
    def conflicts(self, id: str | None = None) -> builtins.list[Conflict]:
        """Concurrent writes that last-writer-wins resolved, with both sides."""
        with self._lock:
            self._open()
            if id is not None:
                ids = [check_id(id)]
            else:
                if self._conflicted is None:
                    current = self._store.current()
                    mask = pc.and_(
                        current.column("conflicted"), pc.invert(current.column("deleted"))
                    )
                    self._conflicted = set(current.filter(mask).column("id").to_pylist())
                ids = sorted(self._conflicted)
            found: list[Conflict] = []
            for node_id in ids:
                state = self._store.state(node_id)
                if state is not None and state.exists:
                    found.extend(_conflicts_of(state))
        return found

    @measured("resolve_conflict", about="conflict_id")
    def resolve_conflict(self, conflict_id: str, choose: str = "winner") -> Node:
        """Settle a conflict by writing the chosen side's value ("winner" or "loser")."""
        if choose not in ("winner", "loser"):
            raise InvalidDataError(f"choose is 'winner' or 'loser', got {choose!r}")
        match = [c for c in self.conflicts() if c.id == conflict_id]
        if not match:
            raise NotFoundError(f"there is no open conflict {conflict_id!r}")
        conflict = match[0]
        side = conflict.winner if choose == "winner" else conflict.loser
        state = self._store.state(conflict.node_id)
        internal = state is not None and (state.type or "").startswith("_")
        return self._put(
            conflict.node_id, {conflict.field: side.value}, type_name=None, internal=internal
        )

    # -- storage -----------------------------------------------------------------------

    @measured("flush")
    def flush(self) -> None:
        """Write the memtable into a segment now."""
        with self._lock:
            self._open()
            self._store.flush(self._saved_state())

    @measured("compact", about="level")
    def compact(
        self, level: int | None = None, *, progress: Progress | None = None
    ) -> CompactionReport:
        """Compact now: merge `level` into the next, or (None) flush and merge every
        segment into one, dropping history older than the retention horizon.

        Args:
            level: the level to merge down, or None for a full compaction.
            progress: called as progress(done, total) in rows; return False to cancel
                (the database is left as it was).

        Returns:
            Segments, bytes and rows before and after, and the duration.
        """
        if level is not None and (
            not isinstance(level, int) or isinstance(level, bool) or level < 0
        ):
            raise InvalidDataError(
                f"level is a compaction level (0, 1, ...) or None, got {level!r}"
            )
        with self._lock:
            self._open()
            if level is None:
                self._store.flush(self._saved_state())
        return self._compactor.run(level, progress)

    @measured("backup", about="dest")
    def backup(
        self,
        dest: str | os.PathLike[str],
        *,
        incremental: bool = False,
        progress: Progress | None = None,
    ) -> Backup:
        """Back the database up into the folder `dest` while writes continue.

        Args:
            dest: a folder of backups (created if needed); each backup is a subfolder.
            incremental: copy only segments the newest complete backup in `dest` lacks.
            progress: progress(bytes_done, bytes_total); return False to cancel (the
                half-made backup is removed).
        """
        if self.path is None:
            raise BackupError(
                "an in-memory database has no files to back up; export it, or open a folder"
            )
        target = Path(dest).resolve()
        if target == self.path.resolve() or self.path.resolve() in target.parents:
            raise BackupError(f"back up to a folder outside the database folder {self.path}")
        with self._lock:
            self._open()
            self._store.flush(self._saved_state())
            manifest = json.loads(json.dumps(self._store.manifest))
            names = [s["file"] for s in manifest["segments"]]
            self._store.pin(names)
            nodes = sum(self._type_counts().values())
        try:
            return write_backup(
                target,
                manifest=manifest,
                segment_folder=self.path,
                nodes=nodes,
                incremental=incremental,
                progress=progress,
            )
        finally:
            with self._lock:
                self._store.unpin(names)

    @measured("backups", about="dest")
    def backups(self, dest: str | os.PathLike[str]) -> builtins.list[Backup]:
        """The backups in `dest`, oldest first (interrupted ones marked incomplete)."""
        return list_backups(dest)

    @measured("import_file", about="path")
    def import_file(
        self,
        path: str | os.PathLike[str],
        format: str | None = None,
        *,
        type: str | None = None,
        id_field: str | None = None,
        mapping: dict[str, str | None] | None = None,
        progress: Progress | None = None,
    ) -> int:
        """Import a CSV, JSON (array), NDJSON, Parquet or Arrow IPC file, all or nothing.

        Args:
            path: the file; its extension tells the format unless `format` is given.
            type: the type of every imported node (else a `_type` column, if present).
            id_field: the column holding ids; None generates ids.
            mapping: {source column: field name, or None to skip the column}.
            progress: progress(done, total) while reading; return False to cancel.

        Returns:
            The number of nodes written. A bad row raises an error naming the file, the
            row and the reason, and nothing is written.
        """
        check_type(type)
        with self._lock:
            self._open()
            dims = dict(self._dims)
        batch = read_file(
            path,
            format=format,
            type_name=type,
            id_field=id_field,
            mapping=mapping,
            max_bytes=self.max_node_bytes,
            dims=dims,
            progress=progress,
        )
        return self._write_batch(batch) if batch.num_rows else 0

    @measured("export", about="path")
    def export(
        self,
        path: str | os.PathLike[str],
        format: str | None = None,
        *,
        type: str | None = None,
        query: str | None = None,
    ) -> int:
        """Export nodes to a file (format from the extension unless given); returns rows.

        Args:
            type: export this type's nodes (`id` and typed field columns); None exports
                every node with a `_type` column, which `import_file` reads back.
            query: a SQL query (as for `sql`) whose result is exported instead.
        """
        if query is not None:
            table = self.sql(query)
        else:
            with self._lock:
                self._open()
                rows = self._rows_of_type(type)
            table = export_rows(rows, type)
        return write_file(table, path, format)

    @measured("storage_stats")
    def storage_stats(self) -> StorageStats:
        """Sizes, levels and amplification of the storage, measured now."""
        with self._lock:
            self._open()
            rows, _ = self._visible_rows()
            generation = self._store._generation
        # Counting keys parses every node's JSON: done outside the lock (the rows are an
        # immutable snapshot) and kept until the next write, so writers never wait on it.
        keys = self._keys
        if keys is None or keys[0] != generation:
            keys = self._keys = (generation, distinct_keys(rows))
        with self._lock:
            self._open()
            return measure(self._store, sum(self._type_counts().values()), keys[1])

    # -- the search mixin's public methods pass the instrumentation point too ----------

    create_index = measured("create_index", about=("kind", "type", "fields"))(
        SearchMixin.create_index
    )
    drop_index = measured("drop_index", about="name")(SearchMixin.drop_index)
    indexes = measured("indexes")(SearchMixin.indexes)
    # not the query itself: events are kept, and a vector would keep kilobytes alive each
    vector_search = measured("vector_search", about=("k", "filter", "index"))(
        SearchMixin.vector_search
    )
    search = measured("search", about=("text", "type", "filter"))(SearchMixin.search)
    query = measured("query", about="spec")(SearchMixin.query)
    explain = measured("explain", about="spec")(SearchMixin.explain)
    traverse = measured("traverse", about="start")(SearchMixin.traverse)
    shortest_path = measured("shortest_path", about=("a", "b"))(SearchMixin.shortest_path)
    degree = measured("degree", about="id")(SearchMixin.degree)
    to_networkx = measured("to_networkx")(SearchMixin.to_networkx)

    # -- what the profiler reads, outside the instrumentation (not user operations) ----

    def _level_zero(self) -> tuple[int, int]:
        """How many segments compaction level 0 holds, and their bytes."""
        with self._lock:
            self._open()
            found = [s for s in self._store.segments if s.level == 0]
            in_memory = self.path is None
            return len(found), sum(s.table.nbytes if in_memory else s.size for s in found)

    def _field_kind(self, type_name: str, field: str) -> pa.DataType | None:
        """The Arrow type of a field in a type's typed table; None when no node has it
        (or the name, read from a slow call's spec, is no type name at all)."""
        with self._lock:
            self._open()
            try:
                schema = self._typed(type_name).schema
            except InvalidDataError:
                return None
        return schema.field(field).type if field in schema.names else None

    def _range_fields(self, type_name: str) -> set[str]:
        """Fields of a type that a numeric or composite index serves ranges on."""
        with self._lock:
            return {
                index.fields[0]
                for index in self._registry.indexes.values()
                if isinstance(index, SortedIndex) and index.type == type_name and index.fields
            }


def _size_of(merged: Merged) -> NodeSize:
    return merged.row["id"], merged.state.type, utf8_size(merged.row["data"])


def _largest_rows(rows: pa.Table) -> list[NodeSize]:
    """(id, type, bytes) of the BULK_NODES rows holding the most JSON, picked by Arrow."""
    sizes = pa.table(
        {
            "id": rows.column("id"),
            "type": rows.column("type"),
            "bytes": pc.binary_length(rows.column("data")),
        }
    )
    if sizes.num_rows > BULK_NODES:
        sizes = sizes.take(pc.select_k_unstable(sizes, BULK_NODES, [("bytes", "descending")]))
    return list(
        zip(
            sizes.column("id").to_pylist(),
            sizes.column("type").to_pylist(),
            sizes.column("bytes").to_pylist(),
            strict=True,
        )
    )


def _type_key(item: tuple[str | None, int]) -> tuple[bool, str]:
    return (item[0] is None, item[0] or "")


def _conflicts_of(state: NodeState) -> list[Conflict]:
    found = []
    for name, losers in sorted(state.siblings.items()):
        winner = state.writes[name]
        won = WriteInfo(state.data.get(name), winner[1], winner[0])
        for loser in losers:
            found.append(
                Conflict(
                    conflict_id(state.id, name, winner, loser),
                    state.id,
                    name,
                    won,
                    WriteInfo(loser[3], loser[1], loser[0]),
                )
            )
    return found
