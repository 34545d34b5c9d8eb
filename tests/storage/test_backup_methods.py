"""`db.verify_backup` and `db.restore_backup` (issue #12) on an embedded Database and on a
RemoteDatabase whose server does the work: the same results and the same refusals.

Both databases live in `tmp_path / "db"` and back up into `db-backups` beside it; the
server allows restores into `tmp_path / "out"` only (and its own folders).
"""

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

TOKEN = "backup-methods-token"


@pytest.fixture(params=["embedded", "remote"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A database in tmp_path/db with 30 nodes, embedded or served over 127.0.0.1."""
    database = Database(tmp_path / "db", auto_compact=False, fsync="off")
    database.put_many([{"id": f"n{i:02d}", "v": i} for i in range(30)], type="Item")
    if request.param == "embedded":
        yield database
        database.close()
        return
    server = Background(database, token=TOKEN, allowed_paths=[tmp_path / "out"])
    client = pl.connect(server.url, token=TOKEN)
    yield client
    client.close()
    server.close()
    database.close()


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_verify_then_restore_into_a_new_folder(db: Any, tmp_path: Path) -> None:
    backup = db.backup(tmp_path / "db-backups")
    check = db.verify_backup(backup.path)
    assert (check.ok, check.problems) == (True, [])
    assert check.backup is not None
    assert (check.backup.id, check.backup.nodes, check.backup.path) == (backup.id, 30, backup.path)
    assert check.files_checked == len(backup.checksums) > 1
    db.put("after", {"v": 99}, type="Item")

    into = tmp_path / "out" / "copy"
    assert db.restore_backup(backup.path, into) == into
    with pl.connect(into) as copy:
        assert copy.count() == 30
        assert copy.get("after") is None
        assert copy.peer_id != db.peer_id  # a restored copy gets a new identity
    assert db.count() == 31  # the open database is untouched and still writable
    db.put("later", {"v": 100})
    assert db.count() == 32


def test_progress_is_reported_in_process_and_refused_over_http(db: Any, tmp_path: Path) -> None:
    backup = db.backup(tmp_path / "db-backups")
    steps: list[tuple[int, int]] = []
    into = tmp_path / "out" / "copy"
    if db.reports_progress:
        db.restore_backup(backup.path, into, progress=lambda d, t: steps.append((d, t)))
        assert steps
        assert steps[-1][0] == steps[-1][1] > 0
    else:
        with pytest.raises(errors.InvalidDataError, match="progress"):
            db.restore_backup(backup.path, into, progress=lambda d, t: None)
        assert not into.exists()


def test_verify_reports_damage_and_a_damaged_backup_is_not_restored(
    db: Any, tmp_path: Path
) -> None:
    backup = db.backup(tmp_path / "db-backups")
    segment = backup.path / backup.segments[0]
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0xFF
    segment.write_bytes(bytes(data))
    check = db.verify_backup(backup.path)
    assert not check.ok
    assert check.problems == [f"{segment} does not match its checksum (the file is damaged)"]
    with pytest.raises(errors.BackupError, match="failed verification"):
        db.restore_backup(backup.path, tmp_path / "out" / "copy")
    assert not (tmp_path / "out").exists()

    (tmp_path / "db-backups" / "nothing").mkdir()
    empty = db.verify_backup(tmp_path / "db-backups" / "nothing")
    assert (empty.ok, empty.backup, empty.files_checked) == (False, None, 0)
    assert "incomplete" in empty.problems[0]


def test_refusals_are_the_same_embedded_and_remote(db: Any, tmp_path: Path) -> None:
    """The database's folder, a folder holding files, the folder of backups and an
    incomplete backup are refused with BackupError, and nothing is written."""
    backups = tmp_path / "db-backups"
    backup = db.backup(backups)
    partial = backups / "20990101T000000000000Z-abcdef.partial"
    partial.mkdir()
    (partial / "seg-000001.arrow").write_bytes(b"half a segment")
    taken = tmp_path / "out" / "taken"
    taken.mkdir(parents=True)
    (taken / "notes.txt").write_text("keep me")
    folder = tmp_path / "db"
    before = tree(folder), tree(backups)

    for source, into, says in [
        (backup.path, folder / "inside", "outside the open database's folder"),
        (backup.path, taken, "already holds files"),
        (backup.path, backups / "restored", "outside the folder of backups"),
        (backup.path, backup.path, "outside the folder of backups"),
        (partial, tmp_path / "out" / "b", "incomplete"),
    ]:
        with pytest.raises(errors.BackupError, match=says):
            db.restore_backup(source, into)
    with pytest.raises(errors.BackupError, match="outside the folder of backups"):
        db.restore_backup(backup.path, backups / "restored", overwrite=True)
    # The database folder itself: the engine refuses it; a server refuses it earlier,
    # with every other path naming one of the database's own files.
    own = errors.PathNotAllowedError if isinstance(db, RemoteDatabase) else errors.BackupError
    with pytest.raises(own):
        db.restore_backup(backup.path, folder, overwrite=True)

    assert (tree(folder), tree(backups)) == before
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["taken"]
    assert db.count() == 30


def test_overwrite_replaces_a_closed_database(db: Any, tmp_path: Path) -> None:
    backup = db.backup(tmp_path / "db-backups")
    other = tmp_path / "out" / "other"
    with pl.connect(other) as closed_later:
        closed_later.put("mine", {"keep": True})
    with pytest.raises(errors.BackupError, match="overwrite"):
        db.restore_backup(backup.path, other)
    with pl.connect(other) as untouched:
        assert untouched.get("mine") is not None
    assert db.restore_backup(backup.path, other, overwrite=True) == other
    with pl.connect(other) as replaced:
        assert replaced.count() == 30
        assert replaced.get("mine") is None


def test_an_in_memory_database_restores_into_any_allowed_folder(tmp_path: Path) -> None:
    """An in-memory database has no folder of its own to protect; over HTTP its server
    takes only absolute paths in the folders it allows."""
    with pl.connect(tmp_path / "source") as source:
        source.put_many([{"id": f"m{i}", "v": i} for i in range(5)], type="M")
        backup = source.backup(tmp_path / "out" / "backups")
    with (
        pl.connect(":memory:") as memory,
        Background(memory, token=TOKEN, allowed_paths=[tmp_path / "out"]) as server,
        pl.connect(server.url, token=TOKEN) as remote,
    ):
        assert memory.verify_backup(backup.path).ok
        assert remote.verify_backup(backup.path).ok
        assert memory.restore_backup(backup.path, tmp_path / "out" / "a") == tmp_path / "out" / "a"
        assert remote.restore_backup(backup.path, tmp_path / "out" / "b") == tmp_path / "out" / "b"
        with pytest.raises(errors.PathNotAllowedError, match="in memory"):
            remote.restore_backup(backup.path, "relative")
    for name in ("a", "b"):
        with pl.connect(tmp_path / "out" / name) as copy:
            assert copy.count() == 5
