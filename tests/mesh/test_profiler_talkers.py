"""`db.profiler.top_talkers()` reads the mesh's live link counters (issue #7)."""

from __future__ import annotations

import secrets
from typing import Any

import pluresdb_lab as pl
from pluresdb_lab.engine import Talker


def counters(db: pl.Database) -> dict[str, tuple[int, int, int, int]]:
    """Per peer, the sums of its links' counters as `peers()` reports them."""
    found: dict[str, tuple[int, int, int, int]] = {}
    for info in db.mesh.peers():
        if info["peer_id"] is None:
            continue
        was = found.get(info["peer_id"], (0, 0, 0, 0))
        now = (info["bytes_in"], info["bytes_out"], info["messages_in"], info["messages_out"])
        found[info["peer_id"]] = tuple(a + b for a, b in zip(was, now, strict=True))  # type: ignore[assignment]
    return found


def test_no_mesh_no_talkers() -> None:
    with pl.connect(":memory:") as db:
        assert isinstance(db, pl.Database)
        assert db.profiler.top_talkers() == []
        db.mesh.listen()  # listening, but no peer linked yet
        assert db.profiler.top_talkers() == []


def test_top_talkers_are_the_linked_peers_by_bytes(embedded: Any, wait_until: Any) -> None:
    hub = embedded(heartbeat_s=60)  # quiet links: counters hold still once synced
    chatty = embedded(heartbeat_s=60)
    quiet = embedded(heartbeat_s=60)
    url = hub.mesh.listen()
    # random hex: frames above 4 KiB are zlib-compressed, and hex still packs to half
    chatty.put_many([{"id": f"c{i}", "text": secrets.token_hex(100)} for i in range(300)], type="C")
    quiet.put("q", {"v": 1})
    chatty.mesh.connect(url)
    quiet.mesh.connect(url)
    wait_until(lambda: hub.count() == 301, what="the hub to receive both peers' nodes")
    wait_until(lambda: chatty.count() == quiet.count() == 301, what="both peers to catch up")

    read: dict[str, Any] = {}

    def still() -> bool:  # counters unchanged around the profiler's read: compare that read
        before = counters(hub)
        read["talkers"] = hub.profiler.top_talkers()
        read["counters"] = counters(hub)
        return before == read["counters"] and len(before) == 2

    wait_until(still, what="the hub's link counters to hold still around a read")
    talkers, expected = read["talkers"], read["counters"]
    assert all(isinstance(t, Talker) for t in talkers)
    by_bytes = sorted(expected, key=lambda peer: (-(expected[peer][0] + expected[peer][1]), peer))
    assert [t.peer_id for t in talkers] == by_bytes
    assert set(by_bytes) == {chatty.peer_id, quiet.peer_id}
    for talker in talkers:
        got = (talker.bytes_in, talker.bytes_out, talker.messages_in, talker.messages_out)
        assert got == expected[talker.peer_id]
        assert talker.messages_in > 0
        assert talker.messages_out > 0
    got = {t.peer_id: t for t in talkers}
    assert got[chatty.peer_id].bytes_in > 300 * 100, "chatty's nodes came in over its link"
    assert got[quiet.peer_id].bytes_out > 300 * 100, "and went on to the quiet peer"
    assert [t.peer_id for t in hub.profiler.top_talkers(limit=1)] == by_bytes[:1]
    hub.profiler.reset()  # measurements go; the mesh's own counters stay
    assert [t.peer_id for t in hub.profiler.top_talkers()] == by_bytes
