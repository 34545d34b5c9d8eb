"""The embedded database engine. Imports nothing from Jupyter."""

from pluresdb_lab.engine._backup import (
    Backup,
    Verification,
    backups_beside,
    restore_backup,
    verify_backup,
)
from pluresdb_lab.engine._compaction import CompactionReport
from pluresdb_lab.engine._database import Database
from pluresdb_lab.engine._graph import Hop
from pluresdb_lab.engine._instrument import Event, Instrumentation
from pluresdb_lab.engine._model import Change, Conflict, Node, Subscription, Version, WriteInfo
from pluresdb_lab.engine._profiler import LargeNode, Profiler, SlowOp, Talker, TrendPoint
from pluresdb_lab.engine._search_api import SearchHit, SearchResult, VectorHit
from pluresdb_lab.engine._snapshot import Snapshot
from pluresdb_lab.engine._stats import LevelStats, StorageStats
from pluresdb_lab.engine._store import RecoveryReport
from pluresdb_lab.engine._suggestions import Suggestion

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
