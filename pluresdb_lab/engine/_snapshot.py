"""Read-only views of the database as it was at a past moment (`db.as_of`).

A snapshot is the newest version of each node committed at or before that moment,
taken from the versions the store keeps (history back to the retention horizon). Its
API, refused writes included, is `pluresdb_lab._api.SnapshotAPI`.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pluresdb_lab._api import SnapshotAPI
from pluresdb_lab._values import Node, to_datetime
from pluresdb_lab.engine._analytics import SqlRunner, nodes_table, typed_table
from pluresdb_lab.engine._model import node_from_row
from pluresdb_lab.engine._segments import id_index, last_per_id


class Snapshot(SnapshotAPI):
    """The database at `time`, from the stored version rows."""

    def __init__(self, rows: pa.Table, when: float, runner: SqlRunner) -> None:
        self.time: datetime = to_datetime(when)
        upto = rows.filter(pc.less_equal(rows.column("time"), when))
        upto = upto.sort_by([("id", "ascending"), ("rev", "ascending")])
        newest = upto.filter(pa.array(last_per_id(id_index(upto.column("id").combine_chunks()))))
        self._rows = newest.filter(pc.invert(newest.column("deleted")))
        self._index = id_index(self._rows.column("id").combine_chunks())
        self._sql = runner

    def __repr__(self) -> str:
        return f"<pluresdb_lab.Snapshot as of {self.time.isoformat()}, {self.count()} nodes>"

    def get(self, id: str) -> Node | None:
        key = id.encode("utf-8", "surrogatepass")
        if not len(self._index) or len(key) > self._index.dtype.itemsize:
            return None
        i = int(np.searchsorted(self._index, key))
        if i < len(self._index) and self._index[i] == key:
            return node_from_row(self._rows.slice(i, 1).to_pylist()[0])
        return None

    def _of_type(self, type_name: str | None) -> pa.Table:
        if type_name is None:
            return self._rows
        return self._rows.filter(pc.equal(self._rows.column("type"), type_name))

    def list(
        self, type: str | None = None, limit: int = 100, offset: int = 0
    ) -> builtins.list[Node]:
        return [node_from_row(r) for r in self._of_type(type).slice(offset, limit).to_pylist()]

    def count(self, type: str | None = None) -> int:
        return int(self._of_type(type).num_rows)

    def types(self) -> dict[str | None, int]:
        counts = pc.value_counts(self._rows.column("type")).to_pylist()
        return {c["values"]: c["counts"] for c in counts}

    def to_arrow(self, type: str | None = None) -> pa.Table:
        if type is None:
            return nodes_table(self._rows)
        return typed_table(self._of_type(type))

    def sql(
        self, query: str, params: builtins.list[Any] | dict[str, Any] | None = None
    ) -> pa.Table:
        return self._sql.run(query, params, self._rows)
