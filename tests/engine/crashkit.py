"""What the SIGKILL tests share: child processes read line by line, and database state.

A child is a Python script (``sys.executable``) whose stdout lines a reader thread puts
into a queue; every wait on it is bounded, and it is the only synchronisation.
Used by test_crash.py, test_crash_mixed.py and the storage tests' `spawn` fixture.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 120.0  # first line: interpreter start + imports + open
LINE_TIMEOUT = 60.0


class Child:
    """A child process whose stdout lines are pumped into a queue by a thread."""

    def __init__(self, script: Path, args: list[str], log_dir: Path) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
        log_dir.mkdir(parents=True, exist_ok=True)
        self.stderr_path = log_dir / f"child-{os.urandom(4).hex()}.stderr"
        self._stderr = open(self.stderr_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, str(script), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            cwd=str(REPO),
            env=env,
        )
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self._lines.put(raw)
        self._lines.put(None)

    def stderr_text(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")[-4000:]

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def read(self, timeout: float = LINE_TIMEOUT) -> dict[str, Any]:
        try:
            raw = self._lines.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            pytest.fail(f"child printed nothing for {timeout}s; stderr:\n{self.stderr_text()}")
        if raw is None:
            rc = self.proc.wait(timeout=LINE_TIMEOUT)
            pytest.fail(f"child exited (rc={rc}) early; stderr:\n{self.stderr_text()}")
        return json.loads(raw)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=LINE_TIMEOUT)

    def kill_and_drain(self) -> list[dict[str, Any]]:
        """SIGKILL, then return every complete line the child printed that we had not read."""
        self.kill()
        rest: list[dict[str, Any]] = []
        while True:
            try:
                raw = self._lines.get(timeout=LINE_TIMEOUT)
            except queue.Empty:
                pytest.fail("stdout of a killed child did not reach EOF")
            if raw is None:
                break
            if raw.endswith(b"\n"):  # a torn last line is not an acknowledgement
                rest.append(json.loads(raw))
        self._thread.join(timeout=LINE_TIMEOUT)
        self.close_pipes()
        return rest

    def close_pipes(self) -> None:
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None and not f.closed:
                with contextlib.suppress(OSError):
                    f.close()
        self._stderr.close()


class Spawner:
    """Starts children running `script_text` (written once under `tmp_path`); `close`
    kills whichever are still running (a fixture's teardown)."""

    def __init__(self, script_text: str, tmp_path: Path) -> None:
        self._script = tmp_path / "child.py"
        self._script.write_text(script_text)
        self._log_dir = tmp_path / "logs"
        self._children: list[Child] = []

    def __call__(self, *args: str) -> Child:
        child = Child(self._script, list(args), self._log_dir)
        self._children.append(child)
        return child

    def close(self) -> None:
        for child in self._children:
            child.kill()
            child._thread.join(timeout=LINE_TIMEOUT)
            child.close_pipes()


def db_state(db: Any) -> dict[str, dict[str, Any]]:
    """Every visible node as {id: data}, checking that list() and count() agree."""
    nodes = db.list(limit=10**9)
    ids = [n.id for n in nodes]
    assert ids == sorted(ids), "list() must be sorted by id"
    assert len(ids) == len(set(ids)), "list() returned an id twice"
    state = {n.id: dict(n.data) for n in nodes}
    assert db.count() == len(state)
    return state


def check_recovery_report(db: Any) -> None:
    rep = db.recovery
    assert rep is not None
    assert isinstance(rep.replayed_records, int)
    assert rep.replayed_records >= 0
    assert isinstance(rep.torn_bytes, int)
    assert rep.torn_bytes >= 0
    assert rep.wal_file is None or isinstance(rep.wal_file, str | os.PathLike)
