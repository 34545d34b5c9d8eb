"""RemoteDatabase against a `pluresdb serve` subprocess: the engine API, over HTTP."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import pluresdb_lab as pl
from pluresdb_lab import errors
from pluresdb_lab._database import Database
from pluresdb_lab.client import RemoteDatabase
from tests.server.conftest import ALLOWED, TOKEN, wait_for


@pytest.fixture
def db(serve_url: str) -> Iterator[RemoteDatabase]:
    remote = pl.connect(serve_url, token=TOKEN)
    assert isinstance(remote, RemoteDatabase)
    with remote:
        yield remote


def test_put_get_delete_and_errors(db: RemoteDatabase) -> None:
    node = db.put("p/1 ü?", {"x": 1, "nested": {"a": [1, 2]}}, type="Put", vector=[1.0, 2.0])
    assert (node.id, node.type, node.data, node.version) == (
        "p/1 ü?",
        "Put",
        {"x": 1, "nested": {"a": [1, 2]}},
        1,
    )
    assert node.vector is not None
    assert node.vector.dtype == np.float32
    assert node.time is not None
    assert node.time.tzinfo is not None
    assert db.get("p/1 ü?") == node
    assert db.put("p/1 ü?", {"x": None}).data == {"nested": {"a": [1, 2]}}
    assert db.get("absent") is None
    assert db.get_many(["p/1 ü?", "absent"])[1] is None
    assert db.delete("p/1 ü?") is True
    assert db.delete("p/1 ü?") is False
    with pytest.raises(errors.InvalidIdError):
        db.put("", {})
    with pytest.raises(errors.ReservedNameError):
        db.put("p2", {"_x": 1})
    with pytest.raises(errors.InvalidDataError):
        db.put("p2", {"x": float("nan")})
    with pytest.raises(errors.VectorDimensionError):
        db.put("p3", {}, type="Put", vector=[1.0, 2.0, 3.0])
    with pytest.raises(errors.NotFoundError):
        db.history("never")
    assert db.get("p2") is None
    assert db.get("p3") is None


def test_batches_list_count_types_tables(db: RemoteDatabase) -> None:
    assert db.put_many([{"id": f"b{i}", "v": i} for i in range(5)], type="Batch") == 5
    frame = pd.DataFrame({"id": ["f1", "f2"], "v": [10, 20]})
    assert db.put_many(frame, type="Frame") == 2
    table = pa.table({"key": [f"a{i}" for i in range(1000)], "v": list(range(1000))})
    assert db.put_many(table, type="Arrow", id_field="key") == 1000
    assert db.count("Batch") == 5
    assert db.count("Arrow") == 1000
    assert [n.id for n in db.list("Batch", limit=2, offset=1)] == ["b1", "b2"]
    types = db.types()
    assert (types["Batch"], types["Frame"], types["Arrow"]) == (5, 2, 1000)
    back = db.to_arrow("Arrow")
    assert back.num_rows == 1000
    assert sorted(back.column("v").to_pylist()) == list(range(1000))
    assert list(db.to_pandas("Frame")["v"]) == [10, 20]
    with pytest.raises(errors.InvalidDataError):
        db.put_many([{"id": "d"}, {"id": "d"}], type="Batch")
    result = db.sql("SELECT sum(v) AS s FROM Batch WHERE v > ?", [1])
    assert result.to_pylist() == [{"s": 9}]
    with pytest.raises(errors.InvalidDataError):
        db.sql("SELEKT")


def test_edges_history_restore_as_of(db: RemoteDatabase) -> None:
    db.put("h", {"v": 1}, type="Hist")
    between = datetime.now(UTC)
    wait_for(lambda: datetime.now(UTC) > between, "the clock to move")
    db.put("h", {"v": 2})
    db.put("h2", {}, type="Hist")
    edge = db.link("h", "h2", "next", {"w": 1})
    assert edge.is_edge
    assert edge.data == {"from": "h", "to": "h2", "label": "next", "w": 1}
    assert [n.id for n in db.neighbors("h")] == ["h2"]
    assert [n.id for n in db.neighbors("h2", direction="in")] == ["h"]
    with pytest.raises(errors.NotFoundError):
        db.link("h", "nowhere", "next")
    assert db.unlink("h", "h2", "next") is True
    assert db.neighbors("h") == []
    assert [v.data for v in db.history("h")] == [{"v": 1}, {"v": 2}]
    assert db.restore("h", 1).data == {"v": 1}
    with pytest.raises(errors.NotFoundError):
        db.restore("h", 99)
    then = db.as_of(between)
    assert then.get("h").data == {"v": 1}  # type: ignore[union-attr]
    assert then.get("h2") is None
    assert then.count("Hist") == 1
    assert then.types()["Hist"] == 1
    assert [n.id for n in then.list("Hist")] == ["h"]
    assert then.sql("SELECT count(*) AS n FROM Hist").to_pylist() == [{"n": 1}]
    assert then.to_arrow("Hist").num_rows == 1
    with pytest.raises(errors.ReadOnlyError):
        then.put("h", {"v": 3})


def test_replication_and_conflicts(db: RemoteDatabase) -> None:
    local = Database(None)
    try:
        db.put("c", {"f": "server"}, type="Conf")
        assert local.apply_ops(db.ops_since()) >= 1
        db.put("c", {"f": "server again"})
        local.put("c", {"f": "local"})
        applied = db.apply_ops(local.ops_since(db.version_vector()))
        assert applied == 1
        assert db.version_vector()[local.peer_id] == 1
        assert local.apply_ops(db.ops_since(local.version_vector())) >= 1
        assert local.get("c").data == db.get("c").data  # type: ignore[union-attr]
    finally:
        local.close()
    found = db.conflicts("c")
    assert len(found) == 1
    assert found[0] in db.conflicts()
    chosen = db.resolve_conflict(found[0].id, "loser")
    assert chosen.data["f"] == found[0].loser.value
    with pytest.raises(errors.InvalidOpError):
        db.apply_ops([{"o": "bad"}])
    with pytest.raises(errors.NotFoundError):
        db.resolve_conflict("no-such-conflict")


def test_subscribe_streams_changes(db: RemoteDatabase) -> None:
    seen: list[pl.Change] = []
    arrived = threading.Event()

    def got(change: pl.Change) -> None:
        seen.append(change)
        arrived.set()

    subscription = db.subscribe(got, type="Feed")
    try:
        db.put("other", {"x": 1}, type="NotFeed")
        db.put("fed", {"x": 1}, type="Feed")
        assert arrived.wait(20)
    finally:
        subscription.cancel()
    assert [(c.id, c.kind, c.local) for c in seen] == [("fed", "put", True)]
    assert seen[0].node is not None
    assert seen[0].node.data == {"x": 1}


def test_storage_backup_import_export(db: RemoteDatabase, serve_folder: Path) -> None:
    allowed = serve_folder / ALLOWED  # the server's --allow-path folder
    db.put_many([{"id": f"s{i}", "v": i} for i in range(20)], type="Store")
    db.flush()
    stats = db.storage_stats()
    assert stats.nodes >= 20
    assert stats.segments >= 1
    assert stats.levels
    report = db.compact()
    assert report.segments_after >= 1
    backup = db.backup(allowed / "backups")
    assert backup.kind == "full"
    assert backup.path.exists()
    assert [b.id for b in db.backups(allowed / "backups")] == [backup.id]
    assert pl.verify_backup(backup.path).ok
    out = allowed / "store.parquet"
    assert db.export(out, type="Store") == 20
    assert db.import_file(out, type="Copy", id_field="id") == 20
    assert db.count("Copy") == 20
    with pytest.raises(errors.InvalidDataError):
        db.compact(progress=lambda done, total: True)


def test_auth_and_closed(serve_url: str) -> None:
    with pytest.raises(errors.RemoteError):
        RemoteDatabase(serve_url)
    with pytest.raises(errors.RemoteError):
        RemoteDatabase(serve_url, token="wrong")
    remote = RemoteDatabase(serve_url, token=TOKEN)
    remote.close()
    remote.close()
    with pytest.raises(errors.DatabaseClosedError):
        remote.count()
