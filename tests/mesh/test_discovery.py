"""LAN discovery over zeroconf: peers with discovery on find each other and sync without
an explicit connect; peers with it off stay hidden; the handshake still decides."""

from __future__ import annotations

import json
import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).with_name("discopeer.py")
LOOPBACK = ["127.0.0.1"]


class DiscoPeer:
    """A discopeer.py process; `request` sends one command and returns its answer."""

    def __init__(self, folder: Path, options: dict[str, Any]) -> None:
        self.name = folder.name
        self.process = subprocess.Popen(
            [sys.executable, str(SCRIPT), str(folder), json.dumps(options)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.peer_id: str = self._next(30)["peer_id"]

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put("")

    def _next(self, timeout: float) -> Any:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"peer {self.name} did not answer within {timeout} s")
        if not line:
            pytest.fail(f"peer {self.name} exited (code {self.process.poll()})")
        return json.loads(line)

    def request(self, cmd: str, timeout: float = 30, **args: Any) -> Any:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
        self.process.stdin.flush()
        return self._next(timeout)["ok"]

    def discovered_ids(self) -> set[str]:
        return {row["peer_id"] for row in self.request("discovered")}

    def linked_ids(self) -> set[str]:
        return {row["peer_id"] for row in self.request("peers") if row["state"] == "connected"}

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., DiscoPeer]]:
    """`spawn(name, discovery=True, **options)`: a listening peer. Each test has its own
    secret, so peers of other test runs on this machine never sync with these."""
    peers: list[DiscoPeer] = []
    secret = secrets.token_hex(8)

    def _spawn(name: str, discovery: bool = True, **options: Any) -> DiscoPeer:
        options.setdefault("secret", secret)
        options.update(discovery=discovery, discovery_interfaces=LOOPBACK)
        peer = DiscoPeer(tmp_path / name, options)
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
    wait_until(lambda: b.peer_id in a.discovered_ids(), what="a lists b as discovered")
    wait_until(lambda: a.peer_id in b.discovered_ids(), what="b lists a as discovered")
    (row,) = [r for r in a.request("discovered") if r["peer_id"] == b.peer_id]
    assert row["url"].startswith("ws://127.0.0.1:")
    assert row["url"].endswith("/pluresdb/mesh")
    assert any(e["event"] == "discovered" for e in a.request("logs"))
    for peer in (a, b):
        assert hidden.peer_id not in peer.discovered_ids()
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
    wait_until(lambda: stranger.peer_id in a.discovered_ids(), what="a saw the stranger")
    assert a.request("get", id="from-d") is None
    assert a.request("count") == 1
    assert stranger.request("get", id="from-a") is None
    assert stranger.peer_id not in a.linked_ids()


def test_switching_discovery_off_unregisters(spawn, wait_until) -> None:
    a, b = spawn("a"), spawn("b")
    wait_until(lambda: a.peer_id in b.discovered_ids(), what="b discovers a")
    a.request("configure", discovery=False)
    wait_until(lambda: a.peer_id not in b.discovered_ids(), what="b sees a leave")
    assert a.request("discovered") == []
    assert any("left the LAN" in e["message"] for e in b.request("logs"))
