"""The OpenAPI 3 document of the REST API, as a Python dict (served at `openapi.json`)."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from pluresdb_lab import __version__
from pluresdb_lab._wire import ARROW, MSGPACK
from pluresdb_lab.engine import LargeNode, SlowOp, Talker, TrendPoint

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Schema, description: str = "OK") -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _body(schema: Schema) -> Schema:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _query(name: str, schema: Schema, required: bool = False) -> Schema:
    return {"name": name, "in": "query", "required": required, "schema": schema}


def _obj(required: list[str] | None = None, **props: Schema) -> Schema:
    return {"type": "object", "properties": props, "required": required or []}


def _record(cls: type) -> Schema:
    """The schema of a flat record dataclass, from its type hints (one source of truth)."""
    by_hint: dict[object, Schema] = {
        int: COUNT,
        float: {"type": "number"},
        str: TEXT,
        str | None: NULLABLE_TEXT,
    }
    hints = typing.get_type_hints(cls)
    return _obj(
        [f.name for f in dataclasses.fields(cls)],
        **{f.name: by_hint[hints[f.name]] for f in dataclasses.fields(cls)},
    )


ERRORS = {
    "400": _json(_ref("Error"), "Bad request (InvalidDataError, InvalidIdError, ...)"),
    "403": _json(_ref("Error"), "Not authenticated or not authorized"),
    "404": _json(_ref("Error"), "Unknown node, version or conflict (NotFoundError)"),
    "409": _json(_ref("Error"), "Refused in the current state"),
}
TOO_LARGE = _json(
    _ref("Error"),
    "The body is over the server's limit (`pluresdb serve --max-body-mib`, "
    "`PluresDBApp.max_body_bytes`; 64 MiB by default), refused before it is read",
)
PATH_RULE = (
    "Paths are on the server's machine; a relative path is relative to the database "
    "folder. A path must resolve (`..` and symlinks followed) to inside the database "
    "folder, but not to its own files, or inside a folder the operator allows "
    "(`pluresdb serve --allow-path DIR`, `PluresDBApp.allowed_paths`); else 403."
)
SERVER_PATH = {"type": "string", "description": "a path on the server (see the description)"}
TEXT = {"type": "string"}
NULLABLE_TEXT = {"type": "string", "nullable": True}
COUNT = {"type": "integer", "minimum": 0}
NODE_ID = {"name": "node_id", "in": "path", "required": True, "schema": {"type": "string"}}
AS_OF = _query("as_of", {"type": "string"})
TYPE = _query("type", TEXT)


def _op(summary: str, reply: Schema, **extra: Any) -> Schema:
    errors = {**ERRORS, **({"413": TOO_LARGE} if "requestBody" in extra else {})}
    return {"summary": summary, "responses": {"200": reply, **errors}, **extra}


def _path_op(summary: str, reply: Schema, **extra: Any) -> Schema:
    """An operation that takes server-side file paths: 403 also for a path not allowed."""
    op = _op(summary, reply, description=PATH_RULE, **extra)
    op["responses"]["403"] = _json(
        _ref("Error"),
        "Not authenticated, or a path outside the database folder and the allowed folders "
        "(PathNotAllowedError; the message names the path and how to allow a folder)",
    )
    return op


SCHEMAS: dict[str, Schema] = {
    "Error": _obj(["error", "message"], error=TEXT, message=TEXT),
    "Node": _obj(
        ["id", "data"],
        id=TEXT,
        type=NULLABLE_TEXT,
        data={"type": "object"},
        vector={"type": "array", "items": {"type": "number"}, "nullable": True},
        time=NULLABLE_TEXT,
        version={"type": "integer"},
    ),
    "Nodes": _obj(["nodes"], nodes={"type": "array", "items": _ref("Node")}),
    "Version": _obj(
        ["version", "time", "origin", "data", "deleted"],
        version={"type": "integer"},
        time=TEXT,
        origin=TEXT,
        type=NULLABLE_TEXT,
        data={"type": "object"},
        deleted={"type": "boolean"},
    ),
    "Conflict": _obj(
        ["id", "node_id", "field", "winner", "loser"],
        id=TEXT,
        node_id=TEXT,
        field=TEXT,
        winner={"type": "object"},
        loser={"type": "object"},
    ),
    "Rows": _obj(
        ["columns", "rows"],
        columns={"type": "array", "items": TEXT},
        rows={"type": "array", "items": {"type": "object"}},
    ),
    **{cls.__name__: _record(cls) for cls in (SlowOp, LargeNode, Talker, TrendPoint)},
    "Suggestion": _obj(
        ["id", "kind", "priority", "reason", "action"],
        id=TEXT,
        kind={"type": "string", "enum": ["create_index", "compact", "split_node"]},
        priority={"type": "string", "enum": ["high", "medium", "low"]},
        reason=TEXT,
        action={"type": "object"},
    ),
}


def _paths() -> dict[str, Schema]:
    table = {
        "description": "Arrow IPC (Accept: Arrow) or JSON rows",
        "content": {ARROW: {"schema": {"type": "string", "format": "binary"}}}
        | _json(_ref("Rows"))["content"],
    }
    return {
        "/": {"get": _op("Server and database identity", _json({"type": "object"}))},
        "/openapi.json": {"get": _op("This document", _json({"type": "object"}))},
        "/nodes": {
            "get": _op(
                "List nodes sorted by id",
                _json(_ref("Nodes")),
                parameters=[TYPE, _query("limit", COUNT), _query("offset", COUNT), AS_OF],
            ),
            "post": _op(
                "Write many nodes (put_many): JSON records or an Arrow IPC table",
                _json(_obj(["written"], written=COUNT)),
                parameters=[TYPE, _query("id_field", TEXT), _query("vector_field", TEXT)],
                requestBody={
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"type": "array", "items": {"type": "object"}}
                        },
                        ARROW: {"schema": {"type": "string", "format": "binary"}},
                    },
                },
            ),
        },
        "/nodes/count": {
            "get": _op("Count nodes", _json(_obj(["count"], count=COUNT)), parameters=[TYPE, AS_OF])
        },
        "/nodes/get": {
            "post": _op(
                "Get many nodes (null where absent)",
                _json({"type": "object"}),
                requestBody=_body(_obj(["ids"], ids={"type": "array", "items": TEXT})),
            )
        },
        "/node/{node_id}": {
            "parameters": [NODE_ID],
            "get": _op("Get a node", _json(_ref("Node")), parameters=[AS_OF]),
            "put": _op(
                "Merge-patch a node (null deletes a field)",
                _json(_ref("Node")),
                requestBody=_body(
                    _obj(
                        ["data"],
                        data={"type": "object"},
                        type=NULLABLE_TEXT,
                        vector={"type": "array", "items": {"type": "number"}, "nullable": True},
                    )
                ),
            ),
            "delete": _op(
                "Delete a node and its edges",
                _json(_obj(["deleted"], deleted={"type": "boolean"})),
            ),
        },
        "/node/{node_id}/history": {
            "parameters": [NODE_ID],
            "get": _op(
                "Versions of a node, oldest first",
                _json(_obj(["versions"], versions={"type": "array", "items": _ref("Version")})),
            ),
        },
        "/node/{node_id}/restore": {
            "parameters": [NODE_ID],
            "post": _op(
                "Make an old version current again",
                _json(_ref("Node")),
                requestBody=_body(_obj(["version"], version={"type": "integer"})),
            ),
        },
        "/node/{node_id}/neighbors": {
            "parameters": [NODE_ID],
            "get": _op(
                "Nodes one edge away",
                _json(_ref("Nodes")),
                parameters=[
                    _query("label", TEXT),
                    _query("direction", {"type": "string", "enum": ["out", "in", "both"]}),
                ],
            ),
        },
        "/types": {
            "get": _op("Node count per type", _json({"type": "object"}), parameters=[AS_OF])
        },
        "/table": {"get": _op("Current nodes as a table", table, parameters=[TYPE, AS_OF])},
        "/edges": {
            "post": _op(
                "Link two nodes",
                _json(_ref("Node")),
                requestBody=_body(
                    _obj(
                        ["src", "dst", "label"],
                        src=TEXT,
                        dst=TEXT,
                        label=TEXT,
                        data={"type": "object", "nullable": True},
                    )
                ),
            ),
            "delete": _op(
                "Unlink two nodes",
                _json(_obj(["deleted"], deleted={"type": "boolean"})),
                parameters=[_query(k, TEXT, required=True) for k in ("src", "dst", "label")],
            ),
        },
        "/sql": {
            "post": _op(
                "Run SQL (DuckDB): one view per type, and `nodes`",
                table,
                parameters=[AS_OF],
                requestBody=_body(
                    _obj(
                        ["query"],
                        query=TEXT,
                        params={"oneOf": [{"type": "array"}, {"type": "object"}], "nullable": True},
                    )
                ),
            )
        },
        "/conflicts": {
            "get": _op(
                "Conflicts last-writer-wins resolved",
                _json(_obj(["conflicts"], conflicts={"type": "array", "items": _ref("Conflict")})),
                parameters=[_query("id", TEXT)],
            )
        },
        "/conflicts/{conflict_id}/resolve": {
            "parameters": [{"name": "conflict_id", "in": "path", "required": True, "schema": TEXT}],
            "post": _op(
                "Settle a conflict",
                _json(_ref("Node")),
                requestBody=_body(_obj(choose={"type": "string", "enum": ["winner", "loser"]})),
            ),
        },
        "/version-vector": {"get": _op("Version vector", _json({"type": "object"}))},
        "/ops": {
            "post": _op(
                "Ops the given version vector lacks (msgpack in and out)",
                {"description": "msgpack array of ops", "content": {MSGPACK: {"schema": {}}}},
                requestBody={
                    "content": {MSGPACK: {"schema": {"type": "string", "format": "binary"}}}
                },
            ),
            "put": _op(
                "Apply ops (msgpack array)",
                _json(_obj(["applied"], applied=COUNT)),
                requestBody={
                    "required": True,
                    "content": {MSGPACK: {"schema": {"type": "string", "format": "binary"}}},
                },
            ),
        },
        "/storage": {"get": _op("Storage statistics", _json({"type": "object"}))},
        "/storage/compact": {
            "post": _op(
                "Compact now (level null: full)",
                _json({"type": "object"}),
                requestBody=_body(_obj(level={"type": "integer", "minimum": 0, "nullable": True})),
            )
        },
        "/storage/flush": {"post": _op("Flush the memtable", _json({"type": "object"}))},
        "/backups": {
            "get": _path_op(
                "Backups in a folder",
                _json({"type": "object"}),
                parameters=[_query("dest", SERVER_PATH, required=True)],
            ),
            "post": _path_op(
                "Back up now",
                _json({"type": "object"}),
                requestBody=_body(
                    _obj(["dest"], dest=SERVER_PATH, incremental={"type": "boolean"})
                ),
            ),
        },
        "/backups/verify": {
            "post": _path_op(
                "Verify a backup",
                _json({"type": "object"}),
                requestBody=_body(_obj(["path"], path=SERVER_PATH)),
            )
        },
        "/backups/restore": {
            "post": _path_op(
                "Restore a backup into a folder",
                _json(_obj(["path"], path=TEXT)),
                requestBody=_body(
                    _obj(
                        ["path", "into"],
                        path=SERVER_PATH,
                        into=SERVER_PATH,
                        overwrite={"type": "boolean"},
                    )
                ),
            )
        },
        "/import": {
            "post": _path_op(
                "Import a file, all or nothing",
                _json(_obj(["imported"], imported=COUNT)),
                requestBody=_body(
                    _obj(
                        ["path"],
                        path=SERVER_PATH,
                        format=NULLABLE_TEXT,
                        type=NULLABLE_TEXT,
                        id_field=NULLABLE_TEXT,
                        mapping={"type": "object", "nullable": True},
                    )
                ),
            )
        },
        "/export": {
            "post": _path_op(
                "Export nodes or a SQL result to a file",
                _json(_obj(["exported"], exported=COUNT)),
                requestBody=_body(
                    _obj(
                        ["path"],
                        path=SERVER_PATH,
                        format=NULLABLE_TEXT,
                        type=NULLABLE_TEXT,
                        query=NULLABLE_TEXT,
                    )
                ),
            )
        },
        "/indexes": {
            "get": _op("Every index with statistics", _json({"type": "object"})),
            "post": _op(
                "Create and build an index",
                _json({"type": "object"}),
                requestBody=_body(
                    _obj(
                        ["kind"],
                        kind={"type": "string", "enum": ["vector", "text", "numeric", "composite"]},
                        name=NULLABLE_TEXT,
                        type=NULLABLE_TEXT,
                        fields={"type": "array", "items": TEXT, "nullable": True},
                        params={"type": "object", "nullable": True},
                    )
                ),
            ),
        },
        "/indexes/{name}": {
            "parameters": [{"name": "name", "in": "path", "required": True, "schema": TEXT}],
            "delete": _op("Drop an index", _json({"type": "object"})),
        },
        "/search": {
            "post": _op(
                "BM25 text search",
                _json({"type": "object"}),
                requestBody=_body(
                    _obj(
                        ["text"],
                        text=TEXT,
                        fields={"type": "array", "items": TEXT, "nullable": True},
                        type=NULLABLE_TEXT,
                        facets={"type": "array", "nullable": True},
                        filter={"type": "object", "nullable": True},
                        limit={"type": "integer", "minimum": 1},
                    )
                ),
            )
        },
        "/vector-search": {
            "post": _op(
                "Nearest neighbours of a vector, a node id or text",
                _json({"type": "object"}),
                requestBody=_body(
                    _obj(
                        ["query"],
                        query={"oneOf": [TEXT, {"type": "array", "items": {"type": "number"}}]},
                        k={"type": "integer", "minimum": 1},
                        filter={"type": "object", "nullable": True},
                        index=NULLABLE_TEXT,
                    )
                ),
            )
        },
        "/query": {
            "post": _op(
                "Run a query spec",
                table,
                requestBody=_body({"type": "object"}),
            )
        },
        "/explain": {
            "post": _op(
                "Plan of a query spec",
                _json({"type": "object"}),
                requestBody=_body({"type": "object"}),
            )
        },
        "/node/{node_id}/traverse": {
            "parameters": [NODE_ID],
            "get": _op(
                "Nodes within depth edges, breadth first",
                _json({"type": "object"}),
                parameters=[
                    _query("depth", COUNT),
                    _query("label", TEXT),
                    _query("direction", {"type": "string", "enum": ["out", "in", "both"]}),
                ],
            ),
        },
        "/node/{node_id}/degree": {
            "parameters": [NODE_ID],
            "get": _op(
                "Edges touching a node",
                _json(_obj(["degree"], degree=COUNT)),
                parameters=[
                    _query("label", TEXT),
                    _query("direction", {"type": "string", "enum": ["out", "in", "both"]}),
                ],
            ),
        },
        "/path": {
            "get": _op(
                "Ids on a shortest path, or null",
                _json({"type": "object"}),
                parameters=[
                    _query("a", TEXT, required=True),
                    _query("b", TEXT, required=True),
                    _query("label", TEXT),
                    _query("direction", {"type": "string", "enum": ["out", "in", "both"]}),
                ],
            ),
        },
        "/mesh": {
            "get": _op("Mesh identity, paused, and every link", _json({"type": "object"})),
            "put": _op(
                "Pause or resume syncing",
                _json({"type": "object"}),
                requestBody=_body(_obj(["paused"], paused={"type": "boolean"})),
            ),
        },
        "/mesh/peers": {
            "post": _op(
                "Keep a link to a peer's ws:// mesh URL",
                _json({"type": "object"}),
                requestBody=_body(_obj(["url"], url=TEXT, peer_id=NULLABLE_TEXT)),
            ),
            "delete": _op(
                "Disconnect a peer",
                _json({"type": "object"}),
                parameters=[_query("peer_id", TEXT, required=True)],
            ),
        },
        "/mesh/sync": {
            "post": _op(
                "Run a sync round",
                _json({"type": "object"}),
                requestBody=_body(_obj(peer_id=NULLABLE_TEXT)),
            )
        },
        "/mesh/logs": {
            "get": _op(
                "Newest mesh log entries",
                _json({"type": "object"}),
                parameters=[_query("limit", COUNT), _query("level", TEXT)],
            )
        },
        "/mesh/snapshots": {
            "get": _op("Snapshots", _json({"type": "object"})),
            "post": _op("Take a snapshot", _json({"type": "object"})),
            "delete": _op(
                "Remove a snapshot",
                _json({"type": "object"}),
                parameters=[_query("id", TEXT, required=True)],
            ),
        },
        "/profiling/slow": {
            "get": _op(
                "Newest slow operations, newest first",
                _json(_obj(["ops"], ops={"type": "array", "items": _ref("SlowOp")})),
                parameters=[_query("limit", COUNT)],
            )
        },
        "/profiling/threshold": {
            "get": _op(
                "The slow threshold",
                _json(_obj(["slow_threshold_ms"], slow_threshold_ms={"type": "number"})),
            ),
            "put": _op(
                "Change the slow threshold",
                _json(_obj(["slow_threshold_ms"], slow_threshold_ms={"type": "number"})),
                requestBody=_body(
                    _obj(["slow_threshold_ms"], slow_threshold_ms={"type": "number", "minimum": 0})
                ),
            ),
        },
        "/profiling/large-nodes": {
            "get": _op(
                "Largest nodes read or written, with read and write counts",
                _json(_obj(["nodes"], nodes={"type": "array", "items": _ref("LargeNode")})),
                parameters=[_query("limit", COUNT)],
            )
        },
        "/profiling/talkers": {
            "get": _op(
                "Peers by bytes their mesh links carried",
                _json(_obj(["talkers"], talkers={"type": "array", "items": _ref("Talker")})),
                parameters=[_query("limit", COUNT)],
            )
        },
        "/profiling/trends": {
            "get": _op(
                "Ops/s and latency percentiles per second",
                _json(_obj(["points"], points={"type": "array", "items": _ref("TrendPoint")})),
                parameters=[
                    _query("window", {"type": "number", "minimum": 0, "exclusiveMinimum": True})
                ],
            )
        },
        "/profiling/suggestions": {
            "get": _op(
                "Suggestions derived from the measurements, most urgent first",
                _json(
                    _obj(
                        ["suggestions"],
                        suggestions={"type": "array", "items": _ref("Suggestion")},
                    )
                ),
            )
        },
        "/profiling/suggestions/{suggestion_id}/apply": {
            "parameters": [
                {"name": "suggestion_id", "in": "path", "required": True, "schema": TEXT}
            ],
            "post": _op(
                "Do what a suggestion says (create the index, compact level 0)",
                _json(_obj(["applied", "kind"], applied=TEXT, kind=TEXT)),
            ),
        },
        "/profiling/suggestions/{suggestion_id}/dismiss": {
            "parameters": [
                {"name": "suggestion_id", "in": "path", "required": True, "schema": TEXT}
            ],
            "post": _op("Stop offering a suggestion", _json(_obj(["dismissed"], dismissed=TEXT))),
        },
        "/profiling/reset": {
            "post": _op("Forget every measurement and dismissal", _json({"type": "object"}))
        },
        "/changes": {
            "get": _op(
                "Change feed (server-sent events: `ready`, then one `change` per change; "
                "the same events over a WebSocket at `changes/ws`, see the description)",
                {"description": "text/event-stream", "content": {"text/event-stream": {}}},
                parameters=[_query("id", TEXT), TYPE],
            )
        },
    }


DESCRIPTION = """\
Every request needs the server's token (`Authorization: token T`, or `?token=T`); on
a Jupyter server, a browser's login cookie with the `_xsrf` token for writes works too.
Request bodies are JSON, or msgpack with `Content-Type: application/msgpack`. The token
and the body's declared size are checked before the body is read: a body over the
server's limit (64 MiB unless the operator changed it; the root route tells it as
`max_body_bytes`) gets 413; a body nested too deeply to decode gets 400.

Routes that take file paths (import, export, backups) work only inside the database
folder (relative paths are relative to it; its own files are off limits) and folders
the operator allows (`pluresdb serve --allow-path DIR`, `PluresDBApp.allowed_paths`);
any other path is refused with 403 `PathNotAllowedError`.

The change feed is also a WebSocket, which OpenAPI cannot describe as an operation:
`GET changes/ws?id=&type=` with a WebSocket upgrade, authenticated like every other
route (a missing or wrong token is refused with 403, a bad filter with 400 before the
upgrade). The server sends JSON text messages: `{"event": "ready"}` once the
subscription is in place, then `{"event": "change", "change": {...}}` per change, with
the fields of a `changes` server-sent event. Messages from the client are ignored.
"""


def document(base_url: str = "/") -> Schema:
    """The OpenAPI document, with the server URL under `base_url`."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "PluresDB Lab REST API",
            "version": __version__,
            "description": DESCRIPTION,
        },
        "servers": [{"url": f"{base_url.rstrip('/')}/pluresdb/api"}],
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "token": {"type": "apiKey", "in": "header", "name": "Authorization"}
            },
        },
        "security": [{"token": []}],
        "paths": _paths(),
    }
