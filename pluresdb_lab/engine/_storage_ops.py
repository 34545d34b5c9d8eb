"""Storage operations: flush, compact, backup, backups, verify_backup, restore_backup,
import_file, export and storage_stats, the calls that act on the stored files as a whole.
"""

from __future__ import annotations

import builtins
import json
import os
from pathlib import Path

from pluresdb_lab._values import Backup, CompactionReport, Progress, StorageStats, Verification
from pluresdb_lab.engine._apply import Core
from pluresdb_lab.engine._backup import (
    list_backups,
    restore_backup,
    verify_backup,
    write_backup,
)
from pluresdb_lab.engine._instrument import measured
from pluresdb_lab.engine._stats import distinct_keys, measure
from pluresdb_lab.engine._transfer import export_rows, read_file, write_file
from pluresdb_lab.engine._validate import check_type
from pluresdb_lab.errors import BackupError, InvalidDataError


class StorageOpsMixin(Core):
    """Flushing, compacting, backing up, importing, exporting and measuring storage."""

    @measured("flush")
    def flush(self) -> None:
        """Write the memtable into a segment now."""
        with self._lock:
            self._open()
            self._store.flush(self._saved_state())

    @measured("compact", about="level")
    def compact(
        self, level: int | None = None, *, progress: Progress | None = None
    ) -> CompactionReport:
        """Merge `level` into the next, or (None) flush and merge everything into one."""
        if level is not None and (
            not isinstance(level, int) or isinstance(level, bool) or level < 0
        ):
            raise InvalidDataError(
                f"level is a compaction level (0, 1, ...) or None, got {level!r}"
            )
        with self._lock:
            self._open()
            if level is None:
                self._store.flush(self._saved_state())
        return self._compactor.run(level, progress)

    @measured("backup", about="dest")
    def backup(
        self,
        dest: str | os.PathLike[str],
        *,
        incremental: bool = False,
        progress: Progress | None = None,
    ) -> Backup:
        """Back up into `dest` while writes continue: flush, pin the segments, copy them."""
        if self.path is None:
            raise BackupError(
                "an in-memory database has no files to back up; export it, or open a folder"
            )
        target = Path(dest).resolve()
        if target == self.path.resolve() or self.path.resolve() in target.parents:
            raise BackupError(f"back up to a folder outside the database folder {self.path}")
        with self._lock:
            self._open()
            self._store.flush(self._saved_state())
            manifest = json.loads(json.dumps(self._store.manifest))
            names = [s["file"] for s in manifest["segments"]]
            self._store.pin(names)
            nodes = sum(self._type_counts().values())
        try:
            return write_backup(
                target,
                manifest=manifest,
                segment_folder=self.path,
                nodes=nodes,
                incremental=incremental,
                progress=progress,
            )
        finally:
            with self._lock:
                self._store.unpin(names)

    @measured("backups", about="dest")
    def backups(self, dest: str | os.PathLike[str]) -> builtins.list[Backup]:
        """The backups in `dest`, oldest first (interrupted ones marked incomplete)."""
        return list_backups(dest)

    @measured("verify_backup", about="path")
    def verify_backup(self, path: str | os.PathLike[str]) -> Verification:
        """`pluresdb_lab.verify_backup`, on this database's machine."""
        return verify_backup(path)

    @measured("restore_backup", about=("path", "into"))
    def restore_backup(
        self,
        path: str | os.PathLike[str],
        into: str | os.PathLike[str],
        *,
        overwrite: bool = False,
        progress: Progress | None = None,
    ) -> Path:
        """`pluresdb_lab.restore_backup`, never into this database's own folder."""
        if self.path is not None:
            own = self.path.resolve()
            if Path(into).resolve().is_relative_to(own):
                raise BackupError(
                    f"restore into a folder outside the open database's folder {own}, not {into}"
                )
        return restore_backup(path, into, overwrite=overwrite, progress=progress)

    @measured("import_file", about="path")
    def import_file(
        self,
        path: str | os.PathLike[str],
        format: str | None = None,
        *,
        type: str | None = None,
        id_field: str | None = None,
        mapping: dict[str, str | None] | None = None,
        progress: Progress | None = None,
    ) -> int:
        """Import a file as one all-or-nothing write (`put_many` of every row)."""
        check_type(type)
        with self._lock:
            self._open()
            dims = dict(self._dims)
        batch = read_file(
            path,
            format=format,
            type_name=type,
            id_field=id_field,
            mapping=mapping,
            max_bytes=self.max_node_bytes,
            dims=dims,
            progress=progress,
        )
        return self._write_batch(batch) if batch.num_rows else 0

    @measured("export", about="path")
    def export(
        self,
        path: str | os.PathLike[str],
        format: str | None = None,
        *,
        type: str | None = None,
        query: str | None = None,
    ) -> int:
        """Export nodes, or a SQL result, to a file; returns rows written."""
        if query is not None:
            table = self.sql(query)
        else:
            with self._lock:
                self._open()
                rows = self._rows_of_type(type)
            table = export_rows(rows, type)
        return write_file(table, path, format)

    @measured("storage_stats")
    def storage_stats(self) -> StorageStats:
        """Sizes, levels and amplification of the storage, measured now."""
        with self._lock:
            self._open()
            rows, _ = self._visible_rows()
            generation = self._store._generation
        # Counting keys parses every node's JSON: done outside the lock (the rows are an
        # immutable snapshot) and kept until the next write, so writers never wait on it.
        keys = self._keys
        if keys is None or keys[0] != generation:
            keys = self._keys = (generation, distinct_keys(rows))
        with self._lock:
            self._open()
            return measure(self._store, sum(self._type_counts().values()), keys[1])
