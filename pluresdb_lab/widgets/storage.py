"""The Storage & Indexes panel: sizes, compaction, indexes and backups of one database.

Every figure comes from the database's own measurements (`storage_stats`, `indexes`,
`backups`). Backups go to `backup_dir`, by default a folder next to the database
folder. A restore never touches the open database: it writes a new folder the user
names, which `pluresdb_lab.connect` then opens (the restored copy gets a new peer
identity, see `pluresdb_lab.restore_backup`).

Backup folders are on the database's machine, which is not the kernel's for a
`RemoteDatabase`: the panel reads and checks none of them itself. Listing, backing up
and restoring go through the database (`backups`, `backup`, `restore_backup`), which
refuses what cannot be done and says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import pyarrow as pa
import traitlets

from pluresdb_lab._api import DatabaseAPI, backups_beside
from pluresdb_lab._values import Backup, IndexKind
from pluresdb_lab.errors import (
    BackupError,
    InvalidRequestError,
    NotFoundError,
    OperationCancelled,
)
from pluresdb_lab.widgets._panel import Panel, Progress, request

BACKUPS = pa.schema(
    [
        ("id", pa.string()),
        ("kind", pa.string()),
        ("base", pa.string()),
        ("created", pa.float64()),
        ("size", pa.int64()),
        ("nodes", pa.int64()),
        ("status", pa.string()),
        ("path", pa.string()),
        ("restore_into", pa.string()),
    ]
)


def default_backup_dir(db: DatabaseAPI) -> str:
    """A sibling of the database folder (`<folder>-backups`); "" for a database in memory."""
    return "" if db.path is None else str(backups_beside(db.path))


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _user_path(typed: str) -> Path:
    """A path as the user typed it, with `~` expanded: nothing on the kernel's disk is
    read (symlinks and relative paths are the database's to resolve, on its machine)."""
    return Path(typed).expanduser()


class StorageIndexes(Panel):
    """Storage & Indexes: usage, compaction levels, indexes and backups of `db`.

    Args:
        db: an embedded `Database` or a `RemoteDatabase` (paths are then on the server's
            machine).
        backup_dir: the folder backups are written to and listed from; default
            `<database folder>-backups` next to the database, none for ":memory:".
    """

    panel = traitlets.Unicode("storage").tag(sync=True)

    backup_dir = traitlets.Unicode("").tag(sync=True)
    """Where backups go (an absolute folder path); empty until set for a database in memory."""

    live_progress = traitlets.Bool(True).tag(sync=True)
    """Whether compaction and backup report progress and can be cancelled (not over HTTP)."""

    def __init__(
        self, db: DatabaseAPI, *, backup_dir: str | Path | None = None, **kwargs: Any
    ) -> None:
        super().__init__(db, **kwargs)
        # Over HTTP a call takes no progress callback: it returns when the server is
        # done, so the view shows no cancel button then.
        self.live_progress = bool(db.reports_progress)
        try:
            self.backup_dir = str(backup_dir) if backup_dir is not None else default_backup_dir(db)
        except BaseException:
            self.close()
            raise

    @traitlets.validate("backup_dir")
    def _check_backup_dir(self, proposal: dict[str, Any]) -> str:
        value = proposal["value"]
        if not value:
            return ""
        folder = _user_path(value)
        if self.db.path is not None and _inside(folder, Path(self.db.path)):
            raise BackupError(
                f"backups cannot go inside the database folder {self.db.path}; "
                "choose a folder outside it"
            )
        self.db.backups(folder)  # the database checks the folder on its own disk
        return str(folder)

    # -- storage ------------------------------------------------------------------------

    @request("stats", long=True)
    def stats(self, *, progress: Progress) -> Any:
        """Sizes, node and key counts, levels and amplification, measured now.

        Measuring counts the distinct keys of every node, which takes seconds on a large
        database, so it runs as long work and the kernel keeps answering meanwhile. The
        engine measures in one step: there is no progress to report and nothing to cancel.
        """
        del progress
        return self.db.storage_stats()

    @request("compact", long=True)
    def compact(self, level: int | None = None, *, progress: Progress) -> Any:
        """Merge `level` into the next one, or (None) everything into one segment."""
        report = self.db.compact(level, progress=self._progress(progress))
        self.push("storage")
        return report

    # -- indexes ------------------------------------------------------------------------

    @request("indexes")
    def indexes(self) -> list[dict[str, Any]]:
        """Every index with entries, memory, build time and query latency percentiles."""
        found: list[dict[str, Any]] = self.db.indexes()
        return found

    @request("types")
    def types(self) -> list[str]:
        """The user types of the database (for the create-index form)."""
        return sorted(t for t in self.db.types() if t is not None and not t.startswith("_"))

    @request("create_index", long=True)
    def create_index(
        self,
        kind: str,
        name: str | None = None,
        type: str | None = None,
        fields: str | Sequence[str] | None = None,
        params: dict[str, Any] | None = None,
        *,
        progress: Progress,
    ) -> dict[str, Any]:
        """Create and build an index; a build cancelled while it ran is dropped at its end.

        The engine builds an index in one step, so progress goes from 0 to 1 and a cancel
        takes effect when the build ends: the index is dropped, as if never created.
        """
        if params is not None and not isinstance(params, dict):
            raise InvalidRequestError(f"params of an index are an object, got {params!r}")
        progress(0, 1)
        described: dict[str, Any] = self.db.create_index(
            cast(IndexKind, kind),  # as the browser sent it: the database judges it
            name=name,
            type=type,
            fields=fields,
            **(params or {}),
        )
        if progress(1, 1) is False:
            self.db.drop_index(described["name"])
            raise OperationCancelled(f"index {described['name']!r} was cancelled and dropped")
        self.push("indexes")
        return described

    @request("drop_index")
    def drop_index(self, name: str) -> None:
        """Remove the index called `name`."""
        if not isinstance(name, str):
            raise InvalidRequestError(f"an index name is a string, got {name!r}")
        self.db.drop_index(name)
        self.push("indexes")

    # -- backups ------------------------------------------------------------------------

    @request("set_backup_dir")
    def set_backup_dir(self, path: str) -> str:
        """Use the folder `path` for backups from now on; returns it as kept (a relative
        path is the database's to resolve, as in `db.backups`)."""
        if not isinstance(path, str):
            raise InvalidRequestError(f"a backup folder is a path string, got {path!r}")
        self.backup_dir = path
        return self.backup_dir

    @request("backups")
    def backups(self) -> pa.Table:
        """The backups in `backup_dir`, oldest first; interrupted ones are incomplete."""
        found = self.db.backups(self.backup_dir) if self.backup_dir else []
        rows = [
            {
                "id": b.id,
                "kind": b.kind,
                "base": b.base,
                "created": b.created.timestamp(),
                "size": b.size,
                "nodes": b.nodes,
                "status": b.status,
                "path": str(b.path),
                "restore_into": self._restore_suggestion(b.id),
            }
            for b in found
        ]
        return pa.Table.from_pylist(rows, schema=BACKUPS)

    @request("backup", long=True)
    def backup(self, incremental: bool = False, *, progress: Progress) -> dict[str, Any]:
        """Back up into `backup_dir`: full, or only the segments the last backup lacks."""
        if not isinstance(incremental, bool):
            raise InvalidRequestError(f"incremental is true or false, got {incremental!r}")
        folder = self._backup_folder()
        made: Backup = self.db.backup(
            folder, incremental=incremental, progress=self._progress(progress)
        )
        self.push("backups")
        return {"id": made.id, "kind": made.kind, "size": made.size, "path": str(made.path)}

    @request("restore", long=True)
    def restore(self, backup_id: str, into: str, *, progress: Progress) -> dict[str, Any]:
        """Verify the backup `backup_id`, then restore it into the new folder `into`.

        The open database is never replaced: `db.restore_backup` refuses an `into` that
        holds files or lies inside the database or backup folders, and an incomplete or
        damaged backup.
        """
        if not isinstance(backup_id, str) or not isinstance(into, str) or not into.strip():
            raise InvalidRequestError("restore takes a backup id and a folder path (strings)")
        folder = self._backup_folder()
        chosen = next((b for b in self.db.backups(folder) if b.id == backup_id), None)
        if chosen is None:
            raise NotFoundError(f"there is no backup {backup_id!r} in {folder}")
        restored = self.db.restore_backup(
            chosen.path, _user_path(into), progress=self._progress(progress)
        )
        return {"path": str(restored), "backup": chosen.id, "nodes": chosen.nodes}

    # -- helpers ------------------------------------------------------------------------

    def _progress(self, progress: Progress) -> Progress | None:
        """The panel's progress callback, where the database reports progress."""
        return progress if self.live_progress else None

    def _backup_folder(self) -> str:
        if not self.backup_dir:
            raise BackupError("no backup folder is set; choose one in the panel first")
        return self.backup_dir

    def _restore_suggestion(self, backup_id: str) -> str:
        """A new folder next to the database (or the backups) to restore `backup_id` into."""
        if self.db.path is not None:
            folder = Path(self.db.path)
            return str(folder.parent / f"{folder.name}-restored-{backup_id}")
        return str(Path(self.backup_dir).parent / f"restored-{backup_id}")
