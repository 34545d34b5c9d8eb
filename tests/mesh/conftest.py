"""Fixtures for mesh tests: peer processes driven over stdin/stdout, and `wait_until`.

Every process has a deadline on each request and is killed at teardown; tests never
sleep to synchronise, they poll a condition until a deadline.
"""

from __future__ import annotations

import importlib.util
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import pluresdb_lab as pl

PEER_SCRIPT = Path(__file__).with_name("peer.py")
_spec = importlib.util.spec_from_file_location("rawpeer", Path(__file__).with_name("rawpeer.py"))
assert _spec is not None
assert _spec.loader is not None
rawpeer = importlib.util.module_from_spec(_spec)
sys.modules["rawpeer"] = rawpeer  # dataclasses look their module up there
_spec.loader.exec_module(rawpeer)
SECRET = "test-mesh-secret"


def poll(condition: Callable[[], object], timeout: float = 30, what: str = "") -> None:
    """Poll `condition` until it is truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what or condition}")
        pause.wait(0.02)


class Peer:
    """A peer process on a data folder; `request` sends one command and returns the answer."""

    def __init__(self, folder: Path, options: dict[str, Any], script: Path = PEER_SCRIPT) -> None:
        self.folder = folder
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, str(script), str(folder), json.dumps(options)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.peer_id: str = self._next(60)["peer_id"]

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put("")

    def _next(self, timeout: float) -> Any:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"peer {self.folder.name} did not answer within {timeout} s")
        if not line:
            pytest.fail(f"peer {self.folder.name} exited (code {self.process.poll()})")
        return json.loads(line)

    def request(self, cmd: str, timeout: float = 60, **args: Any) -> Any:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
        self.process.stdin.flush()
        return self._next(timeout)["ok"]

    def state(self) -> dict[str, Any]:
        return dict(self.request("state"))

    def stop(self) -> None:
        """Close the database cleanly and wait for the process to end."""
        self.request("quit")
        self.process.wait(30)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)


@pytest.fixture
def peer_process() -> type[Peer]:
    """The peer-process class, for tests that drive another peer script."""
    return Peer


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Peer]]:
    """`spawn(name, **mesh_options)` starts a peer process on `tmp_path / name`."""
    peers: list[Peer] = []

    def _spawn(name: str, **options: Any) -> Peer:
        options.setdefault("secret", SECRET)
        peer = Peer(tmp_path / name, options)
        peers.append(peer)
        return peer

    yield _spawn
    for peer in peers:
        peer.kill()


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Callable[..., pl.Database]]:
    """`embedded(name or ":memory:", **mesh_options)`: an in-process database whose mesh
    is configured with the test secret; closed at teardown."""
    opened: list[pl.Database] = []

    def _open(name: str = ":memory:", **options: Any) -> pl.Database:
        target = name if name == ":memory:" else tmp_path / name
        db = pl.connect(target, fsync="off")
        options.setdefault("secret", SECRET)
        db.mesh.configure(**options)
        opened.append(db)
        return db

    yield _open
    for db in opened:
        db.close()


def all_converged(*peers: Peer, count: int | None = None) -> Callable[[], bool]:
    """A condition: all peers hold the same nodes and version vector (and `count` nodes)."""

    def check() -> bool:
        states = [peer.state() for peer in peers]
        first = states[0]
        same = all(s["digest"] == first["digest"] and s["vv"] == first["vv"] for s in states)
        return same and (count is None or first["count"] == count)

    return check


@pytest.fixture
def wait_until() -> Callable[..., None]:
    """`wait_until(condition, timeout=30, what="")`: poll until true or fail."""
    return poll


@pytest.fixture
def converged() -> Callable[..., Callable[[], bool]]:
    """`converged(*peers, count=None)`: a condition for `wait_until`."""
    return all_converged


@pytest.fixture
def raw_peer() -> Callable[[str], Any]:
    """`raw_peer(url)`: a hand-written protocol client (see rawpeer.py) that can lie."""
    return rawpeer.RawPeer  # type: ignore[no-any-return]
