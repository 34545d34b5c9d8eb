"""The objects the public API hands back: nodes, versions, changes, conflicts."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

EDGE_TYPE = "_edge"


def to_datetime(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def to_vector(blob: bytes | None) -> npt.NDArray[np.float32] | None:
    return None if blob is None else np.frombuffer(blob, dtype=np.float32).copy()


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


def node_from_row(row: dict[str, Any]) -> Node:
    data = {k: v for k, v in json.loads(row["data"]).items() if v is not None}
    return Node(
        row["id"],
        row["type"],
        data,
        to_vector(row["vector"]),
        to_datetime(row["written"]),
        int(row["version"]),
    )


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
