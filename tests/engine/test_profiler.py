"""`db.profiler` on the embedded engine (issue #7): slow operations, large nodes, trends,
suggestions with apply and dismiss, and the per-call notes of the instrumentation point.

Durations are never compared with a guess about the machine's speed: a test that needs
slow operations lowers the threshold (to 0: every operation is slow), and figures are
checked against the instrumentation's own events or the stored data.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import pluresdb_lab as pl
from pluresdb_lab import errors
from pluresdb_lab.engine import Event, LargeNode, SlowOp, Suggestion, TrendPoint
from pluresdb_lab.engine._instrument import (
    BATCH,
    DETAIL_CHARS,
    Instrumentation,
    describe,
    measured,
)
from pluresdb_lab.engine._measures import SAMPLES_PER_SECOND, TRACKED_NODES, TREND_SECONDS
from pluresdb_lab.engine._profiler import SLOW_KEPT

SPEC = {"type": "airport", "filter": {"field": "elevation", "op": "gt", "value": 9_900}}


@pytest.fixture
def db(tmp_path: Path) -> Iterator[pl.Database]:
    database = pl.connect(tmp_path / "db", fsync="off")
    assert isinstance(database, pl.Database)
    with database:
        yield database


@pytest.fixture
def mem() -> Iterator[pl.Database]:
    database = pl.connect(":memory:")
    assert isinstance(database, pl.Database)
    with database:
        yield database


def stored_bytes(db: pl.Database, node_id: str) -> int:
    """The node's stored JSON, measured from the rows as stored."""
    rows = db.scan().to_pylist()
    (data,) = [r["data"] for r in rows if r["id"] == node_id]
    return len(data.encode())


def airports(db: pl.Database, n: int) -> None:
    db.put_many(
        [
            {"id": f"ap{i}", "elevation": (i * 37) % 10_000, "name": f"airport {i}"}
            for i in range(n)
        ],
        type="airport",
    )


# -- slow operations -----------------------------------------------------------------------


def test_slow_ops_carry_op_duration_time_and_detail(db: pl.Database, tmp_path: Path) -> None:
    profiler = db.profiler
    assert profiler.slow_threshold_ms == 100.0
    profiler.slow_threshold_ms = 0
    started = time.time()
    db.put("n/1", {"x": 1}, type="T")
    db.get("n/1")
    db.sql("SELECT count(*) AS n FROM T")
    db.query({"type": "T", "filter": {"field": "x", "op": "eq", "value": 1}})
    db.export(tmp_path / "out.csv", type="T")
    ops = profiler.slow_ops()
    assert all(isinstance(op, SlowOp) for op in ops)
    by_op = {op.op: op for op in reversed(ops)}  # the newest of each kind
    assert by_op["put"].detail == "n/1"
    assert by_op["get"].detail == "n/1"
    assert by_op["sql"].detail == "SELECT count(*) AS n FROM T"
    assert json.loads(by_op["query"].detail) == {
        "type": "T",
        "filter": {"field": "x", "op": "eq", "value": 1},
    }
    assert by_op["export"].detail == str(tmp_path / "out.csv")
    assert ops[0].op == "export", "newest first"
    assert [op.time for op in ops] == sorted((op.time for op in ops), reverse=True)
    assert all(started <= op.time <= time.time() for op in ops)
    assert all(op.duration_ms >= 0 for op in ops)
    assert profiler.slow_ops(limit=2) == ops[:2]
    assert profiler.slow_ops(limit=0) == []

    spec = {"type": "T", "vector": {"query": [0.5] * 384, "k": 3}, "limit": [1, 2]}
    assert json.loads(describe(spec)) == {
        "type": "T",
        "vector": {"query": "<vector of 384>", "k": 3},
        "limit": [1, 2],
    }
    assert describe(np.ones(8, dtype=np.float32)) == '"<vector of 8>"'

    long_sql = "SELECT 1 AS n" + " " * 600 + "-- padded"
    db.sql(long_sql)
    assert profiler.slow_ops(1)[0].detail == long_sql[:DETAIL_CHARS]


def test_only_operations_at_or_over_the_threshold_are_kept(mem: pl.Database) -> None:
    for i in range(100):
        mem.put(f"n{i}", {"i": i})
    events = mem.instrumentation.events(100)
    durations = sorted(e.duration_s * 1000 for e in events)
    threshold = durations[len(durations) // 2]  # half of the measured puts qualify
    mem.profiler.reset()
    mem.profiler.slow_threshold_ms = threshold
    for i in range(100):
        mem.put(f"n{i}", {"i": i + 1})
    expected = [e for e in mem.instrumentation.events(100) if e.duration_s * 1000 >= threshold]
    kept = mem.profiler.slow_ops(limit=1000)
    assert [(op.op, op.detail, op.duration_ms) for op in kept] == [
        (e.name, e.detail, e.duration_s * 1000) for e in reversed(expected)
    ]
    assert all(op.duration_ms >= threshold for op in kept)
    mem.profiler.slow_threshold_ms = 1e9
    mem.get("n1")
    assert mem.profiler.slow_ops(limit=1000) == kept


def test_slow_ops_are_bounded(mem: pl.Database) -> None:
    mem.put("a", {})
    mem.profiler.slow_threshold_ms = 0
    for _ in range(SLOW_KEPT + 200):
        mem.get("a")
    assert len(mem.profiler.slow_ops(limit=SLOW_KEPT * 2)) == SLOW_KEPT


@pytest.mark.parametrize("bad", [-1, -0.5, math.nan, math.inf, "10", True, None])
def test_a_bad_threshold_is_refused_and_changes_nothing(mem: pl.Database, bad: Any) -> None:
    mem.profiler.slow_threshold_ms = 25
    with pytest.raises(errors.InvalidDataError, match="slow_threshold_ms"):
        mem.profiler.slow_threshold_ms = bad
    assert mem.profiler.slow_threshold_ms == 25


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True, None])
def test_a_bad_limit_is_refused(mem: pl.Database, bad: Any) -> None:
    for read in (mem.profiler.slow_ops, mem.profiler.large_nodes, mem.profiler.top_talkers):
        with pytest.raises(errors.InvalidDataError, match="limit"):
            read(bad)


# -- large nodes ---------------------------------------------------------------------------


def test_large_nodes_report_stored_bytes_and_counts(db: pl.Database) -> None:
    db.put("big", {"text": "é" * 20_000, "n": 1}, type="Doc")  # stored as \u00e9 escapes
    db.put("mid", {"text": "m" * 5_000}, type="Doc")
    db.put("small", {"n": 1})
    for _ in range(3):
        db.get("big")
    db.get_many(["big", "mid", "absent"])
    db.put("mid", {"more": "x" * 100})  # a merge: the stored node grows by the patch
    db.put_many([{"id": "bulk1", "v": "b" * 3_000}, {"id": "small", "n": 2}], type="Doc")
    nodes = db.profiler.large_nodes()
    assert all(isinstance(n, LargeNode) for n in nodes)
    assert [n.id for n in nodes] == ["big", "mid", "bulk1", "small"]
    got = {n.id: n for n in nodes}
    assert got["big"] == LargeNode("big", "Doc", stored_bytes(db, "big"), 4, 1)
    assert got["big"].bytes > 40_000
    assert got["mid"] == LargeNode("mid", "Doc", stored_bytes(db, "mid"), 1, 2)
    assert got["bulk1"] == LargeNode("bulk1", "Doc", stored_bytes(db, "bulk1"), 0, 1)
    assert got["small"] == LargeNode("small", "Doc", stored_bytes(db, "small"), 0, 2)
    assert db.profiler.large_nodes(limit=2) == nodes[:2]


def test_large_nodes_keep_the_largest_within_the_bound(mem: pl.Database) -> None:
    total = TRACKED_NODES + 2_000
    mem.put_many([{"id": f"n{i:05d}", "pad": "x" * (i // 10)} for i in range(total)], type="P")
    nodes = mem.profiler.large_nodes(limit=total)
    assert len(nodes) <= TRACKED_NODES
    assert nodes[0].id == f"n{total - 10:05d}", "ties in size are ordered by id"
    assert nodes[0].bytes == stored_bytes(mem, f"n{total - 1:05d}")
    assert [n.bytes for n in nodes] == sorted((n.bytes for n in nodes), reverse=True)
    assert min(n.bytes for n in nodes) >= stored_bytes(mem, f"n{total - TRACKED_NODES:05d}")


# -- trends --------------------------------------------------------------------------------


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def test_trends_give_ops_and_percentiles_per_second(mem: pl.Database) -> None:
    mem.put("a", {"x": 1})
    mem.profiler.reset()
    started = time.time()
    for _ in range(150):
        mem.get("a")
    events = mem.instrumentation.events(150)
    assert [e.name for e in events] == ["get"] * 150
    points = mem.profiler.trends(window_s=60)
    assert all(isinstance(p, TrendPoint) for p in points)
    assert sum(p.ops for p in points) == 150
    per_second: dict[int, list[float]] = {}
    for e in events:
        per_second.setdefault(int(e.time), []).append(e.duration_s * 1000)
    assert [p.time for p in points] == [float(s) for s in sorted(per_second)]
    for point in points:
        durations = per_second[int(point.time)]
        assert point.ops == len(durations) <= SAMPLES_PER_SECOND
        assert point.p50_ms == nearest_rank(durations, 50)
        assert point.p95_ms == nearest_rank(durations, 95)
        assert point.p99_ms == nearest_rank(durations, 99)
        assert point.ops_per_s >= point.ops
        assert int(started) <= point.time <= time.time()
    recent = mem.profiler.trends(window_s=1e-9)  # the current second at most
    assert [(p.time, p.ops) for p in recent] in ([], [(points[-1].time, points[-1].ops)])


def test_trends_memory_is_bounded(mem: pl.Database) -> None:
    profiler = mem.profiler
    profiler.reset()
    now = time.time()
    first = int(now) - TREND_SECONDS - 400
    # a batch as the instrumentation hands it over: one op in each of 4000 past seconds
    profiler._on_batch([Event("get", 0.001, 0, second + 0.5) for second in range(first, int(now))])
    points = profiler.trends(window_s=1e9)
    assert len(points) == TREND_SECONDS
    assert points[0].time == int(now) - TREND_SECONDS
    assert [p.ops for p in points] == [1] * TREND_SECONDS
    busy = int(now) + 1
    durations = [i / 1000 for i in range(1, 2001)]
    for start in range(0, 2000, 300):  # 2000 ops in one second: a bounded, uniform sample
        profiler._on_batch(
            [Event("get", d, 0, busy + 0.25) for d in durations[start : start + 300]]
        )
    last = profiler.trends(window_s=1e9)[-1]
    assert len(profiler._trends.seconds[-1].samples) == SAMPLES_PER_SECOND
    assert (last.time, last.ops) == (busy, 2000)
    assert 1 <= last.p50_ms <= last.p95_ms <= last.p99_ms <= 2000
    assert 500 <= last.p50_ms <= 1500, "a uniform sample's median is near the middle"


@pytest.mark.parametrize("bad", [0, -5, math.nan, math.inf, "60", None])
def test_a_bad_trend_window_is_refused(mem: pl.Database, bad: Any) -> None:
    with pytest.raises(errors.InvalidDataError, match="window_s"):
        mem.profiler.trends(bad)


# -- suggestions ---------------------------------------------------------------------------


def by_id(db: pl.Database) -> dict[str, Suggestion]:
    return {s.id: s for s in db.profiler.suggestions()}


def test_slow_queries_on_an_unindexed_field_suggest_an_index(db: pl.Database) -> None:
    airports(db, 20_000)
    db.profiler.slow_threshold_ms = 0  # every query counts as slow: no waiting for slowness
    assert db.explain(SPEC)["access"] == "scan"
    before = db.query(SPEC)
    for _ in range(4):
        assert db.query(SPEC).num_rows == before.num_rows
    db.query({"type": "airport", "filter": {"field": "name", "op": "eq", "value": "x"}})
    db.query(  # an "or" cannot be served by an index: no advice from it
        {
            "type": "airport",
            "filter": {
                "or": [
                    {"field": "name", "op": "eq", "value": "a"},
                    {"field": "name", "op": "eq", "value": "b"},
                ]
            },
        }
    )
    found = by_id(db)
    assert set(found) == {"index:airport.elevation"}
    advice = found["index:airport.elevation"]
    assert (advice.kind, advice.priority) == ("create_index", "medium")
    assert advice.action == {
        "create_index": {"kind": "numeric", "type": "airport", "fields": ["elevation"]}
    }
    assert advice.reason.startswith("6 slow queries (p50 ")  # five queries and one explain
    assert advice.reason.endswith("filter on airport.elevation, which has no index")

    done = db.profiler.apply(advice.id)
    assert done["applied"] == "index:airport.elevation"
    assert done["kind"] == "create_index"
    assert (done["index"]["kind"], done["index"]["fields"]) == ("numeric", ["elevation"])
    assert [(i["kind"], i["type"], i["fields"]) for i in db.indexes()] == [
        ("numeric", "airport", ["elevation"])
    ]
    assert "index:airport.elevation" not in by_id(db)
    plan = db.explain(SPEC)
    assert (plan["access"], plan["index"]) == ("index", done["index"]["name"])
    assert plan["estimated_rows"] < 20_000 / 50
    assert db.query(SPEC).equals(before)
    with pytest.raises(errors.NotFoundError):
        db.profiler.apply(advice.id)


def test_too_few_slow_queries_suggest_nothing(db: pl.Database) -> None:
    airports(db, 100)
    db.profiler.slow_threshold_ms = 0
    db.query(SPEC)
    db.query(SPEC)
    assert by_id(db) == {}
    db.profiler.slow_threshold_ms = 1e9  # fast queries are not slow ones
    for _ in range(5):
        db.query(SPEC)
    assert by_id(db) == {}
    db.profiler.slow_threshold_ms = 0
    for _ in range(5):  # refused queries are measured too, and advise nothing
        with pytest.raises(errors.InvalidDataError):
            db.query({"type": "", "filter": {"field": "elevation", "op": "gt", "value": 1}})
    assert [op.op for op in db.profiler.slow_ops(10)].count("query") == 5  # and to_arrow
    assert by_id(db) == {}


def test_a_crowded_level_zero_suggests_compaction(tmp_path: Path) -> None:
    with pl.connect(tmp_path / "db", fsync="off", auto_compact=False) as db:
        assert isinstance(db, pl.Database)
        for batch in range(5):
            db.put_many([{"id": f"n{batch}-{i}", "v": i} for i in range(50)], type="T")
            db.flush()
        assert db.storage_stats().levels[0].segments == 5
        advice = by_id(db)["compact:level0"]
        assert (advice.kind, advice.priority) == ("compact", "low")
        assert advice.action == {"compact": {"level": 0}}
        assert advice.reason.startswith("level 0 holds 5 segments (")
        done = db.profiler.apply("compact:level0")
        assert done["compaction"]["segments_before"] == 5
        assert done["compaction"]["level"] == 0
        assert all(level.level > 0 for level in db.storage_stats().levels)
        assert db.count() == 250
        assert "compact:level0" not in by_id(db)


def test_a_node_near_the_size_limit_suggests_a_split_only_a_person_can_make(
    tmp_path: Path,
) -> None:
    with pl.connect(tmp_path / "db", max_node_bytes=10_000) as db:
        assert isinstance(db, pl.Database)
        db.put("half", {"text": "h" * 6_000}, type="Doc")
        db.put("full", {"text": "f" * 9_500}, type="Doc")
        db.put("small", {"text": "s" * 100}, type="Doc")
        db.get("full")
        found = by_id(db)
        assert set(found) == {"split:half", "split:full"}
        assert [s.id for s in db.profiler.suggestions()] == ["split:full", "split:half"]
        full = found["split:full"]
        assert (full.kind, full.priority) == ("split_node", "high")
        assert found["split:half"].priority == "medium"
        size = stored_bytes(db, "full")
        assert full.action["split_node"] == {"id": "full", "type": "Doc", "bytes": size}
        assert "cannot be done automatically" in full.action["manual"]
        assert "read 1 and written 1 times" in full.reason
        with pytest.raises(errors.InvalidDataError, match="cannot be applied automatically"):
            db.profiler.apply("split:full")
        assert db.get("full").data == {"text": "f" * 9_500}  # type: ignore[union-attr]


def test_dismissed_suggestions_stay_away_until_reset(tmp_path: Path) -> None:
    with pl.connect(tmp_path / "db", fsync="off", auto_compact=False) as db:
        assert isinstance(db, pl.Database)
        for batch in range(4):
            db.put(f"n{batch}", {"v": batch})
            db.flush()
        assert "compact:level0" in by_id(db)
        db.profiler.dismiss("compact:level0")
        assert "compact:level0" not in by_id(db)
        db.profiler.dismiss("compact:level0")  # again: harmless
        with pytest.raises(errors.NotFoundError, match="dismissed"):
            db.profiler.apply("compact:level0")
        assert db.storage_stats().levels[0].segments == 4
        db.profiler.reset()
        assert "compact:level0" in by_id(db)


def test_unknown_suggestions_are_not_found(mem: pl.Database) -> None:
    for act in (mem.profiler.apply, mem.profiler.dismiss):
        with pytest.raises(errors.NotFoundError, match=r"no suggestion 'index:nope\.x'"):
            act("index:nope.x")
        with pytest.raises(errors.InvalidDataError, match="suggestion id"):
            act(42)  # type: ignore[arg-type]
    assert mem.indexes() == []


def test_reset_forgets_what_was_measured(mem: pl.Database) -> None:
    mem.profiler.slow_threshold_ms = 0
    mem.put("a", {"x": 1})
    mem.get("a")
    assert mem.profiler.slow_ops()
    assert mem.profiler.large_nodes()
    assert mem.profiler.trends()
    mem.profiler.reset()
    assert mem.profiler.slow_ops() == []
    assert mem.profiler.large_nodes() == []
    assert mem.profiler.trends() == []
    assert mem.profiler.slow_threshold_ms == 0


# -- the instrumentation notes behind it ---------------------------------------------------


class _Outer:
    """Measured calls nested in one another, each noting its own facts."""

    def __init__(self) -> None:
        self.instrumentation = Instrumentation()

    @measured("outer", about="name")
    def outer(self, name: str) -> None:
        self.instrumentation.note(nbytes=1, detail="outer's own detail")
        self.inner(name + "/inner")
        self.quiet()

    @measured("inner", about="name")
    def inner(self, name: str) -> None:
        self.instrumentation.note(nbytes=2, nodes=[(name, "T", 22)])

    @measured("quiet")
    def quiet(self) -> None:
        """Notes nothing: must not take the enclosing call's note."""


def test_nested_calls_keep_their_own_notes() -> None:
    owner = _Outer()
    owner.outer(name="a")
    inner, quiet, outer = owner.instrumentation.events()
    assert (inner.name, inner.bytes, inner.detail, inner.nodes) == (
        "inner",
        2,
        "a/inner",
        [("a/inner", "T", 22)],
    )
    assert (quiet.name, quiet.bytes, quiet.detail, quiet.nodes) == ("quiet", 0, "", ())
    assert (outer.name, outer.bytes, outer.detail) == ("outer", 1, "outer's own detail")


def test_concurrent_writers_each_see_their_own_node(mem: pl.Database) -> None:
    puts: list[Event] = []
    lock = threading.Lock()

    def keep(event: Event) -> None:
        if event.name == "put":
            with lock:
                puts.append(event)

    mem.instrumentation.listen(keep)

    def write(worker: int) -> None:
        for i in range(200):
            mem.put(f"w{worker}-{i}", {"pad": "p" * (worker * 100 + i)})

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(puts) == 800
    for event in puts:
        ((node_id, node_type, size),) = event.nodes
        worker, i = (int(part) for part in node_id[1:].split("-"))
        assert (event.detail, node_type) == (node_id, None)
        assert size == len(json.dumps({"pad": "p" * (worker * 100 + i)}, separators=(",", ":")))
        assert event.bytes == size


def test_batch_listeners_get_every_event_once_in_order() -> None:
    owner = _Outer()
    batches: list[list[Event]] = []
    handle = owner.instrumentation.listen_batches(batches.append)
    for i in range(BATCH + 10):  # three events a call: several full batches, then a rest
        owner.outer(name=str(i))
    full = len(batches)
    assert full >= 3
    assert all(len(batch) == BATCH for batch in batches)
    owner.instrumentation.flush()
    assert len(batches) == full + 1
    owner.instrumentation.flush()  # nothing waits: no empty batch
    assert len(batches) == full + 1
    seen = [e for batch in batches for e in batch]
    assert len(seen) == 3 * (BATCH + 10)
    assert [e.detail for e in seen if e.name == "inner"] == [
        f"{i}/inner" for i in range(BATCH + 10)
    ]
    handle.cancel()
    owner.outer(name="after")
    owner.instrumentation.flush()
    assert len(batches) == full + 1
