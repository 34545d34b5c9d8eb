"""The mesh's bounded event log: connects, disconnects, refusals, errors, sync rounds."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import TypedDict

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
LEVELS["error"] = logging.ERROR

log = logging.getLogger("pluresdb_lab.mesh")


class Entry(TypedDict):
    """One log line: UTC epoch seconds, level name, event tag, peer id, message."""

    time: float
    level: str
    event: str
    peer_id: str | None
    message: str


class MeshLog:
    """Keeps the newest `capacity` entries; also forwards them to `logging`."""

    def __init__(self, capacity: int = 2000) -> None:
        self._entries: deque[Entry] = deque(maxlen=capacity)
        self._lock = threading.Lock()

    def add(self, level: str, event: str, message: str, peer_id: str | None = None) -> None:
        entry = Entry(time=time.time(), level=level, event=event, peer_id=peer_id, message=message)
        with self._lock:
            self._entries.append(entry)
        log.log(LEVELS[level], "%s %s: %s", event, peer_id or "-", message)

    def entries(self, limit: int = 200, level: str | None = None) -> list[Entry]:
        """The newest `limit` entries at `level` or above, oldest first."""
        floor = LEVELS[level] if level is not None else 0
        with self._lock:
            chosen = [e for e in self._entries if LEVELS[e["level"]] >= floor]
        return chosen[-limit:] if limit > 0 else []
