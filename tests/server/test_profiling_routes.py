"""The profiling routes (issue #7) through a Jupyter server with the extension, errors
too, a mesh peer's link counters as top talkers, and `RemoteDatabase.profiler`."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

import pluresdb_lab as pl
from pluresdb_lab import errors
from pluresdb_lab._database import Database
from pluresdb_lab.client import RemoteDatabase
from pluresdb_lab.engine import LargeNode, SlowOp, Suggestion, Talker, TrendPoint
from tests.server.conftest import TOKEN

SPEC = {"type": "airport", "filter": {"field": "elevation", "op": "gte", "value": 9_000}}
ADVICE = "index:airport.elevation"


def airports(n: int) -> list[dict[str, Any]]:
    return [{"id": f"ap{i}", "elevation": (i * 37) % 10_000} for i in range(n)]


def route(suggestion_id: str, action: str) -> str:
    """The route of a suggestion's action (`api` URL-quotes the path itself)."""
    return f"profiling/suggestions/{suggestion_id}/{action}"


async def test_every_profiling_route(api: Any, served_db: Database) -> None:
    assert await api("GET", "profiling/threshold") == (200, {"slow_threshold_ms": 100.0})
    assert await api("PUT", "profiling/threshold", {"slow_threshold_ms": 0}) == (
        200,
        {"slow_threshold_ms": 0.0},
    )
    assert served_db.profiler.slow_threshold_ms == 0
    status, _ = await api("POST", "nodes", airports(2_000), params={"type": "airport"})
    assert status == 200
    for _ in range(3):
        status, _ = await api("POST", "query", SPEC)
        assert status == 200

    status, body = await api("GET", "profiling/slow", params={"limit": "2"})
    assert status == 200
    assert [op["op"] for op in body["ops"]] == ["query", "to_arrow"]
    newest = body["ops"][0]
    assert json.loads(newest["detail"]) == SPEC
    assert newest["duration_ms"] >= 0
    assert newest["time"] <= time.time()

    status, body = await api("GET", "profiling/large-nodes", params={"limit": "3"})
    assert status == 200
    assert body["nodes"] == [
        {"id": n.id, "type": n.type, "bytes": n.bytes, "reads": n.reads, "writes": n.writes}
        for n in served_db.profiler.large_nodes(3)
    ]
    assert all(n["type"] == "airport" and n["writes"] == 1 for n in body["nodes"])

    status, body = await api("GET", "profiling/trends", params={"window": "60"})
    assert status == 200
    assert sum(p["ops"] for p in body["points"]) >= 7  # put_many, 3 queries, their reads
    assert all(p["p50_ms"] <= p["p95_ms"] <= p["p99_ms"] for p in body["points"])

    assert await api("GET", "profiling/talkers") == (200, {"talkers": []})

    status, body = await api("GET", "profiling/suggestions")
    assert status == 200
    (advice,) = body["suggestions"]
    assert (advice["id"], advice["kind"]) == (ADVICE, "create_index")
    assert advice["reason"].startswith("3 slow queries (p50 ")

    status, done = await api("POST", route(ADVICE, "apply"))
    assert status == 200
    assert (done["applied"], done["index"]["fields"]) == (ADVICE, ["elevation"])
    assert [i["type"] for i in served_db.indexes()] == ["airport"]
    assert await api("GET", "profiling/suggestions") == (200, {"suggestions": []})

    served_db.put("big", {"text": "b" * 600_000}, type="Doc")  # over half of max_node_bytes
    status, body = await api("GET", "profiling/suggestions")
    assert [s["id"] for s in body["suggestions"]] == ["split:big"]
    status, body = await api("POST", route("split:big", "apply"))
    assert (status, body["error"]) == (400, "InvalidDataError")
    assert "cannot be applied automatically" in body["message"]
    assert await api("POST", route("split:big", "dismiss")) == (200, {"dismissed": "split:big"})
    assert await api("GET", "profiling/suggestions") == (200, {"suggestions": []})

    assert await api("POST", "profiling/reset") == (200, {})
    assert served_db.profiler.slow_ops() == []
    status, body = await api("GET", "profiling/slow")
    assert [op["op"] for op in body["ops"]] == []


async def test_profiling_errors_are_json_and_change_nothing(api: Any, served_db: Database) -> None:
    served_db.profiler.slow_threshold_ms = 42
    for method, path, payload, params, code, error in [
        ("POST", route(ADVICE, "apply"), None, None, 404, "NotFoundError"),
        ("POST", route("nope", "dismiss"), None, None, 404, "NotFoundError"),
        ("PUT", "profiling/threshold", {"slow_threshold_ms": -1}, None, 400, "InvalidDataError"),
        ("PUT", "profiling/threshold", {"slow_threshold_ms": "5"}, None, 400, "InvalidDataError"),
        ("PUT", "profiling/threshold", {"threshold": 5}, None, 400, "InvalidDataError"),
        ("PUT", "profiling/threshold", [5], None, 400, "InvalidDataError"),
        ("GET", "profiling/slow", None, {"limit": "-1"}, 400, "InvalidDataError"),
        ("GET", "profiling/slow", None, {"limit": "many"}, 400, "InvalidDataError"),
        ("GET", "profiling/large-nodes", None, {"limit": "-3"}, 400, "InvalidDataError"),
        ("GET", "profiling/talkers", None, {"limit": "x"}, 400, "InvalidDataError"),
        ("GET", "profiling/trends", None, {"window": "0"}, 400, "InvalidDataError"),
        ("GET", "profiling/trends", None, {"window": "nan"}, 400, "InvalidDataError"),
        ("GET", "profiling/trends", None, {"window": "soon"}, 400, "InvalidDataError"),
    ]:
        status, body = await api(method, path, payload, params=params)
        assert (status, body["error"]) == (code, error), (method, path, body)
        assert body["message"]
    assert served_db.profiler.slow_threshold_ms == 42
    assert served_db.indexes() == []


async def test_talkers_route_shows_a_linked_peers_counters(api: Any, served_db: Database) -> None:
    with pl.connect(":memory:") as peer:
        assert isinstance(peer, pl.Database)
        peer.put_many([{"id": f"p{i}", "v": i} for i in range(200)], type="P")
        peer.mesh.allow(served_db.peer_id)
        url = peer.mesh.listen()
        status, _ = await api("POST", "mesh/peers", {"url": url, "peer_id": peer.peer_id})
        assert status == 200

        def counts() -> tuple[int, int, int, int] | None:
            rows = [p for p in served_db.mesh.peers() if p["peer_id"] == peer.peer_id]
            if not rows:
                return None
            return tuple(  # type: ignore[return-value]
                sum(row[key] for row in rows)  # type: ignore[literal-required]
                for key in ("bytes_in", "bytes_out", "messages_in", "messages_out")
            )

        deadline = time.monotonic() + 30
        while True:  # the server's loop is this test's loop: wait on it, never block it
            assert time.monotonic() < deadline, "timed out waiting for the peer's link"
            before = counts()
            if served_db.count() == 200 and before is not None:
                status, body = await api("GET", "profiling/talkers")
                if counts() == before:  # no frame moved while the route read the counters
                    break
            await asyncio.sleep(0.05)
        assert status == 200
        (talker,) = body["talkers"]
        assert talker == dict(
            zip(
                ("peer_id", "bytes_in", "bytes_out", "messages_in", "messages_out"),
                (peer.peer_id, *before),
                strict=True,
            )
        )
        assert talker["bytes_in"] > 200 * 5
        await api("DELETE", "mesh/peers", params={"peer_id": peer.peer_id})


# -- RemoteDatabase.profiler against `pluresdb serve` --------------------------------------


@pytest.fixture
def remote(serve_url: str) -> Iterator[RemoteDatabase]:
    db = pl.connect(serve_url, token=TOKEN)
    assert isinstance(db, RemoteDatabase)
    with db:
        db.profiler.reset()
        yield db


def test_remote_profiler_round_trip(remote: RemoteDatabase) -> None:
    profiler = remote.profiler
    profiler.slow_threshold_ms = 0
    assert profiler.slow_threshold_ms == 0
    remote.put_many(airports(1_000), type="airport")
    remote.put("big", {"text": "x" * 20_000}, type="Doc")
    remote.get("big")
    for _ in range(3):
        remote.query(SPEC)

    ops = profiler.slow_ops(limit=5)
    assert all(isinstance(op, SlowOp) for op in ops)
    assert ops[0].op == "query"
    assert json.loads(ops[0].detail) == SPEC
    (big,) = profiler.large_nodes(limit=1)
    assert big == LargeNode("big", "Doc", len('{"text":""}') + 20_000, 1, 1)
    points = profiler.trends(window_s=120)
    assert points
    assert all(isinstance(p, TrendPoint) for p in points)
    talkers = profiler.top_talkers()
    assert all(isinstance(t, Talker) for t in talkers)
    assert talkers == []

    (advice,) = profiler.suggestions()
    assert isinstance(advice, Suggestion)
    assert advice.id == ADVICE
    done = profiler.apply(ADVICE)
    assert done["index"]["type"] == "airport"
    assert remote.explain(SPEC)["access"] == "index"
    assert profiler.suggestions() == []

    with pytest.raises(errors.NotFoundError):
        profiler.apply(ADVICE)
    with pytest.raises(errors.NotFoundError, match="nope/with/slashes"):
        profiler.dismiss("nope/with/slashes")  # one path segment, quoted by the client
    for bad in (-1, float("nan"), "fast"):
        with pytest.raises(errors.InvalidDataError):
            profiler.slow_threshold_ms = bad  # type: ignore[assignment]
    assert profiler.slow_threshold_ms == 0
    with pytest.raises(errors.InvalidDataError):
        profiler.trends(window_s=-1)
    profiler.reset()
    assert profiler.slow_ops() == []
    assert profiler.large_nodes() == []
    remote.drop_index(done["index"]["name"])
