"""What peers() and logs() report: catch-up progress, byte counts, RTT, pause/resume."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import pluresdb_lab as pl
from pluresdb_lab.errors import MeshError


def row(db: pl.Database, peer_id: str) -> dict[str, Any]:
    (found,) = [p for p in db.mesh.peers() if p["peer_id"] == peer_id]
    return dict(found)


def test_catch_up_of_10k_ops_reports_monotonic_progress(spawn, embedded, wait_until) -> None:
    writer = spawn("writer")
    writer.request("write", prefix="w", n=10_000)
    url = writer.request("listen")
    db = embedded()
    db.mesh.connect(url)
    samples: list[tuple[int, int]] = []

    def done() -> bool:
        rows = db.mesh.peers()
        if rows:
            progress = rows[0]["sync_progress"]
            samples.append((progress["received"], progress["to_receive"]))
        return db.count() == 10_000 and bool(samples) and samples[-1][0] == 10_000

    wait_until(done, timeout=60, what="10k ops caught up")
    received = [r for r, _ in samples]
    assert received == sorted(received)
    assert len({r for r in received if 0 < r < 10_000}) >= 3, "progress moved in steps"
    assert {t for r, t in samples if r} == {10_000}
    assert any("caught up: 10000 ops" in e["message"] for e in db.mesh.logs())
    assert row(db, writer.peer_id)["ops_received"] == 10_000


def test_bytes_counted_match_both_ends(embedded, wait_until) -> None:
    a = embedded(heartbeat_s=0.2)
    b = embedded(heartbeat_s=0.2)
    for i in range(500):
        a.put(f"a{i}", {"i": i})
    b.mesh.connect(a.mesh.listen())
    wait_until(lambda: b.count() == 500, what="catch-up")
    for i in range(100):
        b.put(f"b{i}", {"i": i})
    wait_until(lambda: a.count() == 600, what="live ops")
    b.mesh.pause()  # ops stop, heartbeats go on: counts must still agree between pings

    def agree() -> bool:
        ra, rb = row(a, b.peer_id), row(b, a.peer_id)
        return (
            ra["bytes_out"] == rb["bytes_in"]
            and ra["bytes_in"] == rb["bytes_out"]
            and ra["messages_out"] == rb["messages_in"]
            and ra["messages_in"] == rb["messages_out"]
        )

    wait_until(agree, what="both ends count the same bytes and messages")
    ra = row(a, b.peer_id)
    assert ra["ops_sent"] >= 500
    assert ra["ops_received"] >= 100
    assert ra["bytes_out"] > 500 * 5
    wait_until(lambda: row(a, b.peer_id)["rtt_ms"] is not None, what="heartbeat RTT")
    assert 0 < row(a, b.peer_id)["rtt_ms"] < 1000
    wait_until(lambda: row(a, b.peer_id)["bytes_in_per_s"] > 0, what="rates")


def test_bytes_counted_match_what_a_client_really_got(embedded, wait_until, raw_peer) -> None:
    a = embedded(heartbeat_s=60)
    for i in range(300):
        a.put(f"n{i}", {"i": i, "text": "x" * 20})
    raw = raw_peer(a.mesh.listen())

    async def fetch() -> None:
        assert await raw.handshake("test-mesh-secret") is not None  # a's vv
        await raw.send(t="vv", vv={}, reply=False)
        while True:
            frame = await raw.receive()
            assert frame is not None
            if frame["t"] == "batch" and frame["done"] == frame["total"]:
                return

    asyncio.run(asyncio.wait_for(fetch(), 30))
    wait_until(lambda: row(a, raw.peer_id)["bytes_in"] == raw.bytes_sent, what="bytes in")
    assert row(a, raw.peer_id)["bytes_out"] == raw.bytes_received
    assert row(a, raw.peer_id)["ops_sent"] == 300


def test_pause_stops_ops_and_resume_syncs(embedded, wait_until) -> None:
    a, b = embedded(), embedded()
    b.mesh.connect(a.mesh.listen())
    wait_until(lambda: [p["state"] for p in b.mesh.peers()] == ["connected"])
    b.mesh.pause()
    a.put("while-paused", {"x": 1})
    b.put("b-while-paused", {"x": 1})
    b.mesh.resume()
    wait_until(lambda: b.get("while-paused") is not None and a.get("b-while-paused") is not None)
    b.mesh.sync()
    b.mesh.sync(a.peer_id)
    events = [e["event"] for e in b.mesh.logs()]
    assert {"pause", "resume", "connect", "connected"} <= set(events)


def test_logs_are_bounded_and_filtered(embedded) -> None:
    db = embedded()
    for _ in range(3000):
        db.mesh.pause()
    assert len(db.mesh.logs(limit=10_000)) == 2000
    assert len(db.mesh.logs()) == 200
    assert db.mesh.logs(level="error") == []
    with pytest.raises(MeshError):
        db.mesh.logs(level="loud")


def test_bad_arguments_are_clear_errors(embedded) -> None:
    db = embedded()
    with pytest.raises(MeshError, match="ws://"):
        db.mesh.connect("http://example.org")
    with pytest.raises(MeshError, match="max_frame_bytes"):
        db.mesh.configure(max_frame_bytes=10)
    with pytest.raises(MeshError, match="list of peer ids"):
        db.mesh.configure(allow="abc")
    with pytest.raises(MeshError, match="peer id"):
        db.mesh.allow("")
    assert db.mesh.identity.peer_id == db.peer_id
    assert len(bytes.fromhex(db.mesh.identity.public_key)) == 32


def test_sync_rounds_are_counted_when_the_peer_answered_them(embedded, wait_until) -> None:
    a, b = embedded(heartbeat_s=0.3), embedded(heartbeat_s=0.3)  # pings interleave with batches
    b.mesh.connect(a.mesh.listen())
    wait_until(lambda: [p["state"] for p in b.mesh.peers()] == ["connected"])
    b.mesh.pause()  # b drops what arrives, so a's writes wait for a sync round
    a.put_many([{"id": f"n{i}", "i": i} for i in range(3000)], type="row")
    wait_until(lambda: row(a, b.peer_id)["ops_sent"] >= 1, what="live ops dropped by b")
    b.mesh.resume()  # resume() itself runs a round; then ask for one more
    wait_until(lambda: row(b, a.peer_id)["sync_progress"]["rounds_answered"] == 1)
    assert b.count("row") == 3000  # answered means applied: no waiting here
    a.put("late", {"x": 1})
    b.mesh.sync(a.peer_id)
    wait_until(lambda: row(b, a.peer_id)["sync_progress"]["rounds_answered"] == 2)
    assert b.version_vector() == a.version_vector()
    assert row(b, a.peer_id)["sync_progress"]["rounds_asked"] == 2
    assert row(a, b.peer_id)["sync_progress"]["rounds_asked"] == 0
