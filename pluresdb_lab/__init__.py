"""PluresDB Lab: a local-first graph/document database that lives inside Jupyter."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pluresdb_lab import errors
from pluresdb_lab._database import Database
from pluresdb_lab.engine import (
    Backup,
    Change,
    Conflict,
    Node,
    Snapshot,
    Subscription,
    Version,
    restore_backup,
    verify_backup,
)

__version__ = "0.1.0"
MEMORY = ":memory:"

__all__ = [
    "MEMORY",
    "Backup",
    "Change",
    "Conflict",
    "Database",
    "Node",
    "Snapshot",
    "Subscription",
    "Version",
    "__version__",
    "connect",
    "default_path",
    "errors",
    "restore_backup",
    "verify_backup",
]


def default_path() -> Path:
    """The folder `connect()` opens when given no target outside a Jupyter server."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "pluresdb-lab" / "default"


def connect(target: str | os.PathLike[str] | None = None, **options: Any) -> Database:
    """Open a database.

    Args:
        target: a folder (durable, single writer), ":memory:" (nothing on disk), or
            None for the default folder (`default_path()`).
        **options: `fsync` ("always", "interval" or "off"), `retention` (seconds of
            history kept by compaction; None keeps all), `max_node_bytes`.

    Returns:
        A Database, usable as a context manager.
    """
    if target is None:
        return Database(default_path(), **options)
    if isinstance(target, str) and target == MEMORY:
        return Database(None, **options)
    return Database(target, **options)
