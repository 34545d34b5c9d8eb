"""Reads and analytics: get, get_many, count, types, list, scan, to_arrow and sql,
over the current rows and the derived state cached from them (visible rows, type
counts, typed tables), which the next write's generation invalidates.
"""

from __future__ import annotations

import builtins
from collections import Counter
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pluresdb_lab._checks import check_id_list
from pluresdb_lab._values import Node, to_datetime
from pluresdb_lab.engine._analytics import nodes_table, typed_table
from pluresdb_lab.engine._apply import Core
from pluresdb_lab.engine._crdt import NodeState
from pluresdb_lab.engine._instrument import largest, measured, utf8_size
from pluresdb_lab.engine._model import node_from_row, to_vector
from pluresdb_lab.engine._validate import check_id, check_type
from pluresdb_lab.errors import InvalidDataError


class ReadsMixin(Core):
    """Reading nodes, counting them, and the Arrow and SQL views of them."""

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
        check_id_list(ids)
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


def _type_key(item: tuple[str | None, int]) -> tuple[bool, str]:
    return (item[0] is None, item[0] or "")
