"""Hybrid logical clock: wall milliseconds and a counter packed into one int.

`hlc >> 16` is the wall time in ms, the low 16 bits a counter, so values are monotonic
per peer even when the wall clock stalls or steps back, and every clock observed from a
peer moves ours past it (happened-before implies a larger hlc). Ties between peers are
broken by peer id, which makes `(hlc, peer)` a total order.
"""

from __future__ import annotations

import threading
import time

COUNTER_BITS = 16


def wall_ms(hlc: int) -> int:
    """The wall-clock part of an hlc, in milliseconds since the epoch."""
    return hlc >> COUNTER_BITS


def hlc_seconds(hlc: int) -> float:
    """The wall-clock part of an hlc, in seconds since the epoch."""
    return wall_ms(hlc) / 1000.0


class HybridClock:
    """A thread-safe hybrid logical clock."""

    def __init__(self, last: int = 0) -> None:
        self._last = last
        self._lock = threading.Lock()

    @property
    def last(self) -> int:
        return self._last

    def now(self) -> int:
        """A fresh timestamp, larger than every one issued or observed before."""
        physical = time.time_ns() // 1_000_000 << COUNTER_BITS
        with self._lock:
            self._last = max(physical, self._last + 1)
            return self._last

    def reserve(self, count: int) -> int:
        """`count` consecutive timestamps; returns the first."""
        first = self.now()
        with self._lock:
            self._last = max(self._last, first + count - 1)
        return first

    def observe(self, remote: int) -> None:
        """Move past a timestamp seen on an operation from another peer."""
        with self._lock:
            self._last = max(self._last, remote)
