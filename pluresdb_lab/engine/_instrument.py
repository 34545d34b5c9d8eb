"""The one instrumentation point every public operation passes through.

Each call records (name, duration, bytes); listeners (the Profiling panel, later) see
every event and a bounded ring keeps the recent ones.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, Protocol, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Event:
    """One measured operation."""

    name: str
    duration_s: float
    bytes: int
    time: float


class Listening:
    """A registered listener; `cancel()` stops it."""

    def __init__(self, owner: Instrumentation, fn: Callable[[Event], None]) -> None:
        self._owner = owner
        self._fn = fn

    def cancel(self) -> None:
        self._owner._drop(self._fn)


class Instrumentation:
    """Collects events from every public operation of one database."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._events: deque[Event] = deque(maxlen=capacity)
        self._listeners: list[Callable[[Event], None]] = []
        self._lock = threading.Lock()

    def record(self, name: str, duration_s: float, nbytes: int = 0) -> None:
        event = Event(name, duration_s, nbytes, time.time())
        self._events.append(event)
        for fn in tuple(self._listeners):
            fn(event)

    def events(self, limit: int = 1000) -> list[Event]:
        """The most recent events, oldest first."""
        recent = list(self._events)
        return recent[-limit:] if limit else []

    def listen(self, fn: Callable[[Event], None]) -> Listening:
        with self._lock:
            self._listeners.append(fn)
        return Listening(self, fn)

    def _drop(self, fn: Callable[[Event], None]) -> None:
        with self._lock:
            if fn in self._listeners:
                self._listeners.remove(fn)


class _Instrumented(Protocol):
    instrumentation: Instrumentation


def measured(name: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a Database method so each call is recorded under `name`.

    The method may set `self._last_bytes` to report how many bytes it moved.
    """

    def wrap(method: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(method)
        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            owner: Any = args[0]
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                nbytes = owner.__dict__.pop("_last_bytes", 0)
                owner.instrumentation.record(name, time.perf_counter() - start, nbytes)

        return call

    return wrap
