"""Fixtures for the index, search and query tests (DESIGN §6).

``open_db`` opens databases (":memory:" or a folder) and closes whatever is still open
at teardown; ``db`` is one in-memory database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import pluresdb_lab as pl


@pytest.fixture
def open_db() -> Iterator[Callable[..., Any]]:
    opened: list[Any] = []

    def factory(target: str | Path = ":memory:", **options: Any) -> Any:
        database = pl.connect(target, **options)
        opened.append(database)
        return database

    yield factory
    for database in opened:
        if not database.closed:
            database.close()


@pytest.fixture
def db(open_db: Callable[..., Any]) -> Any:
    return open_db()
