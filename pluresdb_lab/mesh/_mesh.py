"""`Mesh`: the public face of peer sync for one database (`db.mesh`)."""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypedDict, TypeVar

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application

from pluresdb_lab._values import PeerIdentity, Subscription
from pluresdb_lab.engine import Database
from pluresdb_lab.errors import MeshError
from pluresdb_lab.mesh import _snapshots
from pluresdb_lab.mesh._dialer import Dialer
from pluresdb_lab.mesh._discovery import Discovered, Discovery
from pluresdb_lab.mesh._handshake import Policy
from pluresdb_lab.mesh._link import Direction, Link, Progress, SendState, State
from pluresdb_lab.mesh._log import LEVELS, Entry, MeshLog
from pluresdb_lab.mesh._loop import EventLoop
from pluresdb_lab.mesh._snapshots import SnapshotInfo
from pluresdb_lab.mesh._sockets import PATH, MeshSocketHandler

T = TypeVar("T")
LIVE_CHUNK = 1024  # live ops per frame


class PeerInfo(TypedDict):
    """One row of `Mesh.peers()`: a link's state and counters (reset on reconnect).

    Bytes are msgpack frame payloads; rates average the last 10 whole seconds;
    `last_seen` is the epoch time of the last frame received; `sync_progress` counts the
    ops of the latest catch-up: `received` (applied) of `to_receive`, `sent` of `to_send`.
    `send_buffer_bytes` is what the peer has not read yet (at most the mesh's
    `send_buffer_bytes`); `send_state` is "held-back" while live ops wait for it to read,
    "catching-up" while the ops it missed go out by version vector, else "streaming".
    """

    peer_id: str | None
    url: str | None
    direction: Direction
    state: State
    bytes_in: int
    bytes_out: int
    messages_in: int
    messages_out: int
    bytes_in_per_s: float
    bytes_out_per_s: float
    messages_in_per_s: float
    messages_out_per_s: float
    rtt_ms: float | None
    ops_sent: int
    ops_received: int
    last_seen: float | None
    sync_progress: Progress
    send_state: SendState
    send_buffer_bytes: int
    last_error: str | None


class Mesh:
    """Authenticated peer-to-peer sync of one database over WebSockets.

    Args:
        db: the database to sync.
        secret: a shared mesh secret (str or bytes); peers that prove it are accepted.
        allow: peer ids accepted without the secret.
        max_frame_bytes: the largest frame sent or accepted.
        heartbeat_s: seconds between pings; a link silent for three is closed.
        send_buffer_bytes: the most a link buffers for a peer that does not read; past
            it live ops wait for the peer and follow by version vector.
        send_timeout_s: a link whose peer reads nothing for this long is closed.
        certfile, keyfile: a TLS certificate and key: `listen` then serves wss://.
        cafile: certificates that wss:// peers' certificates are checked against.
        snapshot_dir: where snapshots go (default: the database folder's `snapshots`).
        discovery: advertise and find peers on the LAN over zeroconf while listening.
        discovery_interfaces: the addresses zeroconf uses (default: all interfaces).
        loop: a running asyncio loop to use (a server's); by default the mesh starts
            its own loop thread on first use.
    """

    def __init__(
        self,
        db: Database,
        *,
        secret: str | bytes | None = None,
        allow: Iterable[str] = (),
        max_frame_bytes: int = 32 << 20,
        heartbeat_s: float = 5.0,
        send_buffer_bytes: int = 4 << 20,
        send_timeout_s: float = 30.0,
        certfile: str | None = None,
        keyfile: str | None = None,
        cafile: str | None = None,
        snapshot_dir: str | Path | None = None,
        discovery: bool = False,
        discovery_interfaces: Iterable[str] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.db = db
        self.log = MeshLog()
        self.paused = False
        self.secret: bytes | None = None
        self.allowed: set[str] = set()
        self.max_frame_bytes = 0
        self.heartbeat_s = 0.0
        self.send_buffer_bytes = 0
        self.send_timeout_s = 0.0
        self.certfile: str | None = None
        self.keyfile: str | None = None
        self.cafile: str | None = None
        self.discovery = False
        self.discovery_interfaces: list[str] | None = None
        self._discovery: Discovery | None = None
        self._advertised: tuple[str, int, bool] | None = None  # first listen: host, port, tls
        self.configure(
            secret=secret,
            allow=allow,
            max_frame_bytes=max_frame_bytes,
            heartbeat_s=heartbeat_s,
            send_buffer_bytes=send_buffer_bytes,
            send_timeout_s=send_timeout_s,
            certfile=certfile,
            keyfile=keyfile,
            cafile=cafile,
            discovery=discovery,
            discovery_interfaces=discovery_interfaces,
        )
        if snapshot_dir is None and db.path is not None:
            snapshot_dir = db.path / "snapshots"
        self.snapshot_dir = Path(snapshot_dir) if snapshot_dir is not None else None
        self._given_loop = loop
        self._loop: EventLoop | None = None
        self._links: dict[str, Link] = {}  # "out:<url>" / "in:<peer id>" -> newest link
        self._pending: set[Link] = set()  # incoming links still in the handshake
        self._dialers: dict[str, Dialer] = {}
        self._discovered_urls: set[str] = set()  # dialed by discovery, not connect()
        self._blocked: set[str] = set()
        self._servers: list[HTTPServer] = []
        self._queue: collections.deque[dict[str, Any]] = collections.deque()
        self._drain_scheduled = False
        self._op_feed: Subscription | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._db_worker = concurrent.futures.ThreadPoolExecutor(1, "pluresdb-mesh-db")
        self.closed = False

    @property
    def identity(self) -> PeerIdentity:
        """This database's peer id and public key."""
        keys = self.db.identity
        return PeerIdentity(keys.peer_id, keys.public_key.hex())

    def configure(
        self,
        *,
        secret: str | bytes | None = None,
        allow: Iterable[str] | None = None,
        max_frame_bytes: int | None = None,
        heartbeat_s: float | None = None,
        send_buffer_bytes: int | None = None,
        send_timeout_s: float | None = None,
        certfile: str | None = None,
        keyfile: str | None = None,
        cafile: str | None = None,
        discovery: bool | None = None,
        discovery_interfaces: Iterable[str] | None = None,
    ) -> None:
        """Change settings; arguments left out keep their value. New links use them.

        `secret=""` removes the secret; `allow` replaces the allow-list. `discovery`
        switches zeroconf LAN discovery on or off (it runs while the mesh listens);
        `discovery_interfaces` (addresses, e.g. ["127.0.0.1"]) applies from the next start.
        """
        if secret is not None:
            if not isinstance(secret, (str, bytes)):
                raise MeshError("the mesh secret is a str or bytes")
            self.secret = (secret.encode() if isinstance(secret, str) else secret) or None
        if allow is not None:
            if isinstance(allow, str):
                raise MeshError("allow takes a list of peer ids, not one string")
            self.allowed = {_peer_id(p) for p in allow}
        if max_frame_bytes is not None:
            if not isinstance(max_frame_bytes, int) or max_frame_bytes < 4096:
                raise MeshError(f"max_frame_bytes must be an int >= 4096, got {max_frame_bytes!r}")
            self.max_frame_bytes = max_frame_bytes
        if heartbeat_s is not None:
            if not isinstance(heartbeat_s, (int, float)) or not 0.05 <= heartbeat_s <= 3600:
                raise MeshError(f"heartbeat_s must be 0.05..3600 seconds, got {heartbeat_s!r}")
            self.heartbeat_s = float(heartbeat_s)
        if send_buffer_bytes is not None:
            if not isinstance(send_buffer_bytes, int) or send_buffer_bytes < 65536:
                raise MeshError(
                    f"send_buffer_bytes must be an int >= 65536, got {send_buffer_bytes!r}"
                )
            self.send_buffer_bytes = send_buffer_bytes
        if send_timeout_s is not None:
            if not isinstance(send_timeout_s, (int, float)) or not 0.5 <= send_timeout_s <= 3600:
                raise MeshError(f"send_timeout_s must be 0.5..3600 seconds, got {send_timeout_s!r}")
            self.send_timeout_s = float(send_timeout_s)
        self.certfile = certfile if certfile is not None else self.certfile
        self.keyfile = keyfile if keyfile is not None else self.keyfile
        self.cafile = cafile if cafile is not None else self.cafile
        if discovery_interfaces is not None:
            if isinstance(discovery_interfaces, str):
                raise MeshError("discovery_interfaces takes a list of addresses, not one string")
            self.discovery_interfaces = [str(a) for a in discovery_interfaces]
        if discovery is not None:
            if not isinstance(discovery, bool):
                raise MeshError(f"discovery is True or False, got {discovery!r}")
            self.discovery = discovery
            self._update_discovery()

    def _update_discovery(self) -> None:
        """Start or stop zeroconf to match the `discovery` setting and `listen` state."""
        if self.discovery and self._advertised is not None and not self.closed:
            if self._discovery is None:
                self._discovery = Discovery(self)
                self._discovery.start(*self._advertised, self.discovery_interfaces)
        elif self._discovery is not None:
            discovery, self._discovery = self._discovery, None
            discovery.shutdown()

    def discovered(self) -> list[Discovered]:
        """Peers found on the LAN by discovery (empty while it is off): peer id, URL, and
        when it was last seen (epoch seconds)."""
        discovery = self._discovery
        return discovery.discovered() if discovery is not None else []

    def allow(self, peer_id: str) -> None:
        """Accept `peer_id` on incoming and outgoing links from now on."""
        self.allowed.add(_peer_id(peer_id))

    # -- lifecycle ---------------------------------------------------------------------

    def _started(self) -> EventLoop:
        if self.closed:
            raise MeshError("this mesh is closed (its database was closed)")
        if self._loop is None:
            self._loop = EventLoop(self._given_loop)
            self._op_feed = self.db.on_op(self._op_applied)
            self._loop.soon(self._start_heartbeat)
        return self._loop

    def _start_heartbeat(self) -> None:
        self._heartbeat = asyncio.ensure_future(self._beat())

    async def _beat(self) -> None:
        last_ping = time.monotonic()
        while True:
            await asyncio.sleep(min(self.heartbeat_s, 1.0))
            ping = time.monotonic() - last_ping >= self.heartbeat_s
            if ping:
                last_ping = time.monotonic()
            for link in [*self._links.values(), *self._pending]:
                link.check_alive(self.heartbeat_s, handshake_s=10.0)
                if ping and link.state == "connected":
                    link.ping()

    def close(self) -> None:
        """Close every link and server and stop the loop thread. Called by `db.close()`."""
        if self.closed:
            return
        self.closed = True
        if self._discovery is not None:
            discovery, self._discovery = self._discovery, None
            discovery.shutdown()
        if self._op_feed is not None:
            self._op_feed.cancel()
        if self._loop is not None:
            self._loop.call(self._shut)
            self._loop.stop()
        self._db_worker.shutdown(wait=True, cancel_futures=True)

    def _shut(self) -> None:
        for dialer in self._dialers.values():
            dialer.stop()
            dialer.task.cancel()
        for link in [*self._links.values(), *self._pending]:
            link.close(1001, "shutting down")
        for server in self._servers:
            server.stop()
        if self._heartbeat is not None:
            self._heartbeat.cancel()

    # -- links -------------------------------------------------------------------------

    def listen(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Accept peers on `host:port` (0 picks a free port); returns the mesh URL."""
        if not isinstance(host, str) or not isinstance(port, int) or not 0 <= port < 65536:
            raise MeshError(
                f"listen() takes a host string and a port 0..65535, got {host!r}, {port!r}"
            )
        loop = self._started()
        tls = self._server_tls()

        def start() -> int:
            app = Application([(PATH, MeshSocketHandler, {"mesh": self})])
            server = HTTPServer(app, ssl_options=tls)
            sockets = bind_sockets(port, host)
            server.add_sockets(sockets)
            self._servers.append(server)
            return int(sockets[0].getsockname()[1])

        bound = loop.call(start)
        scheme = "wss" if tls else "ws"
        shown = f"[{host}]" if ":" in host else host
        url = f"{scheme}://{shown}:{bound}{PATH}"
        self.log.add("info", "listen", f"accepting peers at {url}")
        if self._advertised is None:
            self._advertised = (host, bound, tls is not None)
            self._update_discovery()
        return url

    def _server_tls(self) -> ssl.SSLContext | None:
        if not self.certfile:
            return None
        if not self.keyfile:
            raise MeshError("TLS needs a keyfile with the certfile; configure(keyfile=...)")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(self.certfile, self.keyfile)
        except (OSError, ssl.SSLError) as exc:
            raise MeshError(f"cannot load the TLS certificate {self.certfile}: {exc}") from None
        return context

    def connect(self, url: str, *, peer_id: str | None = None) -> None:
        """Keep a link to the peer at `url` (redialed with backoff until `disconnect`).

        Args:
            url: a ws:// or wss:// mesh URL (what `listen` returned on that peer).
            peer_id: the peer expected there; it is then accepted without the
                allow-list, and a different peer at that URL is refused.
        """
        if not isinstance(url, str) or not url.startswith(("ws://", "wss://")):
            raise MeshError(f"connect() takes a ws:// or wss:// URL, got {url!r}")
        pinned = _peer_id(peer_id) if peer_id is not None else None
        loop = self._started()

        def start() -> None:
            self._discovered_urls.discard(url)  # an explicit connect keeps dialing
            if pinned is not None:
                self._blocked.discard(pinned)
            dialer = self._dialers.get(url)
            if dialer is not None and not dialer.stopped:
                dialer.wake()
                return
            self._dialers[url] = Dialer(self, url, pinned)
            self.log.add("info", "connect", f"dialing {url}", pinned)

        loop.call(start)

    def dial_discovered(self, url: str, peer_id: str) -> None:
        """`connect(url)` (unpinned) for discovery, without waiting for the loop. Skips
        a peer `disconnect`-ed, and a URL already dialed (by `connect` or discovery)."""
        if self.closed or self._loop is None:
            return

        def start() -> None:
            if self.closed or self._discovery is None or peer_id in self._blocked:
                return
            dialer = self._dialers.get(url)
            if dialer is None or dialer.stopped:
                self.connect(url)
                self._discovered_urls.add(url)

        self._loop.soon(start)

    def forget(self, url: str) -> None:
        """Stop dialing `url` if discovery dialed it (its service left the LAN)."""
        if self.closed or self._loop is None:
            return

        def stop() -> None:
            if url not in self._discovered_urls:
                return
            self._discovered_urls.discard(url)
            dialer = self._dialers.pop(url, None)
            if dialer is not None:
                dialer.stop()
                self.log.add("info", "forget", f"stopped dialing {url}", dialer.peer_id)

        self._loop.soon(stop)

    def disconnect(self, peer_id: str) -> None:
        """Close every link to `peer_id` and keep it away until `connect` again."""
        peer = _peer_id(peer_id)
        loop = self._started()

        def stop() -> None:
            self._blocked.add(peer)
            for dialer in self._dialers.values():
                if peer in (dialer.peer_id, dialer.link.peer_id):
                    dialer.stop()
            for link in [*self._links.values(), *self._pending]:
                if link.peer_id == peer:
                    link.close(1000, "disconnected")
            self.log.add("info", "disconnect", "disconnected; no reconnect until connect()", peer)

        loop.call(stop)

    # -- what links call (the `Hub` of _link) ----------------------------------------

    def policy(self, link: Link) -> Policy:
        """Who `link` may accept: a disconnect() blocks a peer's incoming links only."""
        blocked = frozenset(self._blocked) if link.direction == "incoming" else frozenset()
        return Policy(frozenset(self.allowed), self.secret, link.pinned, blocked)

    def run_db(self, fn: Callable[..., T], *args: Any) -> Awaitable[T]:
        """Run a database call on the mesh's one worker thread, off the event loop."""
        return asyncio.get_running_loop().run_in_executor(self._db_worker, fn, *args)

    def link_opened(self, link: Link) -> None:
        """A socket opened (or an outgoing link started dialing)."""
        self._started()  # a server may mount MeshSocketHandler before any listen/connect
        if link.direction == "outgoing":
            self._links[f"out:{link.url}"] = link
        else:
            self._pending.add(link)

    def link_up(self, link: Link) -> None:
        """A link passed the handshake."""
        if link.direction == "incoming":
            self._pending.discard(link)
            key = f"in:{link.peer_id}"
            previous = self._links.get(key)
            if previous is not None and previous is not link:
                previous.close(1000, "replaced by a newer link")
            self._links[key] = link
        else:
            self._blocked.discard(link.peer_id or "")
        self.log.add("info", "connected", f"{link.direction} link up ({link.url})", link.peer_id)

    def link_down(self, link: Link) -> None:
        """A link's socket closed."""
        self._pending.discard(link)
        if link.authenticated and link.state != "error":
            self.log.add("info", "disconnected", link.last_error or "link closed", link.peer_id)
        elif link.state != "error" and link.last_error:
            self.log.add("warning", "disconnected", link.last_error, link.peer_id)

    # -- ops ---------------------------------------------------------------------------

    def _op_applied(self, op: dict[str, Any]) -> None:
        """Called by the engine under its lock: only queue the op and wake the loop."""
        self._queue.append(op)
        if not self._drain_scheduled and self._loop is not None:
            self._drain_scheduled = True
            self._loop.loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        self._drain_scheduled = False
        ops: list[dict[str, Any]] = []
        while self._queue:
            ops.append(self._queue.popleft())
        if self.paused or not ops:
            return
        for link in list(self._links.values()):
            if link.live and link.state == "connected":
                for start in range(0, len(ops), LIVE_CHUNK):
                    link.send_live(ops[start : start + LIVE_CHUNK])

    def sync(self, peer_id: str | None = None) -> None:
        """Start a sync round (version vectors, then missing ops both ways) now."""
        peer = _peer_id(peer_id) if peer_id is not None else None
        loop = self._started()

        def start() -> None:
            for link in self._links.values():
                if link.state == "connected" and peer in (None, link.peer_id):
                    link.request_sync()
                    self.log.add("info", "sync", "sync round requested", link.peer_id)

        loop.soon(start)

    def pause(self) -> None:
        """Stop moving ops (links and heartbeats stay up) until `resume`."""
        self.paused = True
        self.log.add("info", "pause", "sync paused")

    def resume(self) -> None:
        """Move ops again, starting with a sync round on every link."""
        self.paused = False
        self.log.add("info", "resume", "sync resumed")
        if self._loop is not None:
            self.sync()

    # -- reading -----------------------------------------------------------------------

    def peers(self) -> list[PeerInfo]:
        """Every link this mesh has (current or last per peer/URL), with its counters."""
        links = list(self._links.values())
        return [_info(link) for link in links]

    def logs(self, limit: int = 200, level: str | None = None) -> list[Entry]:
        """The newest `limit` log entries, optionally only `level` ("info", "warning",
        "error") and above."""
        if not isinstance(limit, int) or limit < 0:
            raise MeshError(f"limit must be a non-negative int, got {limit!r}")
        if level is not None and level not in LEVELS:
            raise MeshError(f"level must be one of {sorted(LEVELS)} or None, got {level!r}")
        return self.log.entries(limit, level)

    # -- snapshots ---------------------------------------------------------------------

    def _snapshot_folder(self) -> Path:
        if self.snapshot_dir is None:
            raise MeshError("an in-memory database has no folder; pass Mesh(snapshot_dir=...)")
        return self.snapshot_dir

    def snapshot(self) -> SnapshotInfo:
        """Write every op and the matching version vector to one new snapshot file."""
        folder = self._snapshot_folder()
        info = _snapshots.write(folder, self.db.peer_id, self.db.ops_since({}))
        self.log.add("info", "snapshot", f"snapshot {info['id']}: {info['ops']} ops")
        return info

    def snapshots(self) -> list[SnapshotInfo]:
        """The snapshots in this database's snapshot folder, oldest first."""
        if self.snapshot_dir is None:
            return []
        return _snapshots.listing(self.snapshot_dir)

    def delete_snapshot(self, snapshot_id: str) -> None:
        """Delete one snapshot; NotFoundError if there is none with that id."""
        _snapshots.find(self._snapshot_folder(), str(snapshot_id)).unlink()

    def bootstrap(self, snapshot: str | Path) -> int:
        """Apply a snapshot (an id in the snapshot folder, or a file path); returns the
        number of ops newly applied. Connect afterwards to sync what came later."""
        path = Path(snapshot)
        if not path.is_file():
            path = _snapshots.find(self._snapshot_folder(), str(snapshot))
        ops = _snapshots.read_ops(path)
        applied = self.db.apply_ops(ops)
        self.log.add("info", "bootstrap", f"applied {applied} of {len(ops)} ops from {path.name}")
        return applied


def _peer_id(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise MeshError(f"a peer id is a non-empty string, got {value!r}")
    return value


def _info(link: Link) -> PeerInfo:
    rates = link.traffic.rates()
    return PeerInfo(
        peer_id=link.peer_id,
        url=link.url,
        direction=link.direction,
        state=link.state,
        bytes_in=link.traffic.bytes_in,
        bytes_out=link.traffic.bytes_out,
        messages_in=link.traffic.messages_in,
        messages_out=link.traffic.messages_out,
        bytes_in_per_s=rates["bytes_in_per_s"],
        bytes_out_per_s=rates["bytes_out_per_s"],
        messages_in_per_s=rates["messages_in_per_s"],
        messages_out_per_s=rates["messages_out_per_s"],
        rtt_ms=link.rtt_ms,
        ops_sent=link.ops_sent,
        ops_received=link.ops_received,
        last_seen=link.last_seen,
        sync_progress=Progress(**link.progress),
        send_state=link.send_state,
        send_buffer_bytes=link.window.pending,
        last_error=link.last_error,
    )
