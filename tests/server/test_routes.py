"""Every REST route through a Jupyter server with the extension (pytest-jupyter), errors too."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgpack
import pyarrow as pa

from pluresdb_lab import _wire
from pluresdb_lab._database import Database

ARROW = {"Accept": _wire.ARROW}


async def test_info_and_openapi(api: Any, served_db: Database) -> None:
    status, info = await api("GET", "")
    assert status == 200
    assert info["peer_id"] == served_db.peer_id
    status, doc = await api("GET", "openapi.json")
    assert status == 200
    assert doc["openapi"].startswith("3.")
    assert doc["servers"] == [{"url": "/a%40b/pluresdb/api"}]
    assert "/node/{node_id}" in doc["paths"]


async def test_node_crud(api: Any, served_db: Database) -> None:
    status, node = await api("PUT", "node/n1", {"data": {"x": 1, "y": "a"}, "type": "T"})
    assert (status, node["id"], node["type"], node["data"]) == (200, "n1", "T", {"x": 1, "y": "a"})
    assert served_db.get("n1").data == {"x": 1, "y": "a"}  # type: ignore[union-attr]
    status, node = await api("PUT", "node/n1", {"data": {"y": None}})
    assert node["data"] == {"x": 1}
    assert node["version"] == 2
    status, node = await api("GET", "node/n1")
    assert (status, node["data"], node["type"]) == (200, {"x": 1}, "T")
    status, body = await api("DELETE", "node/n1")
    assert (status, body) == (200, {"deleted": True})
    status, body = await api("DELETE", "node/n1")
    assert (status, body) == (200, {"deleted": False})


async def test_unknown_node_is_404_json(api: Any) -> None:
    for method, route in (
        ("GET", "node/missing"),
        ("GET", "node/missing/history"),
        ("GET", "node/missing/neighbors"),
    ):
        status, body = await api(method, route)
        assert status == 404, (method, route)
        assert body["error"] == "NotFoundError"
        assert "missing" in body["message"]
    status, body = await api("POST", "node/missing/restore", {"version": 1})
    assert (status, body["error"]) == (404, "NotFoundError")
    status, body = await api("POST", "conflicts/nope/resolve", {"choose": "winner"})
    assert (status, body["error"]) == (404, "NotFoundError")


async def test_bad_bodies_are_400_json_and_write_nothing(api: Any, served_db: Database) -> None:
    cases: list[tuple[str, str, Any]] = [
        ("PUT", "node/n", b"{not json"),
        ("PUT", "node/n", [1, 2]),
        ("PUT", "node/n", {"data": [1]}),
        ("PUT", "node/n", {"data": {"_x": 1}}),
        ("PUT", "node/n", {"data": {}, "type": "_reserved"}),
        ("POST", "nodes", {"id": "x"}),
        ("POST", "nodes", [{"id": "a"}, {"id": "a"}]),
        ("POST", "nodes/get", {"ids": "a"}),
        ("POST", "node/n/restore", {}),
        ("POST", "edges", {"src": "a"}),
        ("POST", "sql", {"query": 5}),
        ("POST", "sql", {"query": "SELEKT 1"}),
        ("POST", "storage/compact", {"level": -1}),
        ("POST", "backups", {"dest": ""}),
        ("POST", "import", {"path": 3}),
        ("POST", "export", {"path": "x.csv", "query": "SELEKT"}),
    ]
    for method, route, body in cases:
        status, reply = await api(method, route, body)
        assert status == 400, (method, route, body, reply)
        assert set(reply) == {"error", "message"}, reply
        assert reply["message"], reply
    status, reply = await api("GET", "nodes", params={"limit": "many"})
    assert (status, reply["error"]) == (400, "InvalidDataError")
    status, reply = await api("GET", "nodes", params={"as_of": "yesterday"})
    assert status == 400
    status, reply = await api("POST", "nodes", b"not arrow", headers={"Content-Type": _wire.ARROW})
    assert status == 400
    status, reply = await api("PUT", "ops", b"\xc1", headers={"Content-Type": _wire.MSGPACK})
    assert status == 400
    bad_op = msgpack.packb([{"o": "x"}], use_bin_type=True)
    status, reply = await api("PUT", "ops", bad_op, headers={"Content-Type": _wire.MSGPACK})
    assert (status, reply["error"]) == (400, "InvalidOpError")
    assert served_db.count() == 0


async def test_batch_list_count_types_table(api: Any) -> None:
    status, body = await api("POST", "nodes", [{"id": "j1", "v": 1}], params={"type": "J"})
    assert (status, body) == (200, {"written": 1})
    table = pa.table({"id": ["a1", "a2", "a3"], "v": [1, 2, 3]})
    status, body = await api(
        "POST",
        "nodes",
        _wire.table_to_ipc(table),
        params={"type": "A"},
        headers={"Content-Type": _wire.ARROW},
    )
    assert (status, body) == (200, {"written": 3})
    status, body = await api("GET", "nodes", params={"type": "A", "limit": "2", "offset": "1"})
    assert [n["id"] for n in body["nodes"]] == ["a2", "a3"]
    status, body = await api("GET", "nodes/count")
    assert body == {"count": 4}
    status, body = await api("GET", "nodes/count", params={"type": "A"})
    assert body == {"count": 3}
    status, body = await api("GET", "types")
    assert body == {"types": [{"type": "A", "count": 3}, {"type": "J", "count": 1}]}
    status, body = await api("POST", "nodes/get", {"ids": ["a1", "zz"]})
    assert body["nodes"][0]["id"] == "a1"
    assert body["nodes"][1] is None
    status, blob = await api("GET", "table", params={"type": "A"}, headers=ARROW)
    got = _wire.table_from_ipc(blob)
    assert got.column("v").to_pylist() == [1, 2, 3]
    status, body = await api("GET", "table", params={"type": "A"})
    assert body["columns"] == ["id", "time", "v"]
    assert len(body["rows"]) == 3


async def test_edges_history_restore_as_of(api: Any, served_db: Database) -> None:
    await api("PUT", "node/a", {"data": {"v": 1}})
    between = datetime.now(UTC)
    await api("PUT", "node/a", {"data": {"v": 2}})
    await api("PUT", "node/b", {"data": {}})
    status, edge = await api("POST", "edges", {"src": "a", "dst": "b", "label": "knows"})
    assert (status, edge["type"], edge["data"]["label"]) == (200, "_edge", "knows")
    status, body = await api("GET", "node/a/neighbors")
    assert [n["id"] for n in body["nodes"]] == ["b"]
    status, body = await api("GET", "node/b/neighbors", params={"direction": "in"})
    assert [n["id"] for n in body["nodes"]] == ["a"]
    status, body = await api("GET", "node/a/neighbors", params={"direction": "up"})
    assert status == 400
    status, body = await api("DELETE", "edges", params={"src": "a", "dst": "b", "label": "knows"})
    assert body == {"deleted": True}
    status, body = await api("GET", "node/a/history")
    assert [v["data"] for v in body["versions"]] == [{"v": 1}, {"v": 2}]
    status, node = await api("POST", "node/a/restore", {"version": 1})
    assert node["data"] == {"v": 1}
    when = str(between.timestamp())
    status, node = await api("GET", "node/a", params={"as_of": when})
    assert node["data"] == {"v": 1}
    status, body = await api("GET", "nodes/count", params={"as_of": when})
    assert body == {"count": 1}
    status, body = await api("GET", "node/b", params={"as_of": between.isoformat()})
    assert status == 404
    status, body = await api("POST", "sql", {"query": "SELECT count(*) AS n FROM nodes"})
    assert body["rows"] == [{"n": 2}]
    status, body = await api(
        "POST", "sql", {"query": "SELECT count(*) AS n FROM nodes"}, params={"as_of": when}
    )
    assert body["rows"] == [{"n": 1}]


async def test_sql_arrow_and_params(api: Any) -> None:
    await api("POST", "nodes", [{"id": f"p{i}", "v": i} for i in range(5)], params={"type": "P"})
    query = {"query": "SELECT id, v FROM P WHERE v >= ? ORDER BY v", "params": [3]}
    status, blob = await api("POST", "sql", query, headers=ARROW)
    assert status == 200
    assert _wire.table_from_ipc(blob).column("id").to_pylist() == ["p3", "p4"]


async def test_conflicts_and_resolve(api: Any, served_db: Database) -> None:
    other = Database(None)
    try:
        served_db.put("c", {"f": "ours"})
        other.apply_ops(served_db.ops_since())
        served_db.put("c", {"f": "ours again"})
        other.put("c", {"f": "theirs"})
        served_db.apply_ops(other.ops_since(served_db.version_vector()))
    finally:
        other.close()
    status, body = await api("GET", "conflicts")
    assert status == 200
    assert len(body["conflicts"]) == 1
    conflict = body["conflicts"][0]
    status, body = await api("GET", "conflicts", params={"id": "c"})
    assert body["conflicts"] == [conflict]
    status, node = await api("POST", f"conflicts/{conflict['id']}/resolve", {"choose": "loser"})
    assert node["data"]["f"] == conflict["loser"]["value"]
    status, body = await api("POST", f"conflicts/{conflict['id']}/resolve", {"choose": "neither"})
    assert status == 400


async def test_replication_routes(api: Any, served_db: Database) -> None:
    other = Database(None)
    try:
        other.put("r1", {"x": 1})
        other.put("r2", {"x": 2})
        body = msgpack.packb(other.ops_since(), use_bin_type=True)
        status, reply = await api("PUT", "ops", body, headers={"Content-Type": _wire.MSGPACK})
        assert (status, reply) == (200, {"applied": 2})
        status, reply = await api("GET", "version-vector")
        assert reply["version_vector"] == {other.peer_id: 2}
        since = msgpack.packb({"since": {other.peer_id: 1}}, use_bin_type=True)
        status, blob = await api("POST", "ops", since, headers={"Content-Type": _wire.MSGPACK})
        ops = msgpack.unpackb(blob, raw=False)
        assert [(op["o"], op["s"]) for op in ops] == [(other.peer_id, 2)]
    finally:
        other.close()
    assert served_db.get("r2") is not None


async def test_storage_backups_import_export(api: Any, allowed_dir: Path) -> None:
    await api("POST", "nodes", [{"id": f"s{i}", "v": i} for i in range(10)], params={"type": "S"})
    status, body = await api("POST", "storage/flush")
    assert status == 200
    status, stats = await api("GET", "storage")
    assert stats["nodes"] == 10
    assert stats["segments"] >= 1
    status, report = await api("POST", "storage/compact", {"level": None})
    assert status == 200
    assert report["segments_after"] >= 1
    dest = allowed_dir / "backups"
    status, backup = await api("POST", "backups", {"dest": str(dest)})
    assert (status, backup["kind"], backup["nodes"]) == (200, "full", 10)
    status, body = await api("GET", "backups", params={"dest": str(dest)})
    assert [b["id"] for b in body["backups"]] == [backup["id"]]
    status, check = await api("POST", "backups/verify", {"path": backup["path"]})
    assert check["ok"] is True
    into = allowed_dir / "restored"
    status, body = await api("POST", "backups/restore", {"path": backup["path"], "into": str(into)})
    assert (status, body) == (200, {"path": str(into)})
    with Database(into) as restored:
        assert restored.count() == 10
    out = allowed_dir / "s.csv"
    status, body = await api("POST", "export", {"path": str(out), "type": "S"})
    assert (status, body) == (200, {"exported": 10})
    source = allowed_dir / "in.ndjson"
    source.write_text("\n".join(json.dumps({"id": f"i{i}", "w": i}) for i in range(3)))
    status, body = await api("POST", "import", {"path": str(source), "type": "I", "id_field": "id"})
    assert (status, body) == (200, {"imported": 3})
    status, body = await api("POST", "import", {"path": str(allowed_dir / "absent.csv")})
    assert (status, body["error"]) == (404, "NotFoundError")


async def test_change_feed_streams_changes(
    jp_fetch: Any, served_db: Database, jp_asyncio_loop: Any
) -> None:
    chunks: list[bytes] = []

    def got(chunk: bytes) -> None:
        chunks.append(chunk)
        if b"event: ready" in chunk:
            served_db.put("feed", {"x": 1})

    def seen() -> bool:
        return b"event: change" in b"".join(chunks)

    request = jp_fetch(
        "pluresdb",
        "api",
        "changes",
        params={"id": "feed"},
        streaming_callback=got,
        request_timeout=30,
    )
    deadline = jp_asyncio_loop.time() + 20
    while not seen() and jp_asyncio_loop.time() < deadline:
        await asyncio.sleep(0.02)
    assert seen()
    request.cancel()
    text = b"".join(chunks).decode()
    event = next(line for line in text.splitlines() if line.startswith('data: {"id"'))
    change = json.loads(event[len("data: ") :])
    assert (change["id"], change["kind"], change["local"]) == ("feed", "put", True)


async def test_search_and_graph_routes(api: Any) -> None:
    await api(
        "POST",
        "nodes",
        [{"id": f"t{i}", "title": f"fox {i}"} for i in range(3)],
        params={"type": "T"},
    )
    status, index = await api("POST", "indexes", {"kind": "text", "type": "T", "fields": ["title"]})
    assert status == 200
    status, body = await api("GET", "indexes")
    assert [i["name"] for i in body["indexes"]] == [index["name"]]
    status, body = await api("POST", "search", {"text": "fox", "limit": 2})
    assert (status, body["total"], len(body["hits"])) == (200, 3, 2)
    status, body = await api("POST", "query", {"type": "T", "sort": ["id"]})
    assert [r["id"] for r in body["rows"]] == ["t0", "t1", "t2"]
    status, body = await api("POST", "explain", {"type": "T"})
    assert status == 200
    await api("POST", "edges", {"src": "t0", "dst": "t1", "label": "l"})
    status, body = await api("GET", "node/t0/traverse", params={"depth": "1"})
    assert [h["id"] for h in body["hops"]] == ["t0", "t1"]
    status, body = await api("GET", "node/t1/degree")
    assert body == {"degree": 1}
    status, body = await api("GET", "path", params={"a": "t0", "b": "t1"})
    assert body == {"path": ["t0", "t1"]}
    status, body = await api("DELETE", f"indexes/{index['name']}")
    assert status == 200
    for method, route, payload, params, code in [
        ("POST", "indexes", {"kind": "btree", "type": "T", "fields": ["title"]}, None, 400),
        ("POST", "indexes", {"type": "T"}, None, 400),
        ("POST", "search", {"query": "fox"}, None, 400),
        ("POST", "vector-search", {"query": [1.0], "colour": 1}, None, 400),
        ("POST", "query", {"type": "T", "limit": -1}, None, 400),
        ("GET", "node/nowhere/traverse", None, {"depth": "1"}, 404),
        ("GET", "node/t0/traverse", None, None, 400),  # depth is required
        ("GET", "node/nowhere/degree", None, None, 404),
        ("GET", "path", None, {"a": "t0"}, 400),
        ("DELETE", "indexes/absent", None, None, 404),
    ]:
        status, body = await api(method, route, payload, params=params)
        assert status == code, (method, route, body)
        assert body["message"]


async def test_mesh_routes_on_the_server_loop(api: Any, served_db: Database) -> None:
    status, body = await api("GET", "mesh")
    assert (status, body["peer_id"], body["peers"]) == (200, served_db.peer_id, [])
    status, body = await api("PUT", "mesh", {"paused": True})
    assert (status, served_db.mesh.paused) == (200, True)
    await api("PUT", "mesh", {"paused": False})
    status, snapshot = await api("POST", "mesh/snapshots")
    assert status == 200
    status, body = await api("GET", "mesh/snapshots")
    assert [s["id"] for s in body["snapshots"]] == [snapshot["id"]]
    status, body = await api("DELETE", "mesh/snapshots", params={"id": snapshot["id"]})
    assert status == 200
    status, body = await api("GET", "mesh/logs", params={"limit": "10"})
    assert status == 200
    for method, route, payload, code in [
        ("PUT", "mesh", {"paused": "yes"}, 400),
        ("POST", "mesh/peers", {"url": "http://x"}, 400),
        ("POST", "mesh/sync", {"peer_id": 5}, 400),
    ]:
        status, body = await api(method, route, payload)
        assert status == code, (route, body)
