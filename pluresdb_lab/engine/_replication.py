"""Rebuilding replication ops from stored version rows, for `ops_since`.

Each version row keeps the op that made it (its payload, or nothing for nodes created
by a bulk write, whose row *is* the op's row); ops are regrouped by (origin, seq).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pluresdb_lab.engine import _ingest
from pluresdb_lab.engine._ops import Op, batch_to_bytes, decode_op_payload
from pluresdb_lab.engine._segments import constant


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
