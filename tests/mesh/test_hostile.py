"""Hostile peers are refused and cut off; the honest link beside them keeps syncing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import msgpack
import pytest

import pluresdb_lab as pl

LIMIT = 64 * 1024


@pytest.fixture
def honest(embedded, wait_until) -> tuple[pl.Database, pl.Database, str]:
    """a listens (frame limit 64 KiB), b is connected to it; both know the secret."""
    a = embedded(max_frame_bytes=LIMIT)
    b = embedded(max_frame_bytes=LIMIT)
    url = a.mesh.listen()
    b.mesh.connect(url)
    wait_until(lambda: [p["state"] for p in a.mesh.peers()] == ["connected"], what="b linked")
    return a, b, url


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 30))


def still_syncing(a: pl.Database, b: pl.Database, tag: str, wait_until: Callable[..., None]):
    """b's writes still reach a over the same, untouched link."""
    b.put(tag, {"ok": True})
    wait_until(lambda: a.get(tag) is not None, what=f"{tag} reaches a")
    (row,) = [p for p in a.mesh.peers() if p["peer_id"] == b.peer_id]
    assert row["state"] == "connected"
    assert row["last_error"] is None


def logged(db: pl.Database, text: str) -> bool:
    return any(text in entry["message"] for entry in db.mesh.logs(level="warning"))


@pytest.mark.parametrize(
    ("secret", "options", "reason"),
    [
        (None, {}, "did not prove the mesh secret"),
        ("wrong secret", {}, "did not prove the mesh secret"),
        ("test-mesh-secret", {"bad_signature": True}, "bad handshake signature"),
        ("test-mesh-secret", {"claimed_id": "0123456789abcdef"}, "does not match its public key"),
    ],
    ids=["unknown-key", "wrong-secret", "bad-signature", "stolen-id"],
)
def test_unauthenticated_peers_are_refused(
    honest, wait_until, raw_peer, secret, options, reason
) -> None:
    a, b, url = honest
    before = a.count()
    raw = raw_peer(url)

    async def attempt() -> tuple[dict[str, Any] | None, bool]:
        answer = await raw.handshake(secret, **options)
        return answer, await raw.closed()

    answer, closed = run(attempt())
    assert answer is not None
    assert answer["t"] == "refused"
    assert reason in answer["reason"]
    assert closed
    wait_until(lambda: logged(a, reason), what="refusal logged")
    assert a.count() == before
    still_syncing(a, b, f"after-{reason[:10]}", wait_until)


HOSTILE_FRAMES: dict[str, Any] = {
    "garbage": b"\xc1\xc1 not msgpack",
    "text-frame": "hello",
    "not-a-map": msgpack.packb([1, 2, 3]),
    "unknown-type": msgpack.packb({"t": "bogus"}),
    "oversized": b"\x00" * (LIMIT + 1000),
    "far-oversized": b"\x00" * (4 * LIMIT),
}


@pytest.mark.parametrize("name", list(HOSTILE_FRAMES))
def test_hostile_frames_before_the_handshake_close_only_that_link(
    honest, wait_until, raw_peer, name
) -> None:
    a, b, url = honest
    raw = raw_peer(url)

    async def attack() -> bool:
        await raw.open()
        await raw.send_raw(HOSTILE_FRAMES[name])
        return await raw.closed()

    assert run(attack())
    if name != "far-oversized":  # tornado cuts those before the mesh sees a frame
        wait_until(lambda: any(e["level"] == "error" for e in a.mesh.logs()), what="logged")
    still_syncing(a, b, f"after-{name}", wait_until)


@pytest.mark.parametrize(
    "frame",
    [
        {"t": "live", "ops": msgpack.packb([{"o": "x", "s": "one"}]), "z": False},
        {"t": "batch", "ops": b"\x78\x9c garbage", "z": True, "done": 1, "total": 1},
        {"t": "vv", "vv": {"p": -1}, "reply": False},
        {"t": "hello", "v": 1},
        {"t": "vv", "vv": {}, "reply": True, "round": -3},
        {"t": "batch", "ops": msgpack.packb([]), "z": False, "done": 0, "total": 0, "round": "1"},
    ],
    ids=["invalid-op", "bad-zlib", "bad-vv", "second-hello", "negative-round", "text-round"],
)
def test_authenticated_peer_sending_bad_frames_is_cut_off(
    honest, wait_until, raw_peer, frame
) -> None:
    a, b, url = honest
    raw = raw_peer(url)
    before = a.version_vector()

    async def attack() -> bool:
        answer = await raw.handshake("test-mesh-secret")
        assert answer is not None
        assert answer["t"] == "vv"
        await raw.send(**frame)
        return await raw.closed()

    assert run(attack())
    wait_until(lambda: logged(a, "closed: the peer sent"), what="cut-off logged")
    assert a.version_vector() == before
    still_syncing(a, b, f"after-{frame['t']}", wait_until)


def test_allowed_peer_without_secret_is_accepted(embedded, wait_until, raw_peer) -> None:
    a = embedded(secret="")
    raw = raw_peer(a.mesh.listen())
    a.mesh.allow(raw.peer_id)
    answer = run(raw.handshake(None))
    assert answer is not None
    assert answer["t"] == "vv"
    wait_until(lambda: [p["peer_id"] for p in a.mesh.peers()] == [raw.peer_id])


def test_duplicated_and_reordered_batches_apply_once(honest, wait_until, raw_peer) -> None:
    a, _, url = honest
    other = pl.connect(":memory:")
    for i in range(5):
        other.put(f"o{i}", {"i": i})
    ops = other.ops_since({})
    other.close()
    raw = raw_peer(url)

    async def replay() -> None:
        assert await raw.handshake("test-mesh-secret") is not None
        for chunk in (ops[3:], ops[:2], ops, ops[::-1], ops[2:3]):
            await raw.send(t="live", ops=msgpack.packb(chunk), z=False)

    run(replay())
    origin = ops[0]["o"]
    wait_until(lambda: a.version_vector().get(origin) == 5, what="all five applied")
    assert [node.version for node in a.get_many([f"o{i}" for i in range(5)]) if node] == [1] * 5


def test_oversized_frame_from_an_authenticated_peer_is_cut_off(honest, wait_until, raw_peer):
    a, b, url = honest
    raw = raw_peer(url)

    async def attack() -> bool:
        assert await raw.handshake("test-mesh-secret") is not None
        await raw.send_raw(msgpack.packb({"t": "live", "ops": b"\x00" * LIMIT, "z": False}))
        return await raw.closed()

    assert run(attack())
    wait_until(lambda: logged(a, f"over the limit of {LIMIT}"), what="oversize logged")
    still_syncing(a, b, "after-authenticated-oversize", wait_until)
