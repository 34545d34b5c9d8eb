"""The profiler's bounded accumulators: per-second trend buckets holding a uniform sample
of durations, and the sizes and read/write counts of the largest nodes.

They take a batch of operations at a time and do most of the work with builtins that
loop in C (map, dict.update, Counter.update, itertools): they see every operation the
database runs, so their cost is the profiler's cost.
"""

from __future__ import annotations

import heapq
import math
import random
from array import array
from collections import Counter, deque
from collections.abc import Sequence
from itertools import compress, count, islice
from operator import itemgetter

from pluresdb_lab.engine._instrument import NodeSize

SAMPLES_PER_SECOND = 256  # durations kept per second for its percentiles
TREND_SECONDS = 3600  # seconds (that had operations) kept
TRACKED_NODES = 10_000  # node ids counted at most

_ID, _SIZE = itemgetter(0), itemgetter(2)

NodeFigures = tuple[str, str | None, int, int, int]
"""(id, type, bytes, reads, writes)."""


class Second:
    """The operations of one second and a uniform sample of their durations.

    Reservoir sampling with Li's "Algorithm L": once the sample is full, a random gap
    says which later duration replaces a kept one, so most durations cost nothing.
    """

    __slots__ = ("end", "next", "ops", "samples", "start", "weight")

    def __init__(self, start: int) -> None:
        self.start = start
        self.end = float(start + 1)
        self.ops = 0
        self.samples = array("d")
        self.weight = 1.0
        self.next = SAMPLES_PER_SECOND  # the op after which replacing starts

    def add(self, durations: Sequence[float], rng: random.Random) -> None:
        before = self.ops
        self.ops = before + len(durations)
        room = SAMPLES_PER_SECOND - len(self.samples)
        if room > 0:
            self.samples.extend(durations[:room])
            if len(self.samples) < SAMPLES_PER_SECOND:
                return
            self._plan(rng)
        while self.next <= self.ops:
            slot = int(rng.random() * SAMPLES_PER_SECOND)
            self.samples[slot] = durations[self.next - before - 1]
            self._plan(rng)

    def _plan(self, rng: random.Random) -> None:
        """Pick the next op whose duration replaces a kept one."""
        self.weight *= math.exp(math.log(1.0 - rng.random()) / SAMPLES_PER_SECOND)
        self.next += int(math.log(1.0 - rng.random()) / math.log1p(-self.weight)) + 1


class Trends:
    """One `Second` per second that had operations, the last TREND_SECONDS of them."""

    def __init__(self) -> None:
        self.seconds: deque[Second] = deque(maxlen=TREND_SECONDS)
        self._current: Second | None = None
        self._rng = random.Random()

    def add(self, times: Sequence[float], durations: Sequence[float]) -> None:
        """Count operations that ended at `times` (unix s), in the order they were recorded.

        An operation ending late on another thread (before the current second's end)
        joins the current second; one at or after its end opens the next.
        """
        second = self._current
        if second is not None and max(times) < second.end:  # the usual batch: all in this one
            second.add(durations, self._rng)
            return
        i, n = 0, len(times)
        while i < n:
            second = self._current
            if second is None or times[i] >= second.end:
                second = self._current = Second(int(times[i]))
                self.seconds.append(second)
            later = map(second.end.__le__, islice(times, i + 1, None))
            j = next(compress(count(i + 1), later), n)
            second.add(durations[i:j], self._rng)
            i = j

    def clear(self) -> None:
        self.seconds.clear()
        self._current = None


class NodeCounts:
    """Stored size, type and read/write counts of at most TRACKED_NODES node ids.

    When more are seen, the largest nine tenths are kept (so the next prune is a
    thousand new ids away), and from then on new ids no larger than the smallest kept
    are not counted: they would be the first to go.
    """

    def __init__(self) -> None:
        self.latest: dict[str, NodeSize] = {}  # id -> (id, type, bytes) as last seen
        self.moves: Counter[str] = Counter()  # reads and writes
        self.writes: Counter[str] = Counter()
        self.floor = -1

    def add(self, nodes: list[NodeSize], written: list[NodeSize]) -> None:
        """Count each of `nodes` (in the order seen) as moved once, and each of
        `written` (those of `nodes` that were written) as written once."""
        if self.floor >= 0:
            floor, latest = self.floor, self.latest
            nodes = [n for n in nodes if n[2] > floor or n[0] in latest]
            written = [n for n in written if n[2] > floor or n[0] in latest]
        ids = list(map(_ID, nodes))
        self.moves.update(ids)
        if written:
            self.writes.update(ids if written is nodes else map(_ID, written))
        self.latest.update(zip(ids, nodes, strict=True))
        if len(self.latest) > TRACKED_NODES:
            self._prune()

    def _prune(self) -> None:
        kept = heapq.nlargest(TRACKED_NODES * 9 // 10, self.latest.values(), key=_SIZE)
        self.latest = {node[0]: node for node in kept}
        self.moves = Counter({k: self.moves[k] for k in self.latest if k in self.moves})
        self.writes = Counter({k: self.writes[k] for k in self.latest if k in self.writes})
        self.floor = kept[-1][2]

    def largest(self, limit: int, at_least: int = 0) -> list[NodeFigures]:
        """The `limit` largest nodes of at least `at_least` bytes, largest first."""
        found = [node for node in self.latest.values() if node[2] >= at_least]
        found.sort(key=lambda node: (-node[2], node[0]))
        figures = []
        for node in found[:limit]:
            writes = self.writes[node[0]]
            figures.append((*node, self.moves[node[0]] - writes, writes))
        return figures

    def clear(self) -> None:
        self.latest.clear()
        self.moves.clear()
        self.writes.clear()
        self.floor = -1
