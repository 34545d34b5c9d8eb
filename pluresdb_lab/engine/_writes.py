"""Local writes: put, put_many and delete, each validated, stamped with this peer's
next sequence numbers, logged to the WAL as one record and then applied (`_apply`).

A write is acknowledged once the WAL policy says it is durable (`Store.commit`). A
put_many creating many new nodes stores them, and its updates of existing nodes, as
one new segment (`_bulk_write`), so a crash keeps the whole call or none of it.
"""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pluresdb_lab._values import EDGE_TYPE, Node
from pluresdb_lab.engine import _ingest
from pluresdb_lab.engine._apply import BULK_ROWS, Core, Merged, size_of
from pluresdb_lab.engine._crdt import NodeState
from pluresdb_lab.engine._instrument import BULK_NODES, NodeSize, largest, measured, utf8_size
from pluresdb_lab.engine._ops import Op, batch_to_bytes, encode_record
from pluresdb_lab.engine._segments import constant
from pluresdb_lab.engine._validate import (
    check_fields,
    check_id,
    check_type,
    check_vector,
    encode_json,
)
from pluresdb_lab.errors import NodeTooLargeError

if TYPE_CHECKING:
    import pandas as pd


class WritesMixin(Core):
    """put, put_many and delete."""

    @measured("put", about="id")
    def put(
        self,
        id: str,
        data: dict[str, Any],
        *,
        type: str | None = None,
        vector: Sequence[float] | np.ndarray[Any, Any] | None = None,
    ) -> Node:
        """Merge `data` into node `id` (None deletes a field); returns the node."""
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

    @measured("put_many")
    def put_many(
        self,
        records: Iterable[dict[str, Any]] | pd.DataFrame | pa.Table,
        *,
        type: str | None = None,
        id_field: str = "id",
        vector_field: str | None = None,
    ) -> int:
        """Write many nodes in one operation (one WAL record or segment); returns how many."""
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
            written = largest(written + [size_of(m) for m in merges])
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
