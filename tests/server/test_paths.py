"""File paths given over REST (import, export, backups, verify, restore) stay inside the
database folder or a folder the operator allows, with `..` and symlinks resolved first:
on the Jupyter extension (in process) and on `pluresdb serve` (a subprocess) alike."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pluresdb_lab as pl
from pluresdb_lab import errors
from pluresdb_lab._database import Database
from pluresdb_lab.client import RemoteDatabase
from pluresdb_lab.server.standalone import Background
from tests.server.conftest import ALLOWED, TOKEN

Call = tuple[str, str, dict[str, Any] | None, dict[str, str] | None]


def refused(reply: dict[str, Any], raw: str) -> bool:
    """A path refusal that names the path and says how to allow a folder."""
    message = reply["message"]
    return (
        reply["error"] == "PathNotAllowedError"
        and raw in message
        and "--allow-path" in message
        and "allowed_paths" in message
    )


async def test_paths_outside_the_allowed_folders_are_refused(
    api: Any, served_db: Database, tmp_path: Path, allowed_dir: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    secret = elsewhere / "secret.csv"
    secret.write_text("id,password\nroot,hunter2\n")
    victim = elsewhere / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("mine")
    (allowed_dir / "escape").symlink_to(elsewhere)
    served_db.put("n", {"x": 1}, type="T")
    backup = served_db.backup(allowed_dir / "backups")  # a good backup, in an allowed folder
    calls: list[tuple[Call, str]] = [
        (("POST", "import", {"path": str(secret), "id_field": "id"}, None), str(secret)),
        (("POST", "import", {"path": "/etc/passwd", "format": "csv"}, None), "/etc/passwd"),
        (("POST", "import", {"path": f"{allowed_dir}/escape/secret.csv"}, None), "escape"),
        (("POST", "import", {"path": f"{allowed_dir}/../elsewhere/secret.csv"}, None), ".."),
        (("POST", "export", {"path": str(elsewhere / "out.csv")}, None), "out.csv"),
        (("POST", "export", {"path": "../../x.csv"}, None), "../../x.csv"),
        (("GET", "backups", None, {"dest": "/"}), "'/'"),
        (("POST", "backups", {"dest": str(elsewhere / "backups")}, None), "backups"),
        (("POST", "backups/verify", {"path": str(elsewhere)}, None), str(elsewhere)),
        (
            (
                "POST",
                "backups/restore",
                {"path": str(backup.path), "into": str(victim), "overwrite": True},
                None,
            ),
            str(victim),
        ),
        (
            ("POST", "backups/restore", {"path": str(elsewhere), "into": "restored"}, None),
            str(elsewhere),
        ),
    ]
    admitted = []
    for (method, route, body, params), named in calls:
        status, reply = await api(method, route, body, params=params)
        if status != 403 or not refused(reply, named):
            admitted.append((route, body or params, status, reply))
    assert admitted == []
    assert served_db.count() == 1  # the secret was not imported
    assert sorted(p.name for p in elsewhere.iterdir()) == ["secret.csv", "victim"]
    assert [p.name for p in victim.iterdir()] == ["keep.txt"]
    assert not (tmp_path.parent / "x.csv").exists()


async def test_the_database_files_are_off_limits(
    api: Any, served_db: Database, data_dir: Path
) -> None:
    served_db.put("n", {"x": 1}, type="T")
    before = {p.name: p.read_bytes() for p in data_dir.iterdir() if p.is_file()}
    for method, route, body, params in [
        ("POST", "export", {"path": "MANIFEST.json", "format": "json"}, None),
        ("POST", "export", {"path": str(data_dir / "identity.key"), "format": "csv"}, None),
        ("POST", "export", {"path": "sub/../LOCK", "format": "csv"}, None),
        ("POST", "import", {"path": "identity.key", "format": "csv"}, None),
        ("POST", "backups/restore", {"path": "x", "into": ".", "overwrite": True}, None),
        ("GET", "backups", None, {"dest": str(data_dir)}),
    ]:
        status, reply = await api(method, route, body, params=params)
        assert (status, reply["error"]) == (403, "PathNotAllowedError"), (route, body, reply)
        assert "the database's own file" in reply["message"]
    after = {p.name: p.read_bytes() for p in data_dir.iterdir() if p.is_file()}
    assert after == before
    assert served_db.count() == 1


async def test_relative_paths_are_inside_the_database_folder(
    api: Any, served_db: Database, data_dir: Path
) -> None:
    served_db.put_many([{"id": f"r{i}", "v": i} for i in range(5)], type="R")
    status, reply = await api("POST", "export", {"path": "exports/../r.csv", "type": "R"})
    assert (status, reply) == (200, {"exported": 5})
    assert (data_dir / "r.csv").is_file()
    status, reply = await api("POST", "import", {"path": "r.csv", "type": "C", "id_field": "id"})
    assert (status, reply) == (200, {"imported": 5})
    assert served_db.count("C") == 5


@pytest.fixture
def remote(serve_url: str) -> Iterator[RemoteDatabase]:
    db = pl.connect(serve_url, token=TOKEN)
    assert isinstance(db, RemoteDatabase)
    with db:
        yield db


def test_serve_allows_its_folders_and_refuses_others(
    remote: RemoteDatabase, serve_folder: Path, tmp_path: Path
) -> None:
    remote.put("s", {"v": 1}, type="S")
    assert remote.export("s.csv", type="S") == 1  # relative: into the --data folder
    assert (serve_folder / "db" / "s.csv").is_file()
    assert remote.export(serve_folder / ALLOWED / "s.csv", type="S") == 1  # --allow-path
    with pytest.raises(errors.PathNotAllowedError, match="--allow-path"):
        remote.export(tmp_path / "s.csv", type="S")
    with pytest.raises(errors.PathNotAllowedError):
        remote.backups("/")
    with pytest.raises(errors.PathNotAllowedError):
        remote.import_file("/etc/passwd", format="csv")
    assert not (tmp_path / "s.csv").exists()
    assert remote.count() == 1


def test_an_in_memory_database_allows_only_the_configured_folders(tmp_path: Path) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    with (
        pl.connect(":memory:") as db,
        Background(db, allowed_paths=[allowed]) as server,
        RemoteDatabase(server.url, token=server.token) as remote,
    ):
        db.put("m", {"v": 1}, type="M")
        with pytest.raises(errors.PathNotAllowedError, match="in memory"):
            remote.export("m.csv", type="M")
        with pytest.raises(errors.PathNotAllowedError):
            remote.export(tmp_path / "m.csv", type="M")
        assert remote.export(allowed / "m.csv", type="M") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["allowed"]


def test_the_backups_folder_beside_the_database_is_allowed(tmp_path: Path) -> None:
    """The Storage panel backs up to `<folder>-backups` by default: a server allows that
    folder without configuration, and nothing else beside the database."""
    folder = tmp_path / "db"
    with (
        pl.connect(folder) as db,
        Background(db) as server,
        RemoteDatabase(server.url, token=server.token) as remote,
    ):
        remote.put("b", {"v": 1}, type="B")
        made = remote.backup(tmp_path / "db-backups")
        assert [b.id for b in remote.backups(tmp_path / "db-backups")] == [made.id]
        with pytest.raises(errors.PathNotAllowedError):
            remote.backup(tmp_path / "db-backups-not")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db", "db-backups"]


def test_restore_folders_beside_the_database_are_allowed(tmp_path: Path) -> None:
    """The Storage panel restores into `<folder>-restored-<id>` by default."""
    folder = tmp_path / "db"
    with (
        pl.connect(folder) as db,
        Background(db) as server,
        RemoteDatabase(server.url, token=server.token) as remote,
    ):
        remote.put("r", {"v": 1}, type="R")
        made = remote.backup(tmp_path / "db-backups")
        into = tmp_path / f"db-restored-{made.id}"
        assert Path(remote.restore_backup(made.path, into)) == into
        with pytest.raises(errors.PathNotAllowedError):
            remote.restore_backup(made.path, tmp_path / f"other-restored-{made.id}")
    with pl.connect(into) as copy:
        assert copy.get("r").data == {"v": 1}
