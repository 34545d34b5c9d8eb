"""PluresDB Lab: a local-first graph/document database that lives inside Jupyter.

`connect` returns a `DatabaseAPI`: the embedded `Database`, or a `RemoteDatabase` on a
server. The embedded engine (DuckDB, hnswlib, tantivy, networkx) is imported on first
use of `Database`, `Snapshot`, `restore_backup` or `verify_backup`, so a kernel that
only talks to a server never loads it.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pluresdb_lab import errors
from pluresdb_lab._api import DatabaseAPI, SnapshotAPI
from pluresdb_lab._values import (
    Backup,
    Change,
    Conflict,
    CrdtState,
    FieldChange,
    FieldClock,
    Hop,
    LargeNode,
    Node,
    SearchHit,
    SearchResult,
    SlowOp,
    Subscription,
    Suggestion,
    Talker,
    TrendPoint,
    VectorHit,
    Version,
)

if TYPE_CHECKING:
    from pluresdb_lab._database import Database
    from pluresdb_lab.engine import Snapshot, restore_backup, verify_backup

__version__ = "0.1.0"
MEMORY = ":memory:"

__all__ = [
    "MEMORY",
    "Backup",
    "Change",
    "Conflict",
    "CrdtState",
    "Database",
    "DatabaseAPI",
    "FieldChange",
    "FieldClock",
    "Hop",
    "LargeNode",
    "Node",
    "SearchHit",
    "SearchResult",
    "SlowOp",
    "Snapshot",
    "SnapshotAPI",
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

# name -> the module it is imported from on first use (module `__getattr__`, PEP 562)
_ENGINE_NAMES = {
    "Database": "pluresdb_lab._database",
    "Snapshot": "pluresdb_lab.engine",
    "restore_backup": "pluresdb_lab.engine",
    "verify_backup": "pluresdb_lab.engine",
}


def __getattr__(name: str) -> Any:
    if name not in _ENGINE_NAMES:
        raise AttributeError(f"module 'pluresdb_lab' has no attribute {name!r}")
    value = getattr(importlib.import_module(_ENGINE_NAMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def default_path() -> Path:
    """The folder `connect()` opens when given no target outside a Jupyter server."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "pluresdb-lab" / "default"


def connect(target: str | os.PathLike[str] | None = None, **options: Any) -> DatabaseAPI:
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
    from pluresdb_lab._database import Database  # the engine: only for an embedded database

    if target is None:
        return Database(default_path(), **options)
    if isinstance(target, str) and target == MEMORY:
        return Database(None, **options)
    return Database(target, **options)


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """The Jupyter server extension of this package (imported only by a server)."""
    from pluresdb_lab.server.app import PluresDBApp

    return [{"module": "pluresdb_lab.server.app", "app": PluresDBApp}]
