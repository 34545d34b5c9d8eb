"""The URL table of the REST API, shared by the Jupyter extension and `pluresdb serve`.

Adding a route is one line here plus one small handler class. Patterns are relative
to the server's base URL; a node id is one URL-quoted path segment.
"""

from __future__ import annotations

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
ID = "([^/]+)"

Route = tuple[str, type[RequestHandler], dict[str, Any]]

HANDLERS: list[tuple[str, type[RequestHandler]]] = [
    ("?", handlers_info.InfoHandler),  # the API root, with or without its final slash
    ("openapi.json", handlers_info.OpenApiHandler),
    ("nodes", handlers_nodes.NodesHandler),
    ("nodes/count", handlers_nodes.CountHandler),
    ("nodes/get", handlers_nodes.GetManyHandler),
    (f"node/{ID}", handlers_nodes.NodeHandler),
    (f"node/{ID}/history", handlers_history.HistoryHandler),
    (f"node/{ID}/restore", handlers_history.RestoreHandler),
    (f"node/{ID}/neighbors", handlers_graph.NeighborsHandler),
    ("types", handlers_nodes.TypesHandler),
    ("table", handlers_nodes.TableHandler),
    ("edges", handlers_graph.EdgesHandler),
    ("sql", handlers_sql.SqlHandler),
    ("conflicts", handlers_history.ConflictsHandler),
    (f"conflicts/{ID}/resolve", handlers_history.ResolveHandler),
    ("version-vector", handlers_replication.VersionVectorHandler),
    ("ops", handlers_replication.OpsHandler),
    ("storage", handlers_storage.StatsHandler),
    ("storage/compact", handlers_storage.CompactHandler),
    ("storage/flush", handlers_storage.FlushHandler),
    ("backups", handlers_storage.BackupsHandler),
    ("backups/verify", handlers_storage.VerifyBackupHandler),
    ("backups/restore", handlers_storage.RestoreBackupHandler),
    ("import", handlers_storage.ImportHandler),
    ("export", handlers_storage.ExportHandler),
    ("changes", feed.ChangesHandler),
    ("changes/ws", feed.ChangesSocketHandler),
    ("indexes", handlers_search.IndexesHandler),
    (f"indexes/{ID}", handlers_search.IndexHandler),
    ("search", handlers_search.SearchHandler),
    ("vector-search", handlers_search.VectorSearchHandler),
    ("query", handlers_search.QueryHandler),
    ("explain", handlers_search.ExplainHandler),
    (f"node/{ID}/traverse", handlers_search.TraverseHandler),
    (f"node/{ID}/degree", handlers_search.DegreeHandler),
    ("path", handlers_search.PathHandler),
    ("mesh", handlers_mesh.MeshHandler),
    ("mesh/peers", handlers_mesh.PeersHandler),
    ("mesh/sync", handlers_mesh.SyncHandler),
    ("mesh/logs", handlers_mesh.LogsHandler),
    ("mesh/snapshots", handlers_mesh.SnapshotsHandler),
    ("profiling/slow", handlers_profiling.SlowOpsHandler),
    ("profiling/threshold", handlers_profiling.ThresholdHandler),
    ("profiling/large-nodes", handlers_profiling.LargeNodesHandler),
    ("profiling/talkers", handlers_profiling.TalkersHandler),
    ("profiling/trends", handlers_profiling.TrendsHandler),
    ("profiling/suggestions", handlers_profiling.SuggestionsHandler),
    (f"profiling/suggestions/{ID}/apply", handlers_profiling.ApplyHandler),
    (f"profiling/suggestions/{ID}/dismiss", handlers_profiling.DismissHandler),
    ("profiling/reset", handlers_profiling.ResetHandler),
]


def routes(db: Database) -> list[Route]:
    """(pattern, handler, kwargs) for every API route, bound to `db`."""
    return [(API + pattern, handler, {"db": db}) for pattern, handler in HANDLERS]
