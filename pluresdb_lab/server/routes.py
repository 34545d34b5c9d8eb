"""The URL table of the REST API, shared by the Jupyter extension and `pluresdb serve`:
the routes of `_routes.ENDPOINTS`, each with the handler class that serves it.

Adding a route is one endpoint there plus one small handler class here; the OpenAPI
document (`openapi`) and the remote client (`_derive`) follow from the endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tornado.web import RequestHandler

from pluresdb_lab._database import Database
from pluresdb_lab._routes import ENDPOINTS, SEGMENT, Endpoint
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

Route = tuple[str, type[RequestHandler], dict[str, Any]]


@dataclass(frozen=True)
class Entry(Endpoint):
    """An endpoint with the handler class of its path."""

    handler: type[RequestHandler]

    @property
    def pattern(self) -> str:
        """The Tornado pattern (the API root matches with or without its final slash)."""
        return API + (SEGMENT.sub("([^/]+)", self.path) or "?")


HANDLERS: dict[str, type[RequestHandler]] = {
    "": handlers_info.InfoHandler,
    "openapi.json": handlers_info.OpenApiHandler,
    "nodes": handlers_nodes.NodesHandler,
    "nodes/count": handlers_nodes.CountHandler,
    "nodes/get": handlers_nodes.GetManyHandler,
    "node/{node_id}": handlers_nodes.NodeHandler,
    "node/{node_id}/history": handlers_history.HistoryHandler,
    "node/{node_id}/restore": handlers_history.RestoreHandler,
    "node/{node_id}/neighbors": handlers_graph.NeighborsHandler,
    "types": handlers_nodes.TypesHandler,
    "table": handlers_nodes.TableHandler,
    "edges": handlers_graph.EdgesHandler,
    "sql": handlers_sql.SqlHandler,
    "conflicts": handlers_history.ConflictsHandler,
    "conflicts/{conflict_id}/resolve": handlers_history.ResolveHandler,
    "version-vector": handlers_replication.VersionVectorHandler,
    "ops": handlers_replication.OpsHandler,
    "storage": handlers_storage.StatsHandler,
    "storage/compact": handlers_storage.CompactHandler,
    "storage/flush": handlers_storage.FlushHandler,
    "backups": handlers_storage.BackupsHandler,
    "backups/verify": handlers_storage.VerifyBackupHandler,
    "backups/restore": handlers_storage.RestoreBackupHandler,
    "import": handlers_storage.ImportHandler,
    "export": handlers_storage.ExportHandler,
    "changes": feed.ChangesHandler,
    "changes/ws": feed.ChangesSocketHandler,
    "indexes": handlers_search.IndexesHandler,
    "indexes/{name}": handlers_search.IndexHandler,
    "search": handlers_search.SearchHandler,
    "vector-search": handlers_search.VectorSearchHandler,
    "query": handlers_search.QueryHandler,
    "explain": handlers_search.ExplainHandler,
    "node/{node_id}/traverse": handlers_search.TraverseHandler,
    "node/{node_id}/degree": handlers_search.DegreeHandler,
    "path": handlers_search.PathHandler,
    "mesh": handlers_mesh.MeshHandler,
    "mesh/peers": handlers_mesh.PeersHandler,
    "mesh/sync": handlers_mesh.SyncHandler,
    "mesh/logs": handlers_mesh.LogsHandler,
    "mesh/snapshots": handlers_mesh.SnapshotsHandler,
    "profiling/slow": handlers_profiling.SlowOpsHandler,
    "profiling/threshold": handlers_profiling.ThresholdHandler,
    "profiling/large-nodes": handlers_profiling.LargeNodesHandler,
    "profiling/talkers": handlers_profiling.TalkersHandler,
    "profiling/trends": handlers_profiling.TrendsHandler,
    "profiling/suggestions": handlers_profiling.SuggestionsHandler,
    "profiling/suggestions/{suggestion_id}/apply": handlers_profiling.ApplyHandler,
    "profiling/suggestions/{suggestion_id}/dismiss": handlers_profiling.DismissHandler,
    "profiling/reset": handlers_profiling.ResetHandler,
}

TABLE: list[Entry] = [Entry(e.path, e.serves, HANDLERS[e.path]) for e in ENDPOINTS]


def routes(db: Database) -> list[Route]:
    """(pattern, handler, kwargs) for every API route, bound to `db`."""
    return [(entry.pattern, entry.handler, {"db": db}) for entry in TABLE]
