"""RemoteDatabase's connections: kept alive, replaced when the server restarted, and a
server that cannot be reached is a RemoteError."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from pluresdb_lab import errors
from pluresdb_lab._database import Database
from pluresdb_lab.client import RemoteDatabase
from pluresdb_lab.server.standalone import Background

TOKEN = "connection-token"


def test_a_restarted_server_is_reached_again(tmp_path: Path) -> None:
    with Database(tmp_path / "db") as db:
        server = Background(db, token=TOKEN)
        port = urlsplit(server.url).port
        remote = RemoteDatabase(server.url, TOKEN)
        try:
            remote.put("a", {"v": 1})
            server.close()  # closes the connection the client keeps for its next call
            server = Background(db, port=port, token=TOKEN)
            assert remote.get("a").data == {"v": 1}  # type: ignore[union-attr]
            remote.put("b", {"v": 2})
            assert remote.count() == 2
        finally:
            remote.close()
            server.close()


def test_an_unreachable_server_is_a_remote_error(tmp_path: Path) -> None:
    with Database(tmp_path / "db") as db:
        server = Background(db, token=TOKEN)
        url = server.url
        remote = RemoteDatabase(url, TOKEN)
        server.close()
        try:
            with pytest.raises(errors.RemoteError, match="cannot be reached"):
                remote.count()
        finally:
            remote.close()
    with pytest.raises(errors.RemoteError, match="cannot be reached"):
        RemoteDatabase(url, TOKEN)
