"""The profiler (`db.profiler`): slow operations, large nodes, top talkers and trends,
measured from the events every public operation emits (`_instrument`), and the
suggestions derived from them (`_suggestions`).

Memory stays bounded whatever the load: the newest SLOW_KEPT slow operations; read and
write counts for at most TRACKED_NODES node ids (the largest are kept); one trend
bucket per second that had operations, for the last TREND_SECONDS such seconds, each
with a uniform sample of at most SAMPLES_PER_SECOND durations for its percentiles
(see `_measures`).

The profiler takes events in batches (`Instrumentation.listen_batches`): a couple of
thousand at a time, and all that wait before anything is read. Measuring a batch a
column at a time, with builtins that loop in C, keeps its cost per operation small.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from itertools import chain, compress
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Protocol

from pluresdb_lab._values import IndexKind, LargeNode, SlowOp, Suggestion, Talker, TrendPoint
from pluresdb_lab.engine._instrument import Event, Instrumentation
from pluresdb_lab.engine._measures import TRACKED_NODES, NodeCounts, Trends
from pluresdb_lab.engine._suggestions import (
    SPLIT_SHARE,
    FilterUse,
    compaction_advice,
    filter_use,
    index_advice,
    percentile,
    ranked,
    split_advice,
)
from pluresdb_lab.errors import InvalidDataError, NotFoundError

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pyarrow as pa

    from pluresdb_lab._values import CompactionReport

DEFAULT_THRESHOLD_MS = 100.0
SLOW_KEPT = 1000
READS = frozenset({"get", "get_many"})  # other operations reporting nodes wrote them
_COLUMNS = [itemgetter(Event._fields.index(f)) for f in ("name", "duration_s", "time", "nodes")]


class ProfilerHost(Protocol):
    """What the profiler reads from its database and does to it. Engine-internal:
    `Database` hands the profiler an adapter implementing it, so none of these
    become names of the database's own API."""

    @property
    def instrumentation(self) -> Instrumentation: ...

    @property
    def max_node_bytes(self) -> int: ...

    def range_fields(self, type_name: str) -> set[str]:
        """Fields of a type that a numeric or composite index serves ranges on."""
        ...

    def field_kind(self, type_name: str, field: str) -> pa.DataType | None:
        """The Arrow type of a field in a type's typed table; None when it has none."""
        ...

    def level_zero(self) -> tuple[int, int]:
        """How many segments compaction level 0 holds, and their bytes."""
        ...

    def create_index(
        self, kind: IndexKind, *, type: str | None, fields: Sequence[str]
    ) -> dict[str, Any]: ...

    def compact(self, level: int | None) -> CompactionReport: ...


def _check_limit(limit: object) -> int:
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise InvalidDataError(f"limit is an int >= 0, got {limit!r}")
    return limit


def _check_positive(name: str, value: object, *, zero: bool) -> float:
    least = ">= 0" if zero else "> 0"
    problem = InvalidDataError(f"{name} is a finite number {least}, got {value!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise problem
    number = float(value)
    if not math.isfinite(number) or number < 0 or (number == 0 and not zero):
        raise problem
    return number


class Profiler:
    """Measures one database from its instrumentation events.

    Read it with `slow_ops`, `large_nodes`, `top_talkers`, `trends` and `suggestions`;
    act on a suggestion with `apply` or `dismiss`; `reset` forgets what was measured
    (talkers are the mesh's live link counters, which the mesh keeps).
    """

    def __init__(self, db: ProfilerHost) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._threshold_ms = DEFAULT_THRESHOLD_MS
        self._threshold_s = DEFAULT_THRESHOLD_MS / 1000
        self._slow: deque[tuple[SlowOp, FilterUse | None]] = deque(maxlen=SLOW_KEPT)
        self._nodes = NodeCounts()
        self._trends = Trends()
        self._talker_sources: list[Callable[[], Iterable[Talker]]] = []
        self._dismissed: set[str] = set()
        self._instrumentation = db.instrumentation
        db.instrumentation.listen_batches(self._on_batch)

    # -- measuring --------------------------------------------------------------------

    def _on_batch(self, events: list[Event]) -> None:
        with self._lock:
            self._measure(events)

    def _measure(self, events: list[Event]) -> None:
        """Measure a batch of events (lock held), a column of the batch at a time."""
        names, durations, times, nodes = (list(map(f, events)) for f in _COLUMNS)
        self._trends.add(times, durations)
        threshold = self._threshold_s
        if max(durations) >= threshold:
            for event in compress(events, map(threshold.__le__, durations)):
                op = SlowOp(event.name, event.duration_s * 1000, event.time, event.detail)
                self._slow.append((op, filter_use(op)))
        if nodes.count(()) == len(nodes):
            return
        moved = list(chain.from_iterable(nodes))
        reads = sum(map(names.count, READS))
        if reads == len(names):
            written = []
        elif not reads:
            written = moved
        else:
            writing = (name not in READS for name in names)
            written = list(chain.from_iterable(compress(nodes, writing)))
        self._nodes.add(moved, written)

    def add_talkers(self, source: Callable[[], Iterable[Talker]]) -> None:
        """Read peers' link counters from `source` (the mesh registers one)."""
        with self._lock:
            self._talker_sources.append(source)

    # -- settings ----------------------------------------------------------------------

    @property
    def slow_threshold_ms(self) -> float:
        """Operations taking at least this many milliseconds are slow (default 100)."""
        return self._threshold_ms

    @slow_threshold_ms.setter
    def slow_threshold_ms(self, value: float) -> None:
        threshold = _check_positive("slow_threshold_ms", value, zero=True)
        self._instrumentation.flush()  # what ran so far is judged by the threshold it ran under
        with self._lock:
            self._threshold_ms = threshold
            self._threshold_s = threshold / 1000

    # -- reading -----------------------------------------------------------------------

    def slow_ops(self, limit: int = 100) -> list[SlowOp]:
        """The newest `limit` slow operations, newest first."""
        _check_limit(limit)
        self._instrumentation.flush()
        with self._lock:
            return [op for op, _ in itertools.islice(reversed(self._slow), limit)]

    def large_nodes(self, limit: int = 20) -> list[LargeNode]:
        """The `limit` largest nodes read or written since the profiler started."""
        _check_limit(limit)
        self._instrumentation.flush()
        with self._lock:
            return [LargeNode(*figures) for figures in self._nodes.largest(limit)]

    def top_talkers(self, limit: int = 10) -> list[Talker]:
        """Peers by bytes carried in and out, most first (empty while no mesh runs)."""
        _check_limit(limit)
        with self._lock:
            sources = list(self._talker_sources)
        totals: dict[str, list[int]] = {}
        for source in sources:
            for talker in source():
                counts = totals.setdefault(talker.peer_id, [0, 0, 0, 0])
                counts[0] += talker.bytes_in
                counts[1] += talker.bytes_out
                counts[2] += talker.messages_in
                counts[3] += talker.messages_out
        found = [Talker(peer_id, *counts) for peer_id, counts in totals.items()]
        found.sort(key=lambda t: (-(t.bytes_in + t.bytes_out), t.peer_id))
        return found[:limit]

    def trends(self, window_s: float = 300) -> list[TrendPoint]:
        """One point per second that had operations, over the last `window_s` seconds."""
        window = _check_positive("window_s", window_s, zero=False)
        now = time.time()
        self._instrumentation.flush()
        with self._lock:
            seconds = [
                (s.start, s.ops, s.samples.tolist())
                for s in self._trends.seconds
                if s.end > now - window
            ]
        points = []
        for start, ops, samples in seconds:
            covered = min(1.0, max(now - start, 1e-3))
            points.append(
                TrendPoint(
                    float(start),
                    ops,
                    ops / covered,
                    percentile(samples, 50) * 1000,
                    percentile(samples, 95) * 1000,
                    percentile(samples, 99) * 1000,
                )
            )
        return points

    # -- suggestions -------------------------------------------------------------------

    def suggestions(self) -> list[Suggestion]:
        """What the measurements suggest doing, most urgent first (dismissed ones left out)."""
        db = self._db
        smallest = math.ceil(db.max_node_bytes * SPLIT_SHARE)
        self._instrumentation.flush()
        with self._lock:
            uses = [use for _, use in self._slow if use is not None]
            large = [
                LargeNode(*figures)
                for figures in self._nodes.largest(TRACKED_NODES, at_least=smallest)
            ]
            dismissed = set(self._dismissed)
        found = index_advice(uses, db.range_fields, db.field_kind)
        compaction = compaction_advice(*db.level_zero())
        if compaction is not None:
            found.append(compaction)
        found += split_advice(large, db.max_node_bytes)
        return ranked(s for s in found if s.id not in dismissed)

    def _find(self, suggestion_id: object) -> Suggestion:
        if not isinstance(suggestion_id, str):
            raise InvalidDataError(f"a suggestion id is a string, got {suggestion_id!r}")
        current = self.suggestions()
        for suggestion in current:
            if suggestion.id == suggestion_id:
                return suggestion
        if suggestion_id in self._dismissed:
            raise NotFoundError(f"suggestion {suggestion_id!r} was dismissed")
        raise NotFoundError(
            f"there is no suggestion {suggestion_id!r}; profiler.suggestions() lists "
            f"{[s.id for s in current]}"
        )

    def apply(self, suggestion_id: str) -> dict[str, Any]:
        """Do what a suggestion says: create its index or compact level 0.

        Returns:
            {"applied": id, "kind": kind} and the index description ("index") or the
            compaction report ("compaction").

        Raises:
            NotFoundError: no current suggestion has this id.
            InvalidDataError: a split_node suggestion, which only a person can carry out.
        """
        suggestion = self._find(suggestion_id)
        action = suggestion.action
        done: dict[str, Any] = {"applied": suggestion.id, "kind": suggestion.kind}
        if "create_index" in action:
            spec = action["create_index"]
            done["index"] = self._db.create_index(
                spec["kind"], type=spec["type"], fields=spec["fields"]
            )
            return done
        if "compact" in action:
            report = self._db.compact(action["compact"]["level"])
            done["compaction"] = dataclasses.asdict(report)
            return done
        raise InvalidDataError(
            f"suggestion {suggestion.id!r} cannot be applied automatically: {action['manual']}"
        )

    def dismiss(self, suggestion_id: str) -> None:
        """Stop offering a suggestion (until `reset`)."""
        if isinstance(suggestion_id, str) and suggestion_id in self._dismissed:
            return
        suggestion = self._find(suggestion_id)
        with self._lock:
            self._dismissed.add(suggestion.id)

    def reset(self) -> None:
        """Forget every measurement and dismissal; the slow threshold stays."""
        self._instrumentation.flush()  # what waits is measured, then forgotten with the rest
        with self._lock:
            self._slow.clear()
            self._nodes.clear()
            self._trends.clear()
            self._dismissed.clear()
