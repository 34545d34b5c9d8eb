"""The one definition of a PluresDB database's public API: `DatabaseAPI` (what
`connect` returns) and `SnapshotAPI` (what `as_of` returns), with their documentation.

The embedded `Database` (the engine) and `RemoteDatabase` (the HTTP client) both
subclass them, so the type checker holds each implementation to these signatures, and
tests/engine/test_interface.py checks them parameter by parameter. What can be written
once on top of the other methods (`to_pandas`, `panel`, the context manager, a
snapshot's refused writes) is written here. The mesh's and profiler's shared calls are
the protocols `MeshAPI` and `ProfilerAPI`.
"""

from __future__ import annotations

import abc
import builtins
import os
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, Protocol, Self

import numpy as np

from pluresdb_lab._values import (
    Backup,
    Change,
    CompactionReport,
    Conflict,
    ConflictSide,
    CrdtState,
    Direction,
    FieldChange,
    Hop,
    IndexKind,
    LargeNode,
    Node,
    Op,
    PeerIdentity,
    Progress,
    RecoveryReport,
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
)
from pluresdb_lab.errors import ReadOnlyError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from pluresdb_lab.mesh import PeerInfo, SnapshotInfo
    from pluresdb_lab.mesh._log import Entry
    from pluresdb_lab.widgets import Panel

__all__ = ["EMBEDDED_ONLY", "REMOTE_ONLY", "DatabaseAPI", "MeshAPI", "ProfilerAPI", "SnapshotAPI"]

EMBEDDED_ONLY = frozenset({"on_op", "scan", "instrumentation", "identity", "to_networkx"})
"""Public names only the embedded Database has (see DatabaseAPI's docstring)."""

REMOTE_ONLY = frozenset({"url", "max_body_bytes"})
"""Public names only RemoteDatabase has (see DatabaseAPI's docstring)."""


def backups_beside(folder: str | os.PathLike[str]) -> Path:
    """Where backups of the database in `folder` go unless told otherwise: the sibling
    folder `<folder>-backups` (backups must lie outside the database folder; a server
    allows this folder without configuration)."""
    path = Path(folder)
    return path.parent / f"{path.name}-backups"


class MeshAPI(Protocol):
    """The calls of `db.mesh` that an embedded `Mesh` and a served database's mesh
    (`client.RemoteMesh`) share. Listening, `configure`, `allow` and `bootstrap` are
    the embedded mesh's own (a server's operator configures its mesh)."""

    @property
    def identity(self) -> PeerIdentity:
        """This database's peer id and Ed25519 public key."""
        ...

    @property
    def paused(self) -> bool:
        """Whether syncing is paused (`pause`, `resume`)."""
        ...

    def peers(self) -> list[PeerInfo]:
        """Every link with its state and counters."""
        ...

    def connect(self, url: str, *, peer_id: str | None = None) -> None:
        """Keep a link to the peer at `url` (a `ws://.../pluresdb/mesh` endpoint)."""
        ...

    def disconnect(self, peer_id: str) -> None:
        """Close the links to `peer_id` and stop dialing it."""
        ...

    def sync(self, peer_id: str | None = None) -> None:
        """Run a sync round with one peer, or with all."""
        ...

    def pause(self) -> None:
        """Stop sending and applying ops until `resume`."""
        ...

    def resume(self) -> None:
        """Sync again, catching up on what paused links missed."""
        ...

    def logs(self, limit: int = 200, level: str | None = None) -> list[Entry]:
        """The newest `limit` log entries, optionally only `level` and above."""
        ...

    def snapshot(self) -> SnapshotInfo:
        """Write every op and the matching version vector to a new snapshot file."""
        ...

    def snapshots(self) -> list[SnapshotInfo]:
        """The snapshot files, oldest first."""
        ...

    def delete_snapshot(self, snapshot_id: str) -> None:
        """Delete one snapshot file (NotFoundError when there is none with that id)."""
        ...


class ProfilerAPI(Protocol):
    """The calls of `db.profiler`: the engine's `Profiler` in process, and
    `client.RemoteProfiler` over a server's REST API."""

    @property
    def slow_threshold_ms(self) -> float:
        """Operations taking at least this many milliseconds are slow (default 100)."""
        ...

    @slow_threshold_ms.setter
    def slow_threshold_ms(self, value: float) -> None: ...

    def slow_ops(self, limit: int = 100) -> list[SlowOp]:
        """The newest `limit` slow operations, newest first."""
        ...

    def large_nodes(self, limit: int = 20) -> list[LargeNode]:
        """The `limit` largest nodes read or written since the profiler started."""
        ...

    def top_talkers(self, limit: int = 10) -> list[Talker]:
        """Peers by bytes their mesh links carried in and out, most first."""
        ...

    def trends(self, window_s: float = 300) -> list[TrendPoint]:
        """One point per second that had operations, over the last `window_s` seconds."""
        ...

    def suggestions(self) -> list[Suggestion]:
        """What the measurements suggest doing, most urgent first."""
        ...

    def apply(self, suggestion_id: str) -> dict[str, Any]:
        """Do what a suggestion says (create its index, compact); returns what was done."""
        ...

    def dismiss(self, suggestion_id: str) -> None:
        """Stop offering a suggestion (until `reset`)."""
        ...

    def reset(self) -> None:
        """Forget every measurement and dismissal; the slow threshold stays."""
        ...


class SnapshotAPI(abc.ABC):
    """A read-only view of a database as it was at one moment (`DatabaseAPI.as_of`):
    the newest version of each node committed at or before `time`. Its writes (`put`,
    `put_many`, `delete`, `link`, `unlink`, `restore`) raise ReadOnlyError.

    Attributes:
        time: the moment viewed (UTC).
    """

    time: datetime

    @abc.abstractmethod
    def get(self, id: str) -> Node | None:
        """The node with this id at `time`, or None.

        Args:
            id: the node id.

        Returns:
            The node as it was, or None when it did not exist then.
        """

    @abc.abstractmethod
    def list(
        self, type: str | None = None, limit: int = 100, offset: int = 0
    ) -> builtins.list[Node]:
        """Nodes at `time`, sorted by id.

        Args:
            type: only nodes of this type; None lists every node.
            limit: how many nodes at most.
            offset: how many nodes to skip first.

        Returns:
            Up to `limit` nodes from position `offset`.
        """

    @abc.abstractmethod
    def count(self, type: str | None = None) -> int:
        """How many nodes (of one type, when given) existed at `time`."""

    @abc.abstractmethod
    def types(self) -> dict[str | None, int]:
        """Node count per type at `time` (None for untyped nodes)."""

    @abc.abstractmethod
    def to_arrow(self, type: str | None = None) -> pa.Table:
        """The nodes at `time` as an Arrow table, as `DatabaseAPI.to_arrow`.

        Args:
            type: one type's nodes with a typed column per field; None: every node,
                with columns id, type, time and data (JSON text).
        """

    @abc.abstractmethod
    def sql(
        self, query: str, params: builtins.list[Any] | dict[str, Any] | None = None
    ) -> pa.Table:
        """Run SQL (DuckDB) over the nodes at `time`, as `DatabaseAPI.sql`.

        Args:
            query: the SQL text; one view per type, and `nodes`.
            params: values for the query's placeholders (`?` or `$name`).
        """

    def to_pandas(self, type: str | None = None) -> pd.DataFrame:
        """`to_arrow(type)` as a pandas DataFrame."""
        frame: pd.DataFrame = self.to_arrow(type).to_pandas()
        return frame

    def _read_only(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise ReadOnlyError(
            f"this is a read-only view of the database as of {self.time.isoformat()}; "
            "write to the database itself (use db.restore to bring back an old version)"
        )

    put = put_many = delete = link = unlink = restore = _read_only


class DatabaseAPI(abc.ABC):
    """The public API of a PluresDB database, embedded or remote.

    `pluresdb_lab.connect` returns one: the embedded `pluresdb_lab.Database` (a folder,
    or memory) or `pluresdb_lab.client.RemoteDatabase` (a server's database over HTTP,
    where paths name files on the server's machine and `progress=` callbacks are
    refused). Both raise the same `pluresdb_lab.errors` classes for the same input.

    Some names are not part of this interface, since only one side can offer them
    (`EMBEDDED_ONLY`, `REMOTE_ONLY`):

    - embedded only: `on_op(callback)` (every op applied, local or from a peer: what
      the mesh streams), `scan(type)` (current rows as stored: id, type, data as JSON
      text, vector bytes, written), `instrumentation` (every operation's timing events;
      a server's show in its profiler), `identity` (the Ed25519 key the peer id is a
      hash of), and `to_networkx()` (the graph as a networkx MultiDiGraph).
    - remote only: `url` (the server's API base URL) and `max_body_bytes` (the server's
      request body limit; a larger call raises InvalidDataError before sending).

    Attributes:
        reports_progress: whether long calls (`compact`, `backup`, `restore_backup`,
            `import_file`) call `progress(done, total)` as they go and stop when it
            returns False: True in process, False remotely (they take no callback).
        path: the database folder (on the server's machine for a RemoteDatabase);
            None in memory.
        peer_id: this database's id among peers (stable per folder).
        fsync: the write-ahead log's policy: "always", "interval" or "off".
        max_node_bytes: the largest node, in bytes of JSON.
        closed: whether `close` was called.
        recovery: what opening the database replayed from its write-ahead log.
    """

    reports_progress: ClassVar[bool]
    path: Path | None
    peer_id: str
    fsync: str
    max_node_bytes: int
    closed: bool
    recovery: RecoveryReport

    # -- nodes -------------------------------------------------------------------------

    @abc.abstractmethod
    def put(
        self,
        id: str,
        data: dict[str, Any],
        *,
        type: str | None = None,
        vector: Sequence[float] | np.ndarray[Any, Any] | None = None,
    ) -> Node:
        """Merge `data` into node `id`, creating it if needed (a merge patch).

        Args:
            id: the node id (a non-empty string).
            data: fields to set; a field given as None is deleted.
            type: the node's type; None keeps the current one.
            vector: an embedding; its length is fixed per type by the first vector.

        Returns:
            The node after the write.
        """

    @abc.abstractmethod
    def put_many(
        self,
        records: Iterable[dict[str, Any]] | pd.DataFrame | pa.Table,
        *,
        type: str | None = None,
        id_field: str = "id",
        vector_field: str | None = None,
    ) -> int:
        """Write many nodes in one operation, all or nothing.

        Args:
            records: a list of dicts, a pandas DataFrame or an Arrow table. Each record's
                `id_field` is the node id, `vector_field` (if given) its vector, and every
                other key a data field (a missing value deletes that field, as in `put`).
                An id may appear once per call.
            type: the type of every node written (None keeps existing types).
            id_field: the key or column holding node ids.
            vector_field: the key or column holding vectors.

        Returns:
            How many nodes were written.
        """

    @abc.abstractmethod
    def get(self, id: str) -> Node | None:
        """The node with this id, or None when there is none."""

    @abc.abstractmethod
    def get_many(self, ids: Iterable[str]) -> builtins.list[Node | None]:
        """Many nodes at once.

        Args:
            ids: the node ids (a list, not one id).

        Returns:
            The nodes in the order of `ids`, None where there is no such node.
        """

    @abc.abstractmethod
    def delete(self, id: str) -> bool:
        """Delete node `id` and the edges that touch it.

        Returns:
            False when there was no such node.
        """

    @abc.abstractmethod
    def count(self, type: str | None = None) -> int:
        """How many nodes (of one type, when given) exist."""

    @abc.abstractmethod
    def types(self) -> dict[str | None, int]:
        """Node count per type (None for untyped nodes; "_edge" once edges exist)."""

    @abc.abstractmethod
    def list(
        self, type: str | None = None, limit: int = 100, offset: int = 0
    ) -> builtins.list[Node]:
        """Nodes sorted by id.

        Args:
            type: only nodes of this type; None lists every node.
            limit: how many nodes at most.
            offset: how many nodes to skip first.

        Returns:
            Up to `limit` nodes from position `offset`.
        """

    # -- edges -------------------------------------------------------------------------

    @abc.abstractmethod
    def link(self, src: str, dst: str, label: str, data: dict[str, Any] | None = None) -> Node:
        """Create (or update) the edge `src -[label]-> dst`; both nodes must exist.

        Args:
            src: the id of the node the edge leaves.
            dst: the id of the node the edge reaches.
            label: the edge's label (a non-empty string).
            data: the edge's own fields (not "from", "to" or "label").

        Returns:
            The edge: a node of type "_edge" whose data holds "from", "to", "label" and
            `data`.
        """

    @abc.abstractmethod
    def unlink(self, src: str, dst: str, label: str) -> bool:
        """Remove the edge `src -[label]-> dst`.

        Returns:
            False when there was no such edge.
        """

    @abc.abstractmethod
    def neighbors(
        self, id: str, label: str | None = None, direction: Direction = "out"
    ) -> builtins.list[Node]:
        """Nodes one edge away from node `id`.

        Args:
            id: the node id (NotFoundError when there is no such node).
            label: only edges with this label; None follows every edge.
            direction: "out" (edges leaving `id`), "in" (reaching it) or "both".

        Returns:
            The neighbours, sorted by id.
        """

    # -- changes -----------------------------------------------------------------------

    @abc.abstractmethod
    def subscribe(
        self, callback: Callable[[Change], None], *, id: str | None = None, type: str | None = None
    ) -> Subscription:
        """Call `callback(change)` after every change (local or replicated) that matches.

        Args:
            callback: called with a `Change` (id, type, kind "put" or "delete", node,
                origin, local); in process right after the write, remotely on a thread
                reading the server's change feed.
            id: only changes of this node.
            type: only changes of nodes of this type.

        Returns:
            The subscription; its `cancel()` stops the calls.
        """

    # -- history, time travel and conflicts ------------------------------------------

    @abc.abstractmethod
    def history(self, id: str) -> builtins.list[Version]:
        """Every visible version of node `id`, oldest first (NotFoundError when there
        never was such a node)."""

    @abc.abstractmethod
    def restore(self, id: str, version: int) -> Node:
        """Make an old version of a node current again, as a new version.

        Args:
            id: the node id.
            version: the version number, as in `history(id)`.

        Returns:
            The node after the write.
        """

    @abc.abstractmethod
    def diff(self, id: str, a: int, b: int) -> builtins.list[FieldChange]:
        """How the data of node `id` differs from version `a` to version `b`.

        Args:
            id: the node id.
            a: the earlier version number, as in `history(id)`.
            b: the later version number.

        Returns:
            One entry per field added, removed or changed, sorted by field name
            (NotFoundError for an unknown node or version).
        """

    @abc.abstractmethod
    def crdt_state(self, id: str) -> CrdtState:
        """The merge state of node `id`: each field's value with the clock and origin
        peer of the write that set it, and the node's version vector (NotFoundError
        when there never was such a node)."""

    @abc.abstractmethod
    def as_of(self, when: datetime | float | int) -> SnapshotAPI:
        """A read-only view of the database as it was at a moment.

        Args:
            when: a datetime, or epoch seconds.

        Returns:
            The snapshot: get, list, count, types, to_arrow, to_pandas and sql.
        """

    @abc.abstractmethod
    def conflicts(self, id: str | None = None) -> builtins.list[Conflict]:
        """Concurrent writes to one field that last-writer-wins resolved, with both
        sides (`winner` kept, `loser` set aside).

        Args:
            id: only this node's conflicts; None lists every open conflict.
        """

    @abc.abstractmethod
    def resolve_conflict(self, conflict_id: str, choose: ConflictSide = "winner") -> Node:
        """Settle a conflict by writing the chosen side's value.

        Args:
            conflict_id: a `Conflict.id`.
            choose: "winner" or "loser".

        Returns:
            The node after the write.
        """

    # -- analytics ---------------------------------------------------------------------

    @abc.abstractmethod
    def to_arrow(self, type: str | None = None) -> pa.Table:
        """Current nodes as an Arrow table.

        Args:
            type: one type's nodes, with columns id, time, then one typed column per
                data field; None: every node, with columns id, type, time and data
                (JSON text).
        """

    def to_pandas(self, type: str | None = None) -> pd.DataFrame:
        """`to_arrow(type)` as a pandas DataFrame."""
        frame: pd.DataFrame = self.to_arrow(type).to_pandas()
        return frame

    @abc.abstractmethod
    def sql(
        self, query: str, params: builtins.list[Any] | dict[str, Any] | None = None
    ) -> pa.Table:
        """Run SQL (DuckDB) over the current nodes.

        Args:
            query: the SQL text. Each type is a view of its own (typed columns), and
                the view `nodes` has every node (id, type, time, data as JSON text).
            params: values for the query's placeholders (`?` or `$name`).

        Returns:
            The result as an Arrow table.
        """

    # -- replication -------------------------------------------------------------------

    @abc.abstractmethod
    def version_vector(self) -> dict[str, int]:
        """Peer id -> the highest sequence number applied from that peer."""

    @abc.abstractmethod
    def ops_since(self, version_vector: dict[str, int] | None = None) -> builtins.list[Op]:
        """Every op this database holds that a version vector does not cover.

        Args:
            version_vector: what the receiver has (its `version_vector()`); None or {}
                for everything.

        Returns:
            Opaque, msgpack-able op dicts for the receiver's `apply_ops`.
        """

    @abc.abstractmethod
    def apply_ops(self, ops: Iterable[Op]) -> int:
        """Apply ops from peers, in any order; duplicates are ignored.

        Args:
            ops: ops from another database's `ops_since` (InvalidOpError when one is
                malformed, and then none is applied).

        Returns:
            How many were applied now (an op that arrives before its predecessors waits
            for them).
        """

    # -- storage -----------------------------------------------------------------------

    @abc.abstractmethod
    def flush(self) -> None:
        """Write the memtable into a segment now."""

    @abc.abstractmethod
    def storage_stats(self) -> StorageStats:
        """Sizes, levels and amplification of the storage, measured now."""

    @abc.abstractmethod
    def compact(
        self, level: int | None = None, *, progress: Progress | None = None
    ) -> CompactionReport:
        """Compact now: merge one level into the next, or (None) flush and merge every
        segment into one, dropping history older than the retention horizon.

        Args:
            level: the level to merge down, or None for a full compaction.
            progress: called as progress(done, total) in rows; return False to cancel
                (the database is left as it was). Embedded only (`reports_progress`).

        Returns:
            Segments, bytes and rows before and after, and the duration.
        """

    @abc.abstractmethod
    def backup(
        self,
        dest: str | os.PathLike[str],
        *,
        incremental: bool = False,
        progress: Progress | None = None,
    ) -> Backup:
        """Back the database up into a folder of backups while writes continue.

        Args:
            dest: a folder of backups (created if needed), outside the database folder;
                each backup is a subfolder.
            incremental: copy only the segments the newest complete backup in `dest`
                lacks.
            progress: progress(bytes_done, bytes_total); return False to cancel (the
                half-made backup is removed). Embedded only (`reports_progress`).

        Returns:
            The backup written.
        """

    @abc.abstractmethod
    def backups(self, dest: str | os.PathLike[str]) -> builtins.list[Backup]:
        """The backups in the folder `dest`, oldest first (interrupted ones listed with
        status "incomplete")."""

    @abc.abstractmethod
    def verify_backup(self, path: str | os.PathLike[str]) -> Verification:
        """Check that the backup in the folder `path` is complete and undamaged, as
        `pluresdb_lab.verify_backup` does, on the database's machine.

        Returns:
            ok, the problems found, the backup, and how many files were checked.
        """

    @abc.abstractmethod
    def restore_backup(
        self,
        path: str | os.PathLike[str],
        into: str | os.PathLike[str],
        *,
        overwrite: bool = False,
        progress: Progress | None = None,
    ) -> Path:
        """Verify a backup, then restore it into a folder, as
        `pluresdb_lab.restore_backup` does, on the database's machine, except that
        `into` may not be this database's folder or lie inside it: the open database is
        never replaced. The restored copy gets a new peer identity.

        Args:
            path: the backup's folder (a `Backup.path` from `backups`).
            into: a new or empty folder; a database folder only with `overwrite`.
            overwrite: replace the (closed) database in `into`.
            progress: progress(bytes_done, bytes_total); return False to cancel.
                Embedded only (`reports_progress`).

        Returns:
            The folder restored into, which `pluresdb_lab.connect` opens.
        """

    @abc.abstractmethod
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
        """Import a CSV, JSON (an array), NDJSON, Parquet or Arrow IPC file, all or
        nothing.

        Args:
            path: the file.
            format: "csv", "json", "ndjson", "parquet" or "arrow"; None: from the
                file's extension.
            type: the type of every imported node (else a `_type` column, if present).
            id_field: the column holding ids; None generates ids.
            mapping: {source column: field name, or None to skip the column}.
            progress: progress(done, total) while reading; return False to cancel.
                Embedded only (`reports_progress`).

        Returns:
            The number of nodes written. A bad row raises an error naming the file, the
            row and the reason, and nothing is written.
        """

    @abc.abstractmethod
    def export(
        self,
        path: str | os.PathLike[str],
        format: str | None = None,
        *,
        type: str | None = None,
        query: str | None = None,
    ) -> int:
        """Export nodes, or a SQL result, to a file.

        Args:
            path: the file written.
            format: as for `import_file`; None: from the file's extension.
            type: export this type's nodes (`id` and typed field columns); None exports
                every node with a `_type` column, which `import_file` reads back.
            query: a SQL query (as for `sql`) whose result is exported instead.

        Returns:
            The number of rows written.
        """

    # -- indexes, search and queries ---------------------------------------------------

    @abc.abstractmethod
    def create_index(
        self,
        kind: IndexKind,
        *,
        name: str | None = None,
        type: str | None = None,
        fields: str | Sequence[str] | None = None,
        **params: Any,
    ) -> dict[str, Any]:
        """Create and build an index.

        Args:
            kind: "vector" (hnswlib; params space="cosine"|"l2"|"ip", M, ef_construction,
                ef, and embedder="lexical"|"st:<model>" when `fields` are embedded),
                "text" (tantivy BM25 over `fields`), "numeric" (one field) or
                "composite" (several fields: equality on a prefix, range on the next).
            name: defaults to kind_type_fields.
            type: the node type indexed; None indexes every user type (vector, text).
            fields: the indexed fields. A vector index without fields indexes node
                vectors; with fields it embeds their text.
            **params: the kind's parameters, as above.

        Returns:
            The index's description, as in `indexes()`.
        """

    @abc.abstractmethod
    def drop_index(self, name: str) -> None:
        """Remove an index and its saved files (IndexNotFoundError when there is none)."""

    @abc.abstractmethod
    def indexes(self) -> builtins.list[dict[str, Any]]:
        """Every index: definition, entries, build time, memory, query count and p50/p95
        latency."""

    @abc.abstractmethod
    def vector_search(
        self,
        query: Any,
        k: int = 10,
        *,
        filter: dict[str, Any] | None = None,
        index: str | None = None,
    ) -> builtins.list[VectorHit]:
        """The k nodes nearest to a query through a vector index.

        Args:
            query: a vector, a node id (its vector), or text (embedded by the index's
                embedder).
            k: how many nodes (an int >= 1).
            filter: a query-spec filter the nodes must pass; few matching nodes are
                searched exactly, many through HNSW with the filter.
            index: the vector index's name; None when there is only one.

        Returns:
            Hits (id, score: higher is closer, node), nearest first.
        """

    @abc.abstractmethod
    def search(
        self,
        text: str,
        *,
        fields: Sequence[str] | dict[str, float] | None = None,
        type: str | None = None,
        facets: Sequence[Any] | None = None,
        filter: dict[str, Any] | None = None,
        limit: int = 10,
    ) -> SearchResult:
        """BM25 text search through a text index.

        Args:
            text: the query (tantivy syntax: AND/OR, "phrase", field:term; `word*`
                matches a prefix).
            fields: fields to search, or {field: boost}; default every indexed field.
            type: search the text index of this type.
            facets: facet specs: counts over all hits, not just the top.
            filter: a query-spec filter the hits must also pass.
            limit: how many hits to return.

        Returns:
            The top hits (id, score, snippet, node), how many matched, facet counts.
        """

    @abc.abstractmethod
    def query(self, spec: dict[str, Any]) -> pa.Table:
        """Run a JSON query spec (type, filter, vector, text, select, order, limit;
        DESIGN §6); InvalidQueryError names the offending part.

        Returns:
            The result as an Arrow table.
        """

    @abc.abstractmethod
    def explain(self, spec: dict[str, Any]) -> dict[str, Any]:
        """How `query(spec)` runs: access ("scan" or "index"), the index used, estimated
        rows, the text/vector index and the vector plan ("exact", "hnsw",
        "hnsw+filter")."""

    # -- graph -------------------------------------------------------------------------

    @abc.abstractmethod
    def traverse(
        self, start: str, depth: int, label: str | None = None, direction: Direction = "out"
    ) -> builtins.list[Hop]:
        """Nodes within `depth` edges of `start`, breadth first.

        Args:
            start: the node id to start from (included, at depth 0).
            depth: how many edges away at most.
            label: only edges with this label; None follows every edge.
            direction: "out", "in" or "both".

        Returns:
            A hop (id, depth, parent) per node reached.
        """

    @abc.abstractmethod
    def shortest_path(
        self, a: str, b: str, *, label: str | None = None, direction: Direction = "out"
    ) -> builtins.list[str] | None:
        """A path with the fewest edges from node `a` to node `b`.

        Args:
            a: the first node's id.
            b: the last node's id.
            label: only edges with this label; None follows every edge.
            direction: "out", "in" or "both".

        Returns:
            The ids along the path, `a` and `b` included; None when `b` is unreachable.
        """

    @abc.abstractmethod
    def degree(self, id: str, *, label: str | None = None, direction: Direction = "both") -> int:
        """How many edges touch node `id`.

        Args:
            id: the node id.
            label: only edges with this label.
            direction: "out", "in" or "both".
        """

    # -- lifecycle and operations ------------------------------------------------------

    @abc.abstractmethod
    def close(self) -> None:
        """Flush what is pending and release the database (its folder, or the
        connections and change feeds of a remote one). Closing twice is harmless."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    @abc.abstractmethod
    def mesh(self) -> MeshAPI:
        """Peer-to-peer sync of this database: peers, links, sync, snapshots, logs."""

    @property
    @abc.abstractmethod
    def profiler(self) -> ProfilerAPI:
        """Slow operations, large nodes, top talkers, trends and suggestions."""

    def panel(self, name: str, **options: Any) -> Panel:
        """The operations panel called `name` ("mesh", "storage", "profiling") over this
        database, for display in a notebook.

        Args:
            name: which panel.
            **options: the panel's options.
        """
        from pluresdb_lab.widgets import panel  # widgets load anywidget: only when shown

        return panel(self, name, **options)
