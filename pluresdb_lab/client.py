"""RemoteDatabase: the embedded Database's API over a PluresDB server's REST API.

Calls go through one `httpx.Client` on kept-alive connections (see _transport.py).
Request bodies travel as msgpack (it keeps bytes, non-string keys and NaN as given, so
the server's engine rejects exactly what it would reject in process), tables as Arrow
IPC, replies as JSON. An error reply raises the same `pluresdb_lab.errors` class the
server's engine raised, so code cannot tell a remote database from an embedded one.

`RemoteDatabase` implements `pluresdb_lab.DatabaseAPI` (where the API is documented),
`RemoteSnapshot` `SnapshotAPI`, `RemoteMesh` `MeshAPI` and `RemoteProfiler`
`ProfilerAPI`. Their methods are derived from the route table and the interface's
signatures (`_derive`: `derive` adds them when the class is made), except these,
written here because their wire shape is not the regular one:

- `RemoteDatabase.close`: ends the client's own connections and feeds; no route.
- `RemoteDatabase.put_many`: the records are the body (msgpack, or Arrow IPC for a
  table or DataFrame), the options go in the query.
- `RemoteDatabase.subscribe`: a stream of server-sent events, read on a thread.
- `RemoteDatabase.as_of`: a `RemoteSnapshot`, whose reads send `?as_of=`.
- `RemoteDatabase.ops_since`, `RemoteDatabase.apply_ops`: ops hold bytes, so they
  travel as msgpack both ways, the ops themselves rather than an object of arguments.
- `RemoteDatabase.query`, `RemoteDatabase.explain`: the body is the query spec itself.
- `RemoteDatabase.mesh`, `RemoteDatabase.profiler`: the objects below.
- `RemoteMesh.identity`, `RemoteMesh.paused`: properties, read from `GET mesh`.
- `RemoteMesh.pause`, `RemoteMesh.resume`: one route sets the state (`mesh.set_paused`).
- `RemoteMesh.delete_snapshot`: the query names `snapshot_id` `id`.
- `RemoteProfiler.slow_threshold_ms`: a property, read and set.
- `RemoteProfiler.trends`: the query names `window_s` `window`.

This module loads neither the engine, the mesh nor the server: its values come from
`pluresdb_lab._values`, its routes from `pluresdb_lab._routes`.
"""

from __future__ import annotations

import builtins
import functools
import http.cookiejar
import json
import ssl
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import msgpack
import numpy as np
import pyarrow as pa

from pluresdb_lab import _wire, errors
from pluresdb_lab._api import DatabaseAPI, MeshAPI, ProfilerAPI, SnapshotAPI
from pluresdb_lab._checks import (
    check_callback,
    check_op_list,
    epoch_seconds,
    frame_to_table,
    records_kind,
)
from pluresdb_lab._derive import Call, derive, query_text
from pluresdb_lab._transport import Transport
from pluresdb_lab._values import Change, Op, PeerIdentity, RecoveryReport, Subscription, TrendPoint

if TYPE_CHECKING:
    import pandas as pd


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


@derive(DatabaseAPI)
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

    def _call(self, call: Call, values: dict[str, Any], as_of: str | None = None) -> Any:
        """Make a derived call (`_derive`), reading the state at `as_of` when given."""
        route, params, body = call.request(values)
        if as_of is not None:
            params["as_of"] = as_of
        options: dict[str, Any] = {}
        if params:
            options["params"] = params
        if call.headers:
            options["headers"] = call.headers
        try:
            response = self._send(call.verb, route, body=body, **options)
        except errors.NotFoundError:
            if call.none_if_missing:
                return None
            raise
        return call.result(response.content)

    @functools.cached_property
    def mesh(self) -> RemoteMesh:
        """The server's mesh: peers, links and snapshots of the served database."""
        return RemoteMesh(self)

    @functools.cached_property
    def profiler(self) -> RemoteProfiler:
        """The served database's profiler: slow ops, large nodes, talkers, trends, advice."""
        return RemoteProfiler(self)

    # -- written by hand (see the module's docstring) ------------------------------------

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

    def put_many(
        self,
        records: Iterable[dict[str, Any]] | pd.DataFrame | pa.Table,
        *,
        type: str | None = None,
        id_field: str = "id",
        vector_field: str | None = None,
    ) -> int:
        """Write many nodes in one operation (tables travel as Arrow IPC); returns how many."""
        params = _texts(type=type, id_field=id_field, vector_field=vector_field)
        kind = records_kind(records)
        if kind == "dicts":
            reply = self._json("POST", "nodes", body=list(records), params=params)
        else:
            table = records if kind == "table" else frame_to_table(records)
            headers = {"Content-Type": _wire.ARROW}
            content = _wire.table_to_ipc(table)
            reply = self._json("POST", "nodes", content=content, headers=headers, params=params)
        return int(reply["written"])

    def as_of(self, when: datetime | float | int) -> SnapshotAPI:
        """A read-only view of the database as it was at `when` (read on the server)."""
        self._check_open()
        return RemoteSnapshot(self, str(epoch_seconds(when)))

    def subscribe(
        self, callback: Callable[[Change], None], *, id: str | None = None, type: str | None = None
    ) -> Subscription:
        """Call `callback(change)` (on a feed thread) after every matching change."""
        self._check_open()
        check_callback(callback, "subscribe")
        feed = _Feed(self, callback, _texts(id=id, type=type))
        self._feeds.add(feed)
        feed.start()
        return Subscription(callback, id, type, lambda _: feed.stop())

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

    def query(self, spec: dict[str, Any]) -> pa.Table:
        """Run a query spec on the server; the result comes back as Arrow IPC."""
        response = self._send("POST", "query", body=spec, headers={"Accept": _wire.ARROW})
        return _wire.table_from_ipc(response.content)

    def explain(self, spec: dict[str, Any]) -> dict[str, Any]:
        """How the server would run a query spec (which index serves it)."""
        plan: dict[str, Any] = self._json("POST", "explain", body=spec)
        return plan

    if TYPE_CHECKING:  # made by `derive` with the class; named here for the type checker
        put = DatabaseAPI.put
        get = DatabaseAPI.get
        get_many = DatabaseAPI.get_many
        delete = DatabaseAPI.delete
        count = DatabaseAPI.count
        types = DatabaseAPI.types
        list = DatabaseAPI.list
        link = DatabaseAPI.link
        unlink = DatabaseAPI.unlink
        neighbors = DatabaseAPI.neighbors
        history = DatabaseAPI.history
        restore = DatabaseAPI.restore
        diff = DatabaseAPI.diff
        crdt_state = DatabaseAPI.crdt_state
        conflicts = DatabaseAPI.conflicts
        resolve_conflict = DatabaseAPI.resolve_conflict
        to_arrow = DatabaseAPI.to_arrow
        sql = DatabaseAPI.sql
        version_vector = DatabaseAPI.version_vector
        flush = DatabaseAPI.flush
        storage_stats = DatabaseAPI.storage_stats
        compact = DatabaseAPI.compact
        backup = DatabaseAPI.backup
        backups = DatabaseAPI.backups
        verify_backup = DatabaseAPI.verify_backup
        restore_backup = DatabaseAPI.restore_backup
        import_file = DatabaseAPI.import_file
        export = DatabaseAPI.export
        create_index = DatabaseAPI.create_index
        drop_index = DatabaseAPI.drop_index
        indexes = DatabaseAPI.indexes
        search = DatabaseAPI.search
        vector_search = DatabaseAPI.vector_search
        traverse = DatabaseAPI.traverse
        shortest_path = DatabaseAPI.shortest_path
        degree = DatabaseAPI.degree


@derive(SnapshotAPI, as_of=True)
class RemoteSnapshot(SnapshotAPI):
    """A read-only view of a remote database as it was at a moment (`as_of`): each
    call reads the server's database with `?as_of=`."""

    def __init__(self, db: RemoteDatabase, when: str) -> None:
        self._db = db
        self._when = when
        self.time = datetime.fromtimestamp(float(when), UTC)

    def _call(self, call: Call, values: dict[str, Any]) -> Any:
        return self._db._call(call, values, as_of=self._when)

    if TYPE_CHECKING:  # made by `derive` with the class; named here for the type checker
        get = SnapshotAPI.get
        list = SnapshotAPI.list
        count = SnapshotAPI.count
        types = SnapshotAPI.types
        to_arrow = SnapshotAPI.to_arrow
        sql = SnapshotAPI.sql


@derive(MeshAPI, owner="mesh")
class RemoteMesh(MeshAPI):
    """The mesh of a served database, with the calls of `pluresdb_lab.mesh.Mesh`."""

    def __init__(self, db: RemoteDatabase) -> None:
        self._db = db

    def _call(self, call: Call, values: dict[str, Any]) -> Any:
        return self._db._call(call, values)

    @property
    def identity(self) -> PeerIdentity:
        """The served database's peer id and public key."""
        info = self._db._json("GET", "mesh")
        return PeerIdentity(info["peer_id"], info["public_key"])

    @property
    def paused(self) -> bool:
        return bool(self._db._json("GET", "mesh")["paused"])

    def pause(self) -> None:
        self._db._send("PUT", "mesh", body={"paused": True})

    def resume(self) -> None:
        self._db._send("PUT", "mesh", body={"paused": False})

    def delete_snapshot(self, snapshot_id: str) -> None:
        params = {"id": query_text("snapshot_id", snapshot_id)}
        self._db._send("DELETE", "mesh/snapshots", params=params)

    if TYPE_CHECKING:  # made by `derive` with the class; named here for the type checker
        peers = MeshAPI.peers
        connect = MeshAPI.connect
        disconnect = MeshAPI.disconnect
        sync = MeshAPI.sync
        logs = MeshAPI.logs
        snapshot = MeshAPI.snapshot
        snapshots = MeshAPI.snapshots


@derive(ProfilerAPI, owner="profiler")
class RemoteProfiler(ProfilerAPI):
    """The profiler of a served database, with the calls of `engine.Profiler`."""

    def __init__(self, db: RemoteDatabase) -> None:
        self._db = db

    def _call(self, call: Call, values: dict[str, Any]) -> Any:
        return self._db._call(call, values)

    @property
    def slow_threshold_ms(self) -> float:
        """Operations taking at least this many milliseconds are slow."""
        return float(self._db._json("GET", "profiling/threshold")["slow_threshold_ms"])

    @slow_threshold_ms.setter
    def slow_threshold_ms(self, value: float) -> None:
        self._db._send("PUT", "profiling/threshold", body={"slow_threshold_ms": value})

    def trends(self, window_s: float = 300) -> builtins.list[TrendPoint]:
        """One point per second that had operations, over the last `window_s` seconds."""
        if isinstance(window_s, bool) or not isinstance(window_s, (int, float)):
            raise errors.InvalidDataError(f"window_s is a finite number > 0, got {window_s!r}")
        params = {"window": repr(float(window_s))}  # the server checks the value
        reply = self._db._json("GET", "profiling/trends", params=params)
        return [TrendPoint(**point) for point in reply["points"]]

    if TYPE_CHECKING:  # made by `derive` with the class; named here for the type checker
        slow_ops = ProfilerAPI.slow_ops
        large_nodes = ProfilerAPI.large_nodes
        top_talkers = ProfilerAPI.top_talkers
        suggestions = ProfilerAPI.suggestions
        apply = ProfilerAPI.apply
        dismiss = ProfilerAPI.dismiss
        reset = ProfilerAPI.reset


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


def _texts(**values: object) -> dict[str, str]:
    """String arguments as query parameters, leaving out those that are None."""
    return {name: query_text(name, v) for name, v in values.items() if v is not None}


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
