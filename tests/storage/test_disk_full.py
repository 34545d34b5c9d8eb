"""A full disk (issue #11): a real 2 MiB tmpfs filled up, real writers, real SIGKILL.

A write that hits ENOSPC raises StorageFullError (a PluresDBError and an OSError) and
changes nothing: the WAL is cut back to its last whole record, so writes made after
space is freed are never stuck behind a torn one; a failed flush or compaction leaves
no temporary file and loses nothing. Mounting needs root; without it these tests skip.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import pluresdb_lab as pl
from pluresdb_lab import errors
from pluresdb_lab.engine._wal import read_records

DISK_BYTES = 2 << 20
PAGE = 4096
WAIT_S = 60.0


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A fresh 2 MiB tmpfs, unmounted at teardown."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command: cannot make a small tmpfs to fill")
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {made.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["chattr", "-R", "-a", str(mount)], capture_output=True, check=False)
        gone = subprocess.run(["umount", str(mount)], capture_output=True, timeout=WAIT_S)
        if gone.returncode != 0:  # a file still open (a failed test): detach it anyway
            subprocess.run(["umount", "-l", str(mount)], check=True, timeout=WAIT_S)


def free_bytes(mount: Path) -> int:
    stat = os.statvfs(mount)
    return stat.f_bavail * stat.f_frsize


def fill(mount: Path, leave: int = 0) -> Path:
    """Fill the disk with one file until ENOSPC, then give `leave` bytes back."""
    filler = mount / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for chunk in (1 << 16, PAGE):
            block = b"\xa5" * chunk
            while True:
                try:
                    os.write(fd, block)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
        if leave:
            os.ftruncate(fd, max(0, os.fstat(fd).st_size - leave))
    finally:
        os.close(fd)
    assert free_bytes(mount) <= leave + PAGE
    return filler


def no_temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def only_wal(folder: Path) -> Path:
    wals = sorted(folder.glob("wal-*.log"))
    assert len(wals) == 1, wals
    return wals[0]


# -- the WAL: a failed append leaves no torn record ----------------------------------------

WRITER = r"""
import json
import sys

import pluresdb_lab as pl
from pluresdb_lab import errors


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


db = pl.connect(sys.argv[1], fsync="always", auto_compact=False)
for i in range(10):
    db.put(f"before-{i}", {"i": i})
emit({"ready": True})
for line in sys.stdin:
    command = line.strip()
    if command == "big":
        try:
            db.put("big", {"blob": "x" * 300_000})
        except Exception as exc:
            emit({
                "error": type(exc).__name__,
                "pluresdb": isinstance(exc, errors.PluresDBError),
                "errno": getattr(exc, "errno", None),
                "message": str(exc),
                "big": db.get("big") is not None,
                "count": db.count(),
            })
        else:
            emit({"error": None})
    elif command == "more":
        for i in range(50):
            db.put(f"after-{i}", {"i": i})
            emit({"acked": i})
"""


def test_full_disk_in_the_wal_raises_storage_full_and_later_writes_survive_sigkill(
    disk: Path, spawn: Callable[..., Any]
) -> None:
    folder = disk / "db"
    child = spawn(WRITER, str(folder))
    assert child.read(120.0) == {"ready": True}
    wal = only_wal(folder)
    size_before = wal.stat().st_size

    filler = fill(disk, leave=16 * PAGE)  # a 300 kB record fits only part-way
    for _ in range(2):  # and a retry on the still-full disk behaves the same
        child.send("big")
        failed = child.read()
        assert failed["error"] == "StorageFullError", failed
        assert failed["pluresdb"] is True
        assert failed["errno"] == errno.ENOSPC
        assert "full" in failed["message"]
        assert "Free some space" in failed["message"]
        assert failed["big"] is False, "the failed write is visible"
        assert failed["count"] == 10
        # The torn part of the record was cut off at once.
        assert wal.stat().st_size == size_before
        assert read_records(wal).torn_bytes == 0

    filler.unlink()
    child.send("more")
    acks = [child.read()["acked"] for _ in range(50)]
    assert acks == list(range(50))
    child.kill_and_drain()
    assert child.proc.returncode == -9

    with pl.connect(folder) as db:
        assert db.recovery.torn_bytes == 0
        assert db.get("big") is None
        for i in range(10):
            assert db.get(f"before-{i}").data == {"i": i}
        missing = [i for i in range(50) if db.get(f"after-{i}") is None]
        assert not missing, f"acknowledged writes lost after the disk was full: {missing}"
        assert db.count() == 60


def test_a_log_that_cannot_be_cut_back_refuses_writes_until_reopened(disk: Path) -> None:
    """The append-only attribute makes the cut-back (ftruncate) fail for real."""
    folder = disk / "db"
    db = pl.connect(folder, fsync="always", auto_compact=False)
    try:
        for i in range(10):
            db.put(f"n{i}", {"i": i})
        wal = only_wal(folder)
        marked = subprocess.run(["chattr", "+a", str(wal)], capture_output=True, check=False)
        if marked.returncode != 0:
            pytest.skip(f"cannot make {wal} append-only: {marked.stderr!r}")
        filler = fill(disk, leave=16 * PAGE)
        with pytest.raises(errors.StorageFullError, match="refuses further writes"):
            db.put("big", {"blob": "x" * 300_000})
        torn = wal.stat().st_size
        assert read_records(wal).torn_bytes > 0  # the torn record could not be removed
        filler.unlink()
        # Space is back, but appending behind the torn record would lose the write.
        with pytest.raises(errors.StorageError, match=r"open it again") as refused:
            db.put("small", {"v": 1})
        assert not isinstance(refused.value, errors.StorageFullError)
        assert wal.stat().st_size == torn
        assert db.get("small") is None
        assert db.get("big") is None
        assert db.get("n3").data == {"i": 3}  # reads still work
        subprocess.run(["chattr", "-a", str(wal)], check=True)
    finally:
        db.close()
    with pl.connect(folder) as again:
        assert again.count() == 10
        again.put("small", {"v": 1})
        assert again.get("small").data == {"v": 1}


def test_failed_fsync_makes_the_log_refuse_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fsync cannot be made to fail for real here (that needs a device-mapper target),
    so this one test injects the failure, for the WAL's descriptor only."""
    db = pl.connect(tmp_path / "db", fsync="always", auto_compact=False)
    try:
        db.put("kept", {"v": 1})
        wal_fd = db._store._wal._fd
        real_fsync = os.fsync

        def failing_fsync(fd: int) -> None:
            if fd == wal_fd:
                raise OSError(errno.EIO, os.strerror(errno.EIO))
            real_fsync(fd)

        monkeypatch.setattr(os, "fsync", failing_fsync)
        with pytest.raises(errors.StorageError, match=r"[Ss]yncing"):
            db.put("unsure", {"v": 2})
        with pytest.raises(errors.StorageError, match="refuses further writes"):
            db.put("refused", {"v": 3})
        monkeypatch.undo()
        assert db.get("refused") is None
    finally:
        db.close()
    with pl.connect(tmp_path / "db") as again:
        assert again.get("kept").data == {"v": 1}
        assert again.get("refused") is None
        again.put("later", {"v": 4})


# -- segments: a failed flush or compaction leaves no temporary file -------------------------


def blobs(prefix: str, n: int, width: int = 64) -> list[dict[str, Any]]:
    """Rows of random hex: they compress badly, so segments have a predictable size."""
    return [{"id": f"{prefix}{i:05d}", "blob": os.urandom(width).hex()} for i in range(n)]


def test_flush_on_a_full_disk_keeps_the_rows_in_memtable_and_wal(disk: Path) -> None:
    folder = disk / "db"
    with pl.connect(folder, auto_compact=False) as db:
        for i in range(300):
            db.put(f"n{i:03d}", {"blob": os.urandom(32).hex()})
        expected = {n.id: n.data for n in db.list(limit=1000)}
        segments = sorted(folder.glob("seg-*.arrow"))
        filler = fill(disk)
        with pytest.raises(errors.StorageFullError) as failed:
            db.flush()
        assert isinstance(failed.value, OSError)
        assert failed.value.errno == errno.ENOSPC
        assert no_temporaries(folder) == []
        assert sorted(folder.glob("seg-*.arrow")) == segments
        assert {n.id: n.data for n in db.list(limit=1000)} == expected
        filler.unlink()
        db.put("after", {"v": 1})
        expected["after"] = {"v": 1}
    with pl.connect(folder) as db:
        assert {n.id: n.data for n in db.list(limit=1000)} == expected


def test_compaction_on_a_full_disk_leaves_no_temporary_file(disk: Path) -> None:
    folder = disk / "db"
    with pl.connect(folder, auto_compact=False) as db:
        for batch in range(3):
            db.put_many(blobs(f"b{batch}-", 1500))
        segments = sorted(folder.glob("seg-*.arrow"))
        assert len(segments) == 3
        filler = fill(disk, leave=24 * PAGE)  # far less than the merged segment
        with pytest.raises(errors.StorageFullError):
            db.compact()
        assert no_temporaries(folder) == []
        assert sorted(folder.glob("seg-*.arrow")) == segments
        assert db.count() == 4500
        filler.unlink()
        report = db.compact()
        assert report.segments_after == 1
    with pl.connect(folder) as db:
        assert db.count() == 4500


def test_background_compaction_on_a_full_disk_leaves_no_temporary_file(disk: Path) -> None:
    failures: list[logging.LogRecord] = []
    logged = threading.Event()

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.exc_info:
                failures.append(record)
                logged.set()

    handler = Catch(logging.ERROR)
    logger = logging.getLogger("pluresdb_lab")
    logger.addHandler(handler)
    folder = disk / "db"
    try:
        with pl.connect(folder) as db:
            for batch in range(3):  # three L0 segments: one short of a merge
                db.put_many(blobs(f"b{batch}-", 1500))
            filler = fill(disk, leave=24 * PAGE)
            db.put_many(blobs("small-", 1024, width=4))  # the fourth: merging starts
            assert logged.wait(WAIT_S), "the background compaction did not fail or finish"
            error = failures[0].exc_info[1] if failures[0].exc_info else None
            assert isinstance(error, errors.StorageFullError), failures[0].getMessage()
            assert no_temporaries(folder) == []
            assert len(list(folder.glob("seg-*.arrow"))) == 4
            assert db.count() == 4500 + 1024
            filler.unlink()
            assert db.compact().segments_after == 1
    finally:
        logger.removeHandler(handler)
    with pl.connect(folder) as db:
        assert db.count() == 4500 + 1024
