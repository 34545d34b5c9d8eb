"""The Storage & Indexes panel's requests against real databases: a folder, memory, two
peers syncing, and a RemoteDatabase talking to a real server on 127.0.0.1."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pluresdb_lab as pl
from pluresdb_lab import widgets
from pluresdb_lab._database import Database
from pluresdb_lab.errors import BackupError
from pluresdb_lab.server.standalone import Background
from pluresdb_lab.widgets import StorageIndexes
from tests.widgets.requests import ask, ok, poll, refused

TOKEN = "storage-panel-token"
MESH_SECRET = "storage-panel-mesh"
SERVER_ROOT = "server-root"  # the served database's folders; the panel's kernel is elsewhere


def write_rounds(db: Any, nodes: int = 40, rounds: int = 3) -> None:
    """`rounds` versions of each node, one flush (one L0 segment) per round."""
    for r in range(rounds):
        db.put_many(
            [
                {"id": f"n{i:03d}", "round": r, "price": i * 1.5, "name": f"item {i}"}
                for i in range(nodes)
            ],
            type="Item",
        )
        db.flush()


def stored(panel: StorageIndexes) -> dict[str, Any]:
    """The stats that only the database changes (free disk space moves with other programs)."""
    stats = ok(panel, "stats")
    del stats["free_bytes"]
    return dict(stats)


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


@pytest.fixture
def db(tmp_path: Path) -> Iterator[pl.Database]:
    database = pl.connect(tmp_path / "db", auto_compact=False, fsync="off")
    yield database
    database.close()


@pytest.fixture
def panel(db: pl.Database) -> Iterator[StorageIndexes]:
    made = StorageIndexes(db)
    yield made
    made.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Background]:
    """The handlers of `pluresdb serve` on 127.0.0.1, serving SERVER_ROOT/served.

    REST paths must lie in the database folder or an allowed one: the server allows the
    panel's default backup folder beside the database (always) and SERVER_ROOT/restored.
    """
    root = tmp_path / SERVER_ROOT
    served = Database(root / "served", auto_compact=False, fsync="off")
    running = Background(served, token=TOKEN, allowed_paths=[root / "restored"])
    yield running
    running.close()
    served.close()


@pytest.fixture
def remote(server: Background) -> Iterator[Any]:
    """A RemoteDatabase talking to `server`."""
    client = pl.connect(server.url, token=TOKEN)
    yield client
    client.close()


# -- storage --------------------------------------------------------------------------


def test_stats_are_the_databases_own_measurements(db: pl.Database, panel: StorageIndexes) -> None:
    write_rounds(db, nodes=40, rounds=2)
    stats = ok(panel, "stats")
    assert stats["nodes"] == 40
    assert stats["keys"] == 3  # round, price, name
    assert stats["in_memory"] is False
    assert stats["segments"] == 2
    segment_bytes = sum(f.stat().st_size for f in db.path.glob("seg-*"))
    assert stats["levels"] == [{"level": 0, "segments": 2, "bytes": segment_bytes, "rows": 80}]
    assert stats["total_bytes"] == folder_bytes(db.path)
    assert (
        stats["used_bytes"] + stats["superseded_bytes"]
        == stats["levels"][0]["bytes"] + stats["wal_bytes"]
    )
    assert stats["free_bytes"] > 0


def test_compaction_reduces_the_segments_reported(db: pl.Database, panel: StorageIndexes) -> None:
    write_rounds(db)
    assert ok(panel, "stats")["segments"] == 3
    steps: list[tuple[int, int]] = []
    reply = ask(panel, "compact", lambda done, total: steps.append((done, total)) is None)
    assert reply["ok"], reply
    assert reply["result"]["segments_before"] == 3
    assert reply["result"]["segments_after"] == 1
    after = ok(panel, "stats")
    assert after["segments"] == 1
    assert after["compactions"] == 1
    assert after["nodes"] == 40
    assert steps, "compaction reported progress"
    assert steps[-1][0] == steps[-1][1] == 120  # every row of the three segments
    assert [d for d, _ in steps] == sorted(d for d, _ in steps)


def test_merging_one_level_moves_it_down(db: pl.Database, panel: StorageIndexes) -> None:
    write_rounds(db, rounds=2)
    ok(panel, "compact", level=0)
    levels = ok(panel, "stats")["levels"]
    assert [(lv["level"], lv["segments"]) for lv in levels] == [(1, 1)]


def test_cancelling_a_compaction_leaves_stats_unchanged(
    db: pl.Database, panel: StorageIndexes
) -> None:
    write_rounds(db)
    before = ok(panel, "stats")
    files = sorted(p.name for p in db.path.glob("seg-*"))
    reply = ask(panel, "compact", lambda done, total: False)
    assert not reply["ok"]
    assert reply["error"]["type"] == "OperationCancelled"
    after = ok(panel, "stats")
    for key in ("segments", "levels", "used_bytes", "superseded_bytes", "nodes", "compactions"):
        assert after[key] == before[key], key
    assert sorted(p.name for p in db.path.glob("seg-*")) == files


class CancellingView(StorageIndexes):
    """The panel with its outgoing messages kept; the first progress message of a job
    is answered with a cancel, as a user pressing Cancel on the progress bar."""

    def __init__(self, db: Any) -> None:
        self.sent: list[dict[str, Any]] = []
        self.replied = threading.Event()
        super().__init__(db)

    def send(self, content: Any, buffers: Any = None) -> None:
        self.sent.append(content)
        if content.get("kind") == "progress":
            self._receive(self, {"kind": "cancel", "id": content["id"]}, [])
        if content.get("kind") == "response":
            self.replied.set()


def test_cancel_from_the_view_stops_the_compaction(db: pl.Database) -> None:
    write_rounds(db)
    view = CancellingView(db)
    try:
        before = stored(view)
        view._receive(view, {"kind": "request", "id": "c1", "method": "compact", "params": {}}, [])
        poll(view.replied.is_set, "the compaction's reply")
        (reply,) = [m for m in view.sent if m.get("kind") == "response"]
        assert reply["id"] == "c1"
        assert reply["error"]["type"] == "OperationCancelled"
        assert [m["id"] for m in view.sent if m.get("kind") == "progress"] == ["c1"]
        assert stored(view) == before
    finally:
        view.close()


# -- indexes --------------------------------------------------------------------------


def test_create_query_and_drop_an_index(db: pl.Database, panel: StorageIndexes) -> None:
    write_rounds(db, rounds=1)
    assert ok(panel, "indexes") == []
    assert ok(panel, "types") == ["Item"]
    made = ok(panel, "create_index", kind="numeric", type="Item", fields=["price"])
    assert made["name"] == "numeric_Item_price"
    assert made["entries"] == 40
    assert made["build_seconds"] > 0
    spec = {"type": "Item", "filter": {"field": "price", "op": "gte", "value": 30}}
    assert db.explain(spec)["index"] == "numeric_Item_price"
    assert db.query(spec).num_rows == 20
    (listed,) = ok(panel, "indexes")
    assert listed["entries"] == 40
    assert listed["memory_bytes"] > 0
    assert listed["queries"] >= 1
    assert listed["latency_p50_ms"] is not None
    assert listed["latency_p95_ms"] >= listed["latency_p50_ms"]
    assert ok(panel, "drop_index", name="numeric_Item_price") is None
    assert ok(panel, "indexes") == []
    assert db.explain(spec)["access"] == "scan"


def test_vector_index_takes_metric_and_dim(db: pl.Database, panel: StorageIndexes) -> None:
    db.put_many([{"id": f"d{i}", "title": f"document number {i}"} for i in range(30)], type="Doc")
    made = ok(
        panel,
        "create_index",
        kind="vector",
        name="docs",
        type="Doc",
        fields=["title"],
        params={"space": "l2", "dim": 32},
    )
    assert made["params"]["space"] == "l2"
    assert made["params"]["dim"] == 32
    assert made["entries"] == 30


def test_cancelled_index_build_is_dropped(db: pl.Database, panel: StorageIndexes) -> None:
    write_rounds(db, rounds=1)
    reply = ask(
        panel,
        "create_index",
        lambda done, total: done < total,
        kind="numeric",
        type="Item",
        fields=["price"],
    )
    assert reply["error"]["type"] == "OperationCancelled"
    assert ok(panel, "indexes") == []
    assert db.indexes() == []


# -- backups and restore --------------------------------------------------------------


def test_backup_dir_defaults_to_a_sibling_folder(db: pl.Database, panel: StorageIndexes) -> None:
    assert panel.backup_dir == str(db.path.parent.resolve() / "db-backups")
    assert ok(panel, "backups") == []


def test_a_backup_appears_in_the_list(db: pl.Database, panel: StorageIndexes) -> None:
    write_rounds(db)
    steps: list[tuple[int, int]] = []
    reply = ask(panel, "backup", lambda done, total: steps.append((done, total)) is None)
    assert reply["ok"], reply
    full = reply["result"]
    assert steps
    assert steps[-1][0] == steps[-1][1] > 0
    (listed,) = ok(panel, "backups")
    assert listed["id"] == full["id"]
    assert listed["kind"] == "full"
    assert listed["status"] == "complete"
    assert listed["nodes"] == 40
    assert (
        listed["size"]
        == folder_bytes(Path(listed["path"]))
        - (Path(listed["path"]) / "backup.json").stat().st_size
    )
    db.put("extra", {"round": 9}, type="Item")
    incremental = ok(panel, "backup", incremental=True)
    rows = ok(panel, "backups")
    assert [r["id"] for r in rows] == [full["id"], incremental["id"]]
    assert rows[1]["kind"] == "incremental"
    assert rows[1]["base"] == full["id"]
    assert rows[1]["size"] < rows[0]["size"]


def test_cancelled_backup_leaves_no_backup(db: pl.Database, panel: StorageIndexes) -> None:
    write_rounds(db)
    reply = ask(panel, "backup", lambda done, total: False)
    assert reply["error"]["type"] == "OperationCancelled"
    assert ok(panel, "backups") == []
    assert list(Path(panel.backup_dir).iterdir()) == []


def test_restore_writes_a_new_folder_and_leaves_the_database_open(
    db: pl.Database, panel: StorageIndexes, tmp_path: Path
) -> None:
    write_rounds(db)
    backup = ok(panel, "backup")
    db.put("after-backup", {"round": 5}, type="Item")
    (row,) = ok(panel, "backups")
    assert row["restore_into"] == str(db.path.parent / f"db-restored-{backup['id']}")
    steps: list[tuple[int, int]] = []
    into = tmp_path / "restored"
    reply = ask(
        panel,
        "restore",
        lambda done, total: steps.append((done, total)) is None,
        backup_id=backup["id"],
        into=str(into),
    )
    assert reply["ok"], reply
    assert reply["result"] == {"path": str(into), "backup": backup["id"], "nodes": 40}
    assert steps
    assert steps[-1][0] == steps[-1][1] > 0
    with pl.connect(into) as restored:
        assert restored.count() == 40
        assert restored.get("after-backup") is None
        assert restored.peer_id != db.peer_id
    assert db.get("after-backup") is not None  # the open database is untouched and usable
    db.put("still-writable", {"round": 6}, type="Item")
    assert db.count() == 42


def test_restore_refuses_every_place_that_holds_data(
    db: pl.Database, panel: StorageIndexes, tmp_path: Path
) -> None:
    write_rounds(db, rounds=1)
    backup = ok(panel, "backup")["id"]
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("keep me")
    before = folder_bytes(db.path)
    for into in (db.path, db.path / "inside", Path(panel.backup_dir) / "x", taken):
        message = refused(panel, "restore", "BackupError", backup_id=backup, into=str(into))
        assert str(into.name) in message or "folder" in message
    assert (taken / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in taken.iterdir()) == ["notes.txt"]
    assert not (db.path / "inside").exists()
    assert folder_bytes(db.path) == before
    assert db.count() == 40


def test_restore_of_an_unknown_or_incomplete_backup_is_refused(
    db: pl.Database, panel: StorageIndexes, tmp_path: Path
) -> None:
    write_rounds(db, rounds=1)
    ok(panel, "backup")
    partial = Path(panel.backup_dir) / "20990101T000000000000Z-abcdef.partial"
    partial.mkdir()
    (partial / "seg-000001.arrow").write_bytes(b"half a segment")
    rows = ok(panel, "backups")
    assert [r["status"] for r in rows] == ["complete", "incomplete"]
    refused(panel, "restore", "NotFoundError", backup_id="no-such", into=str(tmp_path / "a"))
    refused(panel, "restore", "BackupError", backup_id=rows[1]["id"], into=str(tmp_path / "b"))
    assert not (tmp_path / "a").exists()
    assert not (tmp_path / "b").exists()


def test_backup_dir_is_settable_and_checked(
    db: pl.Database, panel: StorageIndexes, tmp_path: Path
) -> None:
    write_rounds(db, rounds=1)
    elsewhere = tmp_path / "elsewhere"
    assert ok(panel, "set_backup_dir", path=str(elsewhere)) == str(elsewhere)
    assert panel.backup_dir == str(elsewhere)
    ok(panel, "backup")
    assert len(ok(panel, "backups")) == 1
    assert len(list(elsewhere.iterdir())) == 1
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    refused(panel, "set_backup_dir", "BackupError", path=str(a_file))
    refused(panel, "set_backup_dir", "BackupError", path=str(db.path / "backups"))
    refused(panel, "set_backup_dir", "InvalidRequestError", path=42)
    assert panel.backup_dir == str(elsewhere)
    with pytest.raises(BackupError, match="inside the database folder"):
        StorageIndexes(db, backup_dir=db.path / "backups")
    assert not (db.path / "backups").exists()


def test_memory_database_has_no_backup_folder_until_set(tmp_path: Path) -> None:
    with pl.connect(":memory:") as memory:
        memory.put("a", {"x": 1})
        panel = StorageIndexes(memory)
        try:
            assert panel.backup_dir == ""
            assert ok(panel, "stats")["in_memory"] is True
            assert ok(panel, "backups") == []
            assert "no backup folder" in refused(panel, "backup", "BackupError")
            ok(panel, "set_backup_dir", path=str(tmp_path / "b"))
            assert "in-memory" in refused(panel, "backup", "BackupError")
            assert not (tmp_path / "b").exists()
        finally:
            panel.close()


def test_panel_takes_a_backup_dir_argument(db: pl.Database, tmp_path: Path) -> None:
    chosen = StorageIndexes(db, backup_dir=tmp_path / "mine")
    named = widgets.panel(
        db, "storage", backup_dir=str(tmp_path / "theirs")
    )  # what db.panel() returns
    try:
        assert chosen.backup_dir == str(tmp_path / "mine")
        assert isinstance(named, StorageIndexes)
        assert named.backup_dir == str(tmp_path / "theirs")
    finally:
        chosen.close()
        named.close()


# -- bad requests ---------------------------------------------------------------------


def test_bad_requests_are_refused_and_change_nothing(
    db: pl.Database, panel: StorageIndexes
) -> None:
    write_rounds(db, rounds=2)
    ok(panel, "create_index", kind="numeric", type="Item", fields=["price"])
    before = (stored(panel), ok(panel, "indexes"), sorted(os.listdir(db.path)))
    refused(panel, "no_such_method", "InvalidRequestError")
    refused(panel, "stats", "InvalidRequestError", verbose=True)
    refused(panel, "compact", "InvalidDataError", level=-1)
    refused(panel, "compact", "InvalidDataError", level="all")
    refused(panel, "create_index", "InvalidQueryError", kind="btree", fields=["price"])
    refused(panel, "create_index", "InvalidQueryError", kind="numeric", name="bad name!")
    refused(
        panel, "create_index", "InvalidQueryError", kind="numeric", fields=["price"], type="Item"
    )
    refused(panel, "create_index", "InvalidRequestError", kind="numeric", params=[1])
    refused(panel, "create_index", "InvalidQueryError", kind="vector", params={"space": "hamming"})
    refused(panel, "drop_index", "IndexNotFoundError", name="nope")
    refused(panel, "drop_index", "InvalidRequestError", name=3)
    refused(panel, "drop_index", "InvalidRequestError")
    refused(panel, "backup", "InvalidRequestError", incremental="yes")
    assert "full backup first" in refused(panel, "backup", "BackupError", incremental=True)
    refused(panel, "restore", "InvalidRequestError", backup_id="x", into="")
    reply, _ = panel.handle({"kind": "cancel", "id": "x"})
    assert reply["error"]["type"] == "InvalidRequestError"
    reply, _ = panel.handle({"kind": "request", "id": "x", "method": "stats", "params": [1]})
    assert reply["error"]["type"] == "InvalidRequestError"
    after = (stored(panel), ok(panel, "indexes"), sorted(os.listdir(db.path)))
    assert after == before
    assert not Path(panel.backup_dir).exists()  # a refused backup leaves no folder behind


# -- two peers and a remote database --------------------------------------------------


def test_replicated_nodes_are_counted_and_backed_up(tmp_path: Path) -> None:
    a = pl.connect(tmp_path / "a", fsync="off", auto_compact=False)
    b = pl.connect(tmp_path / "b", fsync="off", auto_compact=False)
    try:
        for peer in (a, b):
            peer.mesh.configure(secret=MESH_SECRET)
        b.put_many([{"id": f"b{i}", "v": i} for i in range(25)], type="Remote")
        a.put_many([{"id": f"a{i}", "w": i} for i in range(10)], type="Local")
        a.mesh.connect(b.mesh.listen("127.0.0.1", 0), peer_id=b.peer_id)
        poll(lambda: a.count() == 35, "peer a to receive b's nodes")
        panel = StorageIndexes(a)
        try:
            stats = ok(panel, "stats")
            assert stats["nodes"] == 35
            assert stats["keys"] == 2  # v from b, w from a
            assert ok(panel, "types") == ["Local", "Remote"]
            ok(panel, "backup")
            (row,) = ok(panel, "backups")
            assert row["nodes"] == 35
        finally:
            panel.close()
    finally:
        a.close()
        b.close()


def test_the_same_requests_over_a_remote_database(remote: Any, tmp_path: Path) -> None:
    write_rounds(remote)
    panel = StorageIndexes(remote)
    try:
        assert panel.live_progress is False
        assert panel.backup_dir == str(tmp_path / SERVER_ROOT / "served-backups")
        assert ok(panel, "stats")["segments"] == 3
        report = ok(panel, "compact")
        assert (report["segments_before"], report["segments_after"]) == (3, 1)
        assert ok(panel, "stats")["segments"] == 1
        made = ok(panel, "create_index", kind="numeric", type="Item", fields=["price"])
        assert made["entries"] == 40
        assert [i["name"] for i in ok(panel, "indexes")] == ["numeric_Item_price"]
        ok(panel, "drop_index", name="numeric_Item_price")
        assert ok(panel, "indexes") == []
        backup = ok(panel, "backup")
        (row,) = ok(panel, "backups")
        assert (row["id"], row["status"], row["nodes"]) == (backup["id"], "complete", 40)
        into = tmp_path / SERVER_ROOT / "restored" / "copy"
        restored = ok(panel, "restore", backup_id=backup["id"], into=str(into))
        assert restored["nodes"] == 40
        with pl.connect(into) as copy:
            assert copy.count() == 40
        refused(panel, "drop_index", "IndexNotFoundError", name="nope")
        refused(panel, "compact", "InvalidDataError", level=-1)
    finally:
        panel.close()


def test_a_remote_restore_is_done_by_the_server(
    server: Background, remote: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over a RemoteDatabase the panel resolves, reads and checks no path on the kernel's
    disk: with the kernel working in its own folder, relative paths are the server's
    (relative to its database folder), the restore and its refusals are the server's
    database's, and nothing appears where the kernel works."""
    server_root = tmp_path / SERVER_ROOT
    kernel_root = tmp_path / "kernel-root"
    kernel_root.mkdir()
    monkeypatch.chdir(kernel_root)
    write_rounds(remote, rounds=1)
    panel = StorageIndexes(remote, backup_dir="../served-backups")
    try:
        backup = ok(panel, "backup")
        assert Path(backup["path"]).parent == server_root / "served-backups"
        (row,) = ok(panel, "backups")
        assert row["path"] == backup["path"]
        restored = ok(panel, "restore", backup_id=backup["id"], into="../restored/copy")
        into = server_root / "restored" / "copy"
        assert restored == {"path": str(into), "backup": backup["id"], "nodes": 40}

        taken = server_root / "restored" / "taken"
        taken.mkdir()
        (taken / "notes.txt").write_text("keep me")
        for refused_into in (str(taken), "../served-backups/x", str(remote.path / "inside")):
            refused(panel, "restore", "BackupError", backup_id=backup["id"], into=refused_into)
        # The server refuses its database folder itself before its engine sees the call.
        refused(panel, "restore", "PathNotAllowedError", backup_id=backup["id"], into=".")
        partial = server_root / "served-backups" / "20990101T000000000000Z-abcdef.partial"
        partial.mkdir()
        (partial / "seg-000001.arrow").write_bytes(b"half a segment")
        incomplete = ok(panel, "backups")[1]
        assert incomplete["status"] == "incomplete"
        message = refused(
            panel, "restore", "BackupError", backup_id=incomplete["id"], into="../restored/b"
        )
        assert "incomplete" in message
    finally:
        panel.close()
    # One restore and four refusals by the server's database ("." never reached it).
    assert [e.name for e in server.db.instrumentation.events()].count("restore_backup") == 5
    with pl.connect(into) as copy:
        assert copy.count() == 40
        assert copy.peer_id != remote.peer_id
    assert sorted(p.name for p in (server_root / "restored").iterdir()) == ["copy", "taken"]
    assert sorted(p.name for p in taken.iterdir()) == ["notes.txt"]
    assert not (remote.path / "inside").exists()
    assert list(kernel_root.iterdir()) == []
