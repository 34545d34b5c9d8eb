"""RemoteDatabase: the embedded Database's API over a PluresDB server's REST API.

Calls go through one `httpx.Client` on kept-alive connections (see _transport.py).
Request bodies travel as msgpack (it keeps bytes, non-string keys and NaN as given, so
the server's engine rejects exactly what it would reject in process), tables as Arrow
IPC, replies as JSON. An error reply raises the same `pluresdb_lab.errors` class the
server's engine raised, so code cannot tell a remote database from an embedded one.

`RemoteDatabase` implements `pluresdb_lab.DatabaseAPI` (where the API is documented)
and `RemoteSnapshot` `SnapshotAPI`. This module loads neither the engine nor the mesh:
its values come from `pluresdb_lab._values`.
"""

from __future__ import annotations

import builtins
import functools
import http.cookiejar
import json
import os
import ssl
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
import msgpack
import numpy as np
import pyarrow as pa

from pluresdb_lab import _wire, errors
from pluresdb_lab._api import DatabaseAPI, SnapshotAPI
from pluresdb_lab._checks import (
    check_callback,
    check_id_list,
    check_op_list,
    epoch_seconds,
    frame_to_table,
    id_string,
    records_kind,
)
from pluresdb_lab._transport import Transport
from pluresdb_lab._values import (
    Backup,
    Change,
    CompactionReport,
    Conflict,
    Direction,
    Hop,
    LargeNode,
    LevelStats,
    Node,
    Op,
    PeerIdentity,
    Progress,
    RecoveryReport,
    SearchHit,
    SearchResult,
    SlowOp,
    StorageStats,
    Subscription,
    Suggestion,
    Talker,
    TrendPoint,
    VectorHit,
    Verification,
    Version,
)

if TYPE_CHECKING:
    import pandas as pd

    from pluresdb_lab.mesh import PeerInfo, SnapshotInfo
    from pluresdb_lab.mesh._log import Entry


def _error_from(response: httpx.Response) -> errors.PluresDBError:
    """The exception an error reply stands for."""
    try:
        body = response.json()
        name, message = body["error"], body["message"]
    except (ValueError, KeyError, TypeError):
        return errors.RemoteError(f"HTTP {response.status_code}: {response.text[:500]}")
    cls = getattr(errors, name, None)
    if isinstance(cls, type) and issubclass(cls, errors.PluresDBError):
        return cls(message)
    return errors.RemoteError(f"HTTP {response.status_code}: {message}")


class _NoCookies(http.cookiejar.CookieJar):
    """Keeps no cookies: the token authenticates every call, and a login cookie sent
    back would only make the server check a second credential on each request."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context for every client: building one loads the CA bundle (tens of ms)."""
    return httpx.create_ssl_context()


def _no_progress(progress: Progress | None) -> None:
    if progress is not None:
        raise errors.InvalidDataError(
            "progress callbacks are not available over HTTP; the call returns when done"
        )


class RemoteDatabase(DatabaseAPI):
    """A database served by `pluresdb serve` or the Jupyter extension.

    Args:
        url: the API base URL (`.../pluresdb/api/`).
        token: the server's token (sent as `Authorization: token ...`).
        timeout: seconds a call may take.
    """

    reports_progress = False  # long calls return when the server is done

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 300.0) -> None:
        self.url = url if url.endswith("/") else url + "/"
        headers = {"Authorization": f"token {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=timeout,
            transport=Transport(_tls_context),
            cookies=_NoCookies(),
        )
        self._feeds: set[_Feed] = set()
        try:  # a server that cannot serve (its database did not open) answers with why
            info = self._json("GET", "")
        except BaseException:
            self._http.close()
            raise
        self.peer_id: str = info["peer_id"]
        self.path = None if info["path"] is None else Path(info["path"])
        self.fsync: str = info["fsync"]
        self.max_node_bytes: int = info["max_node_bytes"]
        # The server answers a larger body 413 and hangs up, which a client still sending
        # may only see as a reset connection: such a body is refused here instead.
        self.max_body_bytes: int | None = info.get("max_body_bytes")
        self.recovery = RecoveryReport(**info["recovery"])
        self.closed = False

    # -- plumbing ----------------------------------------------------------------------

    def _check_open(self) -> None:
        if getattr(self, "closed", False):
            raise errors.DatabaseClosedError(
                "this remote database is closed; connect again with pluresdb_lab.connect()"
            )

    def _send(self, method: str, route: str, *, body: Any = None, **kwargs: Any) -> httpx.Response:
        """One request; `body` (when not None) goes as msgpack."""
        self._check_open()
        if body is not None:
            kwargs["content"] = _pack(body)
            kwargs["headers"] = {**kwargs.get("headers", {}), "Content-Type": _wire.MSGPACK}
        size, limit = len(kwargs.get("content") or b""), getattr(self, "max_body_bytes", None)
        if limit is not None and size > limit:
            raise errors.InvalidDataError(
                f"the request body ({size:,} bytes) is over the server's limit of {limit:,} "
                "bytes; send it in smaller batches, or have the server's operator raise the "
                "limit (`pluresdb serve --max-body-mib N`, `PluresDBApp.max_body_bytes`)"
            )
        try:
            response = self._http.request(method, route, **kwargs)
        except httpx.TransportError as exc:
            raise errors.RemoteError(f"the server at {self.url} cannot be reached: {exc}") from None
        if response.status_code >= 400:
            raise _error_from(response)
        return response

    def _json(self, method: str, route: str, *, body: Any = None, **kwargs: Any) -> Any:
        return self._send(method, route, body=body, **kwargs).json()

    @staticmethod
    def _node_route(node_id: str, tail: str = "") -> str:
        return f"node/{quote(id_string(node_id), safe='')}{tail}"

    def _table(self, route: str, **kwargs: Any) -> pa.Table:
        headers = {"Accept": _wire.ARROW}
        return _wire.table_from_ipc(self._send("GET", route, headers=headers, **kwargs).content)

    @functools.cached_property
    def mesh(self) -> RemoteMesh:
        """The server's mesh: peers, links and snapshots of the served database."""
        return RemoteMesh(self)

    @functools.cached_property
    def profiler(self) -> RemoteProfiler:
        """The served database's profiler: slow ops, large nodes, talkers, trends, advice."""
        return RemoteProfiler(self)

    # -- lifecycle ---------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"<pluresdb_lab.RemoteDatabase {self.url} peer={self.peer_id}>"

    def close(self) -> None:
        """Stop change feeds and close the HTTP connections. Closing twice is harmless."""
        if self.closed:
            return
        for feed in list(self._feeds):
            feed.stop()
        self.closed = True
        self._http.close()

    # -- nodes -------------------------------------------------------------------------

    def put(
        self,
        id: str,
        data: dict[str, Any],
        *,
        type: str | None = None,
        vector: Sequence[float] | np.ndarray[Any, Any] | None = None,
    ) -> Node:
        """Merge `data` into node `id` (None deletes a field); returns the node."""
        if isinstance(vector, np.ndarray):
            vector = vector.tolist()
        body = {"data": data, "type": type, "vector": vector}
        return _wire.node_from_json(self._json("PUT", self._node_route(id), body=body))

    def put_many(
        self,
        records: Iterable[dict[str, Any]] | pd.DataFrame | pa.Table,
        *,
        type: str | None = None,
        id_field: str = "id",
        vector_field: str | None = None,
    ) -> int:
        """Write many nodes in one operation (tables travel as Arrow IPC); returns how many."""
        params = _only(type=type, id_field=id_field, vector_field=vector_field)
        kind = records_kind(records)
        if kind == "dicts":
            reply = self._json("POST", "nodes", body=list(records), params=params)
        else:
            table = records if kind == "table" else frame_to_table(records)
            headers = {"Content-Type": _wire.ARROW}
            content = _wire.table_to_ipc(table)
            reply = self._json("POST", "nodes", content=content, headers=headers, params=params)
        return int(reply["written"])

    def get(self, id: str) -> Node | None:
        """The node with this id, or None."""
        try:
            return _wire.node_from_json(self._json("GET", self._node_route(id)))
        except errors.NotFoundError:
            return None

    def get_many(self, ids: Iterable[str]) -> list[Node | None]:
        """Nodes for `ids`, in the same order, None where absent."""
        check_id_list(ids)
        reply = self._json("POST", "nodes/get", body={"ids": list(ids)})
        return [_wire.maybe_node(n) for n in reply["nodes"]]

    def delete(self, id: str) -> bool:
        """Delete node `id` and its edges; False when there was no such node."""
        return bool(self._json("DELETE", self._node_route(id))["deleted"])

    def count(self, type: str | None = None) -> int:
        """How many nodes (of one type, when given) exist."""
        return int(self._json("GET", "nodes/count", params=_only(type=type))["count"])

    def types(self) -> dict[str | None, int]:
        """Node count per type (None for untyped nodes)."""
        return _wire.types_from_json(self._json("GET", "types")["types"])

    def list(self, type: str | None = None, limit: int = 100, offset: int = 0) -> list[Node]:
        """Nodes sorted by id, `limit` of them from `offset`."""
        params = _only(type=type, limit=limit, offset=offset)
        return [_wire.node_from_json(n) for n in self._json("GET", "nodes", params=params)["nodes"]]

    # -- edges -------------------------------------------------------------------------

    def link(self, src: str, dst: str, label: str, data: dict[str, Any] | None = None) -> Node:
        """Create (or update) the edge `src -[label]-> dst`; both nodes must exist."""
        body = {"src": src, "dst": dst, "label": label, "data": data}
        return _wire.node_from_json(self._json("POST", "edges", body=body))

    def unlink(self, src: str, dst: str, label: str) -> bool:
        """Remove the edge `src -[label]-> dst`; False when there was none."""
        params = _only(src=id_string(src), dst=id_string(dst), label=label)
        return bool(self._json("DELETE", "edges", params=params)["deleted"])

    def neighbors(
        self, id: str, label: str | None = None, direction: Direction = "out"
    ) -> builtins.list[Node]:
        """Nodes one edge away from `id`, sorted by id."""
        route = self._node_route(id, "/neighbors")
        reply = self._json("GET", route, params=_only(label=label, direction=direction))
        return [_wire.node_from_json(n) for n in reply["nodes"]]

    # -- history -----------------------------------------------------------------------

    def history(self, id: str) -> builtins.list[Version]:
        """Every visible version of node `id`, oldest first."""
        reply = self._json("GET", self._node_route(id, "/history"))
        return [_wire.version_from_json(v) for v in reply["versions"]]

    def restore(self, id: str, version: int) -> Node:
        """Make version `version` of node `id` current again (as a new version)."""
        route = self._node_route(id, "/restore")
        return _wire.node_from_json(self._json("POST", route, body={"version": version}))

    def as_of(self, when: datetime | float | int) -> SnapshotAPI:
        """A read-only view of the database as it was at `when` (read on the server)."""
        self._check_open()
        return RemoteSnapshot(self, str(epoch_seconds(when)))

    # -- changes -----------------------------------------------------------------------

    def subscribe(
        self, callback: Callable[[Change], None], *, id: str | None = None, type: str | None = None
    ) -> Subscription:
        """Call `callback(change)` (on a feed thread) after every matching change."""
        self._check_open()
        check_callback(callback, "subscribe")
        feed = _Feed(self, callback, _only(id=id, type=type))
        self._feeds.add(feed)
        feed.start()
        return Subscription(callback, id, type, lambda _: feed.stop())

    # -- analytics ---------------------------------------------------------------------

    def to_arrow(self, type: str | None = None) -> pa.Table:
        """Current nodes as an Arrow table (sent as Arrow IPC)."""
        return self._table("table", params=_only(type=type))

    def sql(
        self, query: str, params: builtins.list[Any] | dict[str, Any] | None = None
    ) -> pa.Table:
        """Run SQL (DuckDB) on the server; the result comes back as Arrow IPC."""
        return _sql(self, query, params, {})

    # -- indexes, search, queries, graph -----------------------------------------------

    def create_index(
        self,
        kind: str,
        *,
        name: str | None = None,
        type: str | None = None,
        fields: str | Sequence[str] | None = None,
        **params: Any,
    ) -> dict[str, Any]:
        """Create and build an index on the server; returns its description."""
        body = {"kind": kind, "name": name, "type": type, "fields": fields, "params": params}
        described: dict[str, Any] = self._json("POST", "indexes", body=body)
        return described

    def drop_index(self, name: str) -> None:
        """Remove an index and its saved files."""
        self._send("DELETE", f"indexes/{quote(name, safe='')}")

    def indexes(self) -> builtins.list[dict[str, Any]]:
        """Every index: definition, entries, build time, memory, queries, latencies."""
        found: builtins.list[dict[str, Any]] = self._json("GET", "indexes")["indexes"]
        return found

    def search(
        self,
        text: str,
        *,
        fields: Sequence[str] | dict[str, float] | None = None,
        type: str | None = None,
        facets: Sequence[Any] | None = None,
        filter: dict[str, Any] | None = None,
        limit: int = 10,
    ) -> SearchResult:
        """BM25 text search on the server."""
        body = {
            "text": text,
            "fields": fields,
            "type": type,
            "facets": facets,
            "filter": filter,
            "limit": limit,
        }
        reply = self._json("POST", "search", body=body)
        hits = [
            SearchHit(h["id"], h["score"], h["snippet"], _wire.node_from_json(h["node"]))
            for h in reply["hits"]
        ]
        return SearchResult(hits, reply["total"], reply["facets"])

    def vector_search(
        self,
        query: Any,
        k: int = 10,
        *,
        filter: dict[str, Any] | None = None,
        index: str | None = None,
    ) -> builtins.list[VectorHit]:
        """The k nodes nearest to `query` (a vector, a node id, or text)."""
        if isinstance(query, np.ndarray):
            query = query.tolist()
        body = {"query": query, "k": k, "filter": filter, "index": index}
        reply = self._json("POST", "vector-search", body=body)
        return [
            VectorHit(h["id"], h["score"], _wire.node_from_json(h["node"])) for h in reply["hits"]
        ]

    def query(self, spec: dict[str, Any]) -> pa.Table:
        """Run a query spec on the server; the result comes back as Arrow IPC."""
        response = self._send("POST", "query", body=spec, headers={"Accept": _wire.ARROW})
        return _wire.table_from_ipc(response.content)

    def explain(self, spec: dict[str, Any]) -> dict[str, Any]:
        """How the server would run a query spec (which index serves it)."""
        plan: dict[str, Any] = self._json("POST", "explain", body=spec)
        return plan

    def traverse(
        self, start: str, depth: int, label: str | None = None, direction: Direction = "out"
    ) -> builtins.list[Hop]:
        """Nodes within `depth` edges of `start` (breadth first)."""
        params = _only(depth=depth, label=label, direction=direction)
        reply = self._json("GET", self._node_route(start, "/traverse"), params=params)
        return [Hop(h["id"], h["depth"], h["parent"]) for h in reply["hops"]]

    def shortest_path(
        self, a: str, b: str, *, label: str | None = None, direction: Direction = "out"
    ) -> builtins.list[str] | None:
        """Ids on a shortest path from a to b, or None if unreachable."""
        params = _only(a=id_string(a), b=id_string(b), label=label, direction=direction)
        path: builtins.list[str] | None = self._json("GET", "path", params=params)["path"]
        return path

    def degree(self, id: str, *, label: str | None = None, direction: Direction = "both") -> int:
        """How many edges touch node `id`."""
        params = _only(label=label, direction=direction)
        return int(self._json("GET", self._node_route(id, "/degree"), params=params)["degree"])

    # -- replication and conflicts -----------------------------------------------------

    def version_vector(self) -> dict[str, int]:
        """peer id -> highest sequence number applied from it."""
        return dict(self._json("GET", "version-vector")["version_vector"])

    def ops_since(self, version_vector: dict[str, int] | None = None) -> builtins.list[Op]:
        """Every op the server holds that `version_vector` does not cover."""
        body = msgpack.packb({"since": version_vector}, use_bin_type=True)
        response = self._send("POST", "ops", content=body, headers={"Content-Type": _wire.MSGPACK})
        ops: builtins.list[Op] = msgpack.unpackb(response.content, raw=False)
        return ops

    def apply_ops(self, ops: Iterable[Op]) -> int:
        """Apply ops from peers on the server; returns how many were applied now."""
        check_op_list(ops)
        body = msgpack.packb(list(ops), use_bin_type=True)
        headers = {"Content-Type": _wire.MSGPACK}
        return int(self._json("PUT", "ops", content=body, headers=headers)["applied"])

    def conflicts(self, id: str | None = None) -> builtins.list[Conflict]:
        """Concurrent writes that last-writer-wins resolved, with both sides."""
        reply = self._json("GET", "conflicts", params=_only(id=id))
        return [_wire.conflict_from_json(c) for c in reply["conflicts"]]

    def resolve_conflict(self, conflict_id: str, choose: str = "winner") -> Node:
        """Settle a conflict by writing the chosen side's value ("winner" or "loser")."""
        route = f"conflicts/{quote(conflict_id, safe='')}/resolve"
        return _wire.node_from_json(self._json("POST", route, body={"choose": choose}))

    # -- storage -----------------------------------------------------------------------

    def flush(self) -> None:
        """Write the server's memtable into a segment now."""
        self._send("POST", "storage/flush")

    def storage_stats(self) -> StorageStats:
        """Sizes, levels and amplification of the server's storage, measured now."""
        body = self._json("GET", "storage")
        body["levels"] = [LevelStats(**level) for level in body["levels"]]
        return StorageStats(**body)

    def compact(
        self, level: int | None = None, *, progress: Progress | None = None
    ) -> CompactionReport:
        """Compact the server's storage now (None: a full compaction)."""
        _no_progress(progress)
        return CompactionReport(**self._json("POST", "storage/compact", body={"level": level}))

    def backup(
        self,
        dest: str | os.PathLike[str],
        *,
        incremental: bool = False,
        progress: Progress | None = None,
    ) -> Backup:
        """Back the database up into the folder `dest` on the server's machine."""
        _no_progress(progress)
        body = {"dest": str(dest), "incremental": incremental}
        return _wire.backup_from_json(self._json("POST", "backups", body=body))

    def backups(self, dest: str | os.PathLike[str]) -> builtins.list[Backup]:
        """The backups in `dest` (on the server's machine), oldest first."""
        reply = self._json("GET", "backups", params={"dest": str(dest)})
        return [_wire.backup_from_json(b) for b in reply["backups"]]

    def verify_backup(self, path: str | os.PathLike[str]) -> Verification:
        """Check the backup in the folder `path` on the server's machine."""
        reply = self._json("POST", "backups/verify", body={"path": str(path)})
        backup = reply["backup"]
        return Verification(
            ok=bool(reply["ok"]),
            problems=list(reply["problems"]),
            backup=None if backup is None else _wire.backup_from_json(backup),
            files_checked=int(reply["files_checked"]),
        )

    def restore_backup(
        self,
        path: str | os.PathLike[str],
        into: str | os.PathLike[str],
        *,
        overwrite: bool = False,
        progress: Progress | None = None,
    ) -> Path:
        """Restore a backup on the server's machine (never into the served folder)."""
        _no_progress(progress)
        body = {"path": str(path), "into": str(into), "overwrite": overwrite}
        return Path(self._json("POST", "backups/restore", body=body)["path"])

    def import_file(
        self,
        path: str | os.PathLike[str],
        format: str | None = None,
        *,
        type: str | None = None,
        id_field: str | None = None,
        mapping: dict[str, str | None] | None = None,
        progress: Progress | None = None,
    ) -> int:
        """Import a file on the server's machine, all or nothing; returns nodes written."""
        _no_progress(progress)
        body = {
            "path": str(path),
            "format": format,
            "type": type,
            "id_field": id_field,
            "mapping": mapping,
        }
        return int(self._json("POST", "import", body=body)["imported"])

    def export(
        self,
        path: str | os.PathLike[str],
        format: str | None = None,
        *,
        type: str | None = None,
        query: str | None = None,
    ) -> int:
        """Export nodes (or a SQL result) to a file on the server's machine; returns rows."""
        body = {"path": str(path), "format": format, "type": type, "query": query}
        return int(self._json("POST", "export", body=body)["exported"])


class RemoteSnapshot(SnapshotAPI):
    """A read-only view of a remote database as it was at a moment (`as_of`): each
    call reads the server's database with `?as_of=`."""

    def __init__(self, db: RemoteDatabase, when: str) -> None:
        self._db = db
        self._when = when
        self.time = datetime.fromtimestamp(float(when), UTC)

    def get(self, id: str) -> Node | None:
        try:
            reply = self._db._json("GET", self._db._node_route(id), params={"as_of": self._when})
        except errors.NotFoundError:
            return None
        return _wire.node_from_json(reply)

    def list(
        self, type: str | None = None, limit: int = 100, offset: int = 0
    ) -> builtins.list[Node]:
        params = _only(type=type, limit=limit, offset=offset, as_of=self._when)
        return [
            _wire.node_from_json(n) for n in self._db._json("GET", "nodes", params=params)["nodes"]
        ]

    def count(self, type: str | None = None) -> int:
        params = _only(type=type, as_of=self._when)
        return int(self._db._json("GET", "nodes/count", params=params)["count"])

    def types(self) -> dict[str | None, int]:
        return _wire.types_from_json(
            self._db._json("GET", "types", params={"as_of": self._when})["types"]
        )

    def to_arrow(self, type: str | None = None) -> pa.Table:
        return self._db._table("table", params=_only(type=type, as_of=self._when))

    def sql(
        self, query: str, params: builtins.list[Any] | dict[str, Any] | None = None
    ) -> pa.Table:
        return _sql(self._db, query, params, {"as_of": self._when})


class RemoteMesh:
    """The mesh of a served database, with the calls of `pluresdb_lab.mesh.Mesh`."""

    def __init__(self, db: RemoteDatabase) -> None:
        self._db = db

    @property
    def identity(self) -> PeerIdentity:
        """The served database's peer id and public key."""
        info = self._db._json("GET", "mesh")
        return PeerIdentity(info["peer_id"], info["public_key"])

    @property
    def paused(self) -> bool:
        return bool(self._db._json("GET", "mesh")["paused"])

    def peers(self) -> builtins.list[PeerInfo]:
        """Every link with its state and counters."""
        found: builtins.list[PeerInfo] = self._db._json("GET", "mesh")["peers"]
        return found

    def connect(self, url: str, *, peer_id: str | None = None) -> None:
        """Have the server keep a link to the peer at `url`."""
        self._db._send("POST", "mesh/peers", body={"url": url, "peer_id": peer_id})

    def disconnect(self, peer_id: str) -> None:
        """Have the server close its links to `peer_id`."""
        self._db._send("DELETE", "mesh/peers", params=_only(peer_id=peer_id))

    def sync(self, peer_id: str | None = None) -> None:
        """Run a sync round with one peer, or all."""
        self._db._send("POST", "mesh/sync", body={"peer_id": peer_id})

    def pause(self) -> None:
        self._db._send("PUT", "mesh", body={"paused": True})

    def resume(self) -> None:
        self._db._send("PUT", "mesh", body={"paused": False})

    def logs(self, limit: int = 200, level: str | None = None) -> builtins.list[Entry]:
        """The newest mesh log entries."""
        params = _only(limit=limit, level=level)
        entries: builtins.list[Entry] = self._db._json("GET", "mesh/logs", params=params)["entries"]
        return entries

    def snapshot(self) -> SnapshotInfo:
        """Take a snapshot on the server now."""
        info: SnapshotInfo = self._db._json("POST", "mesh/snapshots")
        return info

    def snapshots(self) -> builtins.list[SnapshotInfo]:
        found: builtins.list[SnapshotInfo] = self._db._json("GET", "mesh/snapshots")["snapshots"]
        return found

    def delete_snapshot(self, snapshot_id: str) -> None:
        self._db._send("DELETE", "mesh/snapshots", params=_only(id=snapshot_id))


class _Feed:
    """The server's change feed (server-sent events) read on a thread into a callback."""

    def __init__(
        self, db: RemoteDatabase, callback: Callable[[Change], None], params: dict[str, str]
    ) -> None:
        self._db = db
        self._callback = callback
        self._params = params
        self._ready = threading.Event()
        self._failure: errors.PluresDBError | None = None
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="pluresdb-feed", daemon=True)

    def start(self) -> None:
        """Start reading; returns once the server's subscription is in place."""
        self._thread.start()
        self._ready.wait(30)
        if self._failure is not None:
            raise self._failure
        if not self._ready.is_set():
            self.stop()
            raise errors.RemoteError("the change feed did not start within 30 s")

    def _run(self) -> None:
        timeout = httpx.Timeout(10.0, read=None)
        try:
            with self._db._http.stream(
                "GET", "changes", params=self._params, timeout=timeout
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    self._failure = _error_from(response)
                    return
                self._read(response)
        except httpx.HTTPError as exc:
            if not self._stopped:
                self._failure = errors.RemoteError(f"the change feed broke: {exc}")
        finally:
            self._ready.set()
            self._db._feeds.discard(self)

    def _read(self, response: httpx.Response) -> None:
        event = ""
        for line in response.iter_lines():
            if self._stopped:
                return
            if line.startswith("event: "):
                event = line[len("event: ") :]
            elif line.startswith("data: "):
                if event == "ready":
                    self._ready.set()
                elif event == "change":
                    self._callback(_wire.change_from_json(json.loads(line[len("data: ") :])))

    def stop(self) -> None:
        """Stop delivering now; the thread ends at the server's next event or keepalive."""
        self._stopped = True
        self._db._feeds.discard(self)


ID_PARAMS = frozenset({"id", "a", "b", "src", "dst", "peer_id"})
INT_PARAMS = frozenset({"limit", "offset", "depth"})


def _only(**params: Any) -> dict[str, str]:
    """Query parameters, leaving out those that are None.

    A query string flattens every value to text, so the types are checked here, where
    `count(5)` can still be told from `count("5")`: integers where integers belong,
    strings elsewhere (a bad node id raises InvalidIdError, anything else
    InvalidDataError), as the engine checks its arguments.
    """
    query = {}
    for name, value in params.items():
        if value is None:
            continue
        if name in INT_PARAMS:
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise errors.InvalidDataError(
                    f"{name} is an integer, got {type(value).__name__}: {value!r:.60}"
                )
        elif not isinstance(value, str):
            cls = errors.InvalidIdError if name in ID_PARAMS else errors.InvalidDataError
            raise cls(f"{name} is a string, got {type(value).__name__}: {value!r:.60}")
        query[name] = str(value)
    return query


def _pack_default(value: Any) -> Any:
    if isinstance(value, np.generic):  # numpy scalars from DataFrames and arrays
        return value.item()
    raise errors.InvalidDataError(
        f"{type(value).__name__} value {value!r:.60} is not JSON; use str, int, float, bool, "
        "None, list or dict"
    )


def _pack(value: Any) -> bytes:
    """A request body as msgpack; what msgpack cannot hold raises InvalidDataError."""
    try:
        packed: bytes = msgpack.packb(value, use_bin_type=True, default=_pack_default)
    except errors.PluresDBError:
        raise
    except OverflowError:
        raise errors.InvalidDataError(
            "an integer is outside the 64-bit range; store it as a string"
        ) from None
    except (TypeError, ValueError) as exc:
        raise errors.InvalidDataError(f"the value cannot be sent: {exc}") from None
    return packed


def _sql(
    db: RemoteDatabase,
    query: str,
    params: builtins.list[Any] | dict[str, Any] | None,
    where: dict[str, str],
) -> pa.Table:
    if not isinstance(query, str):
        raise errors.InvalidDataError("sql() needs a query string")
    body = {"query": query, "params": params}
    response = db._send("POST", "sql", body=body, headers={"Accept": _wire.ARROW}, params=where)
    return _wire.table_from_ipc(response.content)


class RemoteProfiler:
    """The profiler of a served database, with the calls of `engine.Profiler`."""

    def __init__(self, db: RemoteDatabase) -> None:
        self._db = db

    @property
    def slow_threshold_ms(self) -> float:
        """Operations taking at least this many milliseconds are slow."""
        return float(self._db._json("GET", "profiling/threshold")["slow_threshold_ms"])

    @slow_threshold_ms.setter
    def slow_threshold_ms(self, value: float) -> None:
        self._db._send("PUT", "profiling/threshold", body={"slow_threshold_ms": value})

    def slow_ops(self, limit: int = 100) -> builtins.list[SlowOp]:
        """The newest `limit` slow operations, newest first."""
        reply = self._db._json("GET", "profiling/slow", params=_only(limit=limit))
        return [SlowOp(**op) for op in reply["ops"]]

    def large_nodes(self, limit: int = 20) -> builtins.list[LargeNode]:
        """The largest nodes read or written since the server's profiler started."""
        reply = self._db._json("GET", "profiling/large-nodes", params=_only(limit=limit))
        return [LargeNode(**node) for node in reply["nodes"]]

    def top_talkers(self, limit: int = 10) -> builtins.list[Talker]:
        """The server's peers by bytes their mesh links carried."""
        reply = self._db._json("GET", "profiling/talkers", params=_only(limit=limit))
        return [Talker(**talker) for talker in reply["talkers"]]

    def trends(self, window_s: float = 300) -> builtins.list[TrendPoint]:
        """One point per second that had operations, over the last `window_s` seconds."""
        if isinstance(window_s, bool) or not isinstance(window_s, (int, float)):
            raise errors.InvalidDataError(f"window_s is a finite number > 0, got {window_s!r}")
        params = {"window": repr(float(window_s))}  # the server checks the value
        reply = self._db._json("GET", "profiling/trends", params=params)
        return [TrendPoint(**point) for point in reply["points"]]

    def suggestions(self) -> builtins.list[Suggestion]:
        """What the server's measurements suggest doing, most urgent first."""
        reply = self._db._json("GET", "profiling/suggestions")
        return [Suggestion(**suggestion) for suggestion in reply["suggestions"]]

    def apply(self, suggestion_id: str) -> dict[str, Any]:
        """Do what a suggestion says; returns what was done."""
        done: dict[str, Any] = self._db._json("POST", self._route(suggestion_id, "apply"))
        return done

    def dismiss(self, suggestion_id: str) -> None:
        """Stop offering a suggestion."""
        self._db._send("POST", self._route(suggestion_id, "dismiss"))

    def reset(self) -> None:
        """Forget every measurement and dismissal on the server."""
        self._db._send("POST", "profiling/reset")

    @staticmethod
    def _route(suggestion_id: str, action: str) -> str:
        if not isinstance(suggestion_id, str) or not suggestion_id:
            raise errors.InvalidDataError(f"a suggestion id is a string, got {suggestion_id!r}")
        return f"profiling/suggestions/{quote(suggestion_id, safe='')}/{action}"
