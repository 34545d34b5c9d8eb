"""The Mesh panel: who this database is on the mesh, its links, sync, snapshots and log.

Everything it shows comes from `db.mesh` (a `pluresdb_lab.mesh.Mesh`, or the server's
mesh through `RemoteDatabase.mesh`): the per-link counters and state of `peers()`, the
bounded event log of `logs()`, and the snapshot folder. The view polls `peers` and keeps
its own short history of the rates it was given; nothing here is estimated.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

import traitlets

from pluresdb_lab.errors import InvalidRequestError, MeshError, NotFoundError, OperationCancelled
from pluresdb_lab.widgets._panel import Panel, Progress, request

# How often `sync` reads the links' counters while it waits for the round's answer.
_SYNC_POLL_S = 0.05
# A round whose op counts have not moved for this long is reported as stalled (frame
# counts do not say anything here: heartbeats keep arriving while a peer is stuck).
_SYNC_STALL_S = 120.0
# The most log entries one request returns (the mesh keeps 2000).
MAX_LOG_LIMIT = 2000


class MeshPanel(Panel):
    """The peers of a database, their traffic, sync, snapshots and the mesh log.

    Args:
        db: an embedded `pluresdb_lab.Database` or a `RemoteDatabase`.
        **kwargs: traits (`refresh_s`, `title`).
    """

    panel = traitlets.Unicode("mesh").tag(sync=True)

    @request("identity")
    def identity(self) -> dict[str, Any]:
        """This database's peer id and public key, and whether syncing is paused."""
        mesh = self.db.mesh
        identity = mesh.identity
        return {
            "peer_id": identity.peer_id,
            "public_key": identity.public_key,
            "paused": bool(mesh.paused),
        }

    @request("peers")
    def peers(self) -> list[dict[str, Any]]:
        """Every link with its state and counters; `link` names it uniquely."""
        return [{"link": _link_key(row), **row} for row in self.db.mesh.peers()]

    @request("connect")
    def connect(self, url: str, peer_id: str | None = None) -> dict[str, Any]:
        """Keep a link to the peer at `url` (pinned to `peer_id` when given)."""
        self.db.mesh.connect(url, peer_id=peer_id)
        return {"url": url, "peer_id": peer_id}

    @request("disconnect")
    def disconnect(self, peer_id: str) -> dict[str, Any]:
        """Close the links to `peer_id` and stop redialing it; NotFoundError if unknown."""
        self._known(peer_id)
        self.db.mesh.disconnect(peer_id)
        return {"peer_id": peer_id}

    @request("sync", long=True)
    def sync(self, peer_id: str | None = None, *, progress: Progress) -> dict[str, Any]:
        """Run a sync round with one connected peer or all, and wait until it is answered.

        Progress counts the ops of the round in both directions, as the links report
        them (`sync_progress`). A link's round is over when the peer has answered it
        (its last batch echoes the round number: `rounds_answered` passes the count
        asked before this request) and this side has sent what the peer lacked.

        Raises:
            NotFoundError: `peer_id` is not a peer of this mesh.
            MeshError: syncing is paused, no connected peer to sync with, a link
                dropped during the round, or the round made no progress for two minutes.
            OperationCancelled: the user stopped waiting (the peers finish the round).
        """
        if peer_id is not None:
            self._known(peer_id)
        if self.db.mesh.paused:  # a paused mesh drops what the round would bring
            raise MeshError("syncing is paused on this database; resume it before a sync")
        started = time.monotonic()
        targets = {
            _link_key(row): row["sync_progress"]["rounds_asked"]
            for row in self.db.mesh.peers()
            if row["state"] == "connected" and peer_id in (None, row["peer_id"])
        }
        if not targets:
            which = f"peer {peer_id}" if peer_id is not None else "peer"
            raise MeshError(f"no connected {which} to sync with; connect one first")
        self.db.mesh.sync(peer_id)
        pause = threading.Event()
        last_moved, last_seen_counts = time.monotonic(), None
        while True:
            rows = {_link_key(row): row for row in self.db.mesh.peers()}
            links = [_round_state(key, rows.get(key), before) for key, before in targets.items()]
            done = sum(link["done"] for link in links)
            total = sum(link["total"] for link in links)
            finished = all(link["answered"] for link in links)
            if not progress(total if finished else done, total):
                raise OperationCancelled(
                    "stopped waiting for the sync round; the peers finish it on their own"
                )
            if finished:
                return {"seconds": time.monotonic() - started, "links": links}
            counts = [(link["done"], link["total"]) for link in links]
            now = time.monotonic()
            if counts != last_seen_counts:
                last_moved, last_seen_counts = now, counts
            elif now - last_moved > _SYNC_STALL_S:
                raise MeshError(f"the sync round made no progress for {_SYNC_STALL_S:g} s")
            pause.wait(_SYNC_POLL_S)

    @request("snapshot")
    def snapshot(self) -> Any:
        """Write a snapshot of every op now; returns its id, size and op count."""
        return self.db.mesh.snapshot()

    @request("snapshots")
    def snapshots(self) -> Any:
        """The snapshots in the database's snapshot folder, newest first."""
        # By time taken: ids sort by the second they were taken, then by a random suffix.
        return sorted(self.db.mesh.snapshots(), key=lambda s: s["created"], reverse=True)

    @request("logs")
    def logs(self, limit: int = 200, level: str | None = None) -> Any:
        """The newest `limit` mesh log entries at `level` or above, newest first."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= MAX_LOG_LIMIT:
            raise InvalidRequestError(f"limit must be an int 0..{MAX_LOG_LIMIT}, got {limit!r}")
        return list(reversed(self.db.mesh.logs(limit, level)))

    def _known(self, peer_id: object) -> None:
        """Raise unless `peer_id` names a peer this mesh has a link to (now or last)."""
        if not isinstance(peer_id, str) or not peer_id:
            raise InvalidRequestError(f"peer_id must be a non-empty string, got {peer_id!r}")
        known = {row["peer_id"] for row in self.db.mesh.peers()}
        if peer_id not in known:
            raise NotFoundError(
                f"no peer {peer_id!r} on this mesh; its peers are: "
                + (", ".join(sorted(p for p in known if p)) or "none")
            )


def _link_key(row: Mapping[str, Any]) -> str:
    """The name the mesh keeps a link under: one per dialed URL, one per incoming peer."""
    if row["direction"] == "outgoing":
        return f"out:{row['url']}"
    return f"in:{row['peer_id']}"


def _round_state(key: str, row: Mapping[str, Any] | None, asked_before: int) -> dict[str, Any]:
    """Where one link stands in a sync round: ops done of total, and whether it is over."""
    if row is None or row["state"] != "connected":
        state = "gone" if row is None else row["state"]
        reason = f": {row['last_error']}" if row is not None and row["last_error"] else ""
        raise MeshError(f"the link {key} went {state} during the sync round{reason}")
    progress = row["sync_progress"]
    if progress["rounds_asked"] < asked_before:  # counters restart with each new link
        raise MeshError(f"the link {key} was re-established during the sync round; sync again")
    if progress["rounds_asked"] == asked_before:  # not sent yet: counters are the last round's
        progress = {**progress, "received": 0, "to_receive": 0, "sent": 0, "to_send": 0}
    received = min(progress["received"], progress["to_receive"])
    sent = min(progress["sent"], progress["to_send"])
    return {
        "link": key,
        "peer_id": row["peer_id"],
        "received": received,
        "to_receive": progress["to_receive"],
        "sent": sent,
        "to_send": progress["to_send"],
        "done": received + sent,
        "total": progress["to_receive"] + progress["to_send"],
        "answered": progress["rounds_answered"] > asked_before and sent >= progress["to_send"],
    }
