"""PluresDB Lab: a local-first graph/document database that lives inside Jupyter."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pluresdb_lab import errors
from pluresdb_lab._database import Database
from pluresdb_lab.engine import (
    Backup,
    Change,
    Conflict,
    Hop,
    LargeNode,
    Node,
    SearchHit,
    SearchResult,
    SlowOp,
    Snapshot,
    Subscription,
    Suggestion,
    Talker,
    TrendPoint,
    VectorHit,
    Version,
    restore_backup,
    verify_backup,
)

if TYPE_CHECKING:
    from pluresdb_lab.client import RemoteDatabase

__version__ = "0.1.0"
MEMORY = ":memory:"

__all__ = [
    "MEMORY",
    "Backup",
    "Change",
    "Conflict",
    "Database",
    "Hop",
    "LargeNode",
    "Node",
    "SearchHit",
    "SearchResult",
    "SlowOp",
    "Snapshot",
    "Subscription",
    "Suggestion",
    "Talker",
    "TrendPoint",
    "VectorHit",
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


def connect(
    target: str | os.PathLike[str] | None = None, **options: Any
) -> Database | RemoteDatabase:
    """Open a database.

    Args:
        target: a folder (durable, single writer), ":memory:" (nothing on disk), an
            http(s):// URL of a server's API, or None: the server's database inside a
            kernel of a Jupyter server running the extension (PLURESDB_URL and
            PLURESDB_TOKEN are set), else the default folder (`default_path()`).
        **options: `fsync` ("always", "interval" or "off"), `retention` (seconds of
            history kept by compaction; None keeps all), `max_node_bytes`; for a URL,
            `token` and `timeout`.

    Returns:
        A Database or RemoteDatabase, usable as a context manager.
    """
    if target is None and os.environ.get("PLURESDB_URL"):
        target = os.environ["PLURESDB_URL"]
        options.setdefault("token", os.environ.get("PLURESDB_TOKEN"))
    if isinstance(target, str) and target.startswith(("http://", "https://")):
        from pluresdb_lab.client import RemoteDatabase

        return RemoteDatabase(target, **options)
    if target is None:
        return Database(default_path(), **options)
    if isinstance(target, str) and target == MEMORY:
        return Database(None, **options)
    return Database(target, **options)


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """The Jupyter server extension of this package (imported only by a server)."""
    from pluresdb_lab.server.app import PluresDBApp

    return [{"module": "pluresdb_lab.server.app", "app": PluresDBApp}]
