"""The URL table of the REST API, shared by the Jupyter extension and `pluresdb serve`:
the routes of `_routes.ENDPOINTS`, each with the handler class that serves it.

Every verb of a route is served by `derived.DerivedHandler`, from the endpoint and the
signature of the method it serves, so adding a route is one endpoint in `_routes`; the
OpenAPI document (`openapi`) and the remote client (`_derive`) follow from it too.
These are written by hand (`handlers`, `feed`), because their wire shape is not the
regular one (the client writes the same calls by hand, see `client`):

- `info`, `openapi`: not methods of the API: what the server is, and the API document.
- `put_many`: the records are the body (JSON or msgpack records, or Arrow IPC), the
  options are in the query.
- `version_vector`: the reply also carries the server's peer id, which a replicating
  client needs with it.
- `ops_since`, `apply_ops`: ops hold bytes, so they travel as msgpack both ways, the
  ops themselves rather than an object of arguments.
- `subscribe`: a stream of server-sent events (and the same events over a WebSocket at
  `changes/ws`).
- `query`, `explain`: the body is the query spec itself.
- `mesh.peers`: one read of the mesh, its identity and whether it is paused with its
  links.
- `mesh.set_paused`: `pause()` and `resume()` as one state.
- `mesh.delete_snapshot`: the query names `snapshot_id` `id`.
- `profiler.slow_threshold_ms`, `profiler.set_slow_threshold_ms`: a property, read and
  set.
- `profiler.trends`: the query names `window_s` `window`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tornado.web import RequestHandler

from pluresdb_lab._database import Database
from pluresdb_lab._routes import ENDPOINTS, SEGMENT, Endpoint
from pluresdb_lab.server import feed, handlers
from pluresdb_lab.server.derived import DerivedHandler, Served
from pluresdb_lab.server.operations import method

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

    def derived(self, verb: str) -> bool:
        """Whether `verb` is served by `DerivedHandler`, not written by hand."""
        own = getattr(self.handler, verb.lower(), None)
        return issubclass(self.handler, DerivedHandler) and own is getattr(
            DerivedHandler, verb.lower()
        )


WRITTEN: dict[str, type[RequestHandler]] = {
    "": handlers.InfoHandler,
    "openapi.json": handlers.OpenApiHandler,
    "nodes": handlers.NodesHandler,
    "version-vector": handlers.VersionVectorHandler,
    "ops": handlers.OpsHandler,
    "changes": feed.ChangesHandler,
    "changes/ws": feed.ChangesSocketHandler,
    "query": handlers.QueryHandler,
    "explain": handlers.ExplainHandler,
    "mesh": handlers.MeshHandler,
    "mesh/snapshots": handlers.SnapshotsHandler,
    "profiling/threshold": handlers.ThresholdHandler,
    "profiling/trends": handlers.TrendsHandler,
}
"""The paths with a verb written by hand (see the module's docstring)."""

TABLE: list[Entry] = [
    Entry(e.path, e.serves, WRITTEN.get(e.path, DerivedHandler)) for e in ENDPOINTS
]


def served(entry: Entry) -> dict[str, Served]:
    """How `DerivedHandler` serves each derived verb of `entry`."""
    found = {}
    for verb, serves in entry.serves.items():
        if not entry.derived(verb):
            continue
        fn = method(serves.method)
        if fn is None:
            raise TypeError(f"{serves.method} is no method of the API: write its handler")
        found[verb] = Served(fn, entry, serves, verb)
    return found


def routes(db: Database) -> list[Route]:
    """(pattern, handler, kwargs) for every API route, bound to `db`."""
    return [
        (
            entry.pattern,
            entry.handler,
            {"db": db, "served": served(entry)}
            if issubclass(entry.handler, DerivedHandler)
            else {"db": db},
        )
        for entry in TABLE
    ]
