"""Shared fixtures for the engine API tests (docs/api-contract.md).

``db`` runs a test once against ``":memory:"`` and once against an on-disk folder
(``tmp_path / "db"``) and always closes the database afterwards.  ``open_db`` is a
factory for extra databases in one test (peers for replication, reopening a folder);
whatever it opened is closed at teardown.  ``disk_db_path`` is a fresh, not yet
existing folder for tests that open, close and reopen a database themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import pluresdb_lab as pl

BACKENDS = [":memory:", "disk"]


def _close_quietly(database: Any) -> None:
    if not database.closed:
        database.close()


@pytest.fixture(params=BACKENDS, ids=["memory", "disk"])
def backend(request: pytest.FixtureRequest) -> str:
    """``":memory:"`` or ``"disk"``: which kind of database ``db`` is."""
    return str(request.param)


@pytest.fixture
def db(backend: str, tmp_path: Path) -> Iterator[Any]:
    target: str | Path = ":memory:" if backend == ":memory:" else tmp_path / "db"
    database = pl.connect(target)
    try:
        yield database
    finally:
        _close_quietly(database)


@pytest.fixture
def disk_db_path(tmp_path: Path) -> Path:
    """A folder (not created yet) for a durable database that a test reopens."""
    return tmp_path / "persist"


@pytest.fixture
def open_db() -> Iterator[Callable[..., Any]]:
    """``open_db(target, **kwargs)`` -> Database; everything opened is closed at teardown."""
    opened: list[Any] = []

    def _open(target: str | Path, **kwargs: Any) -> Any:
        database = pl.connect(target, **kwargs)
        opened.append(database)
        return database

    yield _open
    for database in reversed(opened):
        _close_quietly(database)
