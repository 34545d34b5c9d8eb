"""Analytics over the current state: typed Arrow tables per type, and SQL by DuckDB.

Node data is stored as JSON text; a type's table is made by Arrow's JSON reader over
that column (vectorised, types inferred), so SQL sees real typed columns.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from pluresdb_lab.errors import InvalidDataError

RESERVED_COLUMNS = ("id", "type", "time")


def _time_column(rows: pa.Table) -> pa.Array:
    micros = pc.cast(pc.round(pc.multiply(rows.column("written"), 1_000_000)), pa.int64())
    return pc.cast(micros, pa.timestamp("us", tz="UTC"))


def _ndjson(data: pa.ChunkedArray) -> pa.Buffer:
    """The JSON texts of a string column as one newline-delimited buffer, no copy per row."""
    joined = pc.binary_join_element_wise(data.combine_chunks(), pa.scalar(""), "\n")
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int32)
    start, stop = offsets[joined.offset], offsets[joined.offset + len(joined)]
    return joined.buffers()[2][start:stop]


def _fields_table(data: pa.ChunkedArray) -> pa.Table:
    try:
        options = pa_json.ParseOptions(unexpected_field_behavior="infer")
        return pa_json.read_json(pa.BufferReader(_ndjson(data)), parse_options=options)
    except pa.ArrowInvalid:
        return _fields_table_slow(data)


def _fields_table_slow(data: pa.ChunkedArray) -> pa.Table:
    """Fallback when a field mixes types: such a field becomes JSON text."""
    records = [json.loads(text) for text in data.to_pylist()]
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(record))
    columns = {}
    for name in names:
        values = [r.get(name) for r in records]
        try:
            columns[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            columns[name] = pa.array([None if v is None else json.dumps(v) for v in values])
    return pa.table(columns) if columns else pa.table({"_": pa.nulls(len(records))}).drop(["_"])


def typed_table(rows: pa.Table) -> pa.Table:
    """id, time, then one typed column per data field, for rows of one type."""
    base = pa.table({"id": rows.column("id"), "time": _time_column(rows)})
    if not rows.num_rows:
        return base
    fields = _fields_table(rows.column("data"))
    for name in fields.column_names:
        column_name = f"data_{name}" if name in RESERVED_COLUMNS else name
        base = base.append_column(column_name, fields.column(name))
    return base


def nodes_table(rows: pa.Table) -> pa.Table:
    """Every node: id, type, time and data as JSON text."""
    return pa.table(
        {
            "id": rows.column("id"),
            "type": rows.column("type"),
            "time": _time_column(rows),
            "data": rows.column("data"),
        }
    )


class SqlRunner:
    """DuckDB over a state provider: views are registered for the names a query uses."""

    def __init__(self) -> None:
        self._con = duckdb.connect()
        self._lock = threading.Lock()

    def run(
        self,
        query: str,
        params: list[Any] | dict[str, Any] | None,
        visible: pa.Table,
        tables: dict[str, pa.Table] | None = None,
    ) -> pa.Table:
        if not isinstance(query, str) or not query.strip():
            raise InvalidDataError("sql() needs a query string")
        types = pc.unique(visible.column("type").drop_null()).to_pylist()
        with self._lock:
            con = self._con.cursor()
            try:
                con.register("nodes", nodes_table(visible))
                for name in types:
                    if re.search(re.escape(name), query, re.IGNORECASE):
                        subset = visible.filter(pc.equal(visible.column("type"), name))
                        cached = tables.get(name) if tables is not None else None
                        if cached is None:
                            cached = typed_table(subset)
                            if tables is not None:
                                tables[name] = cached
                        con.register(name, cached)
                try:
                    return con.sql(query, params=params).to_arrow_table()
                except duckdb.Error as exc:
                    raise InvalidDataError(f"SQL failed: {exc}") from None
            finally:
                con.close()
