"""A mesh peer in its own process, driven by the tests over stdin/stdout JSON lines.

Usage: ``python peer.py <data folder> '<json options for Mesh.configure>'``. Prints
``{"peer_id": ...}`` when ready, then answers each request line with one line.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
from typing import Any

import pluresdb_lab as pl


def digest(db: pl.Database) -> str:
    """A hash of every node's id, type and data: equal on converged peers."""
    nodes = db.list(limit=max(db.count(), 1))
    text = json.dumps([[n.id, n.type, n.data] for n in nodes], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def write(db: pl.Database, prefix: str, n: int, shared: int) -> None:
    for i in range(n):
        db.put(f"{prefix}-{i}", {"i": i, "by": prefix})
        step = max(n // shared, 1) if shared else 0
        if step and i % step == 0:
            db.put(f"shared-{(i // step) % shared}", {"by": prefix, "i": i})


def main() -> None:
    db = pl.connect(sys.argv[1], fsync="off")
    db.mesh.configure(**json.loads(sys.argv[2]))
    writers: list[threading.Thread] = []
    print(json.dumps({"peer_id": db.peer_id}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        cmd = request.pop("cmd")
        reply: Any = None
        if cmd == "listen":
            reply = db.mesh.listen()
        elif cmd == "connect":
            db.mesh.connect(request["url"], peer_id=request.get("peer_id"))
        elif cmd == "allow":
            db.mesh.allow(request["peer_id"])
        elif cmd == "disconnect":
            db.mesh.disconnect(request["peer_id"])
        elif cmd == "write":
            write(db, request["prefix"], request["n"], request.get("shared", 0))
        elif cmd == "write_async":
            thread = threading.Thread(
                target=write, args=(db, request["prefix"], request["n"], request.get("shared", 0))
            )
            thread.start()
            writers.append(thread)
        elif cmd == "join":
            for thread in writers:
                thread.join()
        elif cmd == "state":
            reply = {"vv": db.version_vector(), "digest": digest(db), "count": db.count()}
        elif cmd == "peers":
            reply = db.mesh.peers()
        elif cmd == "logs":
            reply = db.mesh.logs(level=request.get("level"))
        elif cmd == "quit":
            db.close()
            print(json.dumps({"ok": None}), flush=True)
            return
        print(json.dumps({"ok": reply}), flush=True)


if __name__ == "__main__":
    main()
