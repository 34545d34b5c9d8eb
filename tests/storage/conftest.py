"""Child processes for the storage tests that SIGKILL a real writer or restorer.

``spawn(script, *args)`` runs ``script`` (Python source) in a fresh interpreter with this
repository importable. The child speaks JSON lines on stdout; a thread pumps them into a
queue, so every read waits at most a bounded time, and the test never sleeps to
synchronise. Whatever was spawned is killed at teardown.
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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 120.0  # interpreter start + imports + open, on a busy machine
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
        return dict(json.loads(raw))

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=LINE_TIMEOUT)

    def kill_and_drain(self) -> list[dict[str, Any]]:
        """SIGKILL, then every complete line the child printed that was not read yet."""
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
        self.close()
        return rest

    def close(self) -> None:
        self._thread.join(timeout=LINE_TIMEOUT)
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None and not f.closed:
                with contextlib.suppress(OSError):
                    f.close()
        self._stderr.close()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Child]]:
    children: list[Child] = []

    def _spawn(source: str, *args: str) -> Child:
        script = tmp_path / f"child-{len(children)}.py"
        script.write_text(source)
        child = Child(script, list(args), tmp_path / "logs")
        children.append(child)
        return child

    yield _spawn
    for child in children:
        child.kill()
        child.close()
