"""The URL table of the REST API, shared by the Jupyter extension and `pluresdb serve`.

Each entry says which method of the database API each HTTP verb of a route serves;
the OpenAPI document (`openapi`) is derived from that and the method's signature.
Adding a route is one entry here plus one small handler class. Paths are relative to
the server's base URL; `{name}` stands for one URL-quoted path segment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tornado.web import RequestHandler

from pluresdb_lab._database import Database
from pluresdb_lab.server import (
    feed,
    handlers_graph,
    handlers_history,
    handlers_info,
    handlers_mesh,
    handlers_nodes,
    handlers_profiling,
    handlers_replication,
    handlers_search,
    handlers_sql,
    handlers_storage,
)

API = "pluresdb/api/"
SEGMENT = re.compile(r"\{(\w+)\}")

Route = tuple[str, type[RequestHandler], dict[str, Any]]


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
class Entry:
    """A route: its path, its handler and what each HTTP verb serves."""

    path: str
    handler: type[RequestHandler]
    serves: dict[str, Serves] = field(default_factory=dict)

    @property
    def pattern(self) -> str:
        """The Tornado pattern (the API root matches with or without its final slash)."""
        return API + (SEGMENT.sub("([^/]+)", self.path) or "?")


TABLE: list[Entry] = [
    Entry("", handlers_info.InfoHandler, {"GET": Serves("info")}),
    Entry("openapi.json", handlers_info.OpenApiHandler, {"GET": Serves("openapi")}),
    Entry(
        "nodes",
        handlers_nodes.NodesHandler,
        {"GET": Serves("list", "nodes", as_of=True), "POST": Serves("put_many", "written")},
    ),
    Entry(
        "nodes/count", handlers_nodes.CountHandler, {"GET": Serves("count", "count", as_of=True)}
    ),
    Entry("nodes/get", handlers_nodes.GetManyHandler, {"POST": Serves("get_many", "nodes")}),
    Entry(
        "node/{node_id}",
        handlers_nodes.NodeHandler,
        {
            "GET": Serves("get", as_of=True),
            "PUT": Serves("put"),
            "DELETE": Serves("delete", "deleted"),
        },
    ),
    Entry(
        "node/{node_id}/history",
        handlers_history.HistoryHandler,
        {"GET": Serves("history", "versions")},
    ),
    Entry("node/{node_id}/restore", handlers_history.RestoreHandler, {"POST": Serves("restore")}),
    Entry(
        "node/{node_id}/neighbors",
        handlers_graph.NeighborsHandler,
        {"GET": Serves("neighbors", "nodes")},
    ),
    Entry("types", handlers_nodes.TypesHandler, {"GET": Serves("types", "types", as_of=True)}),
    Entry("table", handlers_nodes.TableHandler, {"GET": Serves("to_arrow", as_of=True)}),
    Entry(
        "edges",
        handlers_graph.EdgesHandler,
        {"POST": Serves("link"), "DELETE": Serves("unlink", "deleted")},
    ),
    Entry("sql", handlers_sql.SqlHandler, {"POST": Serves("sql", as_of=True)}),
    Entry(
        "conflicts", handlers_history.ConflictsHandler, {"GET": Serves("conflicts", "conflicts")}
    ),
    Entry(
        "conflicts/{conflict_id}/resolve",
        handlers_history.ResolveHandler,
        {"POST": Serves("resolve_conflict")},
    ),
    Entry(
        "version-vector",
        handlers_replication.VersionVectorHandler,
        {"GET": Serves("version_vector", "version_vector")},
    ),
    Entry(
        "ops",
        handlers_replication.OpsHandler,
        {"POST": Serves("ops_since"), "PUT": Serves("apply_ops", "applied")},
    ),
    Entry("storage", handlers_storage.StatsHandler, {"GET": Serves("storage_stats")}),
    Entry("storage/compact", handlers_storage.CompactHandler, {"POST": Serves("compact")}),
    Entry("storage/flush", handlers_storage.FlushHandler, {"POST": Serves("flush")}),
    Entry(
        "backups",
        handlers_storage.BackupsHandler,
        {"GET": Serves("backups", "backups"), "POST": Serves("backup")},
    ),
    Entry(
        "backups/verify", handlers_storage.VerifyBackupHandler, {"POST": Serves("verify_backup")}
    ),
    Entry(
        "backups/restore",
        handlers_storage.RestoreBackupHandler,
        {"POST": Serves("restore_backup", "path")},
    ),
    Entry("import", handlers_storage.ImportHandler, {"POST": Serves("import_file", "imported")}),
    Entry("export", handlers_storage.ExportHandler, {"POST": Serves("export", "exported")}),
    Entry("changes", feed.ChangesHandler, {"GET": Serves("subscribe")}),
    # the same feed over a WebSocket, which OpenAPI cannot describe (see its description)
    Entry("changes/ws", feed.ChangesSocketHandler),
    Entry(
        "indexes",
        handlers_search.IndexesHandler,
        {"GET": Serves("indexes", "indexes"), "POST": Serves("create_index")},
    ),
    Entry(
        "indexes/{name}", handlers_search.IndexHandler, {"DELETE": Serves("drop_index", "dropped")}
    ),
    Entry("search", handlers_search.SearchHandler, {"POST": Serves("search")}),
    Entry(
        "vector-search",
        handlers_search.VectorSearchHandler,
        {"POST": Serves("vector_search", "hits")},
    ),
    Entry("query", handlers_search.QueryHandler, {"POST": Serves("query")}),
    Entry("explain", handlers_search.ExplainHandler, {"POST": Serves("explain")}),
    Entry(
        "node/{node_id}/traverse",
        handlers_search.TraverseHandler,
        {"GET": Serves("traverse", "hops")},
    ),
    Entry(
        "node/{node_id}/degree", handlers_search.DegreeHandler, {"GET": Serves("degree", "degree")}
    ),
    Entry("path", handlers_search.PathHandler, {"GET": Serves("shortest_path", "path")}),
    Entry(
        "mesh",
        handlers_mesh.MeshHandler,
        {"GET": Serves("mesh.peers", "peers"), "PUT": Serves("mesh.set_paused", "paused")},
    ),
    Entry(
        "mesh/peers",
        handlers_mesh.PeersHandler,
        {
            "POST": Serves("mesh.connect", "connecting"),
            "DELETE": Serves("mesh.disconnect", "disconnected"),
        },
    ),
    Entry("mesh/sync", handlers_mesh.SyncHandler, {"POST": Serves("mesh.sync")}),
    Entry("mesh/logs", handlers_mesh.LogsHandler, {"GET": Serves("mesh.logs", "entries")}),
    Entry(
        "mesh/snapshots",
        handlers_mesh.SnapshotsHandler,
        {
            "GET": Serves("mesh.snapshots", "snapshots"),
            "POST": Serves("mesh.snapshot"),
            "DELETE": Serves("mesh.delete_snapshot", "deleted"),
        },
    ),
    Entry(
        "profiling/slow",
        handlers_profiling.SlowOpsHandler,
        {"GET": Serves("profiler.slow_ops", "ops")},
    ),
    Entry(
        "profiling/threshold",
        handlers_profiling.ThresholdHandler,
        {
            "GET": Serves("profiler.slow_threshold_ms", "slow_threshold_ms"),
            "PUT": Serves("profiler.set_slow_threshold_ms", "slow_threshold_ms"),
        },
    ),
    Entry(
        "profiling/large-nodes",
        handlers_profiling.LargeNodesHandler,
        {"GET": Serves("profiler.large_nodes", "nodes")},
    ),
    Entry(
        "profiling/talkers",
        handlers_profiling.TalkersHandler,
        {"GET": Serves("profiler.top_talkers", "talkers")},
    ),
    Entry(
        "profiling/trends",
        handlers_profiling.TrendsHandler,
        {"GET": Serves("profiler.trends", "points")},
    ),
    Entry(
        "profiling/suggestions",
        handlers_profiling.SuggestionsHandler,
        {"GET": Serves("profiler.suggestions", "suggestions")},
    ),
    Entry(
        "profiling/suggestions/{suggestion_id}/apply",
        handlers_profiling.ApplyHandler,
        {"POST": Serves("profiler.apply")},
    ),
    Entry(
        "profiling/suggestions/{suggestion_id}/dismiss",
        handlers_profiling.DismissHandler,
        {"POST": Serves("profiler.dismiss", "dismissed")},
    ),
    Entry("profiling/reset", handlers_profiling.ResetHandler, {"POST": Serves("profiler.reset")}),
]


def routes(db: Database) -> list[Route]:
    """(pattern, handler, kwargs) for every API route, bound to `db`."""
    return [(entry.pattern, entry.handler, {"db": db}) for entry in TABLE]
