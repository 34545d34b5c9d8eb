"""The embedded database: the public API of DESIGN §2-5 over one Store.

Every write, local or from a peer, is an op (see `_ops`). A local write is validated,
merged into a copy of the node's state, logged to the WAL, then installed; it is
acknowledged once the WAL policy says it is durable. `apply_ops` runs peers' ops
through the same merge, in per-origin sequence order (early arrivals wait).

`Database` is assembled from one piece per idea, each a mixin over `_apply.Core` (the
shared state and the op application every write and replication path runs through):
`_writes`, `_reads`, `_edges`, `_subscriptions`, `_history`, `_replication`,
`_storage_ops`, and `_search_api` for indexes, search and graph algorithms. This
module keeps construction, the lifecycle, the instrumentation of the search methods
and the profiler's view of the database.

The public API, with its documentation, is `pluresdb_lab._api.DatabaseAPI`, which
`Database` implements; it leaves `mesh` to `pluresdb_lab.Database`, the layer above.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from pluresdb_lab._api import DatabaseAPI
from pluresdb_lab._values import CompactionReport, IndexKind, RecoveryReport
from pluresdb_lab.engine._analytics import SqlRunner
from pluresdb_lab.engine._apply import BULK_ROWS, Merged
from pluresdb_lab.engine._clock import HybridClock
from pluresdb_lab.engine._compaction import Compactor
from pluresdb_lab.engine._edges import EDGE_FIELDS, EdgesMixin, edge_id
from pluresdb_lab.engine._history import HistoryMixin
from pluresdb_lab.engine._identity import Identity
from pluresdb_lab.engine._index_sorted import SortedIndex
from pluresdb_lab.engine._instrument import Instrumentation, measured
from pluresdb_lab.engine._ops import decode_record
from pluresdb_lab.engine._profiler import Profiler
from pluresdb_lab.engine._reads import ReadsMixin
from pluresdb_lab.engine._replication import FRESH_RUN_ROWS, ReplicationMixin
from pluresdb_lab.engine._search_api import SearchMixin
from pluresdb_lab.engine._storage_ops import StorageOpsMixin
from pluresdb_lab.engine._store import Store
from pluresdb_lab.engine._subscriptions import SubscriptionsMixin
from pluresdb_lab.engine._validate import check_fsync, check_options
from pluresdb_lab.engine._writes import WritesMixin
from pluresdb_lab.errors import DatabaseClosedError, InvalidDataError

__all__ = [
    "BULK_ROWS",
    "EDGE_FIELDS",
    "FRESH_RUN_ROWS",
    "Database",
    "Merged",
    "edge_id",
]


class Database(
    WritesMixin,
    ReadsMixin,
    EdgesMixin,
    SubscriptionsMixin,
    HistoryMixin,
    ReplicationMixin,
    StorageOpsMixin,
    SearchMixin,
    DatabaseAPI,
):
    """An embedded PluresDB database; open it with `pluresdb_lab.connect`."""

    reports_progress = True

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        *,
        fsync: str = "interval",
        retention: float | None = None,
        max_node_bytes: int = 1 << 20,
        auto_compact: bool = True,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.fsync = check_fsync(fsync)
        self.max_node_bytes, retention = check_options(max_node_bytes, retention)
        self.instrumentation = Instrumentation()
        self._profiler_host = _ProfilerHost(self)
        self._profiler = Profiler(self._profiler_host)
        self.closed = False
        self._lock = threading.RLock()
        self._store = Store(self.path, self.fsync, retention)
        saved, records, self.recovery = self._store.open()
        compactor: Compactor | None = None
        try:
            self.identity = Identity.load_or_create(self.path)
            self.peer_id = self.identity.peer_id
            if self._store.manifest.get("peer_id") != self.peer_id:
                self._store.remember("peer_id", self.peer_id)
            self._vv = {k: int(v) for k, v in saved.get("vv", {}).items()}
            self._clock = HybridClock(int(saved.get("hlc", 0)))
            self._dims = dict(saved.get("dims", {}))
            self._pending = {}
            self._subscriptions = []
            self._op_listeners = []
            self._counts = None
            self._adjacency = None
            self._conflicted = None
            self._sql = SqlRunner()
            self._visible = None
            self._keys = None  # (write generation, distinct keys)
            for payload in records:
                ops, applied_at = decode_record(payload)
                for op in ops:
                    self._apply(op, applied_at, log_it=False)
            compactor = Compactor(self._store, self._lock, auto=auto_compact)
            self._compactor = compactor
            self._store.on_flush = compactor.nudge
            if records:
                self.recovery = RecoveryReport(
                    len(records), self.recovery.torn_bytes, self.recovery.wal_file
                )
            self._open_indexes()
        except BaseException:
            if compactor is not None:
                compactor.close()
            self._store.release()
            raise

    # -- lifecycle ---------------------------------------------------------------------

    def __repr__(self) -> str:
        where = str(self.path) if self.path else ":memory:"
        return (
            f"<pluresdb_lab.Database {where} peer={self.peer_id}{' closed' if self.closed else ''}>"
        )

    @property
    def profiler(self) -> Profiler:
        return self._profiler

    def close(self) -> None:
        """Flush the WAL and release the folder (and its lock)."""
        with self._lock:
            if self.closed:
                return
            self._close_indexes()
            self.closed = True
        self._compactor.close()
        with self._lock:
            self._store.close(self._saved_state())

    def _open(self) -> None:
        if self.closed:
            raise DatabaseClosedError(
                "this database is closed; open it again with pluresdb_lab.connect()"
            )

    def _saved_state(self) -> dict[str, Any]:
        return {"vv": dict(self._vv), "hlc": self._clock.last, "dims": dict(self._dims)}

    # -- the search mixin's public methods pass the instrumentation point too ----------

    create_index = measured("create_index", about=("kind", "type", "fields"))(
        SearchMixin.create_index
    )
    drop_index = measured("drop_index", about="name")(SearchMixin.drop_index)
    indexes = measured("indexes")(SearchMixin.indexes)
    # not the query itself: events are kept, and a vector would keep kilobytes alive each
    vector_search = measured("vector_search", about=("k", "filter", "index"))(
        SearchMixin.vector_search
    )
    search = measured("search", about=("text", "type", "filter"))(SearchMixin.search)
    query = measured("query", about="spec")(SearchMixin.query)
    explain = measured("explain", about="spec")(SearchMixin.explain)
    traverse = measured("traverse", about="start")(SearchMixin.traverse)
    shortest_path = measured("shortest_path", about=("a", "b"))(SearchMixin.shortest_path)
    degree = measured("degree", about="id")(SearchMixin.degree)
    to_networkx = measured("to_networkx")(SearchMixin.to_networkx)


class _ProfilerHost:
    """What the profiler reads from the database and does to it (`ProfilerHost`):
    engine-internal, so it is kept off Database's own vocabulary. The reads run
    outside the instrumentation (they are not user operations); `create_index` and
    `compact` are the database's own, measured like any call."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @property
    def instrumentation(self) -> Instrumentation:
        return self._db.instrumentation

    @property
    def max_node_bytes(self) -> int:
        return self._db.max_node_bytes

    def level_zero(self) -> tuple[int, int]:
        """How many segments compaction level 0 holds, and their bytes."""
        db = self._db
        with db._lock:
            db._open()
            found = [s for s in db._store.segments if s.level == 0]
            in_memory = db.path is None
            return len(found), sum(s.table.nbytes if in_memory else s.size for s in found)

    def field_kind(self, type_name: str, field: str) -> pa.DataType | None:
        """The Arrow type of a field in a type's typed table; None when no node has it
        (or the name, read from a slow call's spec, is no type name at all)."""
        db = self._db
        with db._lock:
            db._open()
            try:
                schema = db._typed(type_name).schema
            except InvalidDataError:
                return None
        return schema.field(field).type if field in schema.names else None

    def range_fields(self, type_name: str) -> set[str]:
        """Fields of a type that a numeric or composite index serves ranges on."""
        db = self._db
        with db._lock:
            return {
                index.fields[0]
                for index in db._registry.indexes.values()
                if isinstance(index, SortedIndex) and index.type == type_name and index.fields
            }

    def create_index(
        self, kind: IndexKind, *, type: str | None, fields: Sequence[str]
    ) -> dict[str, Any]:
        return self._db.create_index(kind, type=type, fields=fields)

    def compact(self, level: int | None) -> CompactionReport:
        return self._db.compact(level)
