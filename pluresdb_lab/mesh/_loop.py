"""The event loop the mesh runs on: its own thread when embedded, or a server's loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class EventLoop:
    """Runs callables on one asyncio loop, from any thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._thread: threading.Thread | None = None
        if loop is None:
            loop = asyncio.new_event_loop()
            self._thread = threading.Thread(
                target=loop.run_forever, name="pluresdb-mesh", daemon=True
            )
            self._thread.start()
        self.loop = loop

    def on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False

    def soon(self, fn: Callable[[], object]) -> None:
        """Run `fn` on the loop without waiting."""
        if self.on_loop():
            fn()
        else:
            self.loop.call_soon_threadsafe(fn)

    def call(self, fn: Callable[[], T], timeout: float = 30) -> T:
        """Run `fn` on the loop and return its result (raises what it raised)."""
        if self.on_loop():
            return fn()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(run)
        return future.result(timeout)

    def stop(self) -> None:
        """Stop the loop's own thread (a server's loop is left running)."""
        if self._thread is None:
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()
