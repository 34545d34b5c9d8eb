"""Indexes follow every write: updates, deletes, ops replicated from another replica,
crash + reopen (a SIGKILLed writer), saved-index reuse, and compaction."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pluresdb_lab import errors

DIM = 16


def vec(seed: int) -> list[float]:
    return np.random.default_rng(seed).normal(size=DIM).astype(np.float32).tolist()


def fill(db: Any, n: int, start: int = 0) -> None:
    db.put_many(
        [
            {
                "id": f"d{i}",
                "title": f"document {i} about {'cats' if i % 2 else 'dogs'}",
                "rank": i,
                "v": vec(i),
            }
            for i in range(start, start + n)
        ],
        type="Doc",
        vector_field="v",
    )


def with_indexes(db: Any) -> Any:
    db.create_index("vector", type="Doc", name="vec", space="l2")
    db.create_index("text", type="Doc", name="words", fields=["title"])
    db.create_index("numeric", type="Doc", name="rank", fields="rank")
    return db


def nearest(db: Any, seed: int) -> str:
    return str(db.vector_search(vec(seed), 1)[0].id)


def ranks(db: Any, low: int) -> list[str]:
    spec = {"type": "Doc", "filter": {"field": "rank", "op": "gte", "value": low}}
    return sorted(db.query(spec).column("id").to_pylist())


def test_updates_and_deletes_are_followed(db: Any) -> None:
    fill(with_indexes(db), 50)
    db.put("d3", {"title": "a zebra crossing", "rank": 1000}, vector=vec(999))
    assert nearest(db, 999) == "d3"
    assert [h.id for h in db.search("zebra").hits] == ["d3"]
    assert ranks(db, 1000) == ["d3"]
    assert (
        db.explain({"type": "Doc", "filter": {"field": "rank", "op": "gte", "value": 1000}})[
            "index"
        ]
        == "rank"
    )
    db.delete("d3")
    assert nearest(db, 999) != "d3"
    assert db.search("zebra").total == 0
    assert ranks(db, 1000) == []
    db.put("d3", {"title": "zebra again", "rank": 5}, vector=vec(999))
    assert nearest(db, 999) == "d3"
    assert {i["name"]: i["entries"] for i in db.indexes()} == {"vec": 50, "words": 50, "rank": 50}


def test_replicated_ops_are_indexed(open_db: Callable[..., Any]) -> None:
    a, b = open_db(), with_indexes(open_db())
    fill(a, 5000)  # a bulk batch: replicated as one op of new rows
    a.put("d7", {"title": "replicated zebra"}, vector=vec(12345))
    a.delete("d8")
    b.apply_ops(a.ops_since(b.version_vector()))
    assert nearest(b, 12345) == "d7"
    assert [h.id for h in b.search("zebra").hits] == ["d7"]
    assert b.search("document").total == 4998  # d7 retitled, d8 deleted
    assert len(ranks(b, 0)) == 4999
    assert nearest(b, 8) != "d8"


def test_saved_vector_index_is_reused_when_nothing_changed(
    open_db: Callable[..., Any], tmp_path: Path
) -> None:
    db = with_indexes(open_db(tmp_path / "db"))
    fill(db, 300)
    before = [h.id for h in db.vector_search(vec(5), 5)]
    db.close()
    again = open_db(tmp_path / "db")
    saved = {i["name"]: i for i in again.indexes()}
    assert saved["vec"]["built"]  # loaded from its files, not rebuilt
    assert saved["vec"]["params"]["ef"] == 64
    assert [h.id for h in again.vector_search(vec(5), 5)] == before
    again.put("new", {"title": "fresh"}, type="Doc", vector=vec(777))
    assert nearest(again, 777) == "new"
    again.drop_index("vec")
    assert not list((tmp_path / "db" / "indexes").glob("vec.*"))


CHILD = r"""
import sys, json
import numpy as np
import pluresdb_lab as pl
db = pl.connect(sys.argv[1], fsync="always")
for i in range(int(sys.argv[2]), int(sys.argv[3])):
    v = np.random.default_rng(i).normal(size=16).astype(np.float32)
    db.put(f"d{i}", {"title": f"crash survivor {i}", "rank": i}, type="Doc", vector=v)
    print(i, flush=True)
db.delete("d0")
print("deleted", flush=True)
sys.stdin.read()
"""


def test_crash_then_reopen_indexes_every_acknowledged_write(
    open_db: Callable[..., Any], tmp_path: Path
) -> None:
    folder = tmp_path / "db"
    db = with_indexes(open_db(folder))
    fill(db, 100)
    db.vector_search(vec(1), 1)
    db.close()  # saves the vector index as of these 100 nodes
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(folder), "100", "140"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    acknowledged = [child.stdout.readline().strip() for _ in range(41)]
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert acknowledged[-1] == "deleted"
    db = open_db(folder)
    for i in range(100, 140):
        assert nearest(db, i) == f"d{i}"
    assert nearest(db, 0) != "d0"
    assert db.search('"crash survivor"').total == 40
    assert ranks(db, 100) == sorted(f"d{i}" for i in range(100, 140))
    assert "d0" not in ranks(db, 0)


def test_compaction_keeps_indexes_consistent(open_db: Callable[..., Any], tmp_path: Path) -> None:
    db = with_indexes(open_db(tmp_path / "db"))
    fill(db, 200)
    for i in range(0, 200, 3):
        db.put(f"d{i}", {"rank": -i}, vector=vec(10_000 + i))
    for i in range(1, 200, 7):
        db.delete(f"d{i}")
    db.compact()
    deleted = {f"d{i}" for i in range(1, 200, 7)}
    for i in range(0, 200, 3):
        if f"d{i}" not in deleted:
            assert nearest(db, 10_000 + i) == f"d{i}"
    assert not deleted & set(ranks(db, -1000))
    assert db.search("document").total == 200 - len(deleted)
    db.close()
    db = open_db(tmp_path / "db")
    assert nearest(db, 10_000 + 3) == "d3"
    assert db.search("document").total == 200 - len(deleted)


def test_drop_index_and_stats(db: Any) -> None:
    fill(with_indexes(db), 20)
    db.vector_search(vec(1), 3)
    stats = {i["name"]: i for i in db.indexes()}["vec"]
    assert stats["entries"] == 20
    assert stats["queries"] == 1
    assert stats["latency_p50_ms"] is not None
    assert stats["latency_p95_ms"] is not None
    assert stats["memory_bytes"] > 0
    assert stats["build_seconds"] >= 0
    db.drop_index("vec")
    with pytest.raises(errors.IndexNotFoundError, match="vector index"):
        db.vector_search(vec(1), 3)
    with pytest.raises(errors.IndexNotFoundError, match="vec"):
        db.drop_index("vec")
