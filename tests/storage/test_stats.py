"""`db.storage_stats()`: every figure is measured from the files on disk (issue #3).

The expected values are computed here independently: the folder is walked with
`os.walk`, the WAL and segment files are found by name, keys are counted from the data
the test wrote, free space comes from `shutil.disk_usage`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pluresdb_lab as pl


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "db"


@pytest.fixture
def db(folder: Path) -> Iterator[Any]:
    # No background compaction: files must not change between measuring and walking.
    database = pl.connect(folder, auto_compact=False)
    try:
        yield database
    finally:
        database.close()


def walk_bytes(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            total += (Path(root) / name).stat().st_size
    return total


def wal_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("wal-*.log"))


def segment_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("seg-*.arrow"))


def populate(db: Any) -> set[str]:
    """Nodes of two types with overlapping field names, half of them flushed."""
    fields: set[str] = set()
    for i in range(40):
        data = {"name": f"city-{i}", "pop": i * 1000, f"extra{i % 5}": True}
        db.put(f"city:{i}", data, type="City")
        fields.update(data)
    db.flush()
    for i in range(30):
        data = {"name": f"road-{i}", "length_km": i * 1.5}
        db.put(f"road:{i}", data, type="Road")
        fields.update(data)
    return fields


def test_total_bytes_equals_the_folder_on_disk(db: Any, folder: Path) -> None:
    populate(db)
    stats = db.storage_stats()
    assert stats.in_memory is False
    assert stats.total_bytes == walk_bytes(folder)
    assert stats.total_bytes > 0
    db.flush()
    assert db.storage_stats().total_bytes == walk_bytes(folder)


def test_wal_bytes_equals_the_wal_file(db: Any, folder: Path) -> None:
    populate(db)  # the second batch is still in the WAL
    [wal] = wal_files(folder)
    stats = db.storage_stats()
    assert stats.wal_bytes == wal.stat().st_size
    assert stats.wal_bytes > 0
    db.put("road:extra", {"name": "one more"}, type="Road")
    [wal] = wal_files(folder)
    assert db.storage_stats().wal_bytes == wal.stat().st_size > stats.wal_bytes
    db.flush()  # a flush starts an empty WAL
    [wal] = wal_files(folder)
    assert wal.stat().st_size == 0
    assert db.storage_stats().wal_bytes == 0


def test_nodes_equals_count_and_keys_the_distinct_field_names(db: Any) -> None:
    fields = populate(db)
    stats = db.storage_stats()
    assert stats.nodes == db.count() == 70
    assert stats.keys == len(fields)
    db.delete("city:0")
    db.delete("road:0")
    stats = db.storage_stats()
    assert stats.nodes == db.count() == 68
    db.put("road:1", {"surface": "gravel"}, type="Road")
    assert db.storage_stats().keys == len(fields) + 1


def test_keys_drop_when_the_last_node_with_a_field_goes(db: Any) -> None:
    db.put("a", {"x": 1, "only_here": 2})
    db.put("b", {"x": 3})
    assert db.storage_stats().keys == 2
    db.put("a", {"only_here": None})  # merge-patch: None deletes the field
    assert db.get("a").data == {"x": 1}
    assert db.storage_stats().keys == 1


def test_keys_drop_when_the_last_node_with_a_field_is_deleted(db: Any) -> None:
    db.put("a", {"x": 1, "only_here": 2})
    db.put("b", {"x": 3})
    db.delete("a")
    stats = db.storage_stats()
    assert stats.keys == 1
    assert stats.nodes == 1


def test_levels_sum_to_the_segment_files_on_disk(db: Any, folder: Path) -> None:
    for batch in range(3):
        db.put_many([{"id": f"n{batch}-{i}", "v": i} for i in range(50)])
        db.flush()
    stats = db.storage_stats()
    files = segment_files(folder)
    assert len(files) >= 3
    assert sum(level.segments for level in stats.levels) == stats.segments == len(files)
    assert sum(level.bytes for level in stats.levels) == sum(f.stat().st_size for f in files)
    assert sum(level.rows for level in stats.levels) == 150
    db.compact()
    stats = db.storage_stats()
    files = segment_files(folder)
    assert len(files) == 1
    assert [(lv.level, lv.segments) for lv in stats.levels] == [(stats.compaction_level, 1)]
    assert stats.compaction_level >= 1
    assert stats.levels[0].bytes == files[0].stat().st_size


def test_used_plus_superseded_is_segments_plus_wal(db: Any, folder: Path) -> None:
    populate(db)
    for i in range(20):
        db.put(f"city:{i}", {"pop": -i}, type="City")
    stats = db.storage_stats()
    segment_bytes = sum(f.stat().st_size for f in segment_files(folder))
    [wal] = wal_files(folder)
    assert stats.used_bytes + stats.superseded_bytes == segment_bytes + wal.stat().st_size


def test_superseded_grows_with_updates_and_shrinks_after_compaction(tmp_path: Path) -> None:
    with pl.connect(tmp_path / "db", retention=0, auto_compact=False) as db:
        db.put_many([{"id": f"n{i}", "v": 0, "text": "x" * 50} for i in range(200)])
        db.flush()
        first = db.storage_stats()
        assert first.superseded_bytes == 0  # nothing was overwritten yet
        for round_ in range(1, 3):
            db.put_many([{"id": f"n{i}", "v": round_} for i in range(200)])
            db.flush()
        updated = db.storage_stats()
        assert updated.superseded_bytes > first.superseded_bytes
        assert updated.space_amplification > 1.0
        db.compact()
        compacted = db.storage_stats()
        assert compacted.superseded_bytes < updated.superseded_bytes
        assert compacted.superseded_bytes == 0  # retention=0 keeps only newest versions
        assert compacted.space_amplification == pytest.approx(1.0)
        assert compacted.total_bytes < updated.total_bytes
        assert compacted.nodes == 200


def test_write_amplification_counts_compaction_rewrites(db: Any) -> None:
    for batch in range(4):
        db.put_many([{"id": f"n{batch}-{i}", "v": i} for i in range(100)])
        db.flush()
    before = db.storage_stats()
    assert before.write_amplification > 0
    db.compact()
    after = db.storage_stats()
    assert after.write_amplification > before.write_amplification
    assert after.compactions == before.compactions + 1


def test_free_bytes_equals_disk_usage(db: Any, folder: Path) -> None:
    populate(db)
    stats = db.storage_stats()
    free = shutil.disk_usage(folder).free
    # Other processes share the filesystem; allow for their writes in between.
    assert abs(stats.free_bytes - free) <= 64 * 1024 * 1024
    assert stats.free_bytes > 0


def test_in_memory_database_says_so() -> None:
    with pl.connect(":memory:") as db:
        db.put_many([{"id": f"n{i}", "v": i} for i in range(10)])
        db.flush()
        db.put("n0", {"v": 100})
        stats = db.storage_stats()
        assert stats.in_memory is True
        assert stats.nodes == 10
        assert stats.keys == 1
        assert stats.free_bytes == 0
        assert stats.wal_bytes == 0
        assert stats.total_bytes > 0
        assert sum(level.segments for level in stats.levels) == stats.segments >= 1


def test_stats_survive_reopen(folder: Path) -> None:
    with pl.connect(folder, auto_compact=False) as db:
        fields = populate(db)
    with pl.connect(folder, auto_compact=False) as db:
        stats = db.storage_stats()
        assert stats.nodes == 70
        assert stats.keys == len(fields)
        assert stats.total_bytes == walk_bytes(folder)
        assert stats.segments == len(segment_files(folder))


def test_stats_on_a_closed_database_raise(folder: Path) -> None:
    db = pl.connect(folder)
    db.close()
    with pytest.raises(pl.errors.DatabaseClosedError):
        db.storage_stats()
