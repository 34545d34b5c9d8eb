"""Plugins for the whole suite: pytest-jupyter's server fixtures (used by tests/server).

pytest-jupyter makes a fresh event loop and a ServerApp cleanup autouse for every
test; only tests/server needs them, so they are no-ops here and tests/server/conftest.py
turns them back on.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture(autouse=True)
def jp_asyncio_loop() -> None:
    """No event loop made per test outside tests/server."""


@pytest.fixture(autouse=True)
def jp_server_cleanup() -> None:
    """No ServerApp to clean up outside tests/server."""
