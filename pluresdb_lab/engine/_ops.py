"""Replication operations: the unit the WAL stores and the mesh moves.

An op is a plain dict (msgpack-able) with short keys:

- ``o`` origin peer id, ``s`` seq (1, 2, ... per origin), ``h`` hlc, ``k`` kind;
- kind ``put``: ``i`` node id, ``c`` ctr, ``d`` deps, ``p`` field patch (None deletes a
  field), and optionally ``t`` (sets the type) and ``v`` (sets the vector, float32 bytes);
- kind ``del``: ``i``, ``c``, ``d``;
- kind ``batch``: ``r``, an Arrow IPC stream of rows (id, type, data as JSON text of the
  patch, vector, ctr, deps as msgpack) written by one `put_many`.
"""

from __future__ import annotations

from typing import Any

import msgpack
import pyarrow as pa

from pluresdb_lab.engine._validate import MAX_DEPTH, nesting_depth, too_deep_rows
from pluresdb_lab.errors import InvalidOpError

Op = dict[str, Any]

BATCH_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("type", pa.string()),
        ("data", pa.string()),
        ("vector", pa.binary()),
        ("ctr", pa.int64()),
        ("deps", pa.binary()),
    ]
)


def batch_to_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, BATCH_SCHEMA) as writer:
        writer.write_table(table.cast(BATCH_SCHEMA))
    return bytes(sink.getvalue().to_pybytes())


def batch_from_bytes(blob: bytes) -> pa.Table:
    try:
        table = pa.ipc.open_stream(pa.py_buffer(blob)).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidOpError(f"batch op rows are not a readable Arrow stream: {exc}") from None
    if not table.schema.equals(BATCH_SCHEMA):
        raise InvalidOpError(f"batch op rows have schema {table.schema}, expected {BATCH_SCHEMA}")
    if deep := too_deep_rows(table.column("data")):
        raise InvalidOpError(
            f"batch op row {deep[0]} nests lists and objects more than {MAX_DEPTH} levels deep"
        )
    return table


def _need(op: Op, key: str, kind: type | tuple[type, ...], what: str) -> Any:
    if key not in op:
        raise InvalidOpError(f"op is missing {what} ({key!r}): {_brief(op)}")
    value = op[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise InvalidOpError(f"op {what} ({key!r}) has the wrong type: {_brief(op)}")
    return value


def _brief(op: object) -> str:
    try:
        text = repr(op)
    except RecursionError:  # nested deeper than the stack: say so instead
        return f"<{type(op).__name__} nested too deeply to show>"
    return text if len(text) < 200 else text[:200] + "..."


def _deps(value: object, op: Op) -> dict[str, int]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
        for k, v in value.items()
    ):
        raise InvalidOpError(f"op deps must map peer ids to counts: {_brief(op)}")
    return value


def check_op(op: object) -> Op:
    """Validate the shape of an op received from elsewhere; raises InvalidOpError."""
    if not isinstance(op, dict):
        raise InvalidOpError(f"an op is a dict, got {type(op).__name__}: {_brief(op)}")
    origin = _need(op, "o", str, "origin peer")
    if not origin:
        raise InvalidOpError(f"op origin is empty: {_brief(op)}")
    if _need(op, "s", int, "sequence number") < 1:
        raise InvalidOpError(f"op sequence numbers start at 1: {_brief(op)}")
    if _need(op, "h", int, "clock") < 0:
        raise InvalidOpError(f"op clock is negative: {_brief(op)}")
    kind = _need(op, "k", str, "kind")
    if kind in ("put", "del"):
        node_id = _need(op, "i", str, "node id")
        if not node_id or "\x00" in node_id:
            raise InvalidOpError(f"op node id is empty or has NUL: {_brief(op)}")
        if _need(op, "c", int, "node counter") < 1:
            raise InvalidOpError(f"op node counter starts at 1: {_brief(op)}")
        _deps(_need(op, "d", dict, "deps"), op)
        if kind == "put":
            patch = _need(op, "p", dict, "field patch")
            if nesting_depth(patch) > MAX_DEPTH:
                raise InvalidOpError(
                    f"op field patch for node {node_id[:80]!r} nests lists and objects more "
                    f"than {MAX_DEPTH} levels deep"
                )
            if not all(isinstance(k, str) and k for k in patch):
                raise InvalidOpError(f"op field names must be non-empty strings: {_brief(op)}")
            if "t" in op and not (op["t"] is None or isinstance(op["t"], str)):
                raise InvalidOpError(f"op type must be a string or None: {_brief(op)}")
            if "v" in op and not (op["v"] is None or isinstance(op["v"], bytes)):
                raise InvalidOpError(f"op vector must be bytes or None: {_brief(op)}")
    elif kind == "batch":
        if not _need(op, "r", bytes, "batch rows"):
            raise InvalidOpError(f"batch op has no rows: {_brief(op)}")
    else:
        raise InvalidOpError(f"unknown op kind {kind!r}: {_brief(op)}")
    return op


def encode_record(ops: list[Op], time: float) -> bytes:
    """A WAL record: ops written together and the local time they were applied. A
    record is replayed whole or not at all, so the ops of one call (a cascading
    delete) survive a crash together."""
    record = {"op": ops[0], "t": time} if len(ops) == 1 else {"ops": ops, "t": time}
    return msgpack.packb(record, use_bin_type=True)  # type: ignore[no-any-return]


def decode_record(payload: bytes) -> tuple[list[Op], float]:
    record = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    ops = record["ops"] if "ops" in record else [record["op"]]
    return ops, float(record["t"])


def encode_op_payload(op: Op) -> bytes:
    """What a version row keeps of its op to rebuild it for `ops_since`."""
    rest = {k: v for k, v in op.items() if k not in ("o", "s", "h", "r")}
    return msgpack.packb(rest, use_bin_type=True)  # type: ignore[no-any-return]


def decode_op_payload(blob: bytes) -> dict[str, Any]:
    return msgpack.unpackb(blob, raw=False, strict_map_key=False)  # type: ignore[no-any-return]
