"""Child processes for the storage tests that SIGKILL a real writer or restorer.

``spawn(script, *args)`` runs ``script`` (Python source) in a fresh interpreter with this
repository importable, as a `tests.engine.crashkit.Child`: JSON lines on stdout, every
read bounded, no sleeps to synchronise. Whatever was spawned is killed at teardown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.engine.crashkit import LINE_TIMEOUT, Child


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
        child._thread.join(timeout=LINE_TIMEOUT)
        child.close_pipes()
