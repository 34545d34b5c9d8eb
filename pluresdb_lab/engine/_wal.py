"""Write-ahead log: append-only records, each framed as length + CRC32 + payload.

Durability policies: `always` makes each writer wait until its record is fsynced, and
concurrent writers share one fsync (group commit: whoever syncs covers every record
appended before it started); `interval` fsyncs in the background about once a second;
`off` leaves flushing to the operating system.

A failed append (a full disk) cuts the file back to its last whole record, so no later
record ever sits behind a torn one (recovery stops at the first torn record). When even
that fails, or an fsync fails (the kernel may then have dropped the dirty pages), the
log refuses further writes: reopening the database replays what reached the disk.
"""

from __future__ import annotations

import errno
import logging
import os
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pluresdb_lab.engine._folder import raise_if_full, storage_error
from pluresdb_lab.errors import StorageError

HEADER = struct.Struct("<II")  # payload length, crc32 of payload
MAX_RECORD = 1 << 30
SYNC_INTERVAL_S = 1.0
REOPEN = "Close the database and open it again."

log = logging.getLogger("pluresdb_lab")


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
        doing = f"opening the write-ahead log {path}"
        try:  # never through a symlink: the log is written and truncated in place
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            raise_if_full(exc, doing, "The database was not changed.")
            raise
        try:
            if keep_bytes is not None:  # cut a torn tail found during recovery
                os.ftruncate(fd, keep_bytes)
                os.fsync(fd)
            self._written = os.fstat(fd).st_size
        except OSError as exc:
            os.close(fd)
            raise_if_full(exc, doing, "The database was not changed.")
            raise
        self._fd = fd
        self._synced = self._written
        self._sync_lock = threading.Lock()
        self._closing = threading.Event()
        # Why the log takes no more records / no more fsyncs (None while it is healthy).
        self._no_appends: str | None = None
        self._no_syncs: str | None = None
        self._syncer: threading.Thread | None = None
        if policy == "interval":
            self._syncer = threading.Thread(target=self._sync_periodically, daemon=True)
            self._syncer.start()

    @property
    def size(self) -> int:
        return self._written

    def append(self, payload: bytes) -> int:
        """Write one record; returns the log position a `sync_to` must reach. On failure
        the log is as it was before the call (or refuses every later append)."""
        if self._no_appends is not None:
            raise StorageError(errno.EIO, self._no_appends, str(self.path))
        frame = HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        view = memoryview(frame)
        try:
            while view:
                written = os.write(self._fd, view)
                if not written:  # never for a regular file, but a loop must not spin
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                view = view[written:]
        except OSError as exc:
            repaired = self._cut_back(exc)
            doing = f"appending to the write-ahead log {self.path}"
            if repaired:
                raise storage_error(exc, doing, "The write was not applied.") from exc
            assert self._no_appends is not None
            raise storage_error(exc, doing, self._no_appends, advice="") from exc
        self._written += len(frame)
        return self._written

    def _cut_back(self, cause: OSError) -> bool:
        """Remove what a failed append wrote; when that fails too, refuse every later
        append (one would land behind the torn record, where recovery never looks)."""
        try:
            os.ftruncate(self._fd, self._written)
        except OSError as exc:
            self._no_appends = (
                f"The write was not applied, and the write-ahead log {self.path} could not "
                f"be cut back to its last whole record ({exc.strerror}), so it refuses "
                f"further writes. {REOPEN} Recovery cuts the torn record and keeps every "
                "write before it."
            )
            log.error("write-ahead log %s: %s (after: %s)", self.path, exc, cause)
            return False
        return True

    def sync_to(self, position: int) -> None:
        """Return once everything up to `position` is on stable storage."""
        if self._synced >= position:
            return
        with self._sync_lock:
            if self._synced >= position:
                return  # another writer's fsync covered this record
            if self._no_syncs is not None:
                raise StorageError(errno.EIO, self._no_syncs, str(self.path))
            target = self._written
            try:
                os.fsync(self._fd)
            except OSError as exc:
                # After a failed fsync the kernel may have dropped the dirty pages: what
                # the file holds is unknown, so nothing more is appended or promised.
                self._no_syncs = self._no_appends = (
                    f"Syncing the write-ahead log {self.path} failed earlier "
                    f"({exc.strerror}): recent writes may not be on disk, and the log "
                    f"refuses further writes. {REOPEN}"
                )
                raise storage_error(
                    exc,
                    f"syncing the write-ahead log {self.path}",
                    "Writes since the last sync may not be on disk; the log refuses "
                    f"further writes. {REOPEN}",
                    advice="",
                ) from exc
            self._synced = max(self._synced, target)

    def commit(self, position: int) -> None:
        """What a writer does after appending, according to the policy."""
        if self.policy == "always":
            self.sync_to(position)

    def _sync_periodically(self) -> None:
        while not self._closing.wait(SYNC_INTERVAL_S):
            if self._synced < self._written:
                try:
                    self.sync_to(self._written)
                except StorageError:  # the next write reports it; nothing to sync now
                    log.exception("background sync of the write-ahead log %s", self.path)
                    return

    def close(self) -> None:
        """Sync (per the policy) and close; a log that failed an fsync is not synced."""
        self._closing.set()
        if self._syncer is not None:
            self._syncer.join()
        try:
            if self.policy != "off" and self._no_syncs is None:
                self.sync_to(self._written)
        finally:
            os.close(self._fd)


def iter_logs(folder: Path) -> Iterator[Path]:
    yield from sorted(folder.glob("wal-*.log"))
