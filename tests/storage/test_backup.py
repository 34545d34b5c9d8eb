"""Backups (issue #3, DESIGN §5): full and incremental, verified, restored, and safe
against interruption, damage and concurrent writes."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import pluresdb_lab as pl
from pluresdb_lab import errors

SUBPROCESS_TIMEOUT_S = 60.0


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        pause.wait(0.01)


def state(db: Any) -> pd.DataFrame:
    return db.to_pandas().sort_values("id").reset_index(drop=True)


def histories(db: Any, ids: list[str]) -> dict[str, list[tuple[Any, ...]]]:
    return {
        i: [(v.version, v.time, v.origin, v.type, v.data, v.deleted) for v in db.history(i)]
        for i in ids
    }


def tree(folder: Path) -> dict[str, int]:
    """Relative path -> size of every file under `folder`."""
    return {
        str(p.relative_to(folder)): p.stat().st_size
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def populate(db: Any, n: int = 300) -> list[str]:
    """Typed nodes with several versions each, deletes, untyped nodes and an edge."""
    db.put_many(
        [
            {"id": f"p{i:04d}", "name": f"person {i}", "age": i % 90, "score": i / 7}
            for i in range(n)
        ],
        type="Person",
    )
    db.flush()
    for i in range(0, n, 3):
        db.put(f"p{i:04d}", {"age": 100 + i, "vip": i % 2 == 0}, type="Person")
    for i in range(0, n, 25):
        db.delete(f"p{i:04d}")
    db.put("loose", {"note": "no type", "nested": {"a": [1, 2, 3]}})
    db.link("p0001", "p0002", "knows", {"since": 2020})
    return [f"p{i:04d}" for i in range(0, n, 5)] + ["loose"]


def restored(backup: Any, into: Path) -> Any:
    pl.restore_backup(backup.path, into)
    return pl.connect(into, auto_compact=False)


# -- round trips ----------------------------------------------------------------------


def test_full_backup_round_trip_equals_the_original(tmp_path: Path) -> None:
    with pl.connect(tmp_path / "db", auto_compact=False) as db:
        sample = populate(db)
        original_state = state(db)
        original_history = histories(db, sample)
        original_count = db.count()
        original_types = db.types()
        original_peer = db.peer_id

        backup = db.backup(tmp_path / "backups")

        assert backup.kind == "full"
        assert backup.base is None
        assert backup.status == "complete"
        assert backup.nodes == original_count
        assert backup.path.parent == (tmp_path / "backups").resolve()
        own_files = {
            name: size for name, size in tree(backup.path).items() if name in backup.checksums
        }
        assert backup.size == sum(own_files.values())
        assert set(backup.segments) <= set(backup.checksums)
        assert [b.id for b in db.backups(tmp_path / "backups")] == [backup.id]

        # writes after the backup are not in it
        db.put("after", {"x": 1})

    check = pl.verify_backup(backup.path)
    assert check.ok, check.problems
    assert check.problems == []
    assert check.files_checked == len(backup.checksums)
    assert check.backup is not None
    assert check.backup.id == backup.id

    with restored(backup, tmp_path / "restored") as copy:
        pd.testing.assert_frame_equal(state(copy), original_state)
        assert histories(copy, sample) == original_history
        assert copy.count() == original_count
        assert copy.types() == original_types
        assert copy.get("after") is None
        assert [n.id for n in copy.neighbors("p0001", "knows")] == ["p0002"]
        assert copy.peer_id != original_peer  # a restored copy is a new peer
        copy.put("new", {"y": 2})  # the restored database takes writes
        assert copy.get("new").data == {"y": 2}


def test_full_and_two_incrementals_restore_the_newest_state(tmp_path: Path) -> None:
    dest = tmp_path / "backups"
    with pl.connect(tmp_path / "db", auto_compact=False) as db:
        sample = populate(db)
        full = db.backup(dest)
        states = {full.id: state(db)}

        db.put_many([{"id": f"q{i}", "v": i} for i in range(100)], type="Q")
        for i in range(0, 300, 7):
            db.put(f"p{i:04d}", {"age": -i}, type="Person")
        db.delete("p0001")
        db.delete("loose")
        db.compact()  # rewrites every segment: the incremental must still restore
        inc1 = db.backup(dest, incremental=True)
        states[inc1.id] = state(db)

        db.put_many([{"id": f"r{i}", "v": i} for i in range(50)], type="R")
        db.delete("q5")
        db.put("p0003", {"name": None}, type="Person")
        inc2 = db.backup(dest, incremental=True)
        states[inc2.id] = state(db)
        newest_history = histories(db, sample)

        listed = db.backups(dest)
        assert [b.id for b in listed] == [full.id, inc1.id, inc2.id]
        assert [b.kind for b in listed] == ["full", "incremental", "incremental"]
        assert inc1.base == full.id
        assert inc2.base == inc1.id
        assert inc2.nodes == db.count()

    # An incremental holds only segments its chain lacks.
    assert not set(inc1.checksums) & set(full.checksums) - {"MANIFEST.json"}
    assert not set(inc2.checksums) & (set(full.checksums) | set(inc1.checksums)) - {"MANIFEST.json"}
    assert inc2.size < full.size + inc1.size
    for backup in (inc1, inc2):
        own = tree(backup.path)
        assert backup.size == sum(own[name] for name in backup.checksums)

    for backup in (full, inc1, inc2):
        check = pl.verify_backup(backup.path)
        assert check.ok, check.problems

    with restored(inc2, tmp_path / "r2") as copy:
        pd.testing.assert_frame_equal(state(copy), states[inc2.id])
        assert histories(copy, sample) == newest_history
        assert copy.get("p0001") is None
        assert copy.get("q5") is None
        assert copy.get("r49").data == {"v": 49}
        assert "name" not in copy.get("p0003").data
    with restored(inc1, tmp_path / "r1") as copy:
        pd.testing.assert_frame_equal(state(copy), states[inc1.id])
        assert copy.get("r0") is None
    with restored(full, tmp_path / "r0") as copy:
        pd.testing.assert_frame_equal(state(copy), states[full.id])


def test_incremental_with_a_missing_base_is_reported(tmp_path: Path) -> None:
    dest = tmp_path / "backups"
    with pl.connect(tmp_path / "db") as db:
        populate(db, 50)
        full = db.backup(dest)
        db.put("x", {"v": 1})
        inc = db.backup(dest, incremental=True)
    shutil.rmtree(full.path)
    check = pl.verify_backup(inc.path)
    assert not check.ok
    assert any(full.id in p for p in check.problems), check.problems
    with pytest.raises(errors.BackupError):
        pl.restore_backup(inc.path, tmp_path / "restored")
    assert not (tmp_path / "restored").exists()


def test_backup_under_concurrent_writes_restores_a_prefix(tmp_path: Path) -> None:
    db = pl.connect(tmp_path / "db")
    # Bulk data so the backup takes a while; the writer then overlaps it.
    db.put_many([{"id": f"bulk{i:06d}", "blob": os.urandom(24).hex()} for i in range(30_000)])
    acked = 0
    stop = threading.Event()
    failures: list[BaseException] = []

    def writer() -> None:
        nonlocal acked
        try:
            step = 0
            while not stop.is_set():
                db.put(f"s{step:07d}", {"n": step}, type="Step")
                step += 1
                acked = step
                if step % 500 == 0:
                    db.flush()
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        wait_for(lambda: acked >= 300, "the writer to get going")
        acked_before = acked
        at_first_progress: list[int] = []

        def progress(done: int, total: int) -> bool:
            if not at_first_progress:
                # The backup has fixed its contents; make sure writes overlap the copy.
                at_first_progress.append(acked)
                wait_for(lambda: acked >= at_first_progress[0] + 200, "writes during backup")
            return True

        backup = db.backup(tmp_path / "backups", progress=progress)
        acked_after_backup = acked
        wait_for(lambda: acked >= acked_after_backup + 300, "writes after the backup")
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert not failures, failures
    final_acked = acked
    original_steps = {n.id: n.data["n"] for n in db.list("Step", limit=10**7)}
    db.close()
    assert len(original_steps) == final_acked

    check = pl.verify_backup(backup.path)
    assert check.ok, check.problems
    with restored(backup, tmp_path / "restored") as copy:
        values = sorted(int(v) for v in copy.to_pandas("Step")["n"])
        m = len(values)
        assert values == list(range(m)), "the backup holds a gap in the writer's sequence"
        assert acked_before <= m <= at_first_progress[0] < acked_after_backup
        assert copy.count() == 30_000 + m == backup.nodes
        for n in (0, m // 2, m - 1):
            assert copy.get(f"s{n:07d}").data == {"n": n}
        assert copy.get(f"s{m:07d}") is None


def test_compaction_during_a_backup_does_not_break_it(tmp_path: Path) -> None:
    with pl.connect(tmp_path / "db", auto_compact=False) as db:
        for batch in range(3):
            db.put_many([{"id": f"b{batch}-{i}", "v": i} for i in range(200)])
            db.flush()
        expected = state(db)
        compacted: list[Any] = []

        def progress(done: int, total: int) -> bool:
            if not compacted:  # mid-backup: rewrite every segment and write more
                db.put("late", {"v": 1})
                compacted.append(db.compact())
            return True

        backup = db.backup(tmp_path / "backups", progress=progress)
        assert compacted
        assert compacted[0].segments_after == 1
        assert len(list((tmp_path / "db").glob("seg-*.arrow"))) == 1  # inputs deleted after
    assert pl.verify_backup(backup.path).ok
    with restored(backup, tmp_path / "restored") as copy:
        pd.testing.assert_frame_equal(state(copy), expected)
        assert copy.get("late") is None


# -- interruption and damage ----------------------------------------------------------

KILL_SCRIPT = textwrap.dedent(
    """
    import sys
    import pluresdb_lab as pl

    db = pl.connect(sys.argv[1])

    def progress(done, total):
        print(done, total, flush=True)
        if done > 0:
            sys.stdin.readline()  # wait here (mid-copy) until the test kills us
        return True

    db.backup(sys.argv[2], progress=progress)
    print("finished", flush=True)
    """
)


def read_lines(stream: Any) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)
        lines.put("")  # EOF

    threading.Thread(target=pump, daemon=True).start()
    return lines


def test_backup_killed_midway_is_detected_and_earlier_backups_stay_valid(
    tmp_path: Path,
) -> None:
    folder, dest = tmp_path / "db", tmp_path / "backups"
    with pl.connect(folder) as db:
        # random text compresses badly: the segment spans several 1 MiB copy chunks
        db.put_many([{"id": f"n{i:06d}", "blob": os.urandom(32).hex()} for i in range(50_000)])
        earlier = db.backup(dest)
        db.put_many([{"id": f"m{i:05d}", "v": i} for i in range(1000)])
    assert pl.verify_backup(earlier.path).ok

    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(folder), str(dest)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = read_lines(proc.stdout)
        seen: list[str] = []
        deadline = time.monotonic() + SUBPROCESS_TIMEOUT_S
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"no mid-copy progress line within {SUBPROCESS_TIMEOUT_S}s: {seen}")
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if not line:
                pytest.fail(f"backup process ended early: {seen} {proc.stderr.read()}")
            seen.append(line.strip())
            done, total = (int(x) for x in line.split())
            if done > 0:
                assert done < total, "the backup must be killed mid-way"
                break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=SUBPROCESS_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=SUBPROCESS_TIMEOUT_S)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    assert proc.returncode == -signal.SIGKILL

    with pl.connect(folder) as db:  # the killed process's lock is gone
        listed = db.backups(dest)
        assert len(listed) == 2
        good = [b for b in listed if b.status == "complete"]
        half = [b for b in listed if b.status != "complete"]
        assert [b.id for b in good] == [earlier.id]
        assert len(half) == 1
        assert half[0].status == "incomplete"

        assert pl.verify_backup(earlier.path).ok
        check = pl.verify_backup(half[0].path)
        assert not check.ok
        assert check.problems
        with pytest.raises(errors.BackupError):
            pl.restore_backup(half[0].path, tmp_path / "from-half")
        assert not (tmp_path / "from-half").exists()

        # An incremental after the crash builds on the complete backup, not the half one.
        inc = db.backup(dest, incremental=True)
        assert inc.base == earlier.id
        expected = state(db)
    assert pl.verify_backup(inc.path).ok
    with restored(inc, tmp_path / "restored") as copy:
        pd.testing.assert_frame_equal(state(copy), expected)


def flip_byte(path: Path, offset: int | None = None) -> None:
    blob = bytearray(path.read_bytes())
    where = len(blob) // 2 if offset is None else offset
    blob[where] ^= 0x40
    path.write_bytes(bytes(blob))


@pytest.mark.parametrize("which", ["segment", "manifest"])
def test_flipped_byte_is_reported_and_not_restored(tmp_path: Path, which: str) -> None:
    with pl.connect(tmp_path / "db") as db:
        populate(db)
        backup = db.backup(tmp_path / "backups")
    name = backup.segments[0] if which == "segment" else "MANIFEST.json"
    flip_byte(backup.path / name)

    check = pl.verify_backup(backup.path)
    assert not check.ok
    assert len(check.problems) == 1
    assert name in check.problems[0]
    assert check.files_checked == len(backup.checksums)

    into = tmp_path / "restored"
    with pytest.raises(errors.BackupError, match=name):
        pl.restore_backup(backup.path, into)
    assert not into.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backups", "db"]  # no staging left


def test_flipped_byte_in_a_base_is_reported_for_its_incremental(tmp_path: Path) -> None:
    dest = tmp_path / "backups"
    with pl.connect(tmp_path / "db") as db:
        populate(db)
        full = db.backup(dest)
        db.put("extra", {"v": 1})
        inc = db.backup(dest, incremental=True)
    flip_byte(full.path / full.segments[0])
    check = pl.verify_backup(inc.path)
    assert not check.ok
    assert any(full.segments[0] in p for p in check.problems), check.problems
    with pytest.raises(errors.BackupError):
        pl.restore_backup(inc.path, tmp_path / "restored")
    assert not (tmp_path / "restored").exists()


def test_flipped_byte_in_backup_json_is_reported(tmp_path: Path) -> None:
    with pl.connect(tmp_path / "db") as db:
        populate(db, 20)
        backup = db.backup(tmp_path / "backups")
    (backup.path / "backup.json").write_text("{not json", "utf-8")
    check = pl.verify_backup(backup.path)
    assert not check.ok
    with pytest.raises(errors.BackupError):
        pl.restore_backup(backup.path, tmp_path / "restored")
    assert not (tmp_path / "restored").exists()


# -- restoring over things ------------------------------------------------------------


def test_restore_over_an_existing_folder_needs_overwrite(tmp_path: Path) -> None:
    with pl.connect(tmp_path / "db") as db:
        populate(db, 40)
        backup = db.backup(tmp_path / "backups")
        expected = state(db)
    target = tmp_path / "other"
    with pl.connect(target) as other:
        other.put("mine", {"keep": True})
    before = tree(target)

    with pytest.raises(errors.BackupError, match="overwrite"):
        pl.restore_backup(backup.path, target)
    assert tree(target) == before
    with pl.connect(target) as other:
        assert other.get("mine").data == {"keep": True}

    assert pl.restore_backup(backup.path, target, overwrite=True) == target
    with pl.connect(target) as copy:
        pd.testing.assert_frame_equal(state(copy), expected)
        assert copy.get("mine") is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backups", "db", "other"]


def test_restore_into_an_empty_existing_folder_needs_no_overwrite(tmp_path: Path) -> None:
    with pl.connect(tmp_path / "db") as db:
        populate(db, 40)
        backup = db.backup(tmp_path / "backups")
        expected = state(db)
    (tmp_path / "empty").mkdir()
    pl.restore_backup(backup.path, tmp_path / "empty")
    with pl.connect(tmp_path / "empty") as copy:
        pd.testing.assert_frame_equal(state(copy), expected)


def test_restore_over_an_open_database_is_refused(tmp_path: Path) -> None:
    with pl.connect(tmp_path / "db") as db:
        populate(db, 40)
        backup = db.backup(tmp_path / "backups")
    with pl.connect(tmp_path / "open") as busy:
        busy.put("mine", {"v": 1})
        with pytest.raises(errors.DatabaseLockedError):
            pl.restore_backup(backup.path, tmp_path / "open", overwrite=True)
        assert busy.get("mine").data == {"v": 1}
        busy.put("mine", {"v": 2})  # still usable
    with pl.connect(tmp_path / "open") as again:
        assert again.get("mine").data == {"v": 2}
        assert again.count() == 1


def test_restore_progress_and_cancel(tmp_path: Path) -> None:
    with pl.connect(tmp_path / "db") as db:
        populate(db)
        backup = db.backup(tmp_path / "backups")
    calls: list[tuple[int, int]] = []
    pl.restore_backup(backup.path, tmp_path / "a", progress=lambda d, t: calls.append((d, t)))
    dones = [d for d, _ in calls]
    assert dones == sorted(dones)
    assert (
        dones[-1] == calls[-1][1] == sum((backup.path / s).stat().st_size for s in backup.segments)
    )
    with pytest.raises(errors.OperationCancelled):
        pl.restore_backup(backup.path, tmp_path / "b", progress=lambda d, t: False)
    assert not (tmp_path / "b").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "backups", "db"]


# -- refusals -------------------------------------------------------------------------


def test_backup_progress_is_monotonic(tmp_path: Path) -> None:
    with pl.connect(tmp_path / "db") as db:
        db.put_many([{"id": f"n{i}", "blob": os.urandom(32).hex()} for i in range(40_000)])
        calls: list[tuple[int, int]] = []
        backup = db.backup(tmp_path / "backups", progress=lambda d, t: calls.append((d, t)))
    assert len(calls) >= 3  # several chunks
    dones = [d for d, _ in calls]
    assert dones == sorted(dones)
    assert {t for _, t in calls} == {calls[-1][1]}
    assert (
        dones[-1] == calls[-1][1] == sum((backup.path / s).stat().st_size for s in backup.segments)
    )


@pytest.mark.parametrize("cancel_at_call", [1, 2])
def test_cancelling_a_backup_leaves_no_folder(tmp_path: Path, cancel_at_call: int) -> None:
    dest = tmp_path / "backups"
    with pl.connect(tmp_path / "db", auto_compact=False) as db:
        db.put_many([{"id": f"n{i}", "blob": os.urandom(32).hex()} for i in range(40_000)])
        first = db.backup(dest)
        db.put_many([{"id": f"m{i}", "blob": os.urandom(32).hex()} for i in range(40_000)])
        before = sorted(p.name for p in dest.iterdir())
        calls: list[int] = []

        def progress(done: int, total: int) -> bool:
            calls.append(done)
            return len(calls) < cancel_at_call

        with pytest.raises(errors.OperationCancelled):
            db.backup(dest, incremental=True, progress=progress)
        assert sorted(p.name for p in dest.iterdir()) == before
        assert [b.id for b in db.backups(dest)] == [first.id]

        # The database still works, and compaction can delete the files the
        # cancelled backup had pinned.
        db.put("after", {"v": 1})
        db.compact()
        assert len(list((tmp_path / "db").glob("seg-*.arrow"))) == 1
        inc = db.backup(dest, incremental=True)
        assert inc.base == first.id
        expected = state(db)
    with restored(inc, tmp_path / "restored") as copy:
        pd.testing.assert_frame_equal(state(copy), expected)


def test_incremental_without_a_full_backup_raises(tmp_path: Path) -> None:
    dest = tmp_path / "backups"
    with pl.connect(tmp_path / "db") as db:
        db.put("a", {"v": 1})
        with pytest.raises(errors.BackupError):
            db.backup(dest, incremental=True)
        assert not dest.exists() or list(dest.iterdir()) == []
        assert db.backups(dest) == []


def test_in_memory_backup_raises(tmp_path: Path) -> None:
    with pl.connect(":memory:") as db:
        db.put("a", {"v": 1})
        with pytest.raises(errors.BackupError):
            db.backup(tmp_path / "backups")
    assert not (tmp_path / "backups").exists()


def test_backup_inside_the_database_folder_raises(tmp_path: Path) -> None:
    with pl.connect(tmp_path / "db") as db:
        db.put("a", {"v": 1})
        with pytest.raises(errors.BackupError):
            db.backup(tmp_path / "db" / "backups")
    assert not (tmp_path / "db" / "backups").exists()


def test_verify_a_folder_that_is_not_a_backup(tmp_path: Path) -> None:
    (tmp_path / "nothing").mkdir()
    check = pl.verify_backup(tmp_path / "nothing")
    assert not check.ok
    assert check.problems
    assert check.backup is None


def test_an_incremental_without_a_full_backup_creates_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "backups"
    with pl.connect(tmp_path / "db") as db:
        db.put("a", {"x": 1})
        with pytest.raises(errors.BackupError, match="full backup first"):
            db.backup(dest, incremental=True)
    assert not dest.exists()
