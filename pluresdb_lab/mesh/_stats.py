"""Traffic counters of one link: totals, per-second rates over a sliding window, RTT."""

from __future__ import annotations

import threading
import time
from collections import deque

WINDOW_S = 10


class Traffic:
    """Bytes and messages in and out; rates average the last `WINDOW_S` whole seconds.

    Bytes are WebSocket message payloads (the msgpack frames), without WebSocket
    framing or TLS. Updated on the mesh loop, read from any thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.bytes_in = 0
        self.bytes_out = 0
        self.messages_in = 0
        self.messages_out = 0
        # one bucket per second: [second, bytes_in, bytes_out, messages_in, messages_out]
        self._buckets: deque[list[int]] = deque(maxlen=WINDOW_S + 1)

    def _bucket(self) -> list[int]:
        second = int(time.monotonic())
        if not self._buckets or self._buckets[-1][0] != second:
            self._buckets.append([second, 0, 0, 0, 0])
        return self._buckets[-1]

    def received(self, size: int) -> None:
        with self._lock:
            self.bytes_in += size
            self.messages_in += 1
            bucket = self._bucket()
            bucket[1] += size
            bucket[3] += 1

    def sent(self, size: int) -> None:
        with self._lock:
            self.bytes_out += size
            self.messages_out += 1
            bucket = self._bucket()
            bucket[2] += size
            bucket[4] += 1

    def rates(self) -> dict[str, float]:
        """Per-second averages over the last WINDOW_S seconds (the current one excluded)."""
        now = int(time.monotonic())
        sums = [0, 0, 0, 0]
        with self._lock:
            for bucket in self._buckets:
                if now - WINDOW_S <= bucket[0] < now:
                    for i in range(4):
                        sums[i] += bucket[i + 1]
        names = ("bytes_in_per_s", "bytes_out_per_s", "messages_in_per_s", "messages_out_per_s")
        return {name: total / WINDOW_S for name, total in zip(names, sums, strict=True)}
