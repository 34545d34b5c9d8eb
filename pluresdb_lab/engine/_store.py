"""Where node versions live: manifest, segments, write-ahead log and memtable.

Every applied write becomes a version row (see `_segments.SCHEMA`). New rows go to the
WAL and the memtable; a full memtable is flushed into an immutable L0 segment and the
manifest (replaced atomically) starts a new WAL. Compaction merges a level's segments
into the next level, dropping versions older than the retention horizon except each
node's newest. Lookups go memtable, then levels from 0 up, newest segment first: every
segment of level L is newer than every segment of level L+1.

Durability invariant: an acknowledged write is in the WAL (or in a segment) and is
replayed on open. The manifest's `state` (version vector, clock) is what the rows of
its segments add up to, and it changes only in `_commit_segments`, in the same atomic
swap that lists the flushed segments and names a fresh WAL. Compaction rewrites
segments but never moves that state forward, so replay never skips a WAL record whose
rows are not in a segment.
"""

from __future__ import annotations

import copy
import errno
import fcntl
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pluresdb_lab._values import Progress, RecoveryReport
from pluresdb_lab.engine._crdt import NodeState, decode_state
from pluresdb_lab.engine._folder import (
    FORMAT,
    LEFTOVER_NAME,
    LOCK,
    MANIFEST,
    SEGMENT_NAME,
    WAL_NAME,
    check_folder,
    file_number,
    fsync_path,
    load_manifest,
    raise_if_full,
    settle_restore,
)
from pluresdb_lab.engine._segments import (
    SCHEMA,
    Segment,
    id_index,
    last_per_id,
    read_segment,
    sort_rows,
    write_segment,
)
from pluresdb_lab.engine._wal import WriteAheadLog, read_records
from pluresdb_lab.errors import (
    CorruptDatabaseError,
    DatabaseLockedError,
    NotADatabaseError,
    OperationCancelled,
)

MEMTABLE_ROWS = 50_000
FANOUT = 4  # segments a level holds before they merge into the next

Row = dict[str, Any]
READ_COLUMNS = ("id", "type", "data", "vector", "written", "version", "deleted")


def report(progress: Progress | None, done: int, total: int) -> None:
    """Tell a progress callback how far along we are; it may cancel by returning False."""
    if progress is not None and progress(done, total) is False:
        raise OperationCancelled(f"cancelled by the progress callback at {done} of {total}")


def memory_segment(table: pa.Table, level: int, number: int) -> Segment:
    table = table.cast(SCHEMA).combine_chunks()
    ids = table.column("id")
    index = id_index(ids.chunk(0) if ids.num_chunks else pa.array([], pa.string()))
    return Segment(Path(f":memory:{number}"), level, number, table, index, 0, 0)


@dataclass(frozen=True, slots=True)
class CompactionPlan:
    """Segments to merge into one new segment at `level`, numbered `number`."""

    inputs: list[Segment]
    level: int
    number: int


def state_from_row(row: Row) -> NodeState:
    return decode_state(
        node_id=row["id"],
        version=row["version"],
        rev=row["rev"],
        time=row["written"],
        type_=row["type"],
        data=json.loads(row["data"]),
        vector=row["vector"],
        hlc=row["hlc"],
        origin=row["origin"],
        ctr=row["ctr"],
        meta=row["meta"],
    )


class Store:
    """The storage of one database; `folder=None` keeps everything in memory."""

    def __init__(self, folder: Path | None, fsync: str, retention: float | None) -> None:
        self.folder = folder
        self.fsync = fsync
        self.retention = retention
        self.segments: list[Segment] = []
        self.manifest: dict[str, Any] = {}
        self._mem_rows: dict[str, list[Row]] = {}
        self._mem_states: dict[str, NodeState] = {}
        self._mem_count = 0
        self._wal: WriteAheadLog | None = None
        self._lock_fd: int | None = None
        self._next_number = 1
        self._generation = 0
        self._current: tuple[int, pa.Table] | None = None
        self.bytes_ingested = 0
        self.bytes_compacted = 0
        self._pinned: set[str] = set()
        self._doomed: list[Path] = []
        self.compactions = 0
        self.on_flush: Callable[[], None] = lambda: None

    # -- opening and closing ---------------------------------------------------------

    def open(self) -> tuple[dict[str, Any], list[bytes], RecoveryReport]:
        """Lock the folder, load manifest and segments; returns the manifest's extra
        state, the WAL records to replay, and what recovery found."""
        if self.folder is None:
            return {}, [], RecoveryReport(0, 0, None)
        settle_restore(self.folder)  # a killed restore_backup may have left X moved away
        check_folder(self.folder)  # before anything is written into someone else's folder
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise NotADatabaseError(
                f"cannot make the database folder {self.folder}: {exc.strerror} (a part of "
                "the path is a file); give a new or empty folder's path"
            ) from None
        self._lock()
        try:
            return self._load()
        except BaseException:
            self.release()
            raise

    def _load(self) -> tuple[dict[str, Any], list[bytes], RecoveryReport]:
        assert self.folder is not None
        path = self.folder / MANIFEST
        names = {entry.name: entry for entry in os.scandir(self.folder)}
        if path.exists():
            self.manifest = load_manifest(path)  # every file name in it checked
        elif any(SEGMENT_NAME.fullmatch(name) for name in names):
            raise CorruptDatabaseError(
                f"{path} is missing but the folder holds segment files; restore from a backup"
            )
        else:
            self.manifest = {"format": FORMAT, "segments": [], "wal": None, "next": 1}
        # Never hand out a number a listed file already has: a new file would replace it.
        used = [s["number"] for s in self.manifest["segments"]]
        used += [file_number(s["file"]) for s in self.manifest["segments"]]
        if self.manifest.get("wal"):
            used.append(file_number(self.manifest["wal"]))
        self._next_number = max([int(self.manifest.get("next", 1)), *(n + 1 for n in used)])
        self.bytes_ingested = int(self.manifest.get("bytes_ingested", 0))
        self.bytes_compacted = int(self.manifest.get("bytes_compacted", 0))
        self.segments = [
            read_segment(
                self.folder / s["file"], level=s["level"], number=s["number"], crc=s["crc32"]
            )
            for s in self.manifest["segments"]
        ]
        self._order_segments()
        wal_name = self.manifest.get("wal") or self._new_name("wal", "log")
        wal_path = self.folder / wal_name
        if wal_name in names and not names[wal_name].is_file(follow_symlinks=False):
            raise CorruptDatabaseError(
                f"write-ahead log {wal_path} is not a regular file (PluresDB never makes a "
                "link or a folder there); move it away, or restore from a backup"
            )
        replay = read_records(wal_path)
        listed = {s.path.name for s in self.segments}
        for name, entry in names.items():  # only names of our own files: others stay
            stale = (
                (WAL_NAME.fullmatch(name) and name != wal_name)  # already in segments
                or (SEGMENT_NAME.fullmatch(name) and name not in listed)  # flush interrupted
                or LEFTOVER_NAME.fullmatch(name)
            )
            if stale and not entry.is_dir(follow_symlinks=False):
                os.unlink(entry.path)
        self._wal = WriteAheadLog(
            wal_path, self.fsync, keep_bytes=replay.good_bytes if replay.torn_bytes else None
        )
        if self.manifest.get("wal") != wal_name:
            self.manifest["wal"] = wal_name
            self._write_manifest()
        report = RecoveryReport(len(replay.records), replay.torn_bytes, wal_name)
        return dict(self.manifest.get("state", {})), replay.records, report

    def _lock(self) -> None:
        assert self.folder is not None
        path = self.folder / LOCK
        try:  # never through a symlink: the file is truncated and written below
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise CorruptDatabaseError(
                    f"{path} is a symbolic link (PluresDB never makes one); remove it"
                ) from None
            raise_if_full(exc, f"creating {path}", "Nothing was written.")
            raise
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DatabaseLockedError(
                f"database {self.folder} is open in another process (pid {holder}); close "
                "it there, or connect to that process's server instead"
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
        except OSError as exc:
            os.close(fd)
            raise_if_full(exc, f"writing {path}", "Nothing was written.")
            raise
        self._lock_fd = fd

    def remember(self, key: str, value: Any) -> None:
        """Persist one manifest entry now (such as the peer id of a new database)."""
        self.manifest[key] = value
        if self.folder is not None:
            self._write_manifest()

    def release(self) -> None:
        """Give up the folder: close the WAL as is and unlock (even if closing fails)."""
        wal, self._wal = self._wal, None
        try:
            if wal is not None:
                wal.close()
        finally:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def close(self, state: dict[str, Any]) -> None:
        """Flush the memtable (so the manifest's state matches the segments) and unlock.
        A failed flush (a full disk) still unlocks: the WAL keeps the rows for replay."""
        try:
            if self._wal is not None:
                self.flush(state)
        finally:
            self.release()

    # -- the manifest ------------------------------------------------------------------

    def _new_name(self, prefix: str, suffix: str) -> str:
        number = self._next_number
        self._next_number += 1
        return f"{prefix}-{number:06d}.{suffix}"

    def _write_manifest(self) -> None:
        assert self.folder is not None
        self.manifest.update(
            next=self._next_number,
            segments=[s.describe() | {"number": s.number} for s in self.segments],
            bytes_ingested=self.bytes_ingested,
            bytes_compacted=self.bytes_compacted,
        )
        tmp = self.folder / (MANIFEST + ".tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(self.manifest, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.folder / MANIFEST)
            fsync_path(self.folder)
        except OSError as exc:
            tmp.unlink(missing_ok=True)  # a full disk must not keep the half-written copy
            outcome = "The manifest on disk is the previous one."
            raise_if_full(exc, f"writing the manifest {tmp.with_suffix('')}", outcome)
            raise

    def _order_segments(self) -> None:
        self.segments.sort(key=lambda s: (s.level, -s.number))

    # -- writing -----------------------------------------------------------------------

    def log(self, record: bytes) -> int:
        """Append a WAL record; returns the position `commit` waits for."""
        position = self._wal.append(record) if self._wal is not None else 0
        self.bytes_ingested += len(record)
        return position

    def commit(self, position: int) -> None:
        """Wait for durability per the fsync policy. Call without holding locks."""
        if self._wal is not None and position:
            self._wal.commit(position)

    def commit_all(self) -> None:
        """Wait until everything logged so far is durable (per the fsync policy)."""
        if self._wal is not None:
            self._wal.commit(self._wal.size)

    def add_version(self, state: NodeState, row: Row) -> None:
        self._mem_rows.setdefault(row["id"], []).append(row)
        self._mem_states[row["id"]] = state
        self._mem_count += 1
        self._generation += 1

    def add_segment(self, table: pa.Table, state: dict[str, Any]) -> None:
        """Store many new versions at once as their own L0 segment (bulk writes).

        The memtable goes into a segment of its own in the same manifest swap, so the
        manifest's state (which covers both) never claims a row that is not stored.
        """
        tables = [self.memtable_table()] if self._mem_count else []
        self._commit_segments([*tables, sort_rows(table)], state)
        self._clear_memtable()
        self.on_flush()

    def needs_flush(self) -> bool:
        return self._mem_count >= MEMTABLE_ROWS

    def flush(self, state: dict[str, Any]) -> None:
        """Move the memtable into an L0 segment and start a new WAL."""
        if not self._mem_count:
            return
        self._commit_segments([self.memtable_table()], state)
        self._clear_memtable()
        self.on_flush()

    def _clear_memtable(self) -> None:
        self._mem_rows.clear()
        self._mem_states.clear()
        self._mem_count = 0
        self._generation += 1

    def _commit_segments(self, tables: list[pa.Table], state: dict[str, Any]) -> None:
        """Make sorted tables new L0 segments (oldest first), with `state` (what every
        stored row adds up to) and a fresh WAL, in one manifest swap. Until the swap
        the old manifest, WAL and segments stand, so a crash or an error at any point
        leaves the database as it was (new files are removed, or ignored on open)."""
        if self.folder is None:
            for table in tables:
                self.segments.append(memory_segment(table, 0, self._next_number))
                self._next_number += 1
            self._order_segments()
            return
        assert self._wal is not None
        before = (list(self.segments), dict(self.manifest), self._next_number)
        written: list[Segment] = []
        fresh_wal: WriteAheadLog | None = None
        try:
            for table in tables:
                number = self._next_number
                path = self.folder / self._new_name("seg", "arrow")
                written.append(write_segment(path, table, level=0, number=number))
            self.manifest["state"] = copy.deepcopy(state)  # the caller keeps changing its own
            self.manifest["wal"] = self._new_name("wal", "log")
            fresh_wal = WriteAheadLog(self.folder / self.manifest["wal"], self.fsync)
            self.segments.extend(written)
            self._order_segments()
            self._write_manifest()
        except BaseException:
            self.segments, self.manifest, self._next_number = before
            if fresh_wal is not None:
                fresh_wal.close()
                fresh_wal.path.unlink(missing_ok=True)
            for segment in written:
                segment.path.unlink(missing_ok=True)
            raise
        self.bytes_compacted += sum(s.size for s in written)
        old, self._wal = self._wal, fresh_wal
        old.close()
        old.path.unlink()

    # -- compaction --------------------------------------------------------------------
    # A compaction is planned and installed under the database lock, but the merge in
    # between reads only immutable segments and writes a new file, so it runs without
    # the lock: readers and writers carry on meanwhile.

    def plan_compaction(self, level: int | None) -> CompactionPlan | None:
        """What to merge: level `level` into the next, or everything (None)."""
        if level is None:
            inputs = list(self.segments)
            if len(inputs) < 2 and not (inputs and self.retention is not None):
                return None
            target = max(1, *(s.level for s in inputs))
        else:
            here = [s for s in self.segments if s.level == level]
            if not here:
                return None
            inputs = here + [s for s in self.segments if s.level == level + 1]
            target = level + 1
        number = self._next_number
        self._next_number += 1
        return CompactionPlan(inputs, target, number)

    def full_levels(self) -> list[int]:
        """Levels holding FANOUT or more segments (what automatic compaction merges)."""
        counts = Counter(s.level for s in self.segments)
        return sorted(level for level, n in counts.items() if n >= FANOUT)

    def merge(self, plan: CompactionPlan, progress: Progress | None = None) -> Segment | None:
        """Merge the plan's inputs into one new segment (no shared state is touched)."""
        total = sum(s.rows for s in plan.inputs)
        report(progress, 0, total)
        table = pa.concat_tables([s.table for s in plan.inputs])
        table = self._apply_retention(sort_rows(table))
        report(progress, total // 2, total)
        if not table.num_rows:
            return None
        if self.folder is None:
            output = memory_segment(table, plan.level, plan.number)
        else:
            name = f"seg-{plan.number:06d}.arrow"
            output = write_segment(self.folder / name, table, level=plan.level, number=plan.number)
        return output

    def install(self, plan: CompactionPlan, output: Segment | None) -> None:
        """Swap a merge's inputs for its output, then delete the inputs' files.

        The manifest keeps the state of its last checkpoint: the output holds exactly
        the inputs' rows (less those past retention), while writes since that
        checkpoint are only in the WAL and must still be replayed on open."""
        before = list(self.segments)
        self.segments = [s for s in self.segments if s not in plan.inputs]
        if output is not None:
            self.segments.append(output)
        self._order_segments()
        if self.folder is not None:
            try:
                self._write_manifest()
            except BaseException:
                self.segments = before
                self.abandon(output)
                raise
            for segment in plan.inputs:
                self._delete_when_unpinned(segment.path)
        self.bytes_compacted += output.size if output is not None else 0
        self._generation += 1
        self.compactions += 1

    def abandon(self, output: Segment | None) -> None:
        """Forget a merge that was cancelled; its file is removed."""
        if output is not None and self.folder is not None:
            output.path.unlink(missing_ok=True)

    # -- pinning: a backup copies files that compaction must not delete meanwhile ------

    def pin(self, names: list[str]) -> None:
        self._pinned.update(names)

    def unpin(self, names: list[str]) -> None:
        self._pinned.difference_update(names)
        for path in [p for p in self._doomed if p.name not in self._pinned]:
            path.unlink(missing_ok=True)
            self._doomed.remove(path)

    def _delete_when_unpinned(self, path: Path) -> None:
        if path.name in self._pinned:
            self._doomed.append(path)
        else:
            path.unlink(missing_ok=True)

    def _apply_retention(self, table: pa.Table) -> pa.Table:
        """Drop versions older than the horizon, keeping every node's newest."""
        if self.retention is None or not table.num_rows:
            return table
        horizon = time.time() - self.retention
        newest = pa.array(last_per_id(id_index(table.column("id").combine_chunks())))
        keep = pc.or_(newest, pc.greater_equal(table.column("time"), horizon))
        return table.filter(keep)

    # -- reading -----------------------------------------------------------------------

    def state(self, node_id: str) -> NodeState | None:
        """The newest CRDT state of a node (including deleted nodes)."""
        cached = self._mem_states.get(node_id)
        if cached is not None:
            return cached
        row = self._segment_latest(node_id)
        return state_from_row(row) if row is not None else None

    def latest(self, node_id: str) -> Row | None:
        """The newest version row of a node, with the columns a reader needs."""
        versions = self._mem_rows.get(node_id)
        if versions:
            return versions[-1]
        return self._segment_latest(node_id, READ_COLUMNS)

    def _segment_latest(
        self, node_id: str, columns: tuple[str, ...] = tuple(SCHEMA.names)
    ) -> Row | None:
        for segment in self.segments:
            i = segment.newest(node_id)
            if i is not None:
                return segment.row(i, columns)
        return None

    def versions(self, node_id: str) -> list[Row]:
        """Every stored version of a node, oldest first."""
        rows: list[Row] = []
        for segment in reversed(self.segments):
            start, stop = segment.span(node_id)
            rows.extend(segment.row(i) for i in range(start, stop))
        rows.extend(self._mem_rows.get(node_id, ()))
        return sorted(rows, key=lambda r: int(r["rev"]))

    def memtable_table(self) -> pa.Table:
        rows = [r for versions in self._mem_rows.values() for r in versions]
        return sort_rows(pa.Table.from_pylist(rows, schema=SCHEMA))

    def sources(self) -> Iterator[pa.Table]:
        """Every version row, memtable first then segments newest first."""
        if self._mem_count:
            yield self.memtable_table()
        for segment in self.segments:
            yield segment.table

    def all_rows(self) -> pa.Table:
        tables = list(self.sources())
        return pa.concat_tables(tables) if tables else SCHEMA.empty_table()

    def current(self) -> pa.Table:
        """The newest version of every node (deleted ones included), sorted by id."""
        if self._current is not None and self._current[0] == self._generation:
            return self._current[1]
        parts: list[pa.Table] = []
        seen: pa.Array | None = None
        for table in self.sources():
            if not table.num_rows:
                continue
            ids = table.column("id").combine_chunks()
            newest = table.filter(pa.array(last_per_id(id_index(ids))))
            if seen is not None and len(seen):
                newest = newest.filter(pc.invert(pc.is_in(newest.column("id"), value_set=seen)))
            parts.append(newest)
            got = newest.column("id").combine_chunks()
            seen = got if seen is None else pa.concat_arrays([seen, got])
        if not parts:
            result = SCHEMA.empty_table()
        elif len(parts) == 1:
            result = parts[0]
        else:
            result = pa.concat_tables(parts).sort_by("id")
        self._current = (self._generation, result)
        return result

    def has(self, node_id: str) -> bool:
        """Whether any version of the node is stored."""
        return node_id in self._mem_rows or any(
            segment.newest(node_id) is not None for segment in self.segments
        )

    def ids_present(self, ids: pa.Array) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """Which of `ids` have any stored version."""
        found = np.zeros(len(ids), dtype=bool)
        if self._mem_rows:
            mem = pa.array(list(self._mem_rows), pa.string())
            found |= pc.is_in(ids, value_set=mem).to_numpy(zero_copy_only=False)
        for segment in self.segments:
            found |= pc.is_in(ids, value_set=segment.table.column("id")).to_numpy(
                zero_copy_only=False
            )
        return found

    # -- figures -----------------------------------------------------------------------

    @property
    def wal_bytes(self) -> int:
        return self._wal.size if self._wal is not None else 0
