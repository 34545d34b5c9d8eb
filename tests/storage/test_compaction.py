"""Compaction (issue #3, DESIGN §5): what it keeps, what it reports, and that it runs
while readers and writers carry on."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import pluresdb_lab as pl
from pluresdb_lab import errors

DEADLINE_S = 20.0


def wait_for(condition: Callable[[], bool], what: str, timeout: float = DEADLINE_S) -> None:
    """Poll `condition` until it holds; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        pause.wait(0.02)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "db"


@pytest.fixture
def manual(folder: Path) -> Iterator[Any]:
    """A database without background compaction, so segment counts are the test's."""
    db = pl.connect(folder, auto_compact=False)
    try:
        yield db
    finally:
        db.close()


def state(db: Any) -> pd.DataFrame:
    return db.to_pandas().sort_values("id").reset_index(drop=True)


def histories(db: Any, ids: list[str]) -> dict[str, list[tuple[Any, ...]]]:
    return {
        i: [(v.version, v.time, v.origin, v.type, v.data, v.deleted) for v in db.history(i)]
        for i in ids
    }


def segment_files(folder: Path) -> set[str]:
    return {p.name for p in folder.glob("seg-*.arrow")}


def write_rounds(db: Any, nodes: int = 60, rounds: int = 3) -> dict[str, dict[str, Any]]:
    """`rounds` versions of each node, one flush (one L0 segment) per round; some
    deletes and an edge. Returns the expected current data per live id."""
    expected: dict[str, dict[str, Any]] = {}
    for r in range(rounds):
        for i in range(nodes):
            data = {"round": r, "i": i, "label": f"n{i}-r{r}", "ok": i % 2 == 0}
            if r == 0:
                data["first_only"] = 1.5
            node = db.put(f"n{i:03d}", data, type="Item")
            expected[node.id] = node.data
        db.flush()
    for i in range(0, nodes, 10):
        db.delete(f"n{i:03d}")
        expected.pop(f"n{i:03d}")
    db.link("n001", "n002", "next")
    db.flush()
    return expected


def check_current(db: Any, expected: dict[str, dict[str, Any]]) -> None:
    assert db.count("Item") == len(expected)
    for node_id, data in expected.items():
        node = db.get(node_id)
        assert node is not None, node_id
        assert node.data == data, node_id
    assert db.get("n000") is None
    assert [n.id for n in db.neighbors("n001", "next")] == ["n002"]


# -- what compaction keeps ------------------------------------------------------------


def test_keeps_every_value_and_all_history_without_retention(manual: Any, folder: Path) -> None:
    expected = write_rounds(manual)
    ids = [f"n{i:03d}" for i in range(60)]
    before_state = state(manual)
    before_history = histories(manual, ids)
    assert len(before_history["n005"]) == 3
    assert len(before_history["n010"]) == 4  # three puts and a delete
    before_vv = manual.version_vector()

    report = manual.compact()

    assert report.segments_before >= 4
    assert report.segments_after == 1
    assert report.rows_after == report.rows_before  # retention=None drops nothing
    check_current(manual, expected)
    pd.testing.assert_frame_equal(state(manual), before_state)
    assert histories(manual, ids) == before_history
    assert manual.version_vector() == before_vv
    assert len(segment_files(folder)) == 1

    manual.close()
    with pl.connect(folder, auto_compact=False) as again:
        check_current(again, expected)
        pd.testing.assert_frame_equal(state(again), before_state)
        assert histories(again, ids) == before_history


def test_retention_zero_keeps_only_each_nodes_newest_version(folder: Path) -> None:
    with pl.connect(folder, retention=0, auto_compact=False) as db:
        expected = write_rounds(db)
        ids = [f"n{i:03d}" for i in range(60)]
        newest = {i: h[-1] for i, h in histories(db, ids).items()}
        assert all(len(h) >= 3 for h in histories(db, ids).values())
        before_state = state(db)

        report = db.compact()

        assert report.rows_after < report.rows_before
        check_current(db, expected)
        pd.testing.assert_frame_equal(state(db), before_state)
        after = histories(db, ids)
        for node_id in ids:
            assert after[node_id] == [newest[node_id]], node_id  # older versions dropped
        assert after["n005"][0][0] == 3  # version numbers are kept, not renumbered
        assert after["n010"][0][5] is True  # a deleted node keeps its tombstone
    with pl.connect(folder, retention=0, auto_compact=False) as db:
        check_current(db, expected)
        assert histories(db, ids) == after


def test_retention_keeps_history_back_to_the_horizon(folder: Path) -> None:
    retention = 1.0
    with pl.connect(folder, retention=retention, auto_compact=False) as db:
        for v in (1, 2):
            db.put_many([{"id": f"n{i}", "v": v} for i in range(20)])
            db.flush()
        old_written = time.time()
        # versions 1 and 2 must be older than the horizon when compaction runs
        wait_for(lambda: time.time() > old_written + retention * 1.5, "the clock to advance")
        for v in (3, 4):
            db.put_many([{"id": f"n{i}", "v": v} for i in range(20)])
            db.flush()
        db.compact()
        for i in range(20):
            history = db.history(f"n{i}")
            assert [h.version for h in history] == [3, 4]
            assert [h.data for h in history] == [{"v": 3}, {"v": 4}]
            assert db.get(f"n{i}").data == {"v": 4}


def test_retention_horizon_keeps_a_lone_old_version(folder: Path) -> None:
    """A node whose only version is older than the horizon is still current."""
    with pl.connect(folder, retention=0, auto_compact=False) as db:
        db.put("old", {"v": 1})
        db.flush()
        db.put("other", {"v": 2})
        db.flush()
        db.compact()
        assert db.get("old").data == {"v": 1}
        assert [h.version for h in db.history("old")] == [1]


# -- the report -----------------------------------------------------------------------


def test_report_matches_storage_stats_before_and_after(manual: Any) -> None:
    write_rounds(manual)
    before = manual.storage_stats()
    started = time.perf_counter()
    report = manual.compact()
    elapsed = time.perf_counter() - started
    after = manual.storage_stats()

    assert report.level is None
    assert report.segments_before == before.segments == sum(lv.segments for lv in before.levels)
    assert report.bytes_before == sum(lv.bytes for lv in before.levels)
    assert report.rows_before == sum(lv.rows for lv in before.levels)
    assert report.segments_after == after.segments == 1
    assert report.bytes_after == sum(lv.bytes for lv in after.levels)
    assert report.rows_after == sum(lv.rows for lv in after.levels)
    assert 0 < report.duration_s <= elapsed
    assert after.compactions == before.compactions + 1
    assert after.nodes == before.nodes


def test_compact_level_zero_merges_level_zero_into_level_one(manual: Any) -> None:
    expected = write_rounds(manual, rounds=3)
    levels = {lv.level: lv for lv in manual.storage_stats().levels}
    assert set(levels) == {0}
    l0 = levels[0]

    report = manual.compact(level=0)

    assert report.level == 0
    assert report.segments_before == l0.segments
    assert report.rows_before == report.rows_after == l0.rows
    after = {lv.level: lv for lv in manual.storage_stats().levels}
    assert set(after) == {1}
    assert after[1].segments == report.segments_after == 1
    check_current(manual, expected)

    # New L0 segments merge with the existing L1 segment.
    manual.put("n001", {"round": 99}, type="Item")
    expected["n001"] = dict(expected["n001"], round=99)
    manual.flush()
    report = manual.compact(level=0)
    assert report.segments_before == 2
    assert [(lv.level, lv.segments) for lv in manual.storage_stats().levels] == [(1, 1)]
    check_current(manual, expected)
    assert len(manual.history("n001")) == 4


def test_compacting_an_empty_level_changes_nothing(manual: Any) -> None:
    manual.put("a", {"v": 1})
    manual.flush()
    report = manual.compact(level=3)
    assert report.segments_before == report.segments_after == 1
    assert report.rows_before == report.rows_after
    assert manual.get("a").data == {"v": 1}


@pytest.mark.parametrize("level", [-1, True, "0", 1.5])
def test_compact_rejects_a_bad_level(manual: Any, level: Any) -> None:
    manual.put("a", {"v": 1})
    manual.flush()
    with pytest.raises(errors.InvalidDataError):
        manual.compact(level=level)
    assert manual.storage_stats().segments == 1


def test_compact_works_in_memory() -> None:
    with pl.connect(":memory:", auto_compact=False) as db:
        expected = write_rounds(db)
        ids = [f"n{i:03d}" for i in range(60)]
        before = histories(db, ids)
        report = db.compact()
        assert report.segments_after == 1
        check_current(db, expected)
        assert histories(db, ids) == before


# -- progress and cancel --------------------------------------------------------------


def test_progress_is_monotonic_and_ends_at_total(manual: Any) -> None:
    write_rounds(manual)
    calls: list[tuple[int, int]] = []
    report = manual.compact(progress=lambda done, total: calls.append((done, total)))
    assert len(calls) >= 2
    totals = {total for _, total in calls}
    assert totals == {report.rows_before}
    dones = [done for done, _ in calls]
    assert dones == sorted(dones)
    assert dones[0] == 0
    assert dones[-1] == report.rows_before


@pytest.mark.parametrize("cancel_at_call", [1, 2])
def test_cancel_leaves_segments_and_data_unchanged(
    manual: Any, folder: Path, cancel_at_call: int
) -> None:
    expected = write_rounds(manual)
    ids = [f"n{i:03d}" for i in range(60)]
    before_stats = manual.storage_stats()
    before_files = segment_files(folder)
    before_state = state(manual)
    before_history = histories(manual, ids)
    calls: list[int] = []

    def progress(done: int, total: int) -> bool:
        calls.append(done)
        return len(calls) < cancel_at_call

    with pytest.raises(errors.OperationCancelled):
        manual.compact(progress=progress)
    assert len(calls) == cancel_at_call

    after_stats = manual.storage_stats()
    assert after_stats.segments == before_stats.segments
    assert after_stats.levels == before_stats.levels
    assert after_stats.compactions == before_stats.compactions
    assert segment_files(folder) == before_files
    check_current(manual, expected)
    pd.testing.assert_frame_equal(state(manual), before_state)
    assert histories(manual, ids) == before_history

    manual.compact()  # a later compaction still works
    assert manual.storage_stats().segments == 1
    check_current(manual, expected)


# -- the automatic policy -------------------------------------------------------------


def test_background_compaction_keeps_segment_count_below_flushes(folder: Path) -> None:
    flushes = 12
    with pl.connect(folder, auto_compact=True) as db:
        for f in range(flushes):
            for i in range(5):
                db.put(f"n{f}-{i}", {"f": f, "i": i})
            db.flush()

        def settled() -> bool:
            stats = db.storage_stats()
            return stats.compactions > 0 and all(lv.segments < 4 for lv in stats.levels)

        wait_for(settled, "background compaction to merge full levels")
        stats = db.storage_stats()
        assert stats.segments < flushes
        assert stats.compaction_level >= 1
        assert stats.segments == len(segment_files(folder))
        assert db.count() == flushes * 5
        for f in range(flushes):
            assert db.get(f"n{f}-4").data == {"f": f, "i": 4}


def test_no_background_compaction_when_disabled(folder: Path) -> None:
    with pl.connect(folder, auto_compact=False) as db:
        for f in range(6):
            db.put(f"n{f}", {"f": f})
            db.flush()
        stats = db.storage_stats()
        assert stats.segments == 6
        assert stats.compactions == 0


# -- concurrency ----------------------------------------------------------------------


def test_readers_and_writers_keep_working_during_compaction(folder: Path) -> None:
    writers, per_writer, flush_every = 2, 600, 50
    db = pl.connect(folder, auto_compact=True)
    acked: list[list[tuple[str, int]]] = [[] for _ in range(writers)]
    failures: list[BaseException] = []
    done = threading.Event()

    def writer(w: int) -> None:
        try:
            for i in range(per_writer):
                db.put(f"w{w}-{i:05d}", {"w": w, "i": i}, type="W")
                db.put(f"counter{w}", {"i": i}, type="Counter")
                acked[w].append((f"w{w}-{i:05d}", i))
                if i % flush_every == flush_every - 1:
                    db.flush()
        except BaseException as exc:
            failures.append(exc)

    def reader(r: int) -> None:
        rng = random.Random(r)
        last_seen = [-1] * writers
        try:
            while not done.is_set():
                w = rng.randrange(writers)
                known = len(acked[w])
                if known:
                    node_id, i = acked[w][rng.randrange(known)]
                    node = db.get(node_id)
                    assert node is not None, f"acknowledged {node_id} not readable"
                    assert node.data == {"w": w, "i": i}
                counter = db.get(f"counter{w}")
                if counter is not None:
                    assert counter.data["i"] >= last_seen[w], "counter went backwards"
                    last_seen[w] = counter.data["i"]
                assert db.count("W") >= known
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    threads += [threading.Thread(target=reader, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    compactions = 0
    try:
        while any(t.is_alive() for t in threads[:writers]) and not failures:
            db.compact(level=None if compactions % 2 == 0 else 0)
            compactions += 1
    finally:
        for t in threads[:writers]:
            t.join(timeout=60)
        done.set()
        for t in threads[writers:]:
            t.join(timeout=60)
    try:
        assert not any(t.is_alive() for t in threads), "a thread did not finish"
        assert not failures, failures
        assert compactions >= 2
        db.compact()
        expected = {node_id: i for w in range(writers) for node_id, i in acked[w]}
        assert len(expected) == writers * per_writer
        assert db.count("W") == len(expected)
        for node_id, i in expected.items():
            assert db.get(node_id).data["i"] == i
        for w in range(writers):
            assert db.get(f"counter{w}").data == {"i": per_writer - 1}
        before = state(db)
    finally:
        db.close()
    with pl.connect(folder) as again:
        pd.testing.assert_frame_equal(state(again), before)
