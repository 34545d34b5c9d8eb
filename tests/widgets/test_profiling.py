"""The Profiling panel's requests against real databases: slow queries on an unindexed
field lead to an index suggestion that apply builds, dismiss hides, top talkers come
from two real connected peers, bad requests change nothing, and the same handlers work
over a RemoteDatabase served on 127.0.0.1."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pluresdb_lab as pl
from pluresdb_lab._database import Database
from pluresdb_lab.server.standalone import Background
from pluresdb_lab.widgets import Profiling
from tests.widgets.requests import error_type, ok, poll

SECRET = "profiling-test-secret"
TOKEN = "profiling-test-token"
ELEVATION = {"type": "airport", "filter": {"field": "elevation", "op": "gt", "value": 2000}}


def airports(db: Any, n: int = 3000) -> None:
    db.put_many(
        [{"id": f"ap{i}", "code": f"A{i}", "elevation": (i * 37) % 4000} for i in range(n)],
        type="airport",
    )


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = pl.connect(tmp_path / "db", fsync="off")
    yield database
    database.close()


@pytest.fixture
def panel(db: Database) -> Iterator[Profiling]:
    view = Profiling(db)
    yield view
    view.close()


def slow_queries(panel: Profiling, db: Any, n: int = 3) -> None:
    """`n` queries that filter on airport.elevation, all counted slow (threshold 0 ms)."""
    assert ok(panel, "set_threshold", ms=0) == {"slow_threshold_ms": 0.0}
    for _ in range(n):
        assert db.query(ELEVATION).num_rows > 0


def test_slow_queries_lead_to_an_index_that_apply_builds(panel: Profiling, db: Database) -> None:
    airports(db)
    assert db.explain(ELEVATION)["access"] == "scan"
    slow_queries(panel, db)

    slow = ok(panel, "slow_ops", limit=50)
    queries = [row for row in slow if row["op"] == "query"]
    assert len(queries) == 3
    assert all('"elevation"' in row["detail"] and row["duration_ms"] > 0 for row in queries)
    assert [row["time"] for row in slow] == sorted((row["time"] for row in slow), reverse=True)

    found = {s["id"]: s for s in ok(panel, "suggestions")}
    index = found["index:airport.elevation"]
    assert index["kind"] == "create_index"
    assert index["priority"] in ("high", "medium", "low")
    assert index["reason"].startswith("3 slow queries")
    assert index["action"] == {
        "create_index": {"kind": "numeric", "type": "airport", "fields": ["elevation"]}
    }

    done = ok(panel, "apply", suggestion_id="index:airport.elevation")
    assert done["applied"] == "index:airport.elevation"
    assert done["index"]["entries"] == 3000
    listed = {i["name"]: i for i in db.indexes()}
    assert listed[done["index"]["name"]]["fields"] == ["elevation"]
    assert listed[done["index"]["name"]]["kind"] == "numeric"
    assert db.explain(ELEVATION)["access"] == "index"
    assert "index:airport.elevation" not in {s["id"] for s in ok(panel, "suggestions")}

    assert error_type(panel, "apply", suggestion_id="index:airport.elevation") == "NotFoundError"
    assert len(db.indexes()) == 1


class Recording(Profiling):
    """The Profiling panel with what it sends kept, standing in for the browser."""

    def __init__(self, db: Any) -> None:
        self.sent: queue.Queue[dict[str, Any]] = queue.Queue()
        super().__init__(db)

    def send(self, content: Any, buffers: Any = None) -> None:
        self.sent.put(content)


def test_apply_from_the_view_runs_on_a_worker_and_answers_by_id(db: Database) -> None:
    view = Recording(db)
    try:
        airports(db, 500)
        slow_queries(view, db)
        message = {
            "kind": "request",
            "id": "A",
            "method": "apply",
            "params": {"suggestion_id": "index:airport.elevation"},
        }
        view._receive(view, message, [])
        seen = []
        while not seen or seen[-1].get("kind") != "response":
            seen.append(view.sent.get(timeout=30))
        assert {"kind": "push", "topic": "applied"} in seen
        reply = seen[-1]
        assert (reply["id"], reply["ok"]) == ("A", True)
        assert reply["result"]["index"]["entries"] == 500
        assert [i["fields"] for i in db.indexes()] == [["elevation"]]
    finally:
        view.close()


def test_dismiss_hides_a_suggestion_until_reset(panel: Profiling, db: Database) -> None:
    airports(db, 500)
    slow_queries(panel, db)
    assert "index:airport.elevation" in {s["id"] for s in ok(panel, "suggestions")}

    assert ok(panel, "dismiss", suggestion_id="index:airport.elevation") == {
        "dismissed": "index:airport.elevation"
    }
    slow_queries(panel, db)
    assert "index:airport.elevation" not in {s["id"] for s in ok(panel, "suggestions")}
    assert error_type(panel, "apply", suggestion_id="index:airport.elevation") == "NotFoundError"
    assert db.indexes() == []

    assert ok(panel, "reset") == {"reset": True}
    assert ok(panel, "slow_ops") == []
    assert ok(panel, "suggestions") == []
    slow_queries(panel, db)
    assert "index:airport.elevation" in {s["id"] for s in ok(panel, "suggestions")}


def test_the_threshold_decides_what_is_slow(panel: Profiling, db: Database) -> None:
    assert ok(panel, "threshold") == {"slow_threshold_ms": 100.0}
    db.put("small", {"n": 1})
    assert db.get("small") is not None
    # A put and a get of one tiny node take microseconds: under 100 ms, not slow.
    assert [row["detail"] for row in ok(panel, "slow_ops")] == []

    assert ok(panel, "set_threshold", ms=0) == {"slow_threshold_ms": 0.0}
    assert db.profiler.slow_threshold_ms == 0.0
    assert db.get("small") is not None
    assert [(r["op"], r["detail"]) for r in ok(panel, "slow_ops")] == [("get", "small")]

    assert ok(panel, "set_threshold", ms=250) == {"slow_threshold_ms": 250.0}
    assert error_type(panel, "set_threshold", ms=-1) == "InvalidDataError"
    assert error_type(panel, "set_threshold", ms="fast") == "InvalidRequestError"
    assert error_type(panel, "set_threshold", ms=float("nan")) == "InvalidRequestError"
    assert error_type(panel, "set_threshold", ms=True) == "InvalidRequestError"
    assert error_type(panel, "set_threshold") == "InvalidRequestError"
    assert ok(panel, "threshold") == {"slow_threshold_ms": 250.0}


def test_large_nodes_with_read_and_write_counts(panel: Profiling, db: Database) -> None:
    db.put("big", {"text": "x" * 50_000}, type="doc")
    db.put("mid", {"text": "y" * 5_000}, type="doc")
    db.put("mid", {"more": 1})
    db.put("tiny", {"n": 1})
    assert db.get("big") is not None
    assert db.get_many(["big", "tiny"])[0] is not None

    rows = ok(panel, "large_nodes", limit=2)
    assert [row["id"] for row in rows] == ["big", "mid"]
    big, mid = rows
    assert big["type"] == "doc"
    assert 50_000 < big["bytes"] < 50_100
    assert (big["reads"], big["writes"]) == (2, 1)
    assert (mid["reads"], mid["writes"]) == (0, 2)
    assert len(ok(panel, "large_nodes")) == 3


def test_split_suggestion_is_shown_but_not_applied(tmp_path: Path) -> None:
    db = pl.connect(tmp_path / "small", fsync="off", max_node_bytes=10_000)
    view = Profiling(db)
    try:
        db.put("heavy", {"text": "z" * 9_000}, type="doc")
        found = {s["id"]: s for s in ok(view, "suggestions")}
        split = found["split:heavy"]
        assert split["kind"] == "split_node"
        assert split["action"]["manual"]
        assert error_type(view, "apply", suggestion_id="split:heavy") == "InvalidDataError"
        assert db.get("heavy") is not None
        assert db.get("heavy").data["text"] == "z" * 9_000  # type: ignore[union-attr]
    finally:
        view.close()
        db.close()


def test_compact_suggestion_applied_merges_level_zero(tmp_path: Path) -> None:
    db = pl.connect(tmp_path / "db", fsync="off", auto_compact=False)
    view = Profiling(db)
    try:
        for batch in range(5):
            db.put_many([{"id": f"b{batch}-{i}", "v": i} for i in range(40)], type="t")
            db.flush()
        level0 = {lv.level: lv.segments for lv in db.storage_stats().levels}[0]
        assert level0 == 5
        found = {s["id"]: s for s in ok(view, "suggestions")}
        assert found["compact:level0"]["reason"].startswith("level 0 holds 5 segments")
        done = ok(view, "apply", suggestion_id="compact:level0")
        assert done["compaction"]["segments_before"] == 5
        assert done["compaction"]["rows_after"] == 200
        assert {lv.level: lv.segments for lv in db.storage_stats().levels}.get(0, 0) == 0
        assert "compact:level0" not in {s["id"] for s in ok(view, "suggestions")}
        assert db.count("t") == 200
    finally:
        view.close()
        db.close()


def test_trends_count_operations_per_second(panel: Profiling, db: Database) -> None:
    for i in range(40):
        db.put(f"n{i}", {"i": i})
    points = ok(panel, "trends", window_s=60)
    assert sum(p["ops"] for p in points) >= 40
    for point in points:
        assert point["p50_ms"] <= point["p95_ms"] <= point["p99_ms"]
        assert point["ops_per_s"] > 0
        assert time.time() - 61 < point["time"] <= time.time()
    assert error_type(panel, "trends", window_s=0) == "InvalidRequestError"
    assert error_type(panel, "trends", window_s=7200) == "InvalidRequestError"
    assert error_type(panel, "trends", window_s="5m") == "InvalidRequestError"


def test_top_talkers_are_two_real_connected_peers(tmp_path: Path) -> None:
    hub, big, small = (pl.connect(tmp_path / name, fsync="off") for name in ("hub", "b", "s"))
    view = Profiling(hub)
    try:
        assert ok(view, "top_talkers") == []  # no mesh yet
        for peer in (hub, big, small):
            peer.mesh.configure(secret=SECRET, discovery=False)
        url = hub.mesh.listen("127.0.0.1", 0)
        big.mesh.connect(url, peer_id=hub.peer_id)
        small.mesh.connect(url, peer_id=hub.peer_id)
        big.put_many([{"id": f"big{i}", "text": "w" * 200} for i in range(500)], type="doc")
        small.put("small0", {"n": 1})
        poll(lambda: hub.count() == 501, "the hub to receive both peers' nodes")

        def both_listed() -> bool:
            rows = ok(view, "top_talkers")
            return {r["peer_id"] for r in rows} == {big.peer_id, small.peer_id}

        poll(both_listed, "both peers among the top talkers")
        rows = ok(view, "top_talkers")
        live: dict[str, dict[str, int]] = {}
        for link in hub.mesh.peers():  # read after the panel's answer: counters only grow
            counts = live.setdefault(str(link["peer_id"]), {"bytes_in": 0, "bytes_out": 0})
            counts["bytes_in"] += link["bytes_in"]
            counts["bytes_out"] += link["bytes_out"]
        totals = [r["bytes_in"] + r["bytes_out"] for r in rows]
        assert totals == sorted(totals, reverse=True)
        by_peer = {r["peer_id"]: r for r in rows}
        # The hub relays each peer's writes to the other, so what came in tells them apart.
        assert by_peer[big.peer_id]["bytes_in"] > by_peer[small.peer_id]["bytes_in"]
        for row in rows:
            assert row["messages_in"] > 0
            assert row["messages_out"] > 0
            assert 0 < row["bytes_in"] <= live[row["peer_id"]]["bytes_in"]
            assert 0 < row["bytes_out"] <= live[row["peer_id"]]["bytes_out"]
        assert len(ok(view, "top_talkers", limit=1)) == 1
    finally:
        view.close()
        for peer in (small, big, hub):
            peer.close()


@pytest.mark.parametrize(
    ("method", "params", "error"),
    [
        ("explode", {}, "InvalidRequestError"),
        ("slow_ops", {"limit": 0}, "InvalidRequestError"),
        ("slow_ops", {"limit": "ten"}, "InvalidRequestError"),
        ("large_nodes", {"limit": True}, "InvalidRequestError"),
        ("top_talkers", {"limit": 10**9}, "InvalidRequestError"),
        ("slow_ops", {"lmit": 5}, "InvalidRequestError"),
        ("apply", {}, "InvalidRequestError"),
        ("apply", {"suggestion_id": 7}, "InvalidRequestError"),
        ("apply", {"suggestion_id": "index:nowhere.nothing"}, "NotFoundError"),
        ("dismiss", {"suggestion_id": "index:nowhere.nothing"}, "NotFoundError"),
        ("dismiss", {"suggestion_id": ""}, "InvalidRequestError"),
    ],
)
def test_bad_requests_fail_and_change_nothing(
    panel: Profiling, db: Database, method: str, params: dict[str, Any], error: str
) -> None:
    airports(db, 200)
    slow_queries(panel, db)
    before = ok(panel, "suggestions")
    assert error_type(panel, method, **params) == error
    assert ok(panel, "suggestions") == before
    assert db.indexes() == []
    assert ok(panel, "threshold") == {"slow_threshold_ms": 0.0}


def test_a_request_that_is_not_a_request_is_refused(panel: Profiling) -> None:
    reply, _ = panel.handle({"kind": "response", "id": "x", "method": "slow_ops"})
    assert reply["error"]["type"] == "InvalidRequestError"
    reply, _ = panel.handle({"kind": "request", "id": "x", "method": "slow_ops", "params": [1]})
    assert reply["error"]["type"] == "InvalidRequestError"


def test_the_panel_is_reachable_by_name(db: Database) -> None:
    view = db.panel("profiling")
    try:
        assert isinstance(view, Profiling)
        assert view.panel == "profiling"
        assert {"apply", "dismiss", "reset", "slow_ops", "suggestions", "trends"} <= set(
            view.methods()
        )
    finally:
        view.close()


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[Any]:
    """A RemoteDatabase on a real server (the handlers of `pluresdb serve`) on 127.0.0.1."""
    served = Database(tmp_path / "served", fsync="off")
    server = Background(served, token=TOKEN)
    client = pl.connect(server.url, token=TOKEN)
    try:
        yield client
    finally:
        client.close()
        server.close()
        served.close()


def test_the_same_handlers_work_over_a_remote_database(remote: Any) -> None:
    view = Profiling(remote)
    try:
        airports(remote, 500)
        slow_queries(view, remote)
        assert remote.profiler.slow_threshold_ms == 0.0
        assert [r["op"] for r in ok(view, "slow_ops", limit=200)].count("query") == 3
        assert "index:airport.elevation" in {s["id"] for s in ok(view, "suggestions")}
        assert ok(view, "top_talkers") == []
        assert sum(p["ops"] for p in ok(view, "trends", window_s=60)) >= 4
        done = ok(view, "apply", suggestion_id="index:airport.elevation")
        assert done["index"]["entries"] == 500
        assert [i["fields"] for i in remote.indexes()] == [["elevation"]]
        assert error_type(view, "dismiss", suggestion_id="index:airport.elevation") == (
            "NotFoundError"
        )
        assert error_type(view, "set_threshold", ms=-5) == "InvalidDataError"
        assert ok(view, "reset") == {"reset": True}
        assert ok(view, "suggestions") == []
    finally:
        view.close()
