"""Hostile or damaged folders (issue #11): a manifest is never trusted with a path, a
folder of someone else's files is never turned into a database, and nothing outside the
database folder is ever opened for writing, truncated or deleted."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import pluresdb_lab as pl
from pluresdb_lab import errors

PRECIOUS = "the user's own file: must survive every attempt\n" * 50


def make_db(folder: Path, n: int = 20) -> None:
    with pl.connect(folder, auto_compact=False) as db:
        db.put_many([{"id": f"n{i:03d}", "v": i} for i in range(n)])
        db.put("last", {"v": -1})


def edit_manifest(folder: Path, change: Callable[[dict[str, Any]], Any]) -> None:
    path = folder / "MANIFEST.json"
    manifest = json.loads(path.read_text())
    replaced = change(manifest)
    path.write_text(json.dumps(manifest if replaced is None else replaced))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def attempt_open_and_close(folder: Path) -> None:
    """Open (and close, had it opened) twice: the second try must find the same trouble."""
    for _ in range(2):
        with pytest.raises(errors.CorruptDatabaseError) as failed:
            pl.connect(folder).close()
        assert "MANIFEST.json" in str(failed.value)


@pytest.mark.parametrize(
    "name",
    ["../precious.txt", "{precious}", "sub/wal-000009.log", "wal-000009.log/..", "wal-9.log", ""],
)
def test_manifest_wal_name_outside_the_folder_is_corrupt_and_touches_nothing(
    tmp_path: Path, name: str
) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text(PRECIOUS)
    folder = tmp_path / "db"
    make_db(folder)
    bad = name.format(precious=precious)
    edit_manifest(folder, lambda m: m.update(wal=bad))
    before = snapshot(folder)

    attempt_open_and_close(folder)
    with pytest.raises(errors.CorruptDatabaseError, match="write-ahead log") as failed:
        pl.connect(folder)
    assert repr(bad) in str(failed.value)
    assert precious.read_text() == PRECIOUS
    assert snapshot(folder) == before  # LOCK aside, nothing in the folder changed either


@pytest.mark.parametrize("name", ["../precious.txt", "seg-000002.arrow/../../precious.txt"])
def test_manifest_segment_name_outside_the_folder_is_corrupt(tmp_path: Path, name: str) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text(PRECIOUS)
    folder = tmp_path / "db"
    make_db(folder)
    edit_manifest(folder, lambda m: m["segments"][0].update(file=name))
    attempt_open_and_close(folder)
    with pytest.raises(errors.CorruptDatabaseError, match="segment file") as failed:
        pl.connect(folder)
    assert repr(name) in str(failed.value)
    assert precious.read_text() == PRECIOUS


def drop(key: str, segment: bool = False) -> Callable[[dict[str, Any]], None]:
    def change(manifest: dict[str, Any]) -> None:
        del (manifest["segments"][0] if segment else manifest)[key]

    return change


SHAPES: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
    ("a list", lambda m: [m]),
    ("a string", lambda m: "MANIFEST"),
    ("no segments", drop("segments")),
    ("segments an object", lambda m: m.update(segments={})),
    ("segment a number", lambda m: m.update(segments=[7])),
    ("segment without level", drop("level", segment=True)),
    ("segment crc a string", lambda m: m["segments"][0].update(crc32="x")),
    ("segment level a bool", lambda m: m["segments"][0].update(level=True)),
    ("segment listed twice", lambda m: m.update(segments=m["segments"] * 2)),
    ("wal a number", lambda m: m.update(wal=5)),
    ("next a string", lambda m: m.update(next="many")),
    ("state a list", lambda m: m.update(state=[1, 2])),
    ("vv a list", lambda m: m.update(state={"vv": [1]})),
    ("dims of strings", lambda m: m.update(state={"dims": {"T": "4"}})),
    ("hlc a string", lambda m: m.update(state={"hlc": "noon"})),
]


@pytest.mark.parametrize(("what", "change"), SHAPES, ids=[s[0] for s in SHAPES])
def test_manifest_of_the_wrong_shape_is_a_corrupt_database(
    tmp_path: Path, what: str, change: Callable[[dict[str, Any]], Any]
) -> None:
    folder = tmp_path / "db"
    make_db(folder)
    edit_manifest(folder, change)
    with pytest.raises(errors.CorruptDatabaseError) as failed:
        pl.connect(folder)
    message = str(failed.value)
    assert str(folder / "MANIFEST.json") in message
    assert "damaged" in message or "format" in message


def test_manifest_that_is_a_folder_is_a_corrupt_database(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    make_db(folder)
    (folder / "MANIFEST.json").unlink()
    for segment in folder.glob("seg-*.arrow"):
        segment.unlink()
    (folder / "MANIFEST.json").mkdir()
    with pytest.raises(errors.CorruptDatabaseError, match=r"MANIFEST\.json"):
        pl.connect(folder)


def test_a_folder_of_unrelated_files_is_not_turned_into_a_database(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello")
    (folder / "wal-notes.log").write_text("looks like ours, is not")
    (folder / "draft.tmp").write_text("an editor's file")
    (folder / "album").mkdir()
    before = snapshot(folder)
    with pytest.raises(errors.NotADatabaseError) as failed:
        pl.connect(folder)
    message = str(failed.value)
    assert "empty or new folder" in message
    assert "notes.txt" in message or "album" in message
    assert isinstance(failed.value, errors.PluresDBError)
    assert snapshot(folder) == before  # not even a LOCK file
    assert sorted(p.name for p in folder.iterdir()) == sorted([*before, "album"])


def test_a_new_path_and_an_empty_folder_become_databases(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for target in (tmp_path / "new" / "deeper", tmp_path / "empty"):
        with pl.connect(target) as db:
            db.put("a", {"v": 1})
        with pl.connect(target) as db:
            assert db.get("a").data == {"v": 1}


KILLED_WRITER = r"""
import json
import sys

import pluresdb_lab as pl

db = pl.connect(sys.argv[1], fsync="always", auto_compact=False)
for i in range(25):
    db.put(f"w{i:02d}", {"i": i})
print(json.dumps({"written": 25}), flush=True)
sys.stdin.read()
"""


def test_a_database_killed_before_its_first_manifest_still_opens_and_replays(
    tmp_path: Path, spawn: Callable[..., Any]
) -> None:
    folder = tmp_path / "db"
    child = spawn(KILLED_WRITER, str(folder))
    assert child.read(120.0) == {"written": 25}
    child.kill_and_drain()
    # What the folder holds when the process dies before its first manifest is written,
    # plus the temporary files a crash can leave.
    (folder / "MANIFEST.json").unlink()
    (folder / "MANIFEST.json.tmp").write_text("{half")
    (folder / "seg-000007.tmp").write_bytes(b"half a segment")
    assert sorted(p.name for p in folder.iterdir()) == [
        "LOCK",
        "MANIFEST.json.tmp",
        "identity.key",
        "seg-000007.tmp",
        "wal-000001.log",
    ]
    with pl.connect(folder) as db:
        assert db.recovery.replayed_records == 25
        assert db.count() == 25
        assert db.get("w24").data == {"i": 24}
    assert not list(folder.glob("*.tmp"))


def test_a_path_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    file = tmp_path / "data.csv"
    file.write_text(PRECIOUS)
    for target in (file, file / "db"):
        with pytest.raises(errors.NotADatabaseError, match="file") as failed:
            pl.connect(target)
        assert isinstance(failed.value, errors.PluresDBError)
    assert file.read_text() == PRECIOUS


def test_symlinks_in_the_folder_are_never_written_through(tmp_path: Path) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text(PRECIOUS)
    folder = tmp_path / "db"
    make_db(folder)
    wal_name = json.loads((folder / "MANIFEST.json").read_text())["wal"]
    (folder / wal_name).unlink()
    (folder / wal_name).symlink_to(precious)  # a torn "log": open would cut it to 0
    attempt = pytest.raises(errors.CorruptDatabaseError, match="write-ahead log")
    with attempt:
        pl.connect(folder)
    assert precious.read_text() == PRECIOUS

    (folder / wal_name).unlink()
    (folder / "LOCK").unlink()
    (folder / "LOCK").symlink_to(precious)  # the lock file is truncated for the pid
    with pytest.raises(errors.CorruptDatabaseError, match="LOCK"):
        pl.connect(folder)
    assert precious.read_text() == PRECIOUS


def test_only_the_databases_own_leftovers_are_deleted(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    make_db(folder)
    strangers = {"wal-notes.log": b"mine", "report.tmp": b"mine too", "seg-old.arrow": b"x"}
    for name, content in strangers.items():
        (folder / name).write_bytes(content)
    (folder / "seg-000099.arrow").write_bytes(b"an interrupted flush")  # ours: removed
    with pl.connect(folder) as db:
        assert db.count() == 21
        db.put("more", {"v": 1})
        db.flush()
    with pl.connect(folder) as db:
        assert db.count() == 22
    for name, content in strangers.items():
        assert (folder / name).read_bytes() == content
    assert not (folder / "seg-000099.arrow").exists()


def test_a_manifest_numbering_behind_its_files_never_overwrites_them(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    make_db(folder)
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    lowest = min(s["number"] for s in manifest["segments"])
    edit_manifest(folder, lambda m: m.update(next=lowest))
    with pl.connect(folder, auto_compact=False) as db:
        for i in range(3):
            db.put(f"extra{i}", {"v": i})
            db.flush()
    with pl.connect(folder) as db:
        assert db.count() == 24
        assert db.get("n007").data == {"v": 7}


def test_files_outside_the_folder_survive_every_refused_open(tmp_path: Path) -> None:
    """Everything above, checked from outside: the neighbour's files keep their bytes."""
    precious = tmp_path / "precious.txt"
    precious.write_text(PRECIOUS)
    folder = tmp_path / "db"
    make_db(folder)
    edit_manifest(folder, lambda m: m.update(wal=os.path.relpath(precious, folder)))
    outside = snapshot(tmp_path)
    for _ in range(3):
        with pytest.raises(errors.CorruptDatabaseError), pl.connect(folder):
            pass
    assert snapshot(tmp_path) == outside
    assert precious.read_text() == PRECIOUS
