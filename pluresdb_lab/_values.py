"""The values a database takes and hands back, shared by the embedded engine and
`RemoteDatabase`: nodes, versions, changes, conflicts, reports, search hits, profiler
measurements, and the small types of the API's arguments (`Direction`, `Progress`, `Op`).

Plain dataclasses over the standard library and numpy (a node's vector), so the remote
client builds them without loading the engine (DuckDB, hnswlib, tantivy, networkx).
The engine's modules import them from here; `pluresdb_lab` and `pluresdb_lab.engine`
re-export them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

EDGE_TYPE = "_edge"
"""The reserved type of edge nodes (`link`)."""

Direction = Literal["out", "in", "both"]

IndexKind = Literal["vector", "text", "numeric", "composite"]
"""The kinds of index `create_index` builds."""

ConflictSide = Literal["winner", "loser"]
"""Which value of a conflict `resolve_conflict` keeps."""
"""Which edges of a node count: those leaving it, those reaching it, or both."""

Op = dict[str, Any]
"""One replication op: an opaque, msgpack-able dict (`ops_since`, `apply_ops`)."""

Progress = Callable[[int, int], object]
"""progress(done, total); returning False cancels the operation."""


def to_datetime(seconds: float) -> datetime:
    """Epoch seconds as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)


# -- nodes, history, changes, conflicts ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Node:
    """A node as it is now: id, type, data fields, optional vector, time of its
    latest version (UTC) and that version's number."""

    id: str
    type: str | None
    data: dict[str, Any]
    vector: npt.NDArray[np.float32] | None = field(default=None, compare=False)
    time: datetime | None = None
    version: int = 0

    @property
    def is_edge(self) -> bool:
        return self.type == EDGE_TYPE


@dataclass(frozen=True, slots=True)
class Version:
    """One visible version of a node in its history."""

    version: int
    time: datetime
    origin: str
    type: str | None
    data: dict[str, Any]
    deleted: bool


@dataclass(frozen=True, slots=True)
class FieldChange:
    """How one field differs between two versions of a node."""

    field: str
    change: Literal["added", "removed", "changed"]
    old: Any  # None when added
    new: Any  # None when removed


@dataclass(frozen=True, slots=True)
class FieldClock:
    """One field of a node's CRDT state: its value (None for a deleted field, whose
    tombstone keeps the clock) and the write that set it, ordered by (hlc, origin)."""

    field: str
    value: Any
    deleted: bool
    hlc: int
    time: datetime
    origin: str
    conflicts: int  # concurrent writes this one won over (see `conflicts(id)`)


@dataclass(frozen=True, slots=True)
class CrdtState:
    """What merging decides for one node: each field's winning write, whether the node
    exists (its last put is newer than its last delete), and its version vector (peer ->
    how many of that peer's writes to this node are merged here)."""

    id: str
    exists: bool
    type: str | None
    fields: list[FieldClock]
    version_vector: dict[str, int]


@dataclass(frozen=True, slots=True)
class Change:
    """What a subscriber is told after a node changed, locally or from a peer."""

    id: str
    type: str | None
    kind: str  # "put" or "delete"
    node: Node | None
    origin: str
    local: bool


@dataclass(frozen=True, slots=True)
class WriteInfo:
    """One side of a conflict: the value a peer wrote and its clock."""

    value: Any
    peer: str
    hlc: int

    @property
    def time(self) -> datetime:
        return to_datetime((self.hlc >> 16) / 1000)


@dataclass(frozen=True, slots=True)
class Conflict:
    """Concurrent writes to one field: `winner` is what LWW kept, `loser` the other."""

    id: str
    node_id: str
    field: str
    winner: WriteInfo
    loser: WriteInfo


class Subscription:
    """A change callback; `cancel()` stops it."""

    def __init__(
        self,
        callback: Callable[[Change], None],
        node_id: str | None,
        type_name: str | None,
        drop: Callable[[Subscription], None],
    ) -> None:
        self.callback = callback
        self.node_id = node_id
        self.type_name = type_name
        self._drop = drop
        self.active = True

    def wants(self, change: Change) -> bool:
        return (self.node_id is None or change.id == self.node_id) and (
            self.type_name is None or change.type == self.type_name
        )

    def cancel(self) -> None:
        if self.active:
            self.active = False
            self._drop(self)


# -- storage ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What opening the database found in its write-ahead log."""

    replayed_records: int
    torn_bytes: int
    wal_file: str | None


@dataclass(frozen=True, slots=True)
class CompactionReport:
    """What one compaction did, measured on the segments it read and wrote."""

    level: int | None
    segments_before: int
    segments_after: int
    bytes_before: int
    bytes_after: int
    rows_before: int
    rows_after: int
    duration_s: float


@dataclass(frozen=True, slots=True)
class LevelStats:
    """Segments of one compaction level."""

    level: int
    segments: int
    bytes: int
    rows: int


@dataclass(frozen=True, slots=True)
class StorageStats:
    """What the Storage tab shows; every figure is measured, none estimated from config."""

    total_bytes: int  # the database folder on disk (memory: bytes held in Arrow tables)
    used_bytes: int  # segment bytes holding each node's newest version, plus the WAL
    superseded_bytes: int  # segment bytes holding older versions (history)
    free_bytes: int  # free space on the folder's filesystem (memory: 0)
    nodes: int
    keys: int  # distinct field names over current nodes
    levels: list[LevelStats] = field(default_factory=list)
    wal_bytes: int = 0
    compaction_level: int = 0  # deepest level holding data
    write_amplification: float = 0.0  # bytes written to segments / bytes written by users
    space_amplification: float = 0.0  # segment bytes / bytes of newest versions
    segments: int = 0
    compactions: int = 0
    in_memory: bool = False


@dataclass(frozen=True, slots=True)
class Backup:
    """One backup in a destination folder."""

    id: str
    path: Path
    kind: str  # "full" or "incremental"
    base: str | None  # the backup an incremental builds on
    created: datetime
    size: int  # bytes of this backup's own files
    nodes: int
    checksums: dict[str, str] = field(default_factory=dict)  # file -> sha256
    segments: list[str] = field(default_factory=list)  # every segment the state needs
    status: str = "complete"  # or "incomplete" (interrupted while being written)


@dataclass(frozen=True, slots=True)
class Verification:
    """The result of `verify_backup`: ok, or the list of what is wrong."""

    ok: bool
    problems: list[str]
    backup: Backup | None
    files_checked: int


# -- search and graph ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VectorHit:
    """A nearest neighbour: id, score (higher is closer: cosine similarity, inner
    product, or minus the squared L2 distance) and the node."""

    id: str
    score: float
    node: Node


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A text match: id, BM25 score, an HTML snippet (`<b>` around matches), the node."""

    id: str
    score: float
    snippet: str
    node: Node


@dataclass(frozen=True, slots=True)
class SearchResult:
    """Text search results: the top hits, how many matched, and facet counts."""

    hits: list[SearchHit]
    total: int
    facets: dict[str, dict[str, int]]


@dataclass(frozen=True, slots=True)
class Hop:
    """A node reached by `traverse`: its id, how many edges away, and from which node."""

    id: str
    depth: int
    parent: str | None


# -- profiler -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SlowOp:
    """An operation that took at least the slow threshold."""

    op: str
    duration_ms: float
    time: float  # unix seconds when it ended
    detail: str  # node id; query spec or SQL text (at most 500 characters); path


@dataclass(frozen=True, slots=True)
class LargeNode:
    """A node read or written since the profiler started: its stored JSON bytes when
    last seen, and how many reads and writes moved it."""

    id: str
    type: str | None
    bytes: int
    reads: int
    writes: int


@dataclass(frozen=True, slots=True)
class Talker:
    """A peer and what its mesh links carried (the links' live counters)."""

    peer_id: str
    bytes_in: int
    bytes_out: int
    messages_in: int
    messages_out: int


@dataclass(frozen=True, slots=True)
class TrendPoint:
    """The operations of one second: how many, their rate and latency percentiles."""

    time: float  # start of the second, unix seconds
    ops: int
    ops_per_s: float  # ops over the part of the second that has passed (all of it, once over)
    p50_ms: float
    p95_ms: float
    p99_ms: float


@dataclass(frozen=True, slots=True)
class Suggestion:
    """One suggestion: what to do, how urgent, why (with the numbers), and how.

    `action` is what `Profiler.apply` performs: {"create_index": {kind, type, fields}}
    or {"compact": {"level": 0}}; a split_node action ({"split_node": {...},
    "manual": <what to do>}) is for a person to carry out.
    """

    id: str
    kind: str
    priority: str
    reason: str
    action: dict[str, Any]


# -- mesh ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeerIdentity:
    """Who this database is on the mesh: peer id and Ed25519 public key (hex)."""

    peer_id: str
    public_key: str
