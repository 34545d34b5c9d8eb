"""How the server's REST API encodes nodes, versions, conflicts and tables on the wire.

The server (`pluresdb_lab.server`) writes with these functions and `RemoteDatabase`
reads with them, so both sides agree on one format: JSON objects for single values,
Arrow IPC streams for tables, msgpack for replication ops (they hold bytes).
"""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from pluresdb_lab._values import Backup, Change, Conflict, Node, Version, WriteInfo
from pluresdb_lab.errors import InvalidDataError

ARROW = "application/vnd.apache.arrow.stream"
MSGPACK = "application/msgpack"
JSON = "application/json"


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def dumps(value: Any) -> str:
    """JSON text of `value`; datetimes as ISO 8601, bytes as base64, dataclasses as objects."""
    return json.dumps(value, default=_default, allow_nan=False)


def node_to_json(node: Node) -> dict[str, Any]:
    return {
        "id": node.id,
        "type": node.type,
        "data": node.data,
        "vector": None if node.vector is None else node.vector.tolist(),
        "time": None if node.time is None else node.time.isoformat(),
        "version": node.version,
    }


def node_from_json(body: dict[str, Any]) -> Node:
    vector = body.get("vector")
    time = body.get("time")
    return Node(
        body["id"],
        body.get("type"),
        body.get("data") or {},
        None if vector is None else np.asarray(vector, dtype=np.float32),
        None if time is None else datetime.fromisoformat(time),
        int(body.get("version", 0)),
    )


def maybe_node(body: dict[str, Any] | None) -> Node | None:
    return None if body is None else node_from_json(body)


def change_to_json(change: Change) -> dict[str, Any]:
    return {
        "id": change.id,
        "type": change.type,
        "kind": change.kind,
        "node": None if change.node is None else node_to_json(change.node),
        "origin": change.origin,
        "local": change.local,
    }


def change_from_json(body: dict[str, Any]) -> Change:
    return Change(
        body["id"],
        body.get("type"),
        body["kind"],
        maybe_node(body.get("node")),
        body["origin"],
        bool(body["local"]),
    )


def version_to_json(version: Version) -> dict[str, Any]:
    return {
        "version": version.version,
        "time": version.time.isoformat(),
        "origin": version.origin,
        "type": version.type,
        "data": version.data,
        "deleted": version.deleted,
    }


def version_from_json(body: dict[str, Any]) -> Version:
    return Version(
        int(body["version"]),
        datetime.fromisoformat(body["time"]),
        body["origin"],
        body.get("type"),
        body.get("data") or {},
        bool(body["deleted"]),
    )


def _side(side: WriteInfo) -> dict[str, Any]:
    return {"value": side.value, "peer": side.peer, "hlc": side.hlc}


def conflict_to_json(conflict: Conflict) -> dict[str, Any]:
    return {
        "id": conflict.id,
        "node_id": conflict.node_id,
        "field": conflict.field,
        "winner": _side(conflict.winner),
        "loser": _side(conflict.loser),
    }


def conflict_from_json(body: dict[str, Any]) -> Conflict:
    winner, loser = body["winner"], body["loser"]
    return Conflict(
        body["id"],
        body["node_id"],
        body["field"],
        WriteInfo(winner["value"], winner["peer"], int(winner["hlc"])),
        WriteInfo(loser["value"], loser["peer"], int(loser["hlc"])),
    )


def backup_from_json(body: dict[str, Any]) -> Backup:
    return Backup(
        id=body["id"],
        path=Path(body["path"]),
        kind=body["kind"],
        base=body.get("base"),
        created=datetime.fromisoformat(body["created"]),
        size=int(body["size"]),
        nodes=int(body["nodes"]),
        checksums=dict(body.get("checksums") or {}),
        segments=list(body.get("segments") or []),
        status=body.get("status", "complete"),
    )


def types_to_json(types: dict[str | None, int]) -> list[dict[str, Any]]:
    """Type counts as a list (a JSON object cannot have a null key for untyped nodes)."""
    return [{"type": name, "count": count} for name, count in types.items()]


def types_from_json(body: list[dict[str, Any]]) -> dict[str | None, int]:
    return {entry["type"]: int(entry["count"]) for entry in body}


def table_to_ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    try:
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
    except pa.ArrowInvalid as exc:  # e.g. types nested deeper than Arrow IPC carries
        raise InvalidDataError(
            f"this table cannot be sent as Arrow IPC (do its columns nest too deeply?): {exc}"
        ) from None
    return bytes(sink.getvalue().to_pybytes())


def table_from_ipc(blob: bytes) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(blob)).read_all()
