"""One authenticated conversation with one peer, independent of the socket under it.

A `Link` is fed received frames (`receive`) and writes through a `Transport`; the
tornado handler (incoming) and the dialer (outgoing) are two thin transports, so a
Jupyter server can host the same links on its own event loop. Everything here runs on
the mesh's event loop; database calls go through `Hub.run_db` (a worker thread).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol, TypedDict

from pluresdb_lab.engine import Database
from pluresdb_lab.errors import InvalidOpError, PeerRefusedError
from pluresdb_lab.mesh._flow import SendWindow
from pluresdb_lab.mesh._handshake import (
    Hello,
    Policy,
    auth_frame,
    check_auth,
    hello_frame,
    new_nonce,
    read_hello,
)
from pluresdb_lab.mesh._log import MeshLog
from pluresdb_lab.mesh._protocol import (
    Frame,
    ProtocolViolation,
    decode,
    encode,
    pack_ops,
    unpack_ops,
)
from pluresdb_lab.mesh._stats import Traffic

State = Literal["connecting", "connected", "disconnected", "error"]
# streaming: live ops go out as they are applied; held-back: the peer left more than
# send_buffer_bytes unread, so live ops wait; catching-up: it read them, and the ops it
# missed meanwhile go out by version vector
SendState = Literal["streaming", "held-back", "catching-up"]
Direction = Literal["incoming", "outgoing"]
BATCH_OPS = 512  # at most this many ops per catch-up frame,
HANDSHAKE_FRAME_BYTES = 4096  # hello and auth are ~200 bytes; strangers get no more
BATCH_BYTES = 1 << 20  # and about this many bytes of op rows (frames are split to fit the limit)

# WebSocket close codes: 1008 policy violation, 1009 too big, 4003 refused by the handshake
# 1013 try again later (a peer that stopped reading)
CLOSE_POLICY, CLOSE_TOO_BIG, CLOSE_REFUSED, CLOSE_NORMAL = 1008, 1009, 4003, 1000
CLOSE_TRY_LATER = 1013
HOLD_LOG_EVERY_S = 10.0  # a peer that keeps falling behind is logged this often at most


class Transport(Protocol):
    """What a link needs from a socket."""

    def send(self, frame: bytes) -> Awaitable[None]: ...

    def close(self, code: int, reason: str) -> None: ...


class Hub(Protocol):
    """What a link needs from its mesh."""

    db: Database
    log: MeshLog
    max_frame_bytes: int
    send_buffer_bytes: int
    send_timeout_s: float
    paused: bool

    def policy(self, link: Link) -> Policy: ...

    def run_db(self, fn: Callable[..., Any], *args: Any) -> Awaitable[Any]: ...

    def link_up(self, link: Link) -> None: ...

    def link_down(self, link: Link) -> None: ...


class Progress(TypedDict):
    """Ops done and ops in total of the current catch-up, per direction, and the sync
    rounds this side asked for (`sync()`) and the peer has answered completely."""

    received: int
    to_receive: int
    sent: int
    to_send: int
    rounds_asked: int
    rounds_answered: int


class Link:
    """The state, counters and protocol of one connection to one peer."""

    def __init__(
        self,
        hub: Hub,
        transport: Transport,
        direction: Direction,
        url: str | None,
        pinned: str | None = None,
    ) -> None:
        self.hub = hub
        self.transport = transport
        self.direction = direction
        self.url = url
        self.pinned = pinned
        self.peer_id: str | None = pinned
        self.state: State = "connecting"
        self.traffic = Traffic()
        self.rtt_ms: float | None = None
        self.ops_sent = 0
        self.ops_received = 0
        self.last_seen: float | None = None
        self.last_error: str | None = None
        self.progress = Progress(
            received=0, to_receive=0, sent=0, to_send=0, rounds_asked=0, rounds_answered=0
        )
        self.known: dict[str, int] = {}  # highest seq per origin the peer has, as far as we know
        self.live = False  # the peer's version vector arrived: new ops stream to it
        self.authenticated = False
        self.opened_at = time.monotonic()
        self._last_heard = time.monotonic()
        self._mine = Hello(hub.db.identity.peer_id, hub.db.identity.public_key, new_nonce())
        self._theirs: Hello | None = None
        self._pings: dict[int, float] = {}
        self._ping_seq = 0
        self._catch_up: asyncio.Task[None] | None = None
        self.window = SendWindow(hub.send_buffer_bytes)
        self.send_state: SendState = "streaming"
        self._resume: asyncio.Task[None] | None = None
        self._holds = 0
        self._hold_logged_at = -HOLD_LOG_EVERY_S
        self._log_resume = False
        self._applying = False
        self._finished = False

    # -- sending -----------------------------------------------------------------------

    def _send(self, kind: str, **fields: Any) -> Awaitable[None]:
        return self._send_raw(encode(kind, **fields))

    def _send_raw(self, frame: bytes) -> Awaitable[None]:
        sending = asyncio.ensure_future(self.transport.send(frame))
        self.window.track(len(frame), sending)
        self.traffic.sent(len(frame))
        return sending

    def _send_small(self, kind: str, **fields: Any) -> None:
        """A ping or pong: skipped while the peer has not read what it was sent, so a
        peer that pings but never reads cannot grow the buffer either."""
        frame = encode(kind, **fields)
        if self.window.fits(len(frame)):
            self._fire(self._send_raw(frame))

    def start(self) -> None:
        """Say hello; called once the socket is open."""
        self._fire(self._send_raw(hello_frame(self.hub.db.identity, self._mine.nonce)))

    def _fire(self, sending: Awaitable[None]) -> None:
        """Send without waiting; a failed write shows up as the socket closing."""
        future = asyncio.ensure_future(sending)
        future.add_done_callback(lambda f: f.cancelled() or f.exception())

    def send_live(self, ops: list[dict[str, Any]]) -> None:
        """Stream newly applied ops the peer does not have yet, unless it is not reading:
        then they wait, and go out by version vector once it has read its backlog."""
        if self.send_state == "held-back":
            return
        fresh = [op for op in ops if op["s"] > self.known.get(op["o"], 0)]
        for chunk, blob, compressed in self._frames(fresh):
            if not self.window.fits(len(blob) + 64):
                self._hold_back()
                return
            for op in chunk:  # only ops really sent: the rest the catch-up finds missing
                self.known[op["o"]] = max(op["s"], self.known.get(op["o"], 0))
            self._fire(self._send("live", ops=blob, z=compressed))
            self.ops_sent += len(chunk)

    def _hold_back(self) -> None:
        self.send_state = "held-back"
        self._holds += 1
        now = time.monotonic()
        self._log_resume = now - self._hold_logged_at >= HOLD_LOG_EVERY_S
        if self._log_resume:
            self._hold_logged_at = now
            self.hub.log.add(
                "warning",
                "held-back",
                f"the peer has not read {self.window.pending} bytes (limit "
                f"{self.window.limit}); live ops wait and go out by version vector once it "
                f"reads them, or the link is dropped after {self.hub.send_timeout_s:g} s "
                f"(held back {self._holds} times on this link)",
                self.peer_id,
            )
        if self._resume is None or self._resume.done():
            self._resume = asyncio.ensure_future(self._catch_up_after_hold())
            self._resume.add_done_callback(lambda f: f.cancelled() or f.exception())

    async def _catch_up_after_hold(self) -> None:
        """Once the backlog drains, send what the peer missed, as a catch-up would."""
        while self.send_state == "held-back":
            await self.window.drained()
            self.send_state = "catching-up"  # live ops stream again from here on
            if self._log_resume:
                self.hub.log.add(
                    "info",
                    "resumed",
                    "the peer read its backlog; catching up by version vector",
                    self.peer_id,
                )
            await self._send_missing(dict(self.known), None)
            if self.send_state == "catching-up":  # else held back again meanwhile
                self.send_state = "streaming"

    def _frames(self, ops: list[dict[str, Any]]) -> list[tuple[list[dict[str, Any]], bytes, bool]]:
        """`ops` in packed chunks, each within the frame limit and a quarter of the send
        buffer limit (an op bigger than that goes alone). A quarter: a link that has no
        room for the next frame then holds more than half the limit, so it resumes only
        once the peer has really read."""
        if not ops:
            return []
        blob, compressed = pack_ops(ops)
        cap = min(self.hub.max_frame_bytes, self.window.limit // 4)
        if len(blob) + 64 <= cap:
            return [(ops, blob, compressed)]
        if len(ops) == 1 and len(blob) + 64 <= self.hub.max_frame_bytes:
            return [(ops, blob, compressed)]
        if len(ops) == 1:
            self.hub.log.add(
                "error",
                "op-too-big",
                f"op {ops[0]['o']}:{ops[0]['s']} is {len(blob)} bytes packed, over the "
                f"frame limit of {self.hub.max_frame_bytes}; raise max_frame_bytes on both peers",
                self.peer_id,
            )
            return []
        half = len(ops) // 2
        return self._frames(ops[:half]) + self._frames(ops[half:])

    def ping(self) -> None:
        self._ping_seq += 1
        self._pings[self._ping_seq] = time.monotonic()
        if len(self._pings) > 8:
            self._pings.pop(min(self._pings))
        self._send_small("ping", n=self._ping_seq)

    def request_sync(self) -> None:
        """Start a sync round: send our version vector and ask for the peer's. The
        round's number comes back on the peer's last batch, so `rounds_answered` says
        exactly when the peer has sent everything this round asked for."""
        self.progress["rounds_asked"] += 1
        self.progress["received"] = self.progress["to_receive"] = 0  # counts this round now
        self._fire(self._send_vv(reply=True, round=self.progress["rounds_asked"]))

    async def _send_vv(self, reply: bool, round: int | None = None) -> None:
        vv = await self.hub.run_db(self.hub.db.version_vector)
        extra = {} if round is None else {"round": round}
        await self._send("vv", vv=vv, reply=reply, **extra)

    # -- receiving ---------------------------------------------------------------------

    async def receive(self, data: bytes | str) -> None:
        """Handle one frame; a bad one closes this link and nothing else."""
        if self._finished:
            return
        size = len(data)
        self.traffic.received(size)
        self._last_heard = time.monotonic()
        self.last_seen = time.time()
        limit = self.hub.max_frame_bytes if self.authenticated else HANDSHAKE_FRAME_BYTES
        try:
            if size > limit:
                raise ProtocolViolation(f"a frame of {size} bytes, over the limit of {limit}")
            await self._dispatch(decode(data))
        except PeerRefusedError as exc:
            self.refuse(str(exc))
        except ProtocolViolation as exc:
            code = CLOSE_TOO_BIG if size > limit else CLOSE_POLICY
            self.fail(f"closed: the peer sent {exc}", "protocol-error", code)
        except InvalidOpError as exc:
            self.fail(f"closed: the peer sent an invalid op ({exc})", "invalid-op")
        except Exception as exc:  # a failure here must end this link only, never the mesh
            self.fail(f"closed after an error handling a frame: {exc!r}", "error")

    async def _dispatch(self, frame: Frame) -> None:
        kind = frame["t"]
        if self._theirs is None:
            self._theirs = read_hello(frame)
            if self.pinned is None:
                self.peer_id = self._theirs.peer_id
            secret = self.hub.policy(self).secret
            self._fire(
                self._send_raw(auth_frame(self.hub.db.identity, self._mine, self._theirs, secret))
            )
            return
        if self.state == "connecting":
            if kind == "refused":
                self._refused(frame["reason"])
                return
            check_auth(frame, self._mine, self._theirs, self.hub.policy(self))
            self.peer_id = self._theirs.peer_id
            self.state = "connected"
            self.authenticated = True
            self.hub.link_up(self)
            self._fire(self._send_vv(reply=False))
            return
        if kind == "vv":
            self._start_catch_up(frame["vv"], frame["reply"], frame.get("round"))
        elif kind in ("batch", "live"):
            await self._receive_ops(frame)
        elif kind == "ping":
            self._send_small("pong", n=frame["n"])
        elif kind == "pong":
            sent_at = self._pings.pop(frame["n"], None)
            if sent_at is not None:
                self.rtt_ms = (time.monotonic() - sent_at) * 1000
        elif kind == "refused":
            self._refused(frame["reason"])
        else:
            raise ProtocolViolation(f"a {kind!r} frame after the handshake")

    async def _receive_ops(self, frame: Frame) -> None:
        ops = unpack_ops(frame["ops"], frame["z"], self.hub.max_frame_bytes * 8)
        if frame["t"] == "batch":
            self.progress["to_receive"] = max(frame["total"], 0)
        if self.hub.paused:
            return
        for op in ops:  # before applying: ops we apply must not be streamed back here
            if isinstance(op, dict) and isinstance(op.get("o"), str):
                seq = op.get("s")
                if isinstance(seq, int) and seq > self.known.get(op["o"], 0):
                    self.known[op["o"]] = seq
        if ops:
            self._applying = True  # a long apply is not silence: see check_alive
            try:
                await self.hub.run_db(self.hub.db.apply_ops, ops)
            finally:
                self._applying = False
                self._last_heard = time.monotonic()
        self.ops_received += len(ops)
        if frame["t"] == "batch":  # counted once applied
            self.progress["received"] = min(max(frame["done"], 0), self.progress["to_receive"])
        if frame["t"] == "batch" and 0 < frame["total"] <= frame["done"]:
            self.hub.log.add("info", "synced", f"caught up: {frame['total']} ops", self.peer_id)
        if frame["t"] == "batch" and frame["total"] <= frame["done"] and "round" in frame:
            answered = min(frame["round"], self.progress["rounds_asked"])
            self.progress["rounds_answered"] = max(self.progress["rounds_answered"], answered)

    def _start_catch_up(self, vv: dict[str, int], reply: bool, round: int | None) -> None:
        if self._catch_up is not None:
            self._catch_up.cancel()
        self.known = dict(vv)
        self.live = True
        if reply:
            self._fire(self._send_vv(reply=False))
        self._catch_up = asyncio.ensure_future(self._send_missing(dict(vv), round))
        self._catch_up.add_done_callback(lambda f: f.cancelled() or f.exception())

    async def _send_missing(self, vv: dict[str, int], round: int | None) -> None:
        if self.hub.paused:
            return
        ops: list[dict[str, Any]] = await self.hub.run_db(self.hub.db.ops_since, vv)
        total = len(ops)
        self.progress["to_send"], self.progress["sent"] = total, 0
        echo = {} if round is None else {"round": round}
        if not ops:
            await self._send("batch", ops=pack_ops([])[0], z=False, done=0, total=0, **echo)
            return
        self.hub.log.add("info", "sync", f"sending {total} missing ops", self.peer_id)
        done = 0
        for chunk in _chunks(ops):
            frames = self._frames(chunk)
            for i, (_, blob, compressed) in enumerate(frames):
                end = done + len(chunk) if i == len(frames) - 1 else done
                await self.window.room(len(blob) + 64)
                await self._send("batch", ops=blob, z=compressed, done=end, total=total, **echo)
            for op in chunk:  # once sent: a cancelled catch-up must not count them as known
                if op["s"] > self.known.get(op["o"], 0):
                    self.known[op["o"]] = op["s"]
            done += len(chunk)
            self.ops_sent += len(chunk)
            self.progress["sent"] = done

    # -- ending ------------------------------------------------------------------------

    def check_alive(self, heartbeat_s: float, handshake_s: float) -> None:
        """Close a link whose peer went silent or never finished the handshake."""
        now = time.monotonic()
        if self.state == "connecting" and now - self.opened_at > handshake_s:
            self.fail(f"handshake not finished within {handshake_s:g} s", "timeout")
        elif (
            self.state == "connected"
            and not self._applying
            and now - self._last_heard > 3 * heartbeat_s
        ):
            self.fail(f"nothing heard for {3 * heartbeat_s:g} s", "timeout")
        elif self.state == "connected" and self.window.stalled_for() > self.hub.send_timeout_s:
            again = "it is redialled" if self.direction == "outgoing" else "it may reconnect"
            self.fail(
                f"closed: the peer read nothing for {self.hub.send_timeout_s:g} s with "
                f"{self.window.pending} bytes waiting (limit {self.window.limit}); {again}",
                "slow-peer",
                CLOSE_TRY_LATER,
            )

    def _refused(self, reason: str) -> None:
        self.state = "error"
        self.last_error = f"refused by the peer: {reason}"
        self.hub.log.add("warning", "refused-by-peer", reason, self.peer_id)
        self.close(CLOSE_NORMAL, "refused")

    def refuse(self, reason: str) -> None:
        """Refuse the peer: tell it why, log it, close."""
        if self._finished:
            return
        self.state = "error"
        self.last_error = reason
        self.hub.log.add("warning", "refused", reason, self.peer_id)
        self._fire(self._send("refused", reason=reason))
        self.close(CLOSE_REFUSED, "refused")

    def fail(self, reason: str, event: str, code: int = CLOSE_POLICY) -> None:
        """Close this link because of an error, and log it."""
        if self._finished:
            return
        self.state = "error"
        self.last_error = reason
        self.hub.log.add("error", event, reason, self.peer_id)
        self.close(code, event)

    def close(self, code: int = CLOSE_NORMAL, reason: str = "closing") -> None:
        if not self._finished:
            self.transport.close(code, reason)
            self.closed(None)

    def closed(self, detail: str | None) -> None:
        """The socket is gone (closed by either side); called once or more, acts once."""
        if self._finished:
            return
        self._finished = True
        self.live = False
        for task in (self._catch_up, self._resume):
            if task is not None:
                task.cancel()
        if self.state != "error":
            self.state = "disconnected"
            if detail:
                self.last_error = detail
        self.hub.link_down(self)


def _chunks(ops: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Ops in catch-up sized groups: BATCH_OPS ops or about BATCH_BYTES of rows each."""
    chunks: list[list[dict[str, Any]]] = [[]]
    size = 0
    for op in ops:
        weight = len(op.get("r") or b"") + 64
        if chunks[-1] and (len(chunks[-1]) >= BATCH_OPS or size + weight > BATCH_BYTES):
            chunks.append([])
            size = 0
        chunks[-1].append(op)
        size += weight
    return chunks
