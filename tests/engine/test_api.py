"""The public engine API (docs/api-contract.md): embedded (in memory, on disk) and remote.

The remote runs use `RemoteDatabase` against a real server on 127.0.0.1 (see
conftest.py); a test that needs something only an in-process database has says why
in its `embedded_only` mark.

Every test asserts on values the engine returns; nothing is mocked.  Asynchronous
deliveries (subscriptions, instrumentation listeners) are awaited with a condition
variable and a timeout, never with sleeps.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import pluresdb_lab as pl
from pluresdb_lab import errors

# --------------------------------------------------------------------------- helpers


class Recorder:
    """A callback that records what it is called with; waits without sleeping."""

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._cond = threading.Condition()

    def __call__(self, item: Any) -> None:
        with self._cond:
            self._items.append(item)
            self._cond.notify_all()

    @property
    def items(self) -> list[Any]:
        with self._cond:
            return list(self._items)

    def wait_for(self, predicate: Callable[[list[Any]], bool], timeout: float = 5.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: predicate(list(self._items)), timeout)


def assert_utc(t: Any) -> None:
    assert isinstance(t, datetime), f"expected datetime, got {type(t)!r}"
    assert t.tzinfo is not None, "time must be timezone-aware (UTC)"
    assert t.utcoffset() == timedelta(0)


def wait_clock_past(t: datetime, margin_s: float = 0.005) -> None:
    """Spin (no sleep) until the wall clock is strictly past ``t + margin``."""
    deadline = time.monotonic() + 5
    limit = t + timedelta(seconds=margin_s)
    while datetime.now(UTC) <= limit:
        assert time.monotonic() < deadline, f"node time {t} is in the future"


def vec(node: Any) -> list[float] | None:
    return None if node.vector is None else [float(x) for x in node.vector]


def node_key(node: Any) -> tuple[Any, ...] | None:
    """Everything observable about a node, comparable with ==."""
    if node is None:
        return None
    return (node.id, node.type, node.data, vec(node), node.time, node.version)


def ids(nodes: list[Any]) -> list[str]:
    return [n.id for n in nodes]


def wire(ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A msgpack round trip, as the mesh would deliver the ops."""
    return msgpack.unpackb(msgpack.packb(ops, use_bin_type=True), raw=False, strict_map_key=False)


# --------------------------------------------------------------------------- connect


def test_reports_progress_says_whether_long_calls_take_a_callback(db: Any, backend: str) -> None:
    db.put("a", {"x": 1})
    db.put("a", {"x": 2})
    db.flush()
    seen: list[tuple[int, int]] = []
    if backend == "remote":
        assert db.reports_progress is False
        with pytest.raises(errors.InvalidDataError, match="progress"):
            db.compact(progress=lambda done, total: seen.append((done, total)) or True)
    else:
        assert db.reports_progress is True
        db.compact(progress=lambda done, total: seen.append((done, total)) or True)
        assert seen
        assert seen[-1][0] == seen[-1][1]


def test_connect_properties(db: Any, backend: str, tmp_path: Path) -> None:
    assert db.closed is False
    assert isinstance(db.peer_id, str)
    assert db.peer_id
    if backend == ":memory:":
        assert db.path is None
    else:
        assert isinstance(db.path, Path)
        assert db.path.resolve() == (tmp_path / "db").resolve()
        assert db.path.is_dir()


def test_connect_accepts_str_path(open_db: Any, tmp_path: Path) -> None:
    d = open_db(str(tmp_path / "as_str"))
    d.put("a", {"x": 1})
    assert isinstance(d.path, Path)
    assert d.path.resolve() == (tmp_path / "as_str").resolve()
    assert d.get("a").data == {"x": 1}


def test_peer_ids_differ_between_databases(open_db: Any, tmp_path: Path) -> None:
    a = open_db(":memory:")
    b = open_db(":memory:")
    c = open_db(tmp_path / "c")
    assert len({a.peer_id, b.peer_id, c.peer_id}) == 3


# --------------------------------------------------------------------------- put / get


def test_put_returns_full_node(db: Any) -> None:
    before = datetime.now(UTC)
    node = db.put("alice", {"name": "Alice", "age": 30}, type="Person")
    assert node.id == "alice"
    assert node.type == "Person"
    assert node.data == {"name": "Alice", "age": 30}
    assert node.vector is None
    assert node.version == 1
    assert_utc(node.time)
    assert before - timedelta(seconds=5) <= node.time <= datetime.now(UTC) + timedelta(seconds=5)
    assert dataclasses.is_dataclass(node)
    with pytest.raises(dataclasses.FrozenInstanceError):
        node.id = "bob"  # type: ignore[misc]

    got = db.get("alice")
    assert node_key(got) == node_key(node)


def test_put_is_a_merge_patch(db: Any) -> None:
    n1 = db.put("a", {"x": 1, "y": 2, "z": 3})
    n2 = db.put("a", {"y": 20, "w": 4, "z": None})
    assert n2.data == {"x": 1, "y": 20, "w": 4}
    assert n2.version == 2
    assert n2.time >= n1.time
    assert db.get("a").data == {"x": 1, "y": 20, "w": 4}
    n3 = db.put("a", {"x": None, "w": None, "y": None})
    assert n3.data == {}
    assert n3.version == 3
    got = db.get("a")
    assert got is not None, "a node whose fields were all removed still exists"
    assert got.data == {}
    assert db.count() == 1


def test_json_values_round_trip(db: Any) -> None:
    data = {
        "s": "héllo wörld ✓",
        "big": 2**62,
        "neg": -7,
        "f": 1.5,
        "t": True,
        "fa": False,
        "l": [1, "two", None, 3.5, [4, {"deep": True}]],
        "d": {"k": "v", "n": {"m": [1, 2]}},
        "empty_list": [],
        "empty_dict": {},
        "empty_str": "",
    }
    db.put("j", data)
    got = db.get("j").data
    assert got == data
    assert type(got["big"]) is int
    assert type(got["neg"]) is int
    assert type(got["f"]) is float
    assert got["t"] is True
    assert got["fa"] is False
    assert json.loads(json.dumps(got)) == data  # plain JSON-able Python values


def test_returned_and_given_dicts_are_not_shared(db: Any) -> None:
    given = {"a": [1], "b": {"c": 1}}
    returned = db.put("n", given)
    given["a"].append(2)
    given["b"]["c"] = 99
    given["new"] = 1
    returned.data["a"].append(3)
    returned.data["zzz"] = 1
    got = db.get("n")
    assert got.data == {"a": [1], "b": {"c": 1}}
    got.data["a"].append(4)
    got.data.clear()
    assert db.get("n").data == {"a": [1], "b": {"c": 1}}


def test_type_change(db: Any) -> None:
    db.put("t", {"v": 1}, type="A")
    assert db.count(type="A") == 1
    node = db.put("t", {"w": 2}, type="B")
    assert node.type == "B"
    assert node.data == {"v": 1, "w": 2}
    assert db.get("t").type == "B"
    assert db.count(type="A") == 0
    assert db.count(type="B") == 1
    assert db.list(type="A") == []
    assert ids(db.list(type="B")) == ["t"]
    assert db.types().get("A", 0) == 0
    assert db.types()["B"] == 1
    assert [v.type for v in db.history("t")] == ["A", "B"]


def test_put_without_type_keeps_the_type(db: Any) -> None:
    db.put("p", {"name": "P"}, type="Person")
    node = db.put("p", {"age": 3})
    assert node.type == "Person"
    assert db.get("p").type == "Person"
    assert db.count(type="Person") == 1


def test_vectors_round_trip_as_float32(db: Any) -> None:
    v = np.array([0.1, 0.2, 0.3], dtype=np.float64)
    node = db.put("v1", {"k": 1}, type="Emb", vector=v)
    assert isinstance(node.vector, np.ndarray)
    assert node.vector.dtype == np.float32
    assert node.vector.shape == (3,)
    np.testing.assert_array_equal(node.vector, v.astype(np.float32))
    assert node.data == {"k": 1}

    got = db.get("v1")
    assert got.vector.dtype == np.float32
    np.testing.assert_array_equal(got.vector, v.astype(np.float32))

    # a python list works as well
    n2 = db.put("v2", {}, type="Emb", vector=[1, 2, 3])
    np.testing.assert_array_equal(n2.vector, np.array([1, 2, 3], dtype=np.float32))

    # an update that does not mention the vector keeps it
    n3 = db.put("v1", {"k": 2})
    np.testing.assert_array_equal(n3.vector, v.astype(np.float32))
    np.testing.assert_array_equal(db.get("v1").vector, v.astype(np.float32))

    # a new vector replaces it
    f32 = np.array([9.5, -1.25, 0.0], dtype=np.float32)
    db.put("v1", {}, vector=f32)
    np.testing.assert_array_equal(db.get("v1").vector, f32)
    assert db.get("v1").data == {"k": 2}

    # another type is another vector space with its own dimension
    n4 = db.put("w", {}, type="Other", vector=[1.0, 2.0])
    assert n4.vector.shape == (2,)


def test_get_and_get_many(db: Any) -> None:
    db.put("a", {"n": 1})
    db.put("b", {"n": 2})
    assert db.get("missing") is None
    many = db.get_many(["a", "missing", "b", "a"])
    assert len(many) == 4
    assert many[0].id == "a"
    assert many[0].data == {"n": 1}
    assert many[1] is None
    assert many[2].id == "b"
    assert many[2].data == {"n": 2}
    assert many[3].id == "a"
    assert db.get_many([]) == []


def test_delete(db: Any) -> None:
    db.put("a", {"n": 1}, type="T")
    db.put("b", {"n": 2}, type="T")
    assert db.delete("a") is True
    assert db.get("a") is None
    assert db.get_many(["a", "b"])[0] is None
    assert db.count() == 1
    assert db.count(type="T") == 1
    assert ids(db.list()) == ["b"]
    assert db.delete("a") is False
    assert db.delete("never-existed") is False
    assert db.count() == 1


def test_put_after_delete_resurrects_with_new_data_only(db: Any) -> None:
    db.put("r", {"old": 1}, type="T")
    db.delete("r")
    node = db.put("r", {"new": 2}, type="T")
    assert node.data == {"new": 2}
    assert db.get("r").data == {"new": 2}
    assert db.count() == 1


# --------------------------------------------------------------------------- count / list / types


def test_count_list_types(db: Any) -> None:
    for pid in ["p03", "p10", "p01", "p02"]:
        db.put(pid, {"name": pid}, type="Person")
    db.put("c2", {"name": "Bergen"}, type="City")
    db.put("c1", {"name": "Oslo"}, type="City")
    db.put("u1", {"free": True})

    everything = sorted(["p03", "p10", "p01", "p02", "c2", "c1", "u1"])
    assert db.count() == 7
    assert db.count(type="Person") == 4
    assert db.count(type="City") == 2
    assert db.count(type="Nope") == 0
    assert ids(db.list()) == everything
    assert ids(db.list(type="Person")) == ["p01", "p02", "p03", "p10"]
    assert ids(db.list(limit=2, offset=1)) == everything[1:3]
    assert ids(db.list(type="Person", limit=2, offset=3)) == ["p10"]
    assert db.list(offset=50) == []
    assert db.list(type="Nope") == []
    assert [n.data for n in db.list(type="City")] == [{"name": "Oslo"}, {"name": "Bergen"}]
    assert db.types() == {"Person": 4, "City": 2, None: 1}
    assert sum(db.types().values()) == db.count()


def test_list_default_limit_is_100(db: Any) -> None:
    assert db.put_many([{"id": f"n{i:04d}", "i": i} for i in range(105)]) == 105
    assert len(db.list()) == 100
    assert ids(db.list()) == [f"n{i:04d}" for i in range(100)]
    assert len(db.list(limit=200)) == 105
    assert ids(db.list(offset=100)) == [f"n{i:04d}" for i in range(100, 105)]
    assert db.count() == 105


# --------------------------------------------------------------------------- put_many


def test_put_many_list_of_dicts(db: Any) -> None:
    records = [
        {"key": "k2", "name": "two", "emb": [0.0, 1.0]},
        {"key": "k1", "name": "one", "n": 1, "emb": [1.0, 0.0]},
        {"key": "k3", "name": "three"},
    ]
    written = db.put_many(records, type="Item", id_field="key", vector_field="emb")
    assert written == 3
    assert db.count(type="Item") == 3
    k1 = db.get("k1")
    assert k1.type == "Item"
    assert k1.data == {"name": "one", "n": 1}
    np.testing.assert_array_equal(k1.vector, np.array([1, 0], dtype=np.float32))
    assert db.get("k3").vector is None
    assert db.get("k3").data == {"name": "three"}
    assert records[0] == {"key": "k2", "name": "two", "emb": [0.0, 1.0]}  # input untouched

    # merge-patch semantics, None deletes
    assert db.put_many([{"key": "k1", "name": None, "extra": True}], id_field="key") == 1
    k1 = db.get("k1")
    assert k1.data == {"n": 1, "extra": True}
    assert k1.type == "Item"
    assert k1.version == 2
    np.testing.assert_array_equal(k1.vector, np.array([1, 0], dtype=np.float32))


def test_put_many_default_id_field_and_no_type(db: Any) -> None:
    assert db.put_many([{"id": "a", "x": 1}, {"id": "b"}]) == 2
    assert db.get("a").data == {"x": 1}
    assert db.get("a").type is None
    assert db.get("b").data == {}
    assert db.put_many([]) == 0
    assert db.count() == 2


def test_put_many_dataframe(db: Any) -> None:
    df = pd.DataFrame(
        {
            "id": ["r1", "r2", "r3"],
            "name": ["A", None, "C"],
            "score": [1.5, np.nan, 3.0],
            "age": [10, 20, 30],
            "flag": [True, False, True],
            "emb": [
                np.array([1, 0], dtype=np.float32),
                np.array([0, 1], dtype=np.float32),
                np.array([0.5, 0.5], dtype=np.float32),
            ],
        }
    )
    assert db.put_many(df, type="Row", vector_field="emb") == 3
    assert db.count(type="Row") == 3
    r1 = db.get("r1")
    assert r1.type == "Row"
    assert r1.data == {"name": "A", "score": 1.5, "age": 10, "flag": True}
    assert type(r1.data["age"]) is int
    assert r1.data["flag"] is True
    json.dumps(r1.data)  # plain Python values, not numpy scalars
    r2 = db.get("r2")
    assert r2.data == {"age": 20, "flag": False}, "None/NaN cells must not become fields"
    np.testing.assert_array_equal(r2.vector, np.array([0, 1], dtype=np.float32))
    np.testing.assert_array_equal(db.get("r3").vector, np.array([0.5, 0.5], dtype=np.float32))


def test_put_many_dataframe_custom_id_field(db: Any) -> None:
    df = pd.DataFrame({"key": ["x", "y"], "v": [1, 2]})
    assert db.put_many(df, id_field="key") == 2
    assert db.get("x").data == {"v": 1}
    assert db.get("y").data == {"v": 2}


def test_put_many_dataframe_null_on_existing_node_never_stores_null(db: Any) -> None:
    db.put("r1", {"score": 9.0, "name": "keep"}, type="Row")
    df = pd.DataFrame({"id": ["r1"], "score": [np.nan], "name": ["new"]})
    assert db.put_many(df, type="Row") == 1
    data = db.get("r1").data
    assert data["name"] == "new"
    # delete-or-omit: the field is either gone or unchanged, never NaN/None
    assert data.get("score", "absent") in ("absent", 9.0)


def test_put_many_arrow_table(db: Any) -> None:
    table = pa.table(
        {
            "id": pa.array(["a1", "a2", "a3"]),
            "age": pa.array([1, None, 3], pa.int64()),
            "name": pa.array(["x", "y", None]),
            "tags": pa.array([["t1", "t2"], [], None], pa.list_(pa.string())),
            "emb": pa.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], pa.list_(pa.float32())),
        }
    )
    assert db.put_many(table, type="Arr", vector_field="emb") == 3
    a1 = db.get("a1")
    assert a1.data == {"age": 1, "name": "x", "tags": ["t1", "t2"]}
    assert type(a1.data["age"]) is int
    np.testing.assert_array_equal(a1.vector, np.array([1, 2, 3], dtype=np.float32))
    assert db.get("a2").data == {"name": "y", "tags": []}
    assert db.get("a3").data == {"age": 3}
    assert db.types() == {"Arr": 3}


# --------------------------------------------------------------------------- edges


def test_link_unlink_neighbors(db: Any) -> None:
    for pid in ["a", "b", "c"]:
        db.put(pid, {"name": pid.upper()}, type="Person")
    edge = db.link("a", "b", "knows", {"since": 2020})
    assert edge.type == "_edge"
    assert edge.data["from"] == "a"
    assert edge.data["to"] == "b"
    assert edge.data["label"] == "knows"
    assert edge.data["since"] == 2020
    assert db.get(edge.id).type == "_edge"
    db.link("a", "c", "works_with")
    db.link("c", "a", "knows")

    def nb(node_id: str, **kw: Any) -> set[str]:
        found = db.neighbors(node_id, **kw)
        return {n.id for n in found}

    assert nb("a") == {"b", "c"}
    assert nb("a", label="knows") == {"b"}
    assert nb("a", direction="in") == {"c"}
    assert nb("a", label="knows", direction="in") == {"c"}
    assert nb("a", label="works_with", direction="in") == set()
    assert nb("a", direction="both") == {"b", "c"}
    assert nb("b") == set()
    assert nb("b", direction="in") == {"a"}
    assert nb("c", direction="both") == {"a"}
    # neighbors are the nodes themselves, not the edges
    (b_node,) = db.neighbors("a", label="knows")
    assert b_node.type == "Person"
    assert b_node.data == {"name": "B"}

    assert db.count(type="_edge") == 3
    assert db.types()["_edge"] == 3
    assert db.types()["Person"] == 3

    assert db.unlink("a", "b", "knows") is True
    assert db.unlink("a", "b", "knows") is False
    assert db.unlink("a", "b", "no-such-label") is False
    assert nb("a", label="knows") == set()
    assert nb("b", direction="in") == set()
    assert nb("a") == {"c"}
    assert db.count(type="_edge") == 2

    db.link("a", "b", "knows")
    assert nb("a", label="knows") == {"b"}


ODD_IDS = [" lead", "trail ", "tab\tin", "line\nbreak", "ü/slash?&=#%+", "\x01ctrl"]


def test_odd_ids_and_labels_are_kept_exactly(db: Any) -> None:
    for node_id in ODD_IDS:
        assert db.put(node_id, {"v": node_id}, type="Odd").id == node_id
    assert [db.get(i).data for i in ODD_IDS] == [{"v": i} for i in ODD_IDS]
    assert ids(db.list(type="Odd")) == sorted(ODD_IDS)
    src, dst, label = ODD_IDS[0], ODD_IDS[1], " knows\t"
    db.link(src, dst, label)
    assert ids(db.neighbors(src, label=label)) == [dst]
    assert db.neighbors(src, label=label.strip()) == []
    assert db.shortest_path(src, dst) == [src, dst]
    assert db.unlink(src, dst, label) is True
    assert db.neighbors(src) == []
    rec = Recorder()
    sub = db.subscribe(rec, id=ODD_IDS[2])
    db.put(ODD_IDS[3], {"w": 1})
    db.put(ODD_IDS[2], {"w": 2})
    assert rec.wait_for(lambda xs: len(xs) >= 1)
    sub.cancel()
    assert [ch.id for ch in rec.items] == [ODD_IDS[2]]
    assert [v.data for v in db.history(ODD_IDS[4])] == [{"v": ODD_IDS[4]}]
    assert db.delete(ODD_IDS[5]) is True
    assert db.get(ODD_IDS[5]) is None


# --------------------------------------------------------------------------- subscribe


def test_subscribe_local_changes_with_filters(db: Any) -> None:
    rec_all, rec_id, rec_type = Recorder(), Recorder(), Recorder()
    sub_all = db.subscribe(rec_all)
    sub_id = db.subscribe(rec_id, id="a")
    sub_type = db.subscribe(rec_type, type="Person")

    db.put("b", {"n": 1}, type="City")
    db.put("a", {"n": 1}, type="Person")
    db.delete("a")
    db.put("c", {"n": 1}, type="Person")

    assert rec_all.wait_for(lambda xs: len(xs) >= 4), rec_all.items
    got = [(ch.id, ch.kind) for ch in rec_all.items]
    assert got == [("b", "put"), ("a", "put"), ("a", "delete"), ("c", "put")]
    for ch in rec_all.items:
        assert ch.local is True
        assert ch.origin == db.peer_id
    put_b = rec_all.items[0]
    assert put_b.type == "City"
    assert put_b.node.id == "b"
    assert put_b.node.data == {"n": 1}
    assert rec_all.items[2].node is None

    assert rec_id.wait_for(lambda xs: any(ch.kind == "delete" for ch in xs)), rec_id.items
    assert [(ch.id, ch.kind) for ch in rec_id.items] == [("a", "put"), ("a", "delete")]

    assert rec_type.wait_for(lambda xs: any(ch.id == "c" for ch in xs)), rec_type.items
    puts = [(ch.id, ch.kind) for ch in rec_type.items if ch.kind == "put"]
    assert puts == [("a", "put"), ("c", "put")]
    assert all(ch.id != "b" for ch in rec_type.items)

    # cancel stops delivery; the unfiltered subscriber proves the change was published
    sub_id.cancel()
    sub_type.cancel()
    n_id, n_type = len(rec_id.items), len(rec_type.items)
    db.put("a", {"n": 2}, type="Person")
    assert rec_all.wait_for(lambda xs: len(xs) >= 5)
    assert rec_all.items[4].id == "a"
    assert len(rec_id.items) == n_id
    assert len(rec_type.items) == n_type
    sub_all.cancel()


# --------------------------------------------------------------------------- history / restore


def test_history(db: Any) -> None:
    n1 = db.put("h", {"a": 1}, type="T")
    db.put("h", {"b": 2})
    db.put("h", {"a": None}, type="U")
    db.delete("h")
    n5 = db.put("h", {"c": 3})
    assert n5.version == 5
    assert db.get("h").version == 5

    hist = db.history("h")
    assert [v.version for v in hist] == [1, 2, 3, 4, 5]
    assert all(v.origin == db.peer_id for v in hist)
    for v in hist:
        assert_utc(v.time)
    assert [v.time for v in hist] == sorted(v.time for v in hist)
    assert hist[0].time == n1.time
    assert hist[-1].time == n5.time
    assert [v.deleted for v in hist] == [False, False, False, True, False]
    assert hist[0].data == {"a": 1}
    assert hist[1].data == {"a": 1, "b": 2}
    assert hist[2].data == {"b": 2}
    assert hist[4].data == {"c": 3}
    assert [v.type for v in hist[:3]] == ["T", "T", "U"]


def test_restore_creates_a_new_version(db: Any) -> None:
    db.put("r", {"a": 1}, type="T")
    db.put("r", {"a": 2, "b": 1})
    db.put("r", {"b": None, "c": 3})
    restored = db.restore("r", 1)
    assert restored.data == {"a": 1}
    assert restored.version == 4
    assert db.get("r").data == {"a": 1}
    hist = db.history("r")
    assert [v.version for v in hist] == [1, 2, 3, 4]
    assert hist[3].data == {"a": 1}
    assert [v.data for v in hist[:3]] == [{"a": 1}, {"a": 2, "b": 1}, {"a": 2, "c": 3}]

    again = db.restore("r", 2)
    assert again.data == {"a": 2, "b": 1}
    assert again.version == 5
    assert db.get("r").data == {"a": 2, "b": 1}


def test_restore_resurrects_a_deleted_node(db: Any) -> None:
    db.put("r", {"a": 1}, type="T")
    db.put("r", {"a": 2})
    db.delete("r")
    assert db.get("r") is None
    node = db.restore("r", 2)
    assert node.data == {"a": 2}
    assert node.version == 4
    assert db.get("r").data == {"a": 2}
    assert db.count() == 1


def test_diff_between_two_versions(db: Any) -> None:
    db.put("d", {"a": 1, "b": [1, 2], "gone": "x"}, type="T")
    db.put("d", {"a": 2, "gone": None, "new": {"k": True}})
    changes = db.diff("d", 1, 2)
    assert [(c.field, c.change, c.old, c.new) for c in changes] == [
        ("a", "changed", 1, 2),
        ("gone", "removed", "x", None),
        ("new", "added", None, {"k": True}),
    ]
    assert all(isinstance(c, pl.FieldChange) for c in changes)
    backwards = db.diff("d", 2, 1)
    assert [(c.field, c.change) for c in backwards] == [
        ("a", "changed"),
        ("gone", "added"),
        ("new", "removed"),
    ]
    assert db.diff("d", 2, 2) == []
    with pytest.raises(errors.NotFoundError, match="version 7"):
        db.diff("d", 1, 7)
    with pytest.raises(errors.NotFoundError, match="nope"):
        db.diff("nope", 1, 2)
    with pytest.raises(errors.InvalidDataError, match="integer"):
        db.diff("d", "1", 2)


def test_crdt_state_names_each_fields_write(open_db: Any, tmp_path: Path) -> None:
    a = open_db(":memory:")
    b = open_db(tmp_path / "b")
    a.put("x", {"f": "from-a", "only_a": 1, "dropped": 0}, type="Doc")
    a.put("x", {"dropped": None})
    b.put("x", {"f": "from-b"}, type="Doc")
    b.apply_ops(wire(a.ops_since(b.version_vector())))
    a.apply_ops(wire(b.ops_since(a.version_vector())))
    state = a.crdt_state("x")
    assert state == b.crdt_state("x"), "merged replicas report the same state"
    assert isinstance(state, pl.CrdtState)
    assert (state.id, state.exists, state.type) == ("x", True, "Doc")
    assert state.version_vector == {a.peer_id: 2, b.peer_id: 1}
    fields = {f.field: f for f in state.fields}
    assert [f.field for f in state.fields] == sorted(fields)
    assert fields["only_a"].value == 1
    assert fields["only_a"].origin == a.peer_id
    assert (fields["dropped"].value, fields["dropped"].deleted) == (None, True)
    (conflict,) = a.conflicts("x")
    winner = fields["f"]
    assert (winner.value, winner.origin, winner.hlc) == (
        conflict.winner.value,
        conflict.winner.peer,
        conflict.winner.hlc,
    )
    assert winner.conflicts == 1
    assert fields["only_a"].conflicts == 0
    assert_utc(winner.time)
    assert abs(winner.time - a.get("x").time) < timedelta(seconds=60)
    a.delete("x")
    assert a.crdt_state("x").exists is False
    with pytest.raises(errors.NotFoundError, match="never"):
        a.crdt_state("never")


# --------------------------------------------------------------------------- as_of


def test_as_of_snapshots(db: Any) -> None:
    t0 = datetime.now(UTC)
    a1 = db.put("a", {"v": 1}, type="P")
    b1 = db.put("b", {"v": 10}, type="P")
    t1 = max(a1.time, b1.time)
    wait_clock_past(t1, 0.01)
    mid = t1 + timedelta(seconds=0.004)

    db.put("a", {"v": 2})
    db.delete("b")
    db.put("c", {"v": 100}, type="P")
    assert db.count() == 2

    for at in (mid, mid.timestamp()):
        snap = db.as_of(at)
        assert snap.get("a").data == {"v": 1}
        assert snap.get("b").data == {"v": 10}
        assert snap.get("c") is None
        assert snap.count() == 2
        assert snap.count(type="P") == 2
        assert ids(snap.list()) == ["a", "b"]
        assert ids(snap.list(type="P", limit=1, offset=1)) == ["b"]
        assert snap.types() == {"P": 2}
        res = snap.sql("SELECT count(*) AS n, sum(v) AS s FROM P")
        assert res.column("n")[0].as_py() == 2
        assert res.column("s")[0].as_py() == 11
        assert snap.to_arrow("P").num_rows == 2

    empty = db.as_of(t0 - timedelta(hours=1))
    assert empty.count() == 0
    assert empty.get("a") is None
    assert empty.list() == []

    now = db.as_of(datetime.now(UTC) + timedelta(seconds=1))
    assert now.get("a").data == {"v": 2}
    assert now.get("b") is None
    assert now.count() == 2

    # the live database is unaffected
    assert db.get("a").data == {"v": 2}


def test_as_of_snapshot_is_read_only(db: Any) -> None:
    node = db.put("a", {"v": 1})
    snap = db.as_of(node.time + timedelta(milliseconds=1))
    writes: list[tuple[str, tuple[Any, ...]]] = [
        ("put", ("a", {"v": 2})),
        ("put_many", ([{"id": "z"}],)),
        ("delete", ("a",)),
        ("link", ("a", "a", "self")),
        ("restore", ("a", 1)),
    ]
    for name, args in writes:
        method = getattr(snap, name, None)
        if method is None:
            continue  # not offered at all: writing is impossible
        with pytest.raises(errors.ReadOnlyError):
            method(*args)
    assert db.get("a").data == {"v": 1}
    assert db.get("a").version == 1
    assert db.count() == 1


# --------------------------------------------------------------------------- arrow / pandas / sql


def _people(db: Any) -> None:
    db.put("p2", {"name": "Bob", "age": 25, "score": 2.5, "active": False}, type="Person")
    db.put("p1", {"name": "Ann", "age": 10, "score": 1.0, "active": True}, type="Person")
    db.put("p3", {"name": "Cid", "age": 40, "active": True}, type="Person")
    db.put("p4", {"name": "Dan"}, type="Person")
    db.put("c1", {"name": "Oslo"}, type="City")
    db.put("u1", {"x": [1, 2]})


def test_to_arrow_typed(db: Any) -> None:
    _people(db)
    table = db.to_arrow("Person")
    assert isinstance(table, pa.Table)
    assert table.column_names[:2] == ["id", "time"]
    assert set(table.column_names[2:]) == {"name", "age", "score", "active"}
    schema = table.schema
    assert pa.types.is_string(schema.field("id").type) or pa.types.is_large_string(
        schema.field("id").type
    )
    assert pa.types.is_timestamp(schema.field("time").type)
    assert pa.types.is_string(schema.field("name").type) or pa.types.is_large_string(
        schema.field("name").type
    )
    assert pa.types.is_integer(schema.field("age").type)
    assert pa.types.is_floating(schema.field("score").type)
    assert pa.types.is_boolean(schema.field("active").type)
    rows = sorted(table.to_pylist(), key=lambda r: r["id"])
    assert [r["id"] for r in rows] == ["p1", "p2", "p3", "p4"]
    assert [r["age"] for r in rows] == [10, 25, 40, None]
    assert [r["score"] for r in rows] == [1.0, 2.5, None, None]
    assert [r["active"] for r in rows] == [True, False, True, None]
    assert rows[0]["time"] is not None

    # follows updates and deletes
    db.put("p1", {"age": 11})
    db.delete("p4")
    rows = sorted(db.to_arrow("Person").to_pylist(), key=lambda r: r["id"])
    assert [r["id"] for r in rows] == ["p1", "p2", "p3"]
    assert rows[0]["age"] == 11


def test_to_pandas_typed(db: Any) -> None:
    _people(db)
    db.delete("p4")
    df = db.to_pandas("Person")
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns[:2]) == ["id", "time"]
    assert set(df.columns[2:]) == {"name", "age", "score", "active"}
    assert len(df) == 3
    assert df["age"].dtype.kind == "i"
    assert df["score"].dtype.kind == "f"
    by_id = df.set_index("id")
    assert by_id.loc["p2", "name"] == "Bob"
    assert by_id.loc["p3", "age"] == 40


def test_to_arrow_and_pandas_untyped(db: Any) -> None:
    _people(db)
    table = db.to_arrow()
    assert table.column_names == ["id", "type", "time", "data"]
    assert table.num_rows == db.count() == 6
    rows = {r["id"]: r for r in table.to_pylist()}
    assert rows["u1"]["type"] is None
    assert json.loads(rows["u1"]["data"]) == {"x": [1, 2]}
    assert rows["p1"]["type"] == "Person"
    assert json.loads(rows["p1"]["data"]) == db.get("p1").data
    df = db.to_pandas()
    assert list(df.columns) == ["id", "type", "time", "data"]
    assert sorted(df["id"]) == sorted(rows)


def test_sql(db: Any) -> None:
    _people(db)
    res = db.sql("SELECT avg(age) AS a FROM Person WHERE age > ?", [20])
    assert isinstance(res, pa.Table)
    assert res.column("a")[0].as_py() == pytest.approx(32.5)

    typed = db.sql("SELECT name, age FROM Person WHERE age IS NOT NULL ORDER BY age")
    assert pa.types.is_integer(typed.schema.field("age").type)
    assert typed.to_pylist() == [
        {"name": "Ann", "age": 10},
        {"name": "Bob", "age": 25},
        {"name": "Cid", "age": 40},
    ]
    by_name = db.sql("SELECT id FROM Person WHERE name = ?", ["Bob"])
    assert by_name.column("id").to_pylist() == ["p2"]

    nodes = db.sql("SELECT id, type, data FROM nodes ORDER BY id")
    assert nodes.column("id").to_pylist() == ["c1", "p1", "p2", "p3", "p4", "u1"]
    first = nodes.to_pylist()[0]
    assert first["type"] == "City"
    assert json.loads(first["data"]) == {"name": "Oslo"}

    # the views follow writes
    db.put("p5", {"name": "Eve", "age": 50}, type="Person")
    db.delete("p2")
    res = db.sql("SELECT count(*) AS n, max(age) AS m FROM Person")
    assert res.to_pylist() == [{"n": 4, "m": 50}]


# --------------------------------------------------------------------------- replication


def test_version_vector_ops_since_apply_ops(open_db: Any, tmp_path: Path) -> None:
    a = open_db(":memory:")
    b = open_db(tmp_path / "b")
    a.put("x1", {"n": 1}, type="T", vector=[1, 2])
    a.put("x2", {"n": 2, "drop": True}, type="T")
    a.put("x2", {"drop": None})
    a.put("x3", {"n": 3})
    a.delete("x3")
    a.link("x1", "x2", "rel", {"w": 0.5})

    vv_a = a.version_vector()
    assert isinstance(vv_a, dict)
    assert vv_a[a.peer_id] >= 6
    assert b.version_vector().get(a.peer_id, 0) == 0

    ops = a.ops_since(b.version_vector())
    assert ops
    assert all(isinstance(op, dict) for op in ops)
    assert len(a.ops_since(None)) == len(ops)

    rec = Recorder()
    b.subscribe(rec)
    assert b.apply_ops(wire(ops)) == len(ops)
    for nid in ["x1", "x2"]:
        assert node_key(b.get(nid)) == node_key(a.get(nid))
    assert b.get("x3") is None
    np.testing.assert_array_equal(b.get("x1").vector, np.array([1, 2], dtype=np.float32))
    assert {n.id for n in b.neighbors("x1", label="rel")} == {"x2"}
    assert b.version_vector()[a.peer_id] == a.version_vector()[a.peer_id]
    assert [v.origin for v in b.history("x2")] == [a.peer_id, a.peer_id]
    assert [v.data for v in b.history("x2")] == [v.data for v in a.history("x2")]

    assert rec.wait_for(lambda xs: any(ch.id == "x2" for ch in xs))
    assert all(ch.local is False and ch.origin == a.peer_id for ch in rec.items)

    # duplicates are harmless and nothing is left to send
    assert b.apply_ops(wire(ops)) == 0
    assert a.ops_since(b.version_vector()) == []
    assert b.count() == a.count()

    # the other direction
    b.put("y1", {"from_b": True})
    b.put("x1", {"n": 10})
    back = b.ops_since(a.version_vector())
    assert len(back) == 2
    assert a.apply_ops(wire(back)) == 2
    assert a.get("y1").data == {"from_b": True}
    assert a.get("x1").data == {"n": 10}
    assert a.version_vector() == b.version_vector()
    assert node_key(a.get("x1")) == node_key(b.get("x1"))
    # ops_since(None) includes everything, relayed ops too
    assert len(a.ops_since(None)) == len(ops) + 2


def test_apply_ops_in_any_order(open_db: Any) -> None:
    a = open_db(":memory:")
    a.put("x", {"f": 1, "g": 1}, type="T")
    a.put("x", {"f": 2})
    a.put("x", {"g": None})
    a.put("y", {"v": 1})
    a.delete("y")
    a.put("y", {"w": 2})
    a.put("z", {"v": 1}, type="T")
    a.delete("z")
    ops = a.ops_since(None)

    def state(d: Any) -> dict[str, Any]:
        return {nid: None if d.get(nid) is None else d.get(nid).data for nid in "xyz"}

    expected = state(a)
    assert expected == {"x": {"f": 2}, "y": {"w": 2}, "z": None}

    rev = open_db(":memory:")
    assert rev.apply_ops(wire(list(reversed(ops)))) == len(ops)
    assert state(rev) == expected
    assert rev.version_vector() == a.version_vector()

    halves = open_db(":memory:")
    mid = len(ops) // 2
    applied = halves.apply_ops(wire(ops[mid:])) + halves.apply_ops(wire(ops[:mid]))
    assert applied == len(ops)
    assert state(halves) == expected
    assert halves.apply_ops(wire(ops + ops)) == 0
    assert state(halves) == expected
    assert halves.version_vector() == a.version_vector()


def test_conflicts_recorded_and_resolved(open_db: Any, tmp_path: Path) -> None:
    a = open_db(":memory:")
    b = open_db(tmp_path / "b")
    a.put("x", {"f": "from-a", "only_a": 1}, type="Doc")
    b.put("x", {"f": "from-b"}, type="Doc")
    b.apply_ops(wire(a.ops_since(b.version_vector())))
    a.apply_ops(wire(b.ops_since(a.version_vector())))
    assert a.get("x").data == b.get("x").data
    current = a.get("x").data["f"]
    assert current in {"from-a", "from-b"}
    assert a.get("x").data["only_a"] == 1

    for d in (a, b):
        conflicts = d.conflicts()
        assert len(conflicts) == 1, conflicts
        (c,) = conflicts
        assert c.node_id == "x"
        assert c.field == "f"
        assert c.winner.value == current
        assert {c.winner.value, c.loser.value} == {"from-a", "from-b"}
        assert {c.winner.peer, c.loser.peer} == {a.peer_id, b.peer_id}
        # LWW over the total order (hlc, peer id): the winner is the later write
        assert (c.winner.hlc, c.winner.peer) > (c.loser.hlc, c.loser.peer)
        assert d.conflicts(id="x") == conflicts
        assert d.conflicts(id="other") == []

    (cb,) = b.conflicts()
    loser = cb.loser.value
    node = b.resolve_conflict(cb.id, choose="loser")
    assert node.data["f"] == loser
    assert b.get("x").data["f"] == loser
    # the resolution is an ordinary write that replicates
    assert a.apply_ops(wire(b.ops_since(a.version_vector()))) >= 1
    assert a.get("x").data["f"] == loser


# --------------------------------------------------------------------------- instrumentation


@pytest.mark.embedded_only(
    "instrumentation events and listeners are in-process; a server's show in its profiler"
)
def test_instrumentation_events(db: Any) -> None:
    db.put("i", {"v": 1}, type="T")
    db.get("i")
    db.sql("SELECT count(*) FROM T")
    events = db.instrumentation.events()
    assert events
    for op in ("put", "get", "sql"):
        matching = [e for e in events if op in e.name.lower()]
        assert matching, f"no {op!r} event in {[e.name for e in events]}"
        for e in matching:
            assert isinstance(e.duration_s, float)
            assert 0 <= e.duration_s < 30
            assert e.time is not None
    assert len(db.instrumentation.events(limit=1)) == 1

    rec, witness = Recorder(), Recorder()
    handle = db.instrumentation.listen(rec)
    keep = db.instrumentation.listen(witness)
    db.put("j", {"v": 2})
    assert rec.wait_for(lambda xs: any("put" in e.name.lower() for e in xs))
    handle.cancel()
    seen = len(rec.items)
    before_witness = len(witness.items)
    db.put("k", {"v": 3})
    assert witness.wait_for(lambda xs: any("put" in e.name.lower() for e in xs[before_witness:])), (
        witness.items
    )
    assert len(rec.items) == seen
    keep.cancel()


# --------------------------------------------------------------------------- lifecycle


def test_context_manager_closes(open_db: Any, disk_db_path: Path) -> None:
    with open_db(disk_db_path) as d:
        assert d.closed is False
        d.put("a", {"v": 1}, type="T")
        db_ref = d
    assert db_ref.closed is True
    with open_db(disk_db_path) as d2:
        assert d2.get("a").data == {"v": 1}
    assert d2.closed is True

    with open_db(":memory:") as m:
        m.put("a", {})
    assert m.closed is True


def test_close_sets_closed(db: Any) -> None:
    db.put("a", {})
    db.close()
    assert db.closed is True


@pytest.mark.parametrize("fsync", ["always", "interval", "off"])
def test_fsync_policies_persist_on_close(open_db: Any, disk_db_path: Path, fsync: str) -> None:
    d = open_db(disk_db_path, fsync=fsync)
    for i in range(20):
        d.put(f"n{i:02d}", {"i": i}, type="T")
    d.close()
    d2 = open_db(disk_db_path, fsync=fsync)
    assert d2.count(type="T") == 20
    assert d2.get("n07").data == {"i": 7}


def test_flush_and_compact_keep_state(db: Any) -> None:
    for i in range(30):
        db.put(f"n{i:02d}", {"i": i, "tag": "x"}, type="T")
    for i in range(0, 30, 3):
        db.put(f"n{i:02d}", {"tag": None, "i": -i})
    db.delete("n05")
    before = [node_key(n) for n in db.list(limit=1000)]
    hist_before = [(v.version, v.data, v.deleted) for v in db.history("n03")]
    db.flush()
    assert [node_key(n) for n in db.list(limit=1000)] == before
    db.compact()
    assert [node_key(n) for n in db.list(limit=1000)] == before
    assert [(v.version, v.data, v.deleted) for v in db.history("n03")] == hist_before
    assert len(db.history("n05")) == 2


# --------------------------------------------------------------------------- persistence

HISTORY_IDS = ["p1", "p2", "gone", "t1", "shared", "i007", "c1"]


def populate(d: Any, peer: Any) -> None:
    d.put("p1", {"name": "Ann", "age": 31}, type="Person", vector=[1, 0, 0])
    d.put("p2", {"name": "Bob", "age": 40}, type="Person", vector=[0, 1, 0])
    d.put("p2", {"age": 41, "nick": "B"})
    d.put("c1", {"name": "Oslo"}, type="City")
    d.put("u1", {"free": [1, {"x": "y"}]})
    d.put("gone", {"x": 1}, type="City")
    d.delete("gone")
    d.put("t1", {"v": 1}, type="A")
    d.put("t1", {"v": 2}, type="B")
    d.link("p1", "c1", "lives_in", {"since": 2020})
    d.link("p2", "c1", "visited")
    d.link("p1", "p2", "knows")
    d.unlink("p1", "p2", "knows")
    d.put_many([{"id": f"i{k:03d}", "k": k} for k in range(50)], type="Item")
    d.restore("p2", 1)
    # a concurrent write from another peer -> one recorded conflict
    peer.put("shared", {"f": "peer", "g": 1}, type="Doc")
    d.put("shared", {"f": "local"}, type="Doc")
    d.apply_ops(wire(peer.ops_since(d.version_vector())))


def capture(d: Any) -> dict[str, Any]:
    return {
        "peer": d.peer_id,
        "count": d.count(),
        "types": d.types(),
        "vv": d.version_vector(),
        "nodes": [node_key(n) for n in d.list(limit=100_000)],
        "by_type": {t: [node_key(n) for n in d.list(type=t, limit=100_000)] for t in d.types()},
        "get": {i: node_key(d.get(i)) for i in HISTORY_IDS},
        "history": {
            i: [(v.version, v.time, v.origin, v.type, v.data, v.deleted) for v in d.history(i)]
            for i in HISTORY_IDS
        },
        "neighbors": {
            i: sorted(n.id for n in d.neighbors(i, direction="both")) for i in ["p1", "p2", "c1"]
        },
        "edges": sorted(
            (n.data["from"], n.data["to"], n.data["label"]) for n in d.list(type="_edge")
        ),
        "conflicts": sorted(
            (c.id, c.node_id, c.field, c.winner.value, c.winner.peer, c.loser.value, c.loser.peer)
            for c in d.conflicts()
        ),
        "sql": d.sql("SELECT id, name, age FROM Person ORDER BY id").to_pylist(),
    }


@pytest.mark.parametrize("mode", ["close", "flush", "compact", "reopen_compact_reopen"])
def test_persistence_across_reopen(open_db: Any, disk_db_path: Path, mode: str) -> None:
    peer = open_db(":memory:")
    d = open_db(disk_db_path)
    populate(d, peer)
    assert len(d.conflicts()) == 1
    assert d.types()["_edge"] == 2

    if mode == "flush":
        d.flush()
        d.put("after_flush", {"late": True})
    elif mode == "compact":
        d.flush()
        d.put("after_flush", {"late": True})
        d.compact()
    expected = capture(d)
    d.close()

    d = open_db(disk_db_path)
    assert d.recovery.torn_bytes == 0
    assert isinstance(d.recovery.replayed_records, int)
    if mode == "reopen_compact_reopen":
        assert capture(d) == expected
        d.compact()
        assert capture(d) == expected
        d.close()
        d = open_db(disk_db_path)
    got = capture(d)
    for key in expected:
        assert got[key] == expected[key], key
    if mode in ("flush", "compact"):
        assert d.get("after_flush").data == {"late": True}

    # the vector space dimension survives
    with pytest.raises(errors.VectorDimensionError):
        d.put("p9", {}, type="Person", vector=[1.0, 2.0])

    # writing continues where it stopped: versions and the op sequence go on
    p1_version = d.get("p1").version
    own_seq = d.version_vector()[d.peer_id]
    assert d.put("p1", {"age": 32}).version == p1_version + 1
    assert d.version_vector()[d.peer_id] == own_seq + 1
    assert peer.apply_ops(wire(d.ops_since(peer.version_vector()))) >= 1
    assert peer.get("p1").data["age"] == 32

    # conflicts can still be resolved after a reopen
    (c,) = d.conflicts()
    node = d.resolve_conflict(c.id, choose="loser")
    assert node.data["f"] == c.loser.value
