"""The Mesh panel's requests against real peers: two databases in folders syncing over
127.0.0.1, an in-memory one, and a RemoteDatabase talking to a real server."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import pluresdb_lab as pl
from pluresdb_lab.widgets import MeshPanel
from tests.engine.conftest import Served
from tests.widgets.requests import ask, ok, poll, refused

SECRET = "mesh-panel-secret"


def refused_with(
    panel: MeshPanel, method: str, error: str, progress: Callable[[int, int], bool]
) -> str:
    """`refused` for a long request watched by `progress`."""
    reply = ask(panel, method, progress)
    assert not reply["ok"], reply
    assert reply["error"]["type"] == error, reply["error"]
    return str(reply["error"]["message"])


def link_to(panel: MeshPanel, peer_id: str) -> dict[str, Any]:
    """The panel's row for the one link to `peer_id`."""
    (row,) = [p for p in ok(panel, "peers") if p["peer_id"] == peer_id]
    return dict(row)


def received(panel: MeshPanel, peer_id: str) -> int | None:
    """Ops received over the link to `peer_id` (None while there is no such link yet)."""
    rows = [p for p in ok(panel, "peers") if p["peer_id"] == peer_id]
    return rows[0]["ops_received"] if rows else None


def connected(db: Any, peer_id: str) -> bool:
    return any(p["peer_id"] == peer_id and p["state"] == "connected" for p in db.mesh.peers())


@pytest.fixture
def open_peer(tmp_path: Path) -> Iterator[Callable[[str], pl.Database]]:
    """`open_peer(name)`: a database in `tmp_path / name` (or memory) sharing the mesh secret."""
    opened: list[pl.Database] = []

    def _open(name: str) -> pl.Database:
        db = pl.connect(name if name == ":memory:" else tmp_path / name, fsync="off")
        db.mesh.configure(secret=SECRET)
        opened.append(db)
        return db

    yield _open
    for db in opened:
        db.close()


@pytest.fixture
def panels() -> Iterator[Callable[[Any], MeshPanel]]:
    """`panel(db)`: a MeshPanel over `db`, closed at teardown."""
    made: list[MeshPanel] = []

    def _make(db: Any) -> MeshPanel:
        made.append(MeshPanel(db))
        return made[-1]

    yield _make
    for panel in made:
        panel.close()


@pytest.fixture
def pair(open_peer: Callable[[str], pl.Database]) -> tuple[pl.Database, pl.Database, str]:
    """Peers `a` (listening, 300 nodes) and `b` (dialed a, caught up); returns a, b, a's URL."""
    a, b = open_peer("a"), open_peer("b")
    for i in range(300):
        a.put(f"n{i:03d}", {"i": i, "text": os.urandom(20).hex()})
    url = a.mesh.listen("127.0.0.1", 0)
    b.mesh.connect(url, peer_id=a.peer_id)

    def caught_up() -> bool:
        links = [p for p in b.mesh.peers() if p["peer_id"] == a.peer_id]
        return bool(links) and links[0]["ops_received"] == 300 and connected(a, b.peer_id)

    poll(caught_up, "b to catch up with a")
    return a, b, url


def test_identity_is_this_peer(pair, panels) -> None:
    _, b, _ = pair
    assert ok(panels(b), "identity") == {
        "peer_id": b.peer_id,
        "public_key": b.mesh.identity.public_key,
        "paused": False,
    }
    b.mesh.pause()
    assert ok(panels(b), "identity")["paused"] is True


def test_peers_show_both_ends_of_a_link_with_their_real_counters(pair, panels) -> None:
    a, b, url = pair
    row_b = link_to(panels(b), a.peer_id)
    assert row_b["link"] == f"out:{url}"
    assert (row_b["state"], row_b["direction"], row_b["url"]) == ("connected", "outgoing", url)
    assert row_b["ops_received"] == 300
    assert row_b["sync_progress"]["received"] == row_b["sync_progress"]["to_receive"] == 300
    assert row_b["bytes_in"] > 300 * 20  # the catch-up carried every node's random text
    row_a = link_to(panels(a), b.peer_id)
    assert (row_a["link"], row_a["direction"], row_a["ops_sent"]) == (
        f"in:{b.peer_id}",
        "incoming",
        300,
    )
    b.mesh.pause()  # ops stop and heartbeats are 5 s apart: both ends can agree on bytes

    def agree() -> bool:
        ra, rb = link_to(panels(a), b.peer_id), link_to(panels(b), a.peer_id)
        return (ra["bytes_out"], ra["messages_out"]) == (rb["bytes_in"], rb["messages_in"])

    poll(agree, "both ends to count the same bytes")
    assert set(row_b) >= {"bytes_in_per_s", "messages_out_per_s", "rtt_ms", "last_seen"}


def test_connect_dials_the_url_and_the_new_peer_catches_up(pair, open_peer, panels) -> None:
    a, _, url = pair
    c = open_peer("c")
    panel = panels(c)
    assert ok(panel, "peers") == []
    assert ok(panel, "connect", url=url, peer_id=a.peer_id) == {"url": url, "peer_id": a.peer_id}
    poll(lambda: received(panel, a.peer_id) == 300, "c to catch up")
    assert c.count() == 300
    assert link_to(panel, a.peer_id)["state"] == "connected"


def test_bad_connects_change_nothing(pair, open_peer, panels) -> None:
    c = open_peer("c")
    panel = panels(c)
    assert "ws://" in refused(panel, "connect", "MeshError", url="http://127.0.0.1:1/")
    assert "peer id" in refused(panel, "connect", "MeshError", url="ws://127.0.0.1:1/x", peer_id=7)
    refused(panel, "connect", "InvalidRequestError", url="ws://127.0.0.1:1/x", port=3)
    refused(panel, "connect", "InvalidRequestError")
    assert c.mesh.peers() == []


def test_disconnect_changes_the_state_on_both_ends(pair, panels) -> None:
    a, b, _ = pair
    panel = panels(b)
    assert ok(panel, "disconnect", peer_id=a.peer_id) == {"peer_id": a.peer_id}
    poll(lambda: link_to(panel, a.peer_id)["state"] == "disconnected", "b's link to go down")
    poll(lambda: link_to(panels(a), b.peer_id)["state"] == "disconnected", "a to see it go")


def test_disconnecting_an_unknown_peer_changes_nothing(pair, panels) -> None:
    a, b, _ = pair
    panel = panels(b)
    message = refused(panel, "disconnect", "NotFoundError", peer_id="0123456789abcdef")
    assert a.peer_id in message  # it names the peers there are
    refused(panel, "disconnect", "InvalidRequestError", peer_id="")
    refused(panel, "disconnect", "InvalidRequestError", peer_id=["x"])
    refused(panel, "disconnect", "InvalidRequestError")
    assert link_to(panel, a.peer_id)["state"] == "connected"
    a.put("still", {"linked": True})
    poll(lambda: b.get("still") is not None, "live ops to still flow")


def test_sync_reports_progress_until_the_missing_ops_are_applied(pair, panels) -> None:
    a, b, _ = pair
    panel = panels(b)
    b.mesh.pause()  # b drops what a streams live, so a real backlog builds up
    for i in range(2000):
        a.put(f"late{i:04d}", {"i": i})
    panel_a = panels(a)
    poll(lambda: link_to(panel_a, b.peer_id)["ops_sent"] == 2300, "a to stream the ops")
    # Every frame a sent must have reached b (and been dropped) before b takes ops again.
    poll(
        lambda: link_to(panel, a.peer_id)["bytes_in"] == link_to(panel_a, b.peer_id)["bytes_out"],
        "b to have read every frame a sent",
    )
    assert b.count() == 300
    # resume() would start a sync round of its own; the panel's round must do the work.
    b.mesh.paused = False
    seen: list[tuple[int, int]] = []
    reply = ask(panel, "sync", progress=lambda done, total: seen.append((done, total)) or True)
    assert reply["ok"], reply
    assert b.count() == 2300  # applied before the round was reported done
    (link,) = reply["result"]["links"]
    assert (link["peer_id"], link["received"], link["to_receive"]) == (a.peer_id, 2000, 2000)
    assert reply["result"]["seconds"] > 0
    assert seen[-1] == (2000, 2000)
    done = [d for d, _ in seen]
    assert done == sorted(done)
    assert all(total in (0, 2000) for _, total in seen)  # nothing but this round's ops
    entries = ok(panel, "logs", limit=50)
    assert any(e["event"] == "synced" and "2000 ops" in e["message"] for e in entries)


def test_sync_with_one_peer_and_nothing_to_move(pair, panels) -> None:
    a, b, _ = pair
    panel = panels(b)
    result = ok(panel, "sync", peer_id=a.peer_id)
    assert [(li["peer_id"], li["received"], li["sent"]) for li in result["links"]] == [
        (a.peer_id, 0, 0)
    ]
    assert any(e["event"] == "sync" for e in ok(panel, "logs", limit=10, level="info"))


def test_sync_refuses_when_it_cannot_run(pair, open_peer, panels) -> None:
    a, b, _ = pair
    assert "no connected" in refused(panels(open_peer("lonely")), "sync", "MeshError")
    panel = panels(b)
    refused(panel, "sync", "NotFoundError", peer_id="0123456789abcdef")
    refused(panel, "sync", "InvalidRequestError", peer_id=5)
    refused(panel, "sync", "InvalidRequestError", peers="all")
    b.mesh.pause()
    assert "paused" in refused(panel, "sync", "MeshError")
    b.mesh.resume()
    panel_a = panels(a)
    ok(panel, "disconnect", peer_id=a.peer_id)
    poll(lambda: not connected(b, a.peer_id), "the link to go down")
    assert "no connected peer" in refused(panel, "sync", "MeshError", peer_id=a.peer_id)
    poll(lambda: link_to(panel_a, b.peer_id)["state"] == "disconnected", "a to see it closed")


@pytest.fixture
def silent_pair(pair) -> tuple[pl.Database, pl.Database, str]:
    """`pair` where a is paused: it answers a sync round with its version vector but
    sends no batch, so a round b asks for stays unanswered (heartbeats go on)."""
    a, b, url = pair
    a.mesh.pause()
    return a, b, url


def test_a_link_dropping_during_a_sync_is_reported(silent_pair, panels) -> None:
    a, b, _ = silent_pair
    calls: list[int] = []

    def progress(done: int, total: int) -> bool:
        calls.append(done)
        if len(calls) == 3:
            a.close()
        return True

    message = refused_with(panels(b), "sync", "MeshError", progress)
    assert "during the sync round" in message
    assert len(calls) >= 3


def test_a_round_nobody_answers_is_reported_as_stalled(silent_pair, panels, monkeypatch) -> None:
    _, b, _ = silent_pair
    monkeypatch.setattr("pluresdb_lab.widgets.mesh._SYNC_STALL_S", 0.3)
    assert "no progress for 0.3 s" in refused(panels(b), "sync", "MeshError")


def test_cancelling_a_sync_stops_waiting_and_says_so(pair, panels) -> None:
    a, b, _ = pair
    reply = ask(panels(b), "sync", progress=lambda done, total: False)
    assert not reply["ok"]
    assert reply["error"]["type"] == "OperationCancelled"
    assert "finish it on their own" in reply["error"]["message"]
    assert connected(b, a.peer_id)


def test_snapshots_are_taken_and_listed_newest_first(pair, panels) -> None:
    _, b, _ = pair
    panel = panels(b)
    assert ok(panel, "snapshots") == []
    first = ok(panel, "snapshot")
    assert first["ops"] == len(b.ops_since({})) == 300
    assert Path(first["path"]).stat().st_size == first["bytes"]
    b.put("one-more", {"x": 1})
    second = ok(panel, "snapshot")
    assert second["ops"] == 301
    assert [s["id"] for s in ok(panel, "snapshots")] == [second["id"], first["id"]]


def test_an_in_memory_database_has_no_snapshots(open_peer, panels) -> None:
    panel = panels(open_peer(":memory:"))
    assert ok(panel, "snapshots") == []
    assert "in-memory" in refused(panel, "snapshot", "MeshError")
    assert ok(panel, "snapshots") == []
    assert ok(panel, "identity")["peer_id"]


def test_logs_newest_first_filtered_and_bounded(pair, panels) -> None:
    a, b, _ = pair
    panel = panels(b)
    entries = ok(panel, "logs")
    assert entries == sorted(entries, key=lambda e: -e["time"])
    assert any(e["event"] == "connected" and e["peer_id"] == a.peer_id for e in entries)
    assert len(ok(panel, "logs", limit=1)) == 1
    assert ok(panel, "logs", limit=0) == []
    b.mesh.connect("ws://127.0.0.1:1/pluresdb/mesh")  # nothing listens: a warning or error
    poll(lambda: ok(panel, "logs", level="warning"), "a warning about the dead URL")
    assert {e["level"] for e in ok(panel, "logs", level="warning")} <= {"warning", "error"}
    assert "level" in refused(panel, "logs", "MeshError", level="loud")
    refused(panel, "logs", "InvalidRequestError", limit=-1)
    refused(panel, "logs", "InvalidRequestError", limit="10")
    refused(panel, "logs", "InvalidRequestError", limit=True)


def test_requests_the_panel_does_not_have(pair, panels) -> None:
    _, b, _ = pair
    panel = panels(b)
    assert "answers: connect, disconnect, identity, logs, peers, snapshot, snapshots, sync" in (
        refused(panel, "pause", "InvalidRequestError")
    )
    reply, _ = panel.handle({"kind": "request", "id": "x", "method": "peers", "params": [1]})
    assert reply["error"]["type"] == "InvalidRequestError"
    assert panel.panel == "mesh"
    assert isinstance(pl.widgets.panel(b, "mesh"), MeshPanel)


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[Any]:
    """A RemoteDatabase: a real server on 127.0.0.1 serving a database in a folder."""
    served = Served()
    try:
        yield served.connect(tmp_path / "served", fsync="off")
    finally:
        served.close()


def test_the_same_requests_over_a_remote_database(remote, open_peer, panels) -> None:
    local = open_peer("local")
    for i in range(50):
        local.put(f"l{i}", {"i": i})
    url = local.mesh.listen("127.0.0.1", 0)
    local.mesh.allow(remote.peer_id)
    panel = panels(remote)
    assert ok(panel, "identity")["peer_id"] == remote.peer_id
    assert "ws://" in refused(panel, "connect", "MeshError", url="http://nowhere/")
    assert ok(panel, "peers") == []
    ok(panel, "connect", url=url, peer_id=local.peer_id)
    poll(lambda: received(panel, local.peer_id) == 50, "the server to catch up")
    assert remote.count() == 50
    result = ok(panel, "sync")
    assert [li["peer_id"] for li in result["links"]] == [local.peer_id]
    snapshot = ok(panel, "snapshot")
    assert snapshot["ops"] == 50
    assert [s["id"] for s in ok(panel, "snapshots")] == [snapshot["id"]]
    assert any(e["event"] == "connected" for e in ok(panel, "logs", limit=20))
    refused(panel, "disconnect", "NotFoundError", peer_id="0123456789abcdef")
    ok(panel, "disconnect", peer_id=local.peer_id)
    poll(lambda: link_to(panel, local.peer_id)["state"] == "disconnected", "the link to go down")
