"""A mesh peer process for the discovery tests, driven over stdin/stdout JSON lines.

Usage: ``python discopeer.py <data folder> '<json options for Mesh.configure>'``. Prints
``{"peer_id": ...}`` when ready, then answers each request line with one line.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pluresdb_lab as pl


def main() -> None:
    db = pl.connect(sys.argv[1], fsync="off")
    db.mesh.configure(**json.loads(sys.argv[2]))
    print(json.dumps({"peer_id": db.peer_id}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        cmd = request.pop("cmd")
        reply: Any = None
        if cmd == "listen":
            reply = db.mesh.listen()
        elif cmd == "configure":
            db.mesh.configure(**request)
        elif cmd == "put":
            db.put(request["id"], request["data"])
        elif cmd == "get":
            node = db.get(request["id"])
            reply = None if node is None else node.data
        elif cmd == "count":
            reply = db.count()
        elif cmd == "discovered":
            reply = db.mesh.discovered()
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
