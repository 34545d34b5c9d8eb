"""Turning `put_many` input (dicts, DataFrames, Arrow tables) into one checked batch.

DataFrames and Arrow tables take a columnar path: ids are checked with Arrow compute,
rows become JSON text in DuckDB (`to_json`), vectors become float32 bytes through
numpy, so no Python code runs per row. Lists of dicts are checked record by record.
Any bad record stops the whole batch with its position and reason.
"""

from __future__ import annotations

import threading
from typing import Any

import duckdb
import msgpack
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pluresdb_lab._checks import frame_to_table, records_kind
from pluresdb_lab.engine._ops import BATCH_SCHEMA
from pluresdb_lab.engine._segments import constant
from pluresdb_lab.engine._validate import (
    MAX_DEPTH,
    MAX_ID_BYTES,
    check_fields,
    check_id,
    check_vector,
    encode_json,
)
from pluresdb_lab.errors import (
    InvalidDataError,
    InvalidIdError,
    NodeTooLargeError,
    ReservedNameError,
    VectorDimensionError,
)

TYPE_COLUMN = "_type"  # a per-row node type, as export(type=None) writes it

_duck = duckdb.connect()
_duck_lock = threading.Lock()


def pack_deps(deps: dict[str, int]) -> bytes:
    return msgpack.packb(deps) if deps else b""


def unpack_deps(blob: bytes) -> dict[str, int]:
    return dict(msgpack.unpackb(blob, raw=False)) if blob else {}


def to_batch(
    records: Any,
    *,
    type_name: str | None,
    id_field: str,
    vector_field: str | None,
    max_bytes: int,
    dims: dict[str, int],
    row_offset: int = 0,
) -> pa.Table:
    """A BATCH_SCHEMA table for `records`, or a specific error naming the bad record.
    Rows are numbered from `row_offset` in messages (for batches of a larger file)."""
    dim = dims.get(type_name or "")
    kind = records_kind(records)
    if kind == "table":
        return _from_arrow(records, type_name, id_field, vector_field, max_bytes, dim, row_offset)
    if kind == "frame":
        table = frame_to_table(records)
        return _from_arrow(table, type_name, id_field, vector_field, max_bytes, dim)
    return _from_dicts(list(records), type_name, id_field, vector_field, max_bytes, dim)


def _from_dicts(
    records: list[Any],
    type_name: str | None,
    id_field: str,
    vector_field: str | None,
    max_bytes: int,
    dim: int | None,
) -> pa.Table:
    ids: list[str] = []
    texts: list[str] = []
    vectors: list[bytes | None] = []
    first_row: dict[str, int] = {}
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise InvalidDataError(f"record {i} is a {type(record).__name__}, not a dict")
        if id_field not in record:
            raise InvalidIdError(f"record {i} has no {id_field!r} field to use as its id")
        node_id = check_id(record[id_field])
        if node_id in first_row:
            raise InvalidDataError(
                f"id {node_id!r} appears twice (records {first_row[node_id]} and {i}); "
                "each node may appear once per put_many"
            )
        first_row[node_id] = i
        fields = {k: v for k, v in record.items() if k != id_field and k != vector_field}
        check_fields(fields)
        texts.append(encode_json(fields, max_bytes=max_bytes, what=f"record {i} ({node_id!r})"))
        vector = record.get(vector_field) if vector_field else None
        if vector is not None:
            array = check_vector(vector, dim)
            dim = array.size
            vectors.append(array.tobytes())
        else:
            vectors.append(None)
        ids.append(node_id)
    n = len(ids)
    return pa.table(
        {
            "id": pa.array(ids, pa.string()),
            "type": constant(type_name, n, pa.string()),
            "data": pa.array(texts, pa.string()),
            "vector": pa.array(vectors, pa.binary()),
            "ctr": constant(1, n, pa.int64()),
            "deps": constant(b"", n, pa.binary()),
        },
        schema=BATCH_SCHEMA,
    )


def _first(mask: pa.Array | pa.ChunkedArray) -> int | None:
    """Index of the first true value, or None."""
    hits = np.flatnonzero(np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool))
    return int(hits[0]) if len(hits) else None


def _check_ids(table: pa.Table, id_field: str, offset: int = 0) -> pa.Array:
    if id_field not in table.column_names:
        raise InvalidIdError(
            f"no {id_field!r} column to take ids from; columns are {table.column_names}; "
            "pass id_field="
        )
    ids = table.column(id_field)
    if pa.types.is_integer(ids.type):
        ids = ids.cast(pa.string())
    if not (pa.types.is_string(ids.type) or pa.types.is_large_string(ids.type)):
        raise InvalidIdError(f"column {id_field!r} holds {ids.type}, but ids are strings")
    ids = ids.cast(pa.string()).combine_chunks()
    if (row := _first(ids.is_null())) is not None:
        raise InvalidIdError(f"row {row + offset} has no id (null in column {id_field!r})")
    lengths = pc.binary_length(ids)
    if (row := _first(pc.equal(lengths, 0))) is not None:
        raise InvalidIdError(f"row {row + offset} has an empty id")
    if (row := _first(pc.greater(lengths, MAX_ID_BYTES))) is not None:
        raise InvalidIdError(f"row {row + offset} has an id longer than {MAX_ID_BYTES} bytes")
    if (row := _first(pc.match_substring(ids, "\x00"))) is not None:
        raise InvalidIdError(f"row {row + offset} has an id containing a NUL character")
    if pc.count_distinct(ids).as_py() != len(ids):
        counts = pc.value_counts(ids)
        twice = counts.filter(pc.greater(counts.field("counts"), 1))[0]["values"].as_py()
        raise InvalidDataError(
            f"id {twice!r} appears more than once; each node may appear once in one write"
        )
    return ids


def _clean_floats(table: pa.Table, offset: int = 0) -> pa.Table:
    """NaN means a missing value (as in pandas); infinity is an error."""
    for i, field in enumerate(table.schema):
        if pa.types.is_floating(field.type):
            column = table.column(i)
            if (row := _first(pc.fill_null(pc.is_inf(column), False))) is not None:
                raise InvalidDataError(
                    f"column {field.name!r} row {row + offset} is infinite, which JSON cannot hold"
                )
            cleaned = pc.if_else(pc.fill_null(pc.is_nan(column), False), None, column)
            table = table.set_column(i, field.name, cleaned)
    return table


def _vectors(column: pa.ChunkedArray, name: str, dim: int | None) -> pa.Array:
    column = column.combine_chunks()
    if not (
        pa.types.is_list(column.type)
        or pa.types.is_fixed_size_list(column.type)
        or pa.types.is_large_list(column.type)
    ):
        raise InvalidDataError(f"vector column {name!r} holds {column.type}, not lists of numbers")
    if column.null_count:
        raise InvalidDataError(f"vector column {name!r} has missing vectors; fill or drop them")
    lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
    expected = dim if dim is not None else int(lengths[0]) if len(lengths) else 0
    if len(lengths) and (lengths != expected).any():
        row = int(np.flatnonzero(lengths != expected)[0])
        raise VectorDimensionError(
            f"vector column {name!r} row {row} has {lengths[row]} dimensions, expected {expected}"
        )
    try:
        values = pc.list_flatten(column).cast(pa.float32()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise InvalidDataError(f"vector column {name!r} holds non-numeric values") from None
    if not np.isfinite(values).all():
        raise InvalidDataError(f"vector column {name!r} holds NaN or infinity")
    n = len(column)
    offsets = (np.arange(n + 1, dtype=np.int64) * expected * 4).astype(np.int32)
    buffers = [
        None,
        pa.py_buffer(offsets.tobytes()),
        pa.py_buffer(values.astype(np.float32).tobytes()),
    ]
    return pa.Array.from_buffers(pa.binary(), n, buffers)


def _from_arrow(
    table: pa.Table,
    type_name: str | None,
    id_field: str,
    vector_field: str | None,
    max_bytes: int,
    dim: int | None,
    offset: int = 0,
) -> pa.Table:
    try:
        table.validate(full=True)
    except pa.ArrowInvalid as exc:
        raise InvalidDataError(
            f"this table is not valid Arrow data (e.g. text that is not UTF-8): {exc}"
        ) from None
    types = constant(type_name, table.num_rows, pa.string())
    if TYPE_COLUMN in table.column_names:  # written by export(type=None)
        if type_name is None:
            types = table.column(TYPE_COLUMN).cast(pa.string()).combine_chunks()
            reserved = pc.and_(pc.starts_with(types, "_"), pc.not_equal(types, "_edge")).fill_null(
                False
            )
            if (row := _first(reserved)) is not None:
                raise ReservedNameError(
                    f"row {row + offset} has type {types[row].as_py()!r}; types starting "
                    "with '_' are reserved"
                )
        table = table.drop_columns([TYPE_COLUMN])
    ids = _check_ids(table, id_field, offset)
    n = len(ids)
    if vector_field is not None and vector_field not in table.column_names:
        raise InvalidDataError(
            f"no vector column {vector_field!r}; columns are {table.column_names}"
        )
    vectors = (
        _vectors(table.column(vector_field), vector_field, dim)
        if vector_field is not None and n
        else pa.nulls(n, pa.binary())
    )
    data_columns = [c for c in table.column_names if c not in (id_field, vector_field)]
    check_fields(dict.fromkeys(data_columns))
    fields = _clean_floats(table.select(data_columns), offset)
    if data_columns and n:
        with _duck_lock:
            con = _duck.cursor()
            try:
                con.register("batch_rows", fields)
                texts = con.sql("SELECT to_json(batch_rows) FROM batch_rows").to_arrow_table()
            except duckdb.Error as exc:
                raise InvalidDataError(f"these columns cannot be encoded as JSON: {exc}") from None
            finally:
                con.close()
        data = texts.column(0).cast(pa.string()).combine_chunks()
    else:
        data = constant("{}", n, pa.string())
    if n and (row := _first(pc.greater(pc.binary_length(data), max_bytes))) is not None:
        raise NodeTooLargeError(
            f"row {row + offset} ({ids[row].as_py()!r}) is over {max_bytes:,} bytes of JSON "
            "(max_node_bytes); split it"
        )
    # Each row's JSON nests exactly as deep as the columns' Arrow types (plus the row
    # object), so the schema answers without reading the text.
    for name in data_columns:
        if _type_depth(fields.schema.field(name).type) + 1 > MAX_DEPTH:
            raise InvalidDataError(
                f"column {name!r} nests lists and structs more than {MAX_DEPTH} levels "
                "deep; flatten it"
            )
    return pa.table(
        {
            "id": ids,
            "type": types,
            "data": data,
            "vector": vectors,
            "ctr": constant(1, n, pa.int64()),
            "deps": constant(b"", n, pa.binary()),
        },
        schema=BATCH_SCHEMA,
    )


def _type_depth(kind: pa.DataType) -> int:
    """How many levels of lists and objects a value of this Arrow type becomes in JSON."""
    if kind.num_fields == 0:
        return 0
    return 1 + max(_type_depth(kind.field(i).type) for i in range(kind.num_fields))


def rows_to_batch(payloads: list[dict[str, Any]]) -> pa.Table:
    """A batch table from per-row op payloads (ops of existing nodes, for `ops_since`)."""
    import json

    return pa.table(
        {
            "id": pa.array([p["i"] for p in payloads], pa.string()),
            "type": pa.array([p.get("t") for p in payloads], pa.string()),
            "data": pa.array(
                [json.dumps(p["p"], separators=(",", ":")) for p in payloads], pa.string()
            ),
            "vector": pa.array([p.get("v") for p in payloads], pa.binary()),
            "ctr": pa.array([p["c"] for p in payloads], pa.int64()),
            "deps": pa.array([pack_deps(p["d"]) for p in payloads], pa.binary()),
        },
        schema=BATCH_SCHEMA,
    )
