"""The Profiling panel: slow operations, large nodes, top talkers, trends, suggestions.

Everything it shows comes from `db.profiler` (embedded or over REST alike): the
measurements the engine takes at its one instrumentation point, the mesh's link
counters, and the suggestions derived from them, which the user applies or dismisses.
Row lists travel as Arrow tables; suggestions (with their nested action) as JSON.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import traitlets

from pluresdb_lab.errors import InvalidRequestError
from pluresdb_lab.widgets._panel import Panel, Progress, request

SLOW_OPS = pa.schema(
    [
        ("op", pa.string()),
        ("duration_ms", pa.float64()),
        ("time", pa.float64()),
        ("detail", pa.string()),
    ]
)
LARGE_NODES = pa.schema(
    [
        ("id", pa.string()),
        ("type", pa.string()),
        ("bytes", pa.int64()),
        ("reads", pa.int64()),
        ("writes", pa.int64()),
    ]
)
TALKERS = pa.schema(
    [
        ("peer_id", pa.string()),
        ("bytes_in", pa.int64()),
        ("bytes_out", pa.int64()),
        ("messages_in", pa.int64()),
        ("messages_out", pa.int64()),
    ]
)
TRENDS = pa.schema(
    [
        ("time", pa.float64()),
        ("ops", pa.int64()),
        ("ops_per_s", pa.float64()),
        ("p50_ms", pa.float64()),
        ("p95_ms", pa.float64()),
        ("p99_ms", pa.float64()),
    ]
)

# The profiler keeps at most an hour of one-second buckets and a bounded ring of slow
# operations; larger requests would only be cut down by the engine anyway.
MAX_LIMIT = 10_000
MAX_WINDOW_S = 3600.0


class Profiling(Panel):
    """Where time and bytes go in a database, and what to do about it.

    Args:
        db: an embedded `pluresdb_lab.Database` or a `RemoteDatabase`.
        **kwargs: traits (`refresh_s`, `title`).
    """

    panel = traitlets.Unicode("profiling").tag(sync=True)

    @request("slow_ops")
    def slow_ops(self, limit: int = 100) -> pa.Table:
        """Operations slower than the threshold, newest first."""
        found = self.db.profiler.slow_ops(limit=_limit(limit))
        return _table(found, SLOW_OPS)

    @request("threshold")
    def threshold(self) -> dict[str, float]:
        """The duration (ms) above which an operation counts as slow."""
        return {"slow_threshold_ms": self.db.profiler.slow_threshold_ms}

    @request("set_threshold")
    def set_threshold(self, ms: float) -> dict[str, float]:
        """Set the slow-operation threshold; the engine refuses negative values."""
        if isinstance(ms, bool) or not isinstance(ms, int | float) or not math.isfinite(ms):
            raise InvalidRequestError(f"threshold: a finite number of milliseconds, got {ms!r}")
        self.db.profiler.slow_threshold_ms = float(ms)
        return self.threshold()

    @request("large_nodes")
    def large_nodes(self, limit: int = 20) -> pa.Table:
        """The largest nodes read or written since profiling started, with access counts."""
        return _table(self.db.profiler.large_nodes(limit=_limit(limit)), LARGE_NODES)

    @request("top_talkers")
    def top_talkers(self, limit: int = 10) -> pa.Table:
        """Connected peers by bytes exchanged (empty while the mesh is not started)."""
        return _table(self.db.profiler.top_talkers(limit=_limit(limit)), TALKERS)

    @request("trends")
    def trends(self, window_s: float = 300) -> pa.Table:
        """Operations per second and latency percentiles, one row per busy second."""
        if (
            isinstance(window_s, bool)
            or not isinstance(window_s, int | float)
            or not 0 < window_s <= MAX_WINDOW_S
        ):
            raise InvalidRequestError(
                f"trends window_s: seconds in (0, {MAX_WINDOW_S:g}], got {window_s!r}"
            )
        return _table(self.db.profiler.trends(window_s=float(window_s)), TRENDS)

    @request("suggestions")
    def suggestions(self) -> list[Any]:
        """What the measurements suggest doing, most urgent first."""
        return list(self.db.profiler.suggestions())

    @request("apply", long=True)
    def apply(self, suggestion_id: str, progress: Progress) -> dict[str, Any]:
        """Carry out a suggestion (build the index, compact); returns what was done.

        It runs on a worker thread, since building an index or compacting takes a
        while, but it reports no steps and cannot be stopped half-way: the profiler's
        `apply` takes no progress callback (nor does `create_index`, and a remote call
        could not carry one), so `progress` goes unused.
        """
        _check_id(suggestion_id)
        summary: dict[str, Any] = self.db.profiler.apply(suggestion_id)
        self.push("applied")
        return summary

    @request("dismiss")
    def dismiss(self, suggestion_id: str) -> dict[str, str]:
        """Hide a suggestion until the measurements are reset."""
        _check_id(suggestion_id)
        self.db.profiler.dismiss(suggestion_id)
        return {"dismissed": suggestion_id}

    @request("reset")
    def reset(self) -> dict[str, bool]:
        """Forget every measurement and dismissal."""
        self.db.profiler.reset()
        self.push("reset")
        return {"reset": True}


def _limit(limit: Any) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequestError(f"limit: an integer from 1 to {MAX_LIMIT}, got {limit!r}")
    return limit


def _check_id(suggestion_id: Any) -> None:
    if not isinstance(suggestion_id, str) or not suggestion_id:
        raise InvalidRequestError(f"suggestion_id: a non-empty string, got {suggestion_id!r}")


def _table(items: Sequence[Any], schema: pa.Schema) -> pa.Table:
    """Rows of the profiler's dataclasses as an Arrow table with a fixed schema (empty too)."""
    rows = [{name: getattr(item, name) for name in schema.names} for item in items]
    return pa.Table.from_pylist(rows, schema=schema)
