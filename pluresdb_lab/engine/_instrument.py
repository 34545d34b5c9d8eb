"""The one instrumentation point every public operation passes through.

Each call records an `Event`: its name, duration and bytes moved, what it was about
(`detail`: a node id, a query spec, SQL text, a path) and, for node reads and writes,
the node types and stored sizes. Listeners see every event, one at a time or (the
profiler) in batches; a bounded ring keeps the recent ones.

What only the method knows (bytes moved, node sizes) it reports with
`instrumentation.note(...)`. Notes are kept per thread and per call: a measured call
made inside another (export runs sql, link runs get) keeps its own, so neither
concurrent nor nested calls see each other's.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

log = logging.getLogger("pluresdb_lab")

DETAIL_CHARS = 500  # an event's detail text is cut to this many characters
BATCH = 2048  # events a batch listener is handed at a time (`flush()` hands over fewer)
BULK_NODES = 10_000  # a bulk read or write reports at most this many nodes, the largest
VECTOR_SHOWN = 16  # a longer list of numbers in a detail is written "<vector of N>"
_NOTE = "note"

NodeSize = tuple[str, str | None, int]
"""(node id, type, bytes of its stored JSON)."""


class Event(NamedTuple):
    """One measured operation.

    A named tuple rather than a frozen dataclass: immutable all the same, and several
    times cheaper to make, which matters on a path every `get` takes.
    """

    name: str
    duration_s: float
    bytes: int  # bytes the operation moved (written JSON, result size), 0 if unknown
    time: float  # unix seconds when it ended
    detail: str = ""  # what it was about, at most DETAIL_CHARS characters (see describe)
    nodes: Sequence[NodeSize] = ()  # the nodes read or written (bulk: BULK_NODES largest)


class Listening:
    """A registered listener; `cancel()` stops it."""

    def __init__(self, owner: Instrumentation, fn: Callable[[Any], None]) -> None:
        self._owner = owner
        self._fn = fn

    def cancel(self) -> None:
        self._owner._drop(self._fn)


class Instrumentation:
    """Collects events from every public operation of one database."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._events: deque[Event] = deque(maxlen=capacity)
        # listener tuples are replaced, never changed, so recording reads them unlocked
        self._listeners: tuple[Callable[[Event], None], ...] = ()
        self._batch_listeners: tuple[Callable[[list[Event]], None], ...] = ()
        self._batch: deque[Event] = deque()  # recorded, not yet handed to batch listeners
        self._lock = threading.Lock()
        self._delivering = threading.Lock()  # batches reach listeners whole and in order
        self._pending = threading.local()  # this thread's note for the innermost call

    def note(
        self,
        *,
        nbytes: int | None = None,
        nodes: Sequence[NodeSize] | None = None,
        detail: str | None = None,
    ) -> None:
        """Report facts about the measured call running on this thread.

        Args:
            nbytes: bytes the call moved.
            nodes: (id, type, stored JSON bytes) of the nodes the call read or wrote.
            detail: what the call was about, when its arguments do not say it.
        """
        pending = self._pending.__dict__
        found: list[Any] | None = pending.get(_NOTE)
        if found is None:  # bytes, detail, nodes
            pending[_NOTE] = [nbytes or 0, detail, () if nodes is None else nodes]
            return
        if nbytes is not None:
            found[0] = nbytes
        if detail is not None:
            found[1] = detail
        if nodes is not None:
            found[2] = nodes

    def record(
        self, name: str, duration_s: float, note: list[Any] | None = None, subject: Any = None
    ) -> None:
        """Record one operation and hand the event to every listener.

        Args:
            name: the operation.
            duration_s: how long it took.
            note: what the call noted (`note()` keeps it per thread and call).
            subject: the argument(s) the detail describes.
        """
        if note is None:
            nbytes, detail, nodes = 0, None, ()
        else:
            nbytes, detail, nodes = note
        if detail is None:
            fits = type(subject) is str and len(subject) <= DETAIL_CHARS  # node ids, mostly
            detail = subject if fits else describe(subject)
        # every field given in order: tuple.__new__ skips Event.__new__'s argument handling
        event = tuple.__new__(Event, (name, duration_s, nbytes, time.time(), detail, nodes))
        self._events.append(event)
        if self._batch_listeners:
            batch = self._batch
            batch.append(event)
            if len(batch) >= BATCH:
                self.flush()
        for fn in self._listeners:
            try:
                fn(event)
            except Exception:  # a listener's bug must not fail the operation it watched
                log.exception("an instrumentation listener raised; it stays registered")

    def events(self, limit: int = 1000) -> list[Event]:
        """The most recent events, oldest first."""
        recent = list(self._events)
        return recent[-limit:] if limit else []

    def listen(self, fn: Callable[[Event], None]) -> Listening:
        """Call `fn(event)` after every operation, on the thread that ran it."""
        with self._lock:
            self._listeners = (*self._listeners, fn)
        return Listening(self, fn)

    def listen_batches(self, fn: Callable[[list[Event]], None]) -> Listening:
        """Call `fn(events)` with the events recorded since its previous call, in order:
        once BATCH of them wait, and on `flush()`. A listener that looks at every
        operation costs each one far less this way than a call per event."""
        with self._lock:
            self._batch_listeners = (*self._batch_listeners, fn)
        return Listening(self, fn)

    def flush(self) -> None:
        """Hand the events waiting for batch listeners to them now."""
        with self._delivering:
            batch = self._batch
            events = [batch.popleft() for _ in range(len(batch))]
            if not events:
                return
            for fn in self._batch_listeners:
                try:
                    fn(events)
                except Exception:
                    log.exception("an instrumentation listener raised; it stays registered")

    def _drop(self, fn: Callable[[Any], None]) -> None:
        with self._lock:
            self._listeners = _without(self._listeners, fn)
            self._batch_listeners = _without(self._batch_listeners, fn)


def _without(listeners: tuple[T, ...], fn: object) -> tuple[T, ...]:
    """`listeners` less the first `fn` among them."""
    if fn not in listeners:
        return listeners
    kept = list(listeners)
    kept.remove(fn)
    return tuple(kept)


def describe(subject: Any) -> str:
    """An argument as detail text: strings and paths as they are, the rest as compact
    JSON (a query spec stays JSON that reads back, unless it is over DETAIL_CHARS even
    with its vectors written as "<vector of N>")."""
    if subject is None:
        return ""
    if type(subject) is str:
        return subject[:DETAIL_CHARS]
    if isinstance(subject, os.PathLike):
        return str(os.fspath(subject))[:DETAIL_CHARS]
    try:
        text = json.dumps(
            _abridged(subject), default=_plain, separators=(",", ":"), ensure_ascii=False
        )
    except (ValueError, RecursionError):  # a structure that refers to itself
        text = repr(subject)
    return text[:DETAIL_CHARS]


def _abridged(value: Any) -> Any:
    """`value` with each list of more than VECTOR_SHOWN numbers as "<vector of N>"."""
    if isinstance(value, dict):
        return {k: _abridged(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if len(value) > VECTOR_SHOWN and all(isinstance(x, (int, float)) for x in value):
            return f"<vector of {len(value)}>"
        return [_abridged(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    """What JSON cannot hold, as detail text: arrays as vectors, the rest as str."""
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) and len(shape) == 1:
        return f"<vector of {shape[0]}>"
    return str(value)


def largest(nodes: list[NodeSize]) -> list[NodeSize]:
    """The BULK_NODES largest of `nodes` (all of them when there are no more)."""
    if len(nodes) <= BULK_NODES:
        return nodes
    return sorted(nodes, key=lambda n: n[2], reverse=True)[:BULK_NODES]


def utf8_size(text: str) -> int:
    """Bytes of `text` in UTF-8; ASCII text (the usual JSON) is not re-encoded."""
    return len(text) if text.isascii() else len(text.encode())


def _position(method: Callable[..., Any], name: str) -> tuple[int, Any]:
    """Where parameter `name` sits among positional arguments (-1: keyword only), and
    its default (None when it has none)."""
    params = list(inspect.signature(method).parameters.values())
    (param,) = [p for p in params if p.name == name]
    default = None if param.default is inspect.Parameter.empty else param.default
    if param.kind is inspect.Parameter.KEYWORD_ONLY:
        return -1, default
    return params.index(param), default


def _argument(
    args: tuple[Any, ...], kwargs: dict[str, Any], name: str, where: tuple[int, Any]
) -> Any:
    position, default = where
    if 0 <= position < len(args):
        return args[position]
    return kwargs.get(name, default)


def measured(
    name: str, about: str | tuple[str, ...] | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a Database method so each call is recorded under `name`.

    Args:
        name: the operation's name in events.
        about: the parameter (or parameters) the event's detail describes: a node id,
            a query spec, a path. Several become one JSON object.
    """

    def wrap(method: Callable[P, R]) -> Callable[P, R]:
        names = (about,) if isinstance(about, str) else about or ()
        places = {n: _position(method, n) for n in names}
        position, default = places[about] if isinstance(about, str) else (-2, None)
        clock = time.perf_counter

        @functools.wraps(method)
        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            instrumentation: Instrumentation = args[0].instrumentation  # type: ignore[attr-defined]
            pending = instrumentation._pending.__dict__
            outer = pending.pop(_NOTE, None)  # an enclosing measured call's note, set aside
            start = clock()
            try:
                return method(*args, **kwargs)
            finally:
                duration = clock() - start
                note = pending.pop(_NOTE, None)
                if outer is not None:
                    pending[_NOTE] = outer
                if 0 < position < len(args):  # the usual case, kept fast: `get(id)`
                    subject = args[position]
                elif position != -2:
                    subject = _argument(args, kwargs, names[0], (position, default))
                elif names:
                    subject = {n: _argument(args, kwargs, n, places[n]) for n in names}
                else:
                    subject = None
                instrumentation.record(name, duration, note, subject)

        return call

    return wrap
