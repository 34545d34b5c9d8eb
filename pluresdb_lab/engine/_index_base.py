"""What every index shares: its definition, its statistics and how it follows writes.

An index is built from `db.scan()` the first time it is used, then follows every change
(local or replicated) by queueing it; the queue is applied before the next lookup, so
a lookup never sees stale entries and a bulk load is indexed in one batch.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pluresdb_lab._values import Change, Node


class Host(Protocol):
    """The parts of the Database an index reads."""

    def scan(self, type: str | None = None) -> pa.Table: ...

    def to_arrow(self, type: str | None = None) -> pa.Table: ...


@dataclass
class Stats:
    """Build time and lookup latencies of one index."""

    build_seconds: float = 0.0
    queries: int = 0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=2000))

    def percentile_ms(self, q: float) -> float | None:
        if not self.latencies:
            return None
        return float(np.percentile(np.fromiter(self.latencies, dtype=np.float64), q)) * 1000


class Index:
    """Base class: definition, pending changes and statistics; subclasses index."""

    kind = ""

    def __init__(
        self, name: str, type_name: str | None, fields: list[str], params: dict[str, Any]
    ) -> None:
        self.name = name
        self.type = type_name
        self.fields = fields
        self.params = params
        self.stats = Stats()
        self.built = False
        self._pending: dict[str, Node | None] = {}

    def definition(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "type": self.type,
            "fields": self.fields,
            "params": self.params,
        }

    def covers(self, type_name: str | None) -> bool:
        if self.type is None:
            return type_name is None or not type_name.startswith("_")
        return type_name == self.type

    def on_change(self, change: Change) -> None:
        """Queue a change; an unbuilt index ignores it (its build scans current state)."""
        if not self.built:
            return
        keep = change.kind == "put" and change.node is not None and self.covers(change.type)
        self._pending[change.id] = change.node if keep else None

    def ready(self, host: Host) -> None:
        """Build if never built, then apply queued changes."""
        if not self.built:
            started = time.perf_counter()
            self.build(host.scan(self.type) if self.type else untyped(host.scan()))
            self.stats.build_seconds = time.perf_counter() - started
            self.built = True
            self._pending.clear()
        if self._pending:
            pending, self._pending = self._pending, {}
            self.apply(pending)

    @contextmanager
    def timed(self) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.stats.queries += 1
            self.stats.latencies.append(time.perf_counter() - started)

    def describe(self) -> dict[str, Any]:
        return self.definition() | {
            "built": self.built,
            "entries": self.entries() if self.built else None,
            "memory_bytes": self.memory_bytes() if self.built else None,
            "build_seconds": self.stats.build_seconds,
            "queries": self.stats.queries,
            "latency_p50_ms": self.stats.percentile_ms(50),
            "latency_p95_ms": self.stats.percentile_ms(95),
        }

    def build(self, rows: pa.Table) -> None:
        raise NotImplementedError

    def apply(self, pending: dict[str, Node | None]) -> None:
        raise NotImplementedError

    def entries(self) -> int:
        raise NotImplementedError

    def memory_bytes(self) -> int:
        raise NotImplementedError


def untyped(rows: pa.Table) -> pa.Table:
    """Rows of user types: an index without a type leaves reserved ones (edges) out."""
    types = rows.column("type")
    reserved = pc.fill_null(pc.starts_with(types, "_"), False)
    return rows.filter(pc.invert(reserved))
