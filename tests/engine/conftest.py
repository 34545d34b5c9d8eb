"""Shared fixtures for the engine API tests (docs/api-contract.md), embedded and remote.

``db`` runs a test against ``":memory:"`` and an on-disk folder (``tmp_path / "db"``);
in the modules of REMOTE (the API suite) also against ``remote``: a ``RemoteDatabase``
talking over 127.0.0.1 to a real server (the handlers of ``pluresdb serve``, on a
thread of this process) that serves a fresh database in ``tmp_path / "db"``.
``open_db`` is a factory for extra databases in one test (peers for replication,
reopening a folder): embedded, and in those modules remote as well (following ``db``
when a test uses both); whatever it opened is closed at teardown.  ``disk_db_path`` is
a fresh, not yet existing folder for tests that open, close and reopen a database
themselves.

A test that needs what only an in-process database offers carries
``@pytest.mark.embedded_only("why")``; its remote run is skipped with that reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import pluresdb_lab as pl
from pluresdb_lab._database import Database
from pluresdb_lab.server.standalone import Background

BACKENDS = [":memory:", "disk"]
REMOTE = ("test_api.py", "test_bad_input.py")
TOKEN = "engine-api-token"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "embedded_only(reason): the remote run of this test is skipped for reason"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    remote = Path(metafunc.definition.path).name in REMOTE
    if "backend" in metafunc.fixturenames:
        backends = [*BACKENDS, *(["remote"] if remote else [])]
        ids = [b.strip(":") for b in backends]
        metafunc.parametrize("backend", backends, ids=ids, indirect=True)
    elif remote and "connection" in metafunc.fixturenames:
        metafunc.parametrize("connection", ["embedded", "remote"], indirect=True)


def _close_quietly(database: Any) -> None:
    if not database.closed:
        database.close()


def _skip_remote(request: pytest.FixtureRequest) -> None:
    marker = request.node.get_closest_marker("embedded_only")
    if marker is not None:
        pytest.skip(f"embedded only: {marker.args[0]}")


class Served:
    """Databases served over HTTP, at most one server per folder, all closed at the end.

    Opening a folder that is being served again stops that server and closes its
    database first, as restarting `pluresdb serve` on the folder would.
    """

    def __init__(self) -> None:
        self._running: list[tuple[Path | None, Background]] = []

    def connect(self, target: str | Path, **options: Any) -> Any:
        folder = None if str(target) == pl.MEMORY else Path(target).resolve()
        if folder is not None:
            for held, server in list(self._running):
                if held == folder:
                    self._stop(held, server)
        embedded = Database(None if folder is None else target, **options)
        try:
            server = Background(embedded, token=TOKEN)
        except BaseException:
            embedded.close()
            raise
        self._running.append((folder, server))
        return pl.connect(server.url, token=TOKEN)

    def _stop(self, folder: Path | None, server: Background) -> None:
        self._running.remove((folder, server))
        try:
            server.close()
        finally:
            server.db.close()

    def close(self) -> None:
        for folder, server in reversed(self._running):
            self._stop(folder, server)


@pytest.fixture
def served() -> Iterator[Served]:
    running = Served()
    try:
        yield running
    finally:
        running.close()


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """``":memory:"``, ``"disk"`` or ``"remote"``: which kind of database ``db`` is."""
    if request.param == "remote":
        _skip_remote(request)
    return str(request.param)


@pytest.fixture
def db(backend: str, tmp_path: Path, served: Served) -> Iterator[Any]:
    if backend == "remote":
        database = served.connect(tmp_path / "db")
    else:
        database = pl.connect(":memory:" if backend == ":memory:" else tmp_path / "db")
    try:
        yield database
    finally:
        _close_quietly(database)


@pytest.fixture
def disk_db_path(tmp_path: Path) -> Path:
    """A folder (not created yet) for a durable database that a test reopens."""
    return tmp_path / "persist"


@pytest.fixture
def connection(request: pytest.FixtureRequest) -> str:
    """``"embedded"`` or ``"remote"``: what ``open_db`` opens (remote with a remote ``db``)."""
    if "backend" in request.fixturenames:
        kind = "remote" if request.getfixturevalue("backend") == "remote" else "embedded"
    else:
        kind = str(getattr(request, "param", "embedded"))
    if kind == "remote":
        _skip_remote(request)
    return kind


@pytest.fixture
def open_db(connection: str, served: Served) -> Iterator[Callable[..., Any]]:
    """``open_db(target, **kwargs)`` -> Database; everything opened is closed at teardown."""
    opened: list[Any] = []

    def _open(target: str | Path, **kwargs: Any) -> Any:
        if connection == "remote":
            database = served.connect(target, **kwargs)
        else:
            database = pl.connect(target, **kwargs)
        opened.append(database)
        return database

    yield _open
    for database in reversed(opened):
        _close_quietly(database)
