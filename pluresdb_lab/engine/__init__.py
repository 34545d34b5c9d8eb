"""The embedded database engine. Imports nothing from Jupyter.

Its values live in `pluresdb_lab._values` (light enough for the remote client) and are
re-exported here.
"""

from pluresdb_lab._api import backups_beside
from pluresdb_lab._values import (
    Backup,
    Change,
    CompactionReport,
    Conflict,
    Hop,
    LargeNode,
    LevelStats,
    Node,
    RecoveryReport,
    SearchHit,
    SearchResult,
    SlowOp,
    StorageStats,
    Subscription,
    Suggestion,
    Talker,
    TrendPoint,
    VectorHit,
    Verification,
    Version,
    WriteInfo,
)
from pluresdb_lab.engine._backup import restore_backup, verify_backup
from pluresdb_lab.engine._database import Database
from pluresdb_lab.engine._instrument import Event, Instrumentation
from pluresdb_lab.engine._profiler import Profiler
from pluresdb_lab.engine._snapshot import Snapshot

__all__ = [
    "Backup",
    "Change",
    "CompactionReport",
    "Conflict",
    "Database",
    "Event",
    "Hop",
    "Instrumentation",
    "LargeNode",
    "LevelStats",
    "Node",
    "Profiler",
    "RecoveryReport",
    "SearchHit",
    "SearchResult",
    "SlowOp",
    "Snapshot",
    "StorageStats",
    "Subscription",
    "Suggestion",
    "Talker",
    "TrendPoint",
    "VectorHit",
    "Verification",
    "Version",
    "WriteInfo",
    "backups_beside",
    "restore_backup",
    "verify_backup",
]
