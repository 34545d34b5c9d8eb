"""The embedded database engine. Imports nothing from Jupyter."""

from pluresdb_lab.engine._database import Database
from pluresdb_lab.engine._instrument import Event, Instrumentation
from pluresdb_lab.engine._model import Change, Conflict, Node, Subscription, Version, WriteInfo
from pluresdb_lab.engine._snapshot import Snapshot
from pluresdb_lab.engine._store import RecoveryReport

__all__ = [
    "Change",
    "Conflict",
    "Database",
    "Event",
    "Instrumentation",
    "Node",
    "RecoveryReport",
    "Snapshot",
    "Subscription",
    "Version",
    "WriteInfo",
]
