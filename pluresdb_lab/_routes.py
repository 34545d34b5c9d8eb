"""The REST API's routes as data: for each path and HTTP verb, the method of the
database API it serves.

Importable without tornado or the engine: the server (`server.routes`) adds a handler
class per path and derives the OpenAPI document from it (`server.operations`), and
`RemoteDatabase` derives its regular calls from it (`_derive`). Paths are relative to
the API's base URL; `{name}` stands for one URL-quoted path segment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SEGMENT = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Serves:
    """What one HTTP verb of a route serves.

    `method` is the database API method called (`profiler.x`, `mesh.x`: a method of
    `db.profiler`, `db.mesh`), and the operation's OpenAPI `operationId`. The reply is
    the method's result, or `{reply: result}` when `reply` names a key (a method that
    returns None echoes its first argument there instead). `as_of` routes read a past
    state when given `?as_of=`.
    """

    method: str
    reply: str | None = None
    as_of: bool = False


@dataclass(frozen=True)
class Endpoint:
    """A route: its path and what each HTTP verb serves."""

    path: str
    serves: dict[str, Serves]


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("", {"GET": Serves("info")}),
    Endpoint("openapi.json", {"GET": Serves("openapi")}),
    Endpoint(
        "nodes",
        {"GET": Serves("list", "nodes", as_of=True), "POST": Serves("put_many", "written")},
    ),
    Endpoint("nodes/count", {"GET": Serves("count", "count", as_of=True)}),
    Endpoint("nodes/get", {"POST": Serves("get_many", "nodes")}),
    Endpoint(
        "node/{node_id}",
        {
            "GET": Serves("get", as_of=True),
            "PUT": Serves("put"),
            "DELETE": Serves("delete", "deleted"),
        },
    ),
    Endpoint("node/{node_id}/history", {"GET": Serves("history", "versions")}),
    Endpoint("node/{node_id}/restore", {"POST": Serves("restore")}),
    Endpoint("node/{node_id}/diff", {"GET": Serves("diff", "changes")}),
    Endpoint("node/{node_id}/crdt", {"GET": Serves("crdt_state")}),
    Endpoint("node/{node_id}/neighbors", {"GET": Serves("neighbors", "nodes")}),
    Endpoint("types", {"GET": Serves("types", "types", as_of=True)}),
    Endpoint("table", {"GET": Serves("to_arrow", as_of=True)}),
    Endpoint("edges", {"POST": Serves("link"), "DELETE": Serves("unlink", "deleted")}),
    Endpoint("sql", {"POST": Serves("sql", as_of=True)}),
    Endpoint("conflicts", {"GET": Serves("conflicts", "conflicts")}),
    Endpoint("conflicts/{conflict_id}/resolve", {"POST": Serves("resolve_conflict")}),
    Endpoint("version-vector", {"GET": Serves("version_vector", "version_vector")}),
    Endpoint("ops", {"POST": Serves("ops_since"), "PUT": Serves("apply_ops", "applied")}),
    Endpoint("storage", {"GET": Serves("storage_stats")}),
    Endpoint("storage/compact", {"POST": Serves("compact")}),
    Endpoint("storage/flush", {"POST": Serves("flush")}),
    Endpoint("backups", {"GET": Serves("backups", "backups"), "POST": Serves("backup")}),
    Endpoint("backups/verify", {"POST": Serves("verify_backup")}),
    Endpoint("backups/restore", {"POST": Serves("restore_backup", "path")}),
    Endpoint("import", {"POST": Serves("import_file", "imported")}),
    Endpoint("export", {"POST": Serves("export", "exported")}),
    Endpoint("changes", {"GET": Serves("subscribe")}),
    # the same feed over a WebSocket, which OpenAPI cannot describe (see its description)
    Endpoint("changes/ws", {}),
    Endpoint("indexes", {"GET": Serves("indexes", "indexes"), "POST": Serves("create_index")}),
    Endpoint("indexes/{name}", {"DELETE": Serves("drop_index", "dropped")}),
    Endpoint("search", {"POST": Serves("search")}),
    Endpoint("vector-search", {"POST": Serves("vector_search", "hits")}),
    Endpoint("query", {"POST": Serves("query")}),
    Endpoint("explain", {"POST": Serves("explain")}),
    Endpoint("node/{node_id}/traverse", {"GET": Serves("traverse", "hops")}),
    Endpoint("node/{node_id}/degree", {"GET": Serves("degree", "degree")}),
    Endpoint("path", {"GET": Serves("shortest_path", "path")}),
    Endpoint(
        "mesh", {"GET": Serves("mesh.peers", "peers"), "PUT": Serves("mesh.set_paused", "paused")}
    ),
    Endpoint(
        "mesh/peers",
        {
            "POST": Serves("mesh.connect", "connecting"),
            "DELETE": Serves("mesh.disconnect", "disconnected"),
        },
    ),
    Endpoint("mesh/sync", {"POST": Serves("mesh.sync")}),
    Endpoint("mesh/logs", {"GET": Serves("mesh.logs", "entries")}),
    Endpoint(
        "mesh/snapshots",
        {
            "GET": Serves("mesh.snapshots", "snapshots"),
            "POST": Serves("mesh.snapshot"),
            "DELETE": Serves("mesh.delete_snapshot", "deleted"),
        },
    ),
    Endpoint("profiling/slow", {"GET": Serves("profiler.slow_ops", "ops")}),
    Endpoint(
        "profiling/threshold",
        {
            "GET": Serves("profiler.slow_threshold_ms", "slow_threshold_ms"),
            "PUT": Serves("profiler.set_slow_threshold_ms", "slow_threshold_ms"),
        },
    ),
    Endpoint("profiling/large-nodes", {"GET": Serves("profiler.large_nodes", "nodes")}),
    Endpoint("profiling/talkers", {"GET": Serves("profiler.top_talkers", "talkers")}),
    Endpoint("profiling/trends", {"GET": Serves("profiler.trends", "points")}),
    Endpoint("profiling/suggestions", {"GET": Serves("profiler.suggestions", "suggestions")}),
    Endpoint("profiling/suggestions/{suggestion_id}/apply", {"POST": Serves("profiler.apply")}),
    Endpoint(
        "profiling/suggestions/{suggestion_id}/dismiss",
        {"POST": Serves("profiler.dismiss", "dismissed")},
    ),
    Endpoint("profiling/reset", {"POST": Serves("profiler.reset")}),
)
