"""Storage operations: flush, compact, backup and backups, import_file, export and
storage_stats, the calls that act on the stored files as a whole.
"""

from __future__ import annotations

import builtins
import json
import os
from pathlib import Path

from pluresdb_lab.engine._apply import Core
from pluresdb_lab.engine._backup import Backup, list_backups, write_backup
from pluresdb_lab.engine._compaction import CompactionReport
from pluresdb_lab.engine._instrument import measured
from pluresdb_lab.engine._stats import StorageStats, distinct_keys, measure
from pluresdb_lab.engine._store import Progress
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
        """Compact now: merge `level` into the next, or (None) flush and merge every
        segment into one, dropping history older than the retention horizon.

        Args:
            level: the level to merge down, or None for a full compaction.
            progress: called as progress(done, total) in rows; return False to cancel
                (the database is left as it was).

        Returns:
            Segments, bytes and rows before and after, and the duration.
        """
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
        """Back the database up into the folder `dest` while writes continue.

        Args:
            dest: a folder of backups (created if needed); each backup is a subfolder.
            incremental: copy only segments the newest complete backup in `dest` lacks.
            progress: progress(bytes_done, bytes_total); return False to cancel (the
                half-made backup is removed).
        """
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
        """Import a CSV, JSON (array), NDJSON, Parquet or Arrow IPC file, all or nothing.

        Args:
            path: the file; its extension tells the format unless `format` is given.
            type: the type of every imported node (else a `_type` column, if present).
            id_field: the column holding ids; None generates ids.
            mapping: {source column: field name, or None to skip the column}.
            progress: progress(done, total) while reading; return False to cancel.

        Returns:
            The number of nodes written. A bad row raises an error naming the file, the
            row and the reason, and nothing is written.
        """
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
        """Export nodes to a file (format from the extension unless given); returns rows.

        Args:
            type: export this type's nodes (`id` and typed field columns); None exports
                every node with a `_type` column, which `import_file` reads back.
            query: a SQL query (as for `sql`) whose result is exported instead.
        """
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
