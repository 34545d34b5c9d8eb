"""LAN discovery over zeroconf: peers with discovery on find each other and sync without
an explicit connect; peers with it off stay hidden; the handshake still decides."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).with_name("discopeer.py")
LOOPBACK = ["127.0.0.1"]


def discovered_ids(peer: Any) -> set[str]:
    return {row["peer_id"] for row in peer.request("discovered")}


def linked_ids(peer: Any) -> set[str]:
    return {row["peer_id"] for row in peer.request("peers") if row["state"] == "connected"}


@pytest.fixture
def spawn(tmp_path: Path, peer_process: Any) -> Iterator[Callable[..., Any]]:
    """`spawn(name, discovery=True, **options)`: a listening peer. Each test has its own
    secret, so peers of other test runs on this machine never sync with these."""
    peers: list[Any] = []
    secret = secrets.token_hex(8)

    def _spawn(name: str, discovery: bool = True, **options: Any) -> Any:
        options.setdefault("secret", secret)
        options.update(discovery=discovery, discovery_interfaces=LOOPBACK)
        peer = peer_process(tmp_path / name, options, script=SCRIPT)
        peers.append(peer)
        peer.request("listen")
        return peer

    yield _spawn
    for peer in peers:
        peer.kill()


def test_discovered_peers_converge_and_hidden_peer_stays_out(spawn, wait_until) -> None:
    hidden = spawn("c", discovery=False)
    a, b = spawn("a"), spawn("b")
    a.request("put", id="from-a", data={"by": "a"})
    b.request("put", id="from-b", data={"by": "b"})
    wait_until(lambda: b.request("get", id="from-a") is not None, what="a's write reaches b")
    wait_until(lambda: a.request("get", id="from-b") is not None, what="b's write reaches a")
    wait_until(lambda: b.peer_id in discovered_ids(a), what="a lists b as discovered")
    wait_until(lambda: a.peer_id in discovered_ids(b), what="b lists a as discovered")
    (row,) = [r for r in a.request("discovered") if r["peer_id"] == b.peer_id]
    assert row["url"].startswith("ws://127.0.0.1:")
    assert row["url"].endswith("/pluresdb/mesh")
    assert any(e["event"] == "discovered" for e in a.request("logs"))
    for peer in (a, b):
        assert hidden.peer_id not in discovered_ids(peer)
        assert hidden.peer_id not in {r["peer_id"] for r in peer.request("peers")}
    assert hidden.request("discovered") == []
    assert hidden.request("peers") == []
    assert hidden.request("count") == 0


def test_discovered_peer_without_the_secret_is_refused(spawn, wait_until) -> None:
    a = spawn("a")
    a.request("put", id="from-a", data={"by": "a"})
    stranger = spawn("d", secret="")
    stranger.request("put", id="from-d", data={"by": "d"})

    def refused() -> bool:
        return any(
            e["peer_id"] == stranger.peer_id and e["event"] in ("refused", "refused-by-peer")
            for e in a.request("logs", level="warning")
        )

    wait_until(refused, what="a refuses the secretless peer it discovered")
    wait_until(lambda: stranger.peer_id in discovered_ids(a), what="a saw the stranger")
    assert a.request("get", id="from-d") is None
    assert a.request("count") == 1
    assert stranger.request("get", id="from-a") is None
    assert stranger.peer_id not in linked_ids(a)


def test_switching_discovery_off_unregisters(spawn, wait_until) -> None:
    a, b = spawn("a"), spawn("b")
    wait_until(lambda: a.peer_id in discovered_ids(b), what="b discovers a")
    a.request("configure", discovery=False)
    wait_until(lambda: a.peer_id not in discovered_ids(b), what="b sees a leave")
    assert a.request("discovered") == []
    assert any("left the LAN" in e["message"] for e in b.request("logs"))
