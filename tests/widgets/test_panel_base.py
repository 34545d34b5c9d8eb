"""The panel base: requests answered by id, Arrow in buffers, errors reported, long work
with progress and cancel, and cleanup on close."""

from __future__ import annotations

import threading
import time
from typing import Any

import pyarrow as pa
import pytest

import pluresdb_lab as pl
from pluresdb_lab.errors import NotFoundError, OperationCancelled
from pluresdb_lab.widgets import Panel, Progress, panel, request


class Recorder(Panel):
    """A panel whose outgoing messages are kept, standing in for the browser's side."""

    def __init__(self, db: Any) -> None:
        self.sent: list[tuple[dict[str, Any], list[bytes]]] = []
        self.sent_any = threading.Condition()
        super().__init__(db)

    def send(self, content: Any, buffers: Any = None) -> None:
        with self.sent_any:
            self.sent.append((content, list(buffers or [])))
            self.sent_any.notify_all()

    def wait_for(self, kind: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self.sent_any:
            while True:
                for content, _ in self.sent:
                    if content.get("kind") == kind:
                        return content
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {kind!r} message within {timeout} s: {self.sent}")
                self.sent_any.wait(left)

    @request("count")
    def count(self, type: str | None = None) -> int:
        return self.db.count(type)

    @request("table")
    def table(self) -> pa.Table:
        return self.db.to_arrow("airport")

    @request("get")
    def get(self, id: str) -> Any:
        node = self.db.get(id)
        if node is None:
            raise NotFoundError(f"no node {id!r}")
        return node

    @request("steps", long=True)
    def steps(self, n: int, progress: Progress, gate: bool = False) -> int:
        for i in range(n):
            if gate:
                self.release.wait(10)
            if not progress(i + 1, n):
                raise OperationCancelled(f"cancelled after {i + 1} of {n} steps")
        return n

    release = threading.Event()


@pytest.fixture
def db(tmp_path):
    database = pl.connect(tmp_path / "db")
    database.put_many([{"id": f"a{i}", "code": f"X{i}", "n": i} for i in range(5)], type="airport")
    yield database
    database.close()


def ask(p: Panel, method: str, **params: Any) -> tuple[dict[str, Any], list[bytes]]:
    return p.handle({"kind": "request", "id": "r1", "method": method, "params": params})


def test_answers_with_the_same_id(db):
    reply, buffers = Recorder(db).handle(
        {"kind": "request", "id": "abc", "method": "count", "params": {"type": "airport"}}
    )
    assert reply == {"kind": "response", "id": "abc", "ok": True, "result": 5}
    assert buffers == []


def test_tables_travel_as_arrow_buffers(db):
    reply, buffers = ask(Recorder(db), "table")
    assert reply["result"] == {"$arrow": 0}
    table = pa.ipc.open_stream(buffers[0]).read_all()
    assert table.num_rows == 5
    assert sorted(table.column("code").to_pylist()) == [f"X{i}" for i in range(5)]


def test_dataclasses_are_plain_json(db):
    reply, _ = ask(Recorder(db), "get", id="a3")
    assert reply["ok"]
    assert reply["result"]["id"] == "a3"
    assert reply["result"]["data"] == {"code": "X3", "n": 3}


@pytest.mark.parametrize(
    ("message", "error_type", "says"),
    [
        ({"kind": "request", "id": "1", "method": "nope"}, "InvalidRequestError", "answers: count"),
        ({"kind": "request", "id": "1", "method": "get"}, "InvalidRequestError", "missing"),
        (
            {"kind": "request", "id": "1", "method": "get", "params": {"id": "a1", "x": 1}},
            "InvalidRequestError",
            "unexpected keyword",
        ),
        ({"kind": "request", "id": "1", "method": "get", "params": [1]}, "InvalidRequestError", ""),
        ({"kind": "other", "id": "1"}, "InvalidRequestError", "kind 'request'"),
        (
            {"kind": "request", "id": "1", "method": "get", "params": {"id": "zz"}},
            "NotFoundError",
            "zz",
        ),
        (
            {"kind": "request", "id": "1", "method": "count", "params": {"type": 5}},
            "InvalidDataError",
            "",
        ),
    ],
)
def test_bad_requests_are_answered_with_the_error(db, message, error_type, says):
    before = db.version_vector()
    reply, _ = Recorder(db).handle(message)
    assert reply["ok"] is False
    assert reply["error"]["type"] == error_type
    assert says in reply["error"]["message"]
    assert db.version_vector() == before


def test_long_requests_report_progress_and_answer_from_a_worker(db):
    p = Recorder(db)
    p._receive(p, {"kind": "request", "id": "L", "method": "steps", "params": {"n": 3}}, [])
    reply = p.wait_for("response")
    assert reply == {"kind": "response", "id": "L", "ok": True, "result": 3}
    progress = [c for c, _ in p.sent if c["kind"] == "progress"]
    assert progress[-1] == {"kind": "progress", "id": "L", "done": 3, "total": 3}


def test_cancel_stops_long_work(db):
    p = Recorder(db)
    Recorder.release.clear()
    params = {"n": 1000, "gate": True}
    p._receive(p, {"kind": "request", "id": "C", "method": "steps", "params": params}, [])
    p._receive(p, {"kind": "cancel", "id": "C"}, [])
    Recorder.release.set()
    reply = p.wait_for("response")
    assert reply["ok"] is False
    assert reply["error"]["type"] == "OperationCancelled"


def test_short_requests_answer_at_once_through_the_comm(db):
    p = Recorder(db)
    p._receive(p, {"kind": "request", "id": "S", "method": "count", "params": {}}, [])
    assert p.sent == [({"kind": "response", "id": "S", "ok": True, "result": 5}, [])]


def test_watch_changes_pushes_and_close_stops_it(db):
    p = Recorder(db)
    p.watch_changes(min_interval_s=0)
    db.put("a9", {"code": "X9"}, type="airport")
    assert p.wait_for("push") == {"kind": "push", "topic": "changed"}
    p.close()
    pushes = len(p.sent)
    db.put("a10", {"code": "X10"}, type="airport")
    assert len(p.sent) == pushes


def test_unknown_panel_name_lists_the_panels(db):
    with pytest.raises(NotFoundError, match="mesh, profiling, storage"):
        panel(db, "nope")


def test_panel_by_name(db):
    assert isinstance(panel(db, "storage"), Panel)
    assert panel(db, "storage").db is db
