"""Three peer processes writing at the same time converge, and so do partitions healing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

WRITES = 300
SHARED = 30


def mesh_of_three(spawn: Callable[..., Any]) -> list[Any]:
    """Peers a, b, c; b dials a, c dials a and b."""
    a, b, c = spawn("a"), spawn("b"), spawn("c")
    url_a, url_b = a.request("listen"), b.request("listen")
    b.request("connect", url=url_a)
    c.request("connect", url=url_a)
    c.request("connect", url=url_b)
    return [a, b, c]


def connected(peer: Any, n: int) -> Callable[[], bool]:
    return lambda: sum(p["state"] == "connected" for p in peer.request("peers")) >= n


def test_three_peers_writing_concurrently_converge(spawn, wait_until, converged) -> None:
    peers = mesh_of_three(spawn)
    for peer in peers:
        wait_until(connected(peer, 2), what="three links up")
    for name, peer in zip("abc", peers, strict=True):
        peer.request("write_async", prefix=name, n=WRITES, shared=SHARED)
    for peer in peers:
        peer.request("join")
    wait_until(converged(*peers, count=3 * WRITES + SHARED), what="three peers converge")
    vv = peers[0].state()["vv"]
    assert vv == {p.peer_id: WRITES + SHARED for p in peers}


def test_disconnect_then_connect_converges(spawn, wait_until, converged) -> None:
    a, b = spawn("a"), spawn("b")
    url_a = a.request("listen")
    b.request("connect", url=url_a)
    wait_until(connected(a, 1), what="link up")
    a.request("disconnect", peer_id=b.peer_id)  # sticky: b's redials are refused
    a.request("write", prefix="a", n=100)
    b.request("write", prefix="b", n=100)
    wait_until(
        lambda: any("refused" in str(p["last_error"]) for p in b.request("peers")),
        what="b's redial refused after the sticky disconnect",
    )
    assert a.state()["count"] == 100
    a.request("connect", url=b.request("listen"), peer_id=b.peer_id)
    wait_until(converged(a, b, count=200), what="healed pair converges")


def test_peer_stopped_and_restarted_catches_up(spawn, wait_until, converged) -> None:
    a, b, c = mesh_of_three(spawn)
    wait_until(connected(a, 2), what="links up")
    c.stop()
    a.request("write", prefix="a", n=200)
    b.request("write", prefix="b", n=200)
    wait_until(converged(a, b, count=400), what="a and b converge without c")
    c = spawn("c")  # same folder: same identity, its old ops on disk
    c.request("write", prefix="c", n=50)
    c.request("connect", url=a.request("listen"))
    wait_until(converged(a, b, c, count=450), what="c back and converged")


def test_peer_killed_mid_sync_restarts_and_catches_up(spawn, wait_until, converged) -> None:
    a = spawn("a")
    a.request("write", prefix="a", n=20_000)
    url_a = a.request("listen")
    b = spawn("b")
    b.request("connect", url=url_a)

    def mid_sync() -> bool:
        rows = b.request("peers")
        return bool(rows) and 0 < rows[0]["sync_progress"]["received"] < 15_000

    wait_until(mid_sync, what="b part way through catch-up")
    b.kill()
    b = spawn("b")
    assert b.state()["count"] < 20_000
    b.request("connect", url=url_a)
    wait_until(converged(a, b, count=20_000), timeout=60, what="b caught up after SIGKILL")
