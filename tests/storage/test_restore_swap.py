"""`restore_backup(overwrite=True)` killed at any moment (issue #11): the target then
holds the old database or the restored one, never nothing, and no staging folder
survives the next open or restore.

Each window of the swap is first built on disk directly (what a kill there leaves), then
real restorer processes are SIGKILLed at random moments.
"""

from __future__ import annotations

import fcntl
import os
import random
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import pluresdb_lab as pl
from pluresdb_lab import errors

KILL_TRIALS = 10


@dataclass
class Setup:
    root: Path
    backup: Any  # the backup of the "new" database
    old: Path  # a pristine copy of the "old" database, copied to the target per case
    restored: Path  # a pristine restored copy of the backup (what a staged copy holds)
    new_rows: int  # nodes in the backup

    @property
    def target(self) -> Path:
        return self.root / "target"

    def staging(self, kind: str, tag: str = "a1b2c3") -> Path:
        return self.root / f".target.{kind}-{tag}"

    def leftovers(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.name.startswith(".target."))


def build(root: Path, rows: int = 300) -> Setup:
    root.mkdir(parents=True, exist_ok=True)
    with pl.connect(root / "source", auto_compact=False) as db:
        for part in range(3):  # several segments, each spanning a few copy chunks
            db.put_many(
                [{"id": f"new{part}-{i:05d}", "blob": os.urandom(24).hex()} for i in range(rows)]
            )
        backup = db.backup(root / "backups")
    with pl.connect(root / "old-copy") as db:
        db.put_many([{"id": f"old{i:04d}", "v": i} for i in range(50)])
        db.put("only-old", {"v": 1})
    pl.restore_backup(backup.path, root / "restored-copy")
    return Setup(root, backup, root / "old-copy", root / "restored-copy", 3 * rows)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    return build(tmp_path_factory.mktemp("pristine"))


@pytest.fixture
def setup(pristine: Setup, tmp_path: Path) -> Setup:
    """A private root: the backup (shared, read only), the old database at `target`."""
    root = tmp_path / "root"
    root.mkdir()
    shutil.copytree(pristine.old, root / "old-copy")
    shutil.copytree(pristine.restored, root / "restored-copy")
    shutil.copytree(pristine.old, root / "target")
    return Setup(
        root, pristine.backup, root / "old-copy", root / "restored-copy", pristine.new_rows
    )


def contents(target: Path, new_rows: int) -> str:
    """Which database `target` holds: "old", "new" or "empty" (anything else fails)."""
    with pl.connect(target, auto_compact=False) as db:
        count = db.count()
        marks = [db.get(i) is not None for i in ("only-old", "old0049", "new0-00000", "new2-00099")]
    if count == 0:
        return "empty"
    if count == 51 and marks == [True, True, False, False]:
        return "old"
    if count == new_rows and marks == [False, False, True, True]:
        return "new"
    pytest.fail(f"{target} holds neither database: {count} nodes, marks {marks}")


def half_copy(source: Path, into: Path) -> None:
    """What a kill mid-copy leaves: some segments, one cut short, no manifest."""
    into.mkdir()
    (into / "LOCK").write_bytes(b"")
    segments = sorted(source.glob("seg-*.arrow"))
    for segment in segments[:-1]:
        shutil.copyfile(segment, into / segment.name)
    blob = segments[-1].read_bytes()
    (into / segments[-1].name).write_bytes(blob[: len(blob) // 2])


# Each window: what a kill there leaves on disk, and what the target must then hold.


def copying(s: Setup) -> str:
    half_copy(s.restored, s.staging("restoring"))
    return "old"


def copied(s: Setup) -> str:
    s.restored.rename(s.staging("ready"))
    return "old"  # not swapped in yet: rolling back is as good as finishing


def between_renames(s: Setup) -> str:
    s.target.rename(s.staging("replaced"))
    s.restored.rename(s.staging("ready"))
    return "new"


def between_renames_copy_damaged(s: Setup) -> str:
    s.target.rename(s.staging("replaced"))
    s.restored.rename(s.staging("ready"))
    segment = sorted(s.staging("ready").glob("seg-*.arrow"))[0]
    blob = bytearray(segment.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    segment.write_bytes(bytes(blob))
    return "old"  # the copy fails its checksums: the old database comes back


def deleting_old(s: Setup) -> str:
    s.target.rename(s.staging("replaced"))
    s.restored.rename(s.target)
    for segment in s.staging("replaced").glob("seg-*.arrow"):
        segment.unlink()  # rmtree got this far
    return "new"


def new_target_copying(s: Setup) -> str:
    shutil.rmtree(s.target)
    half_copy(s.restored, s.staging("restoring"))
    return "empty"  # there was no database before: the restore never happened


def new_target_copied(s: Setup) -> str:
    shutil.rmtree(s.target)
    s.restored.rename(s.staging("ready"))
    return "new"


def two_kills(s: Setup) -> str:
    """A second restore killed between its renames after a first killed mid-copy."""
    half_copy(s.restored, s.staging("restoring", "0000ff"))
    s.target.rename(s.staging("replaced"))
    s.restored.rename(s.staging("ready"))
    return "new"


WINDOWS: list[Callable[[Setup], str]] = [
    copying,
    copied,
    between_renames,
    between_renames_copy_damaged,
    deleting_old,
    new_target_copying,
    new_target_copied,
    two_kills,
]


@pytest.mark.parametrize("window", WINDOWS, ids=[w.__name__ for w in WINDOWS])
def test_opening_after_a_kill_in_each_window(setup: Setup, window: Callable[[Setup], str]) -> None:
    expected = window(setup)
    assert setup.leftovers(), "the window left no staging folder to settle"
    assert contents(setup.target, setup.new_rows) == expected
    assert setup.leftovers() == []
    assert contents(setup.target, setup.new_rows) == expected  # settled for good


@pytest.mark.parametrize("window", WINDOWS, ids=[w.__name__ for w in WINDOWS])
def test_the_next_restore_after_a_kill_in_each_window(
    setup: Setup, window: Callable[[Setup], str]
) -> None:
    window(setup)
    pl.restore_backup(setup.backup.path, setup.target, overwrite=True)
    assert setup.leftovers() == []
    assert contents(setup.target, setup.new_rows) == "new"


@pytest.fixture
def held() -> Iterator[Callable[[Path], None]]:
    """Hold a staging folder's LOCK, as a restore that is still running does."""
    fds: list[int] = []

    def hold(folder: Path) -> None:
        fd = os.open(folder / "LOCK", os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fds.append(fd)

    yield hold
    for fd in fds:
        os.close(fd)


def test_a_restore_still_running_is_left_alone(setup: Setup, held: Callable[[Path], None]) -> None:
    # Its old database moved away and its copy about to be renamed: the target is
    # missing for a moment. Opening must not make an empty database there.
    setup.target.rename(setup.staging("replaced"))
    setup.restored.rename(setup.staging("ready"))
    held(setup.staging("ready"))
    with pytest.raises(errors.DatabaseLockedError, match="in progress"):
        pl.connect(setup.target)
    assert not setup.target.exists()
    assert setup.leftovers() == [".target.ready-a1b2c3", ".target.replaced-a1b2c3"]


def test_a_running_restores_copy_survives_opening_the_old_database(
    setup: Setup, held: Callable[[Path], None]
) -> None:
    half_copy(setup.restored, setup.staging("restoring"))
    held(setup.staging("restoring"))
    assert contents(setup.target, setup.new_rows) == "old"
    assert setup.leftovers() == [".target.restoring-a1b2c3"]


def test_a_restore_holds_the_target_so_it_cannot_be_opened_meanwhile(setup: Setup) -> None:
    opened: list[BaseException | None] = []

    def progress(done: int, total: int) -> bool:
        if done and not opened:  # mid-copy
            try:
                pl.connect(setup.target).close()
            except errors.DatabaseLockedError as exc:
                opened.append(exc)
            else:
                opened.append(None)
        return True

    pl.restore_backup(setup.backup.path, setup.target, overwrite=True, progress=progress)
    assert opened, "progress was never called mid-copy"
    assert isinstance(opened[0], errors.DatabaseLockedError), "the old database was opened"
    assert contents(setup.target, setup.new_rows) == "new"
    assert setup.leftovers() == []


# -- real restorers, SIGKILLed at random moments ---------------------------------------------

RESTORER = r"""
import json
import sys

import pluresdb_lab as pl

print(json.dumps({"ready": True}), flush=True)
sys.stdin.readline()  # go
pl.restore_backup(sys.argv[1], sys.argv[2], overwrite=True)
print(json.dumps({"done": True}), flush=True)
sys.stdin.read()
"""


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    """A backup big enough that a restore takes a while, and how long it takes."""
    return build(tmp_path_factory.mktemp("big"), rows=30_000)


def staged(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith(".target."))


def test_restores_killed_at_random_moments(
    big: Setup, tmp_path: Path, spawn: Callable[..., Any]
) -> None:
    started = time.perf_counter()
    pl.restore_backup(big.backup.path, tmp_path / "timing")
    duration = time.perf_counter() - started
    rng = random.Random(11)
    outcomes: list[str] = []
    for trial in range(KILL_TRIALS):
        root = tmp_path / f"trial{trial}"
        root.mkdir()
        target = root / "target"
        shutil.copytree(big.old, target)
        child = spawn(RESTORER, str(big.backup.path), str(target))
        assert child.read(120.0) == {"ready": True}
        # Not a synchronisation: the random moment of the kill, within the restore.
        delay = rng.uniform(0.0, duration * 1.3)
        child.send("go")
        threading.Event().wait(delay)
        child.kill_and_drain()
        left = staged(root)
        how = "restore" if trial % 3 == 2 else "connect"
        if how == "connect":
            found = contents(target, big.new_rows)
            assert found in ("old", "new"), f"trial {trial}: {found} after a kill (left {left})"
        else:
            pl.restore_backup(big.backup.path, target, overwrite=True)
            found = contents(target, big.new_rows)
            assert found == "new"
        assert staged(root) == [], f"trial {trial}: staging folders survived the next {how}"
        outcomes.append(f"{found} (left {len(left)})")
    assert len(outcomes) == KILL_TRIALS
