"""The OpenAPI 3 document of the REST API, as a Python dict (served at `openapi.json`).

Operations derive from the route table and the signature of the method each serves
(see `operations`); reply schemas from the value types (see `schema`). Written here by
hand: what is not a method, and where the wire shape differs from the signature.
"""

from __future__ import annotations

from pluresdb_lab import __version__
from pluresdb_lab._wire import ARROW, MSGPACK
from pluresdb_lab.engine import Change, RecoveryReport
from pluresdb_lab.mesh import PeerInfo
from pluresdb_lab.server.operations import json_body, json_reply, operation, query
from pluresdb_lab.server.routes import TABLE
from pluresdb_lab.server.schema import Schema, Schemas, obj

TEXT = {"type": "string"}
NULLABLE_TEXT = {"type": "string", "nullable": True}
COUNT = {"type": "integer", "minimum": 0}
THRESHOLD = obj(["slow_threshold_ms"], slow_threshold_ms={"type": "number", "minimum": 0})
BINARY = {"type": "string", "format": "binary"}


def written(schemas: Schemas) -> dict[str, Schema]:
    """Operation parts by operationId that cannot be derived, each saying why."""
    return {
        # not methods: what the server is, and this document
        "info": {
            "summary": "Server and database identity",
            "reply": json_reply(
                obj(
                    ["version", "peer_id", "path", "fsync", "max_node_bytes", "max_body_bytes"],
                    version=TEXT,
                    peer_id=TEXT,
                    path=NULLABLE_TEXT,
                    fsync=TEXT,
                    max_node_bytes=COUNT,
                    max_body_bytes=COUNT,
                    recovery=schemas.record(RecoveryReport),
                )
            ),
        },
        "openapi": {
            "summary": "This document",
            "reply": json_reply({"type": "object"}),
        },
        # the records are the body (JSON records or Arrow IPC), the options in the query
        "put_many": {
            "parameters": [query(name, TEXT) for name in ("type", "id_field", "vector_field")],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
                    ARROW: {"schema": BINARY},
                },
            },
        },
        # the body is the query spec itself, not {"spec": ...}
        "query": {"requestBody": json_body({"type": "object"})},
        "explain": {"requestBody": json_body({"type": "object"})},
        # a JSON object cannot have the null key of untyped nodes: a list instead
        "types": {
            "reply": json_reply(
                obj(
                    ["types"],
                    types={
                        "type": "array",
                        "items": obj(["type", "count"], type=NULLABLE_TEXT, count=COUNT),
                    },
                )
            )
        },
        # with the server's own peer id, which a replicating client needs with it
        "version_vector": {
            "reply": json_reply(
                obj(
                    ["peer_id", "version_vector"],
                    peer_id=TEXT,
                    version_vector={"type": "object", "additionalProperties": COUNT},
                )
            )
        },
        # ops hold bytes: msgpack both ways
        "ops_since": {
            "requestBody": {"content": {MSGPACK: {"schema": BINARY}}},
            "reply": {"description": "msgpack array of ops", "content": {MSGPACK: {"schema": {}}}},
        },
        "apply_ops": {"requestBody": {"required": True, "content": {MSGPACK: {"schema": BINARY}}}},
        # a stream of server-sent events, not one reply
        "subscribe": {
            "summary": "Change feed (server-sent events: `ready`, then one `change` per change; "
            "the same events over a WebSocket at `changes/ws`, see the description)",
            "reply": {
                "description": "text/event-stream; the data of each `change` event is a Change "
                f"({schemas.record(Change)['$ref']})",
                "content": {"text/event-stream": {}},
            },
        },
        # one read of the mesh: its identity, whether it is paused, and its links
        "mesh.peers": {
            "summary": "Mesh identity, paused, and every link",
            "reply": json_reply(
                obj(
                    ["peer_id", "public_key", "paused", "peers"],
                    peer_id=TEXT,
                    public_key=TEXT,
                    paused={"type": "boolean"},
                    peers={"type": "array", "items": schemas.record(PeerInfo)},
                )
            ),
        },
        # pause() and resume() as one state
        "mesh.set_paused": {
            "summary": "Pause or resume syncing",
            "requestBody": json_body(obj(["paused"], paused={"type": "boolean"})),
            "reply": json_reply(obj(["paused"], paused={"type": "boolean"})),
        },
        # the query names `snapshot_id` `id`, and `window_s` `window`
        "mesh.delete_snapshot": {"parameters": [query("id", TEXT, required=True)]},
        "profiler.trends": {
            "parameters": [
                query("window", {"type": "number", "minimum": 0, "exclusiveMinimum": True})
            ]
        },
        # a property, read and set
        "profiler.slow_threshold_ms": {
            "summary": "The slow threshold",
            "reply": json_reply(THRESHOLD),
        },
        "profiler.set_slow_threshold_ms": {
            "summary": "Change the slow threshold",
            "requestBody": json_body(THRESHOLD),
            "reply": json_reply(THRESHOLD),
        },
        # the profiler types its result dict[str, Any]
        "profiler.apply": {
            "reply": json_reply(obj(["applied", "kind"], applied=TEXT, kind=TEXT)),
        },
    }


def _paths(schemas: Schemas) -> dict[str, Schema]:
    parts = written(schemas)
    return {
        "/" + entry.path: {
            verb.lower(): operation(entry, verb, parts.get(op.method, {}), schemas)
            for verb, op in entry.serves.items()
        }
        for entry in TABLE
        if entry.serves
    }


DESCRIPTION = """\
Every request needs the server's token (`Authorization: token T`, or `?token=T`); on
a Jupyter server, a browser's login cookie with the `_xsrf` token for writes works too.
Request bodies are JSON, or msgpack with `Content-Type: application/msgpack`. The token
and the body's declared size are checked before the body is read: a body over the
server's limit (64 MiB unless the operator changed it; the root route tells it as
`max_body_bytes`) gets 413; a body nested too deeply to decode gets 400.

Each operation's `operationId` is the method of the Python database API it serves
(`profiler.x`, `mesh.x`: of `db.profiler`, `db.mesh`).

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
    schemas = Schemas()
    schemas.components["Error"] = obj(["error", "message"], error=TEXT, message=TEXT)
    schemas.components["Rows"] = obj(
        ["columns", "rows"],
        columns={"type": "array", "items": TEXT},
        rows={"type": "array", "items": {"type": "object"}},
    )
    paths = _paths(schemas)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "PluresDB Lab REST API",
            "version": __version__,
            "description": DESCRIPTION,
        },
        "servers": [{"url": f"{base_url.rstrip('/')}/pluresdb/api"}],
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {
                "token": {"type": "apiKey", "in": "header", "name": "Authorization"}
            },
        },
        "security": [{"token": []}],
        "paths": paths,
    }
