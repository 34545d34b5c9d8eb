"""Back-pressure: a peer that keeps the heartbeat up but stops reading costs the sender a
bounded buffer. Once it reads again the link catches up by version vector; when it does
not within `send_timeout_s`, the link is dropped and the drop is logged.

The peer is a raw protocol client on 127.0.0.1 that stops taking bytes off its socket;
the sender's real buffer (tornado's write buffer for that link) is sampled throughout.
"""

from __future__ import annotations

import asyncio
import base64
import os
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

from tornado.websocket import WebSocketHandler

import pluresdb_lab as pl
from tests.mesh.conftest import SECRET, rawpeer

BOUND = 256 * 1024
ROWS = 10  # per write: ~13 KB of rows that do not compress much
MAX_WRITES = 5000  # ~65 MB: far over BOUND and the kernel's socket buffers
MORE_WRITES = 400  # ~5 MB more once the sender holds back


def write(db: pl.Database, n: int) -> None:
    blobs = [base64.b64encode(os.urandom(1000)).decode() for _ in range(ROWS)]
    db.put_many([{"id": f"n{n}-{i}", "blob": blob} for i, blob in enumerate(blobs)])


def write_past_the_hold(db: pl.Database, peer_id: str) -> int:
    """Write until the sender holds live ops back from `peer_id`, then MORE_WRITES
    more; returns the writes made."""
    for n in range(MAX_WRITES):
        if link_row(db, peer_id)["send_state"] == "held-back":
            break
        write(db, n)
    else:
        raise AssertionError(f"{MAX_WRITES} writes and the sender never held back")
    for more in range(n, n + MORE_WRITES):
        write(db, more)
    return n + MORE_WRITES


def link_row(db: pl.Database, peer_id: str) -> dict[str, Any]:
    (row,) = [p for p in db.mesh.peers() if p["peer_id"] == peer_id]
    return dict(row)


async def until(condition: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    """Poll `condition` without blocking the loop the raw peer pings from."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)  # the polling interval


def run(coroutine: Coroutine[Any, Any, Any], timeout: float) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


class BufferSampler:
    """Samples the bytes tornado really holds for the sender's link to `peer_id`: its
    stream's write buffer, read on the mesh loop every 5 ms (tornado-private state, only
    measured here; the mesh itself counts through write futures)."""

    def __init__(self, db: pl.Database, peer_id: str) -> None:
        self.db, self.peer_id = db, peer_id
        self.largest = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> BufferSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def measure(self) -> int:
        def on_loop() -> int:
            for link in list(self.db.mesh._links.values()):
                handler = link.transport
                if link.peer_id != self.peer_id or not isinstance(handler, WebSocketHandler):
                    continue
                connection = handler.ws_connection
                buffer = connection.stream._write_buffer if connection is not None else None
                return len(buffer) if buffer is not None else 0
            return 0

        loop = self.db.mesh._loop
        assert loop is not None
        return loop.call(on_loop)

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.largest = max(self.largest, self.measure())
            self.samples += 1


async def stop_reading(raw: Any) -> asyncio.Task[None]:
    """Handshake, send our (empty) version vector so the sender streams to us, then read
    nothing more while pinging every 0.1 s."""
    first = await raw.handshake(SECRET)
    assert first is not None
    assert first["t"] == "vv"
    await raw.send(t="vv", vv={}, reply=False)
    return asyncio.ensure_future(raw.ping_forever(0.1))


def test_peer_that_stops_reading_is_held_back_then_caught_up(embedded, raw_peer) -> None:
    a = embedded(heartbeat_s=0.5, send_buffer_bytes=BOUND, send_timeout_s=120)
    raw = raw_peer(a.mesh.listen())
    seqs: set[int] = set()
    held: dict[str, Any] = {}

    async def scenario() -> int:
        pinging = await stop_reading(raw)
        try:
            writes = await asyncio.to_thread(write_past_the_hold, a, raw.peer_id)
            held.update(link_row(a, raw.peer_id))
            written: int = a.version_vector()[a.peer_id]
            assert written == writes
            while len(seqs) < written:  # read again: live frames, then the catch-up
                frame = await raw.receive()
                assert frame is not None, "the sender closed the link"
                if frame["t"] in ("batch", "live"):
                    seqs.update(op["s"] for op in rawpeer.ops_of(frame) if op["o"] == a.peer_id)

            def streaming() -> bool:
                row = link_row(a, raw.peer_id)
                return row["send_state"] == "streaming" and row["send_buffer_bytes"] == 0

            await until(streaming, "the sender to stream again")
            return written
        finally:
            pinging.cancel()

    with BufferSampler(a, raw.peer_id) as sampler:
        written = run(scenario(), 180)
    assert held["state"] == "connected"
    assert held["send_state"] != "streaming"
    assert 0 < held["send_buffer_bytes"] <= BOUND
    assert sampler.samples > 10
    assert 0 < sampler.largest <= BOUND, f"tornado buffered {sampler.largest} bytes"
    assert seqs == set(range(1, written + 1))
    row = link_row(a, raw.peer_id)
    assert row["state"] == "connected"
    assert row["last_error"] is None
    events = [e["event"] for e in a.mesh.logs()]
    assert events.index("held-back") < events.index("resumed")


def test_peer_that_never_reads_again_is_dropped(embedded, raw_peer) -> None:
    a = embedded(heartbeat_s=0.5, send_buffer_bytes=BOUND, send_timeout_s=2)
    raw = raw_peer(a.mesh.listen())

    def dropped() -> bool:
        return any(e["event"] == "slow-peer" for e in a.mesh.logs(level="error"))

    async def scenario() -> bool:
        pinging = await stop_reading(raw)
        try:
            await asyncio.to_thread(write_past_the_hold, a, raw.peer_id)
            await until(dropped, "the slow peer to be dropped")
            return await raw.closed()  # what was buffered, then the socket's end
        finally:
            pinging.cancel()

    with BufferSampler(a, raw.peer_id) as sampler:
        assert run(scenario(), 180)
    assert 0 < sampler.largest <= BOUND, f"tornado buffered {sampler.largest} bytes"
    (entry,) = [e for e in a.mesh.logs(level="error") if e["event"] == "slow-peer"]
    assert entry["peer_id"] == raw.peer_id
    assert "the peer read nothing for 2 s" in entry["message"]
    assert f"(limit {BOUND})" in entry["message"]
    row = link_row(a, raw.peer_id)
    assert row["state"] == "error"
    assert row["last_error"] == entry["message"]
