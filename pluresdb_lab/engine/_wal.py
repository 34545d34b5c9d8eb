"""Write-ahead log: append-only records, each framed as length + CRC32 + payload.

Durability policies: `always` makes each writer wait until its record is fsynced, and
concurrent writers share one fsync (group commit: whoever syncs covers every record
appended before it started); `interval` fsyncs in the background about once a second;
`off` leaves flushing to the operating system.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HEADER = struct.Struct("<II")  # payload length, crc32 of payload
MAX_RECORD = 1 << 30
SYNC_INTERVAL_S = 1.0


@dataclass(frozen=True, slots=True)
class ReplayResult:
    records: list[bytes]
    good_bytes: int
    torn_bytes: int


def read_records(path: Path) -> ReplayResult:
    """Every intact record of a log, stopping at the first torn or garbled one."""
    blob = path.read_bytes() if path.exists() else b""
    records: list[bytes] = []
    pos = 0
    while pos + HEADER.size <= len(blob):
        length, crc = HEADER.unpack_from(blob, pos)
        end = pos + HEADER.size + length
        if length > MAX_RECORD or end > len(blob):
            break
        payload = blob[pos + HEADER.size : end]
        if zlib.crc32(payload) != crc:
            break
        records.append(payload)
        pos = end
    return ReplayResult(records, pos, len(blob) - pos)


class WriteAheadLog:
    """One open log file. Callers serialise `append`; `sync_to` may run concurrently."""

    def __init__(self, path: Path, policy: str, *, keep_bytes: int | None = None) -> None:
        self.path = path
        self.policy = policy
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if keep_bytes is not None:  # cut a torn tail found during recovery
            os.ftruncate(self._fd, keep_bytes)
            os.fsync(self._fd)
        self._written = os.fstat(self._fd).st_size
        self._synced = self._written
        self._sync_lock = threading.Lock()
        self._closing = threading.Event()
        self._syncer: threading.Thread | None = None
        if policy == "interval":
            self._syncer = threading.Thread(target=self._sync_periodically, daemon=True)
            self._syncer.start()

    @property
    def size(self) -> int:
        return self._written

    def append(self, payload: bytes) -> int:
        """Write one record; returns the log position a `sync_to` must reach."""
        frame = HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        view = memoryview(frame)
        while view:
            view = view[os.write(self._fd, view) :]
        self._written += len(frame)
        return self._written

    def sync_to(self, position: int) -> None:
        """Return once everything up to `position` is on stable storage."""
        if self._synced >= position:
            return
        with self._sync_lock:
            if self._synced >= position:
                return  # another writer's fsync covered this record
            target = self._written
            os.fsync(self._fd)
            self._synced = max(self._synced, target)

    def commit(self, position: int) -> None:
        """What a writer does after appending, according to the policy."""
        if self.policy == "always":
            self.sync_to(position)

    def _sync_periodically(self) -> None:
        while not self._closing.wait(SYNC_INTERVAL_S):
            if self._synced < self._written:
                self.sync_to(self._written)

    def close(self) -> None:
        self._closing.set()
        if self._syncer is not None:
            self._syncer.join()
        if self.policy != "off":
            self.sync_to(self._written)
        os.close(self._fd)


def iter_logs(folder: Path) -> Iterator[Path]:
    yield from sorted(folder.glob("wal-*.log"))
