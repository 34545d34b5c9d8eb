"""Back-pressure for one link: a bound on the bytes handed to the socket but not yet sent.

Tornado buffers whatever `write_message` is given, however slowly the peer reads; the
future it returns resolves once the frame has left tornado's buffer for the kernel. So
the bytes of frames whose futures are unresolved are (an upper bound of) what tornado
holds for this link, counted through its public API rather than its private buffer.
"""

from __future__ import annotations

import asyncio
import time

WS_HEADER_BYTES = 14  # the largest WebSocket frame header: counted so the bound is exact


class SendWindow:
    """Counts a link's unsent bytes against `limit`; a frame fits while the total stays
    within it (or when nothing is pending, so a frame bigger than the limit still goes)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.pending = 0
        self.last_progress = time.monotonic()  # a write finished, or the window was empty
        self._freed = asyncio.Event()

    def fits(self, size: int) -> bool:
        return self.pending == 0 or self.pending + size + WS_HEADER_BYTES <= self.limit

    def track(self, size: int, sending: asyncio.Future[None]) -> None:
        """Count `size` bytes until `sending` (tornado's write future) resolves."""
        if self.pending == 0:
            self.last_progress = time.monotonic()
        self.pending += size + WS_HEADER_BYTES
        sending.add_done_callback(lambda _: self._done(size + WS_HEADER_BYTES))

    def _done(self, size: int) -> None:
        self.pending -= size
        self.last_progress = time.monotonic()
        self._freed.set()

    async def room(self, size: int) -> None:
        """Wait until a frame of `size` bytes fits."""
        while not self.fits(size):
            self._freed.clear()
            await self._freed.wait()

    async def drained(self) -> None:
        """Wait until at most half the limit is pending (half, so a link that drains
        slowly does not flap between held back and streaming)."""
        while self.pending > self.limit // 2:
            self._freed.clear()
            await self._freed.wait()

    def stalled_for(self) -> float:
        """Seconds bytes have been pending without any write finishing (0 when none are)."""
        return time.monotonic() - self.last_progress if self.pending else 0.0
