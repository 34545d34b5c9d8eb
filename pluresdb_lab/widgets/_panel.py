"""The base of every panel: an anywidget whose view asks the kernel for data.

The browser sends ``{"kind": "request", "id", "method", "params"}``; the kernel answers
``{"kind": "response", "id", "ok", "result" | "error"}`` with Arrow tables in binary
buffers (``{"$arrow": i}`` in the result). Long work reports ``progress`` messages and
stops when the browser sends ``cancel``. Panels see only the Database interface, so
they work the same over an embedded database and a `RemoteDatabase`.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import anywidget
import pyarrow as pa
import traitlets

from pluresdb_lab._api import DatabaseAPI
from pluresdb_lab.errors import FrontEndMissingError, InvalidRequestError, PluresDBError

STATIC = Path(__file__).resolve().parent.parent / "static"
log = logging.getLogger(__name__)

Progress = Callable[[int, int], bool]
"""Called as ``progress(done, total)`` by long work; returns False once cancelled."""

Reply = tuple[dict[str, Any], list[bytes]]
F = TypeVar("F", bound=Callable[..., Any])

# Progress messages are throttled: a compaction can report thousands of steps.
_PROGRESS_EVERY_S = 0.1


def request(name: str, *, long: bool = False) -> Callable[[F], F]:
    """Mark a Panel method as answering the browser's request `name`.

    Args:
        name: the method name the view sends.
        long: run it in a worker thread and pass it a `progress` callback, so the
            kernel keeps answering and the user can cancel it.
    """

    def mark(fn: F) -> F:
        fn.__pluresdb_request__ = (name, long)  # type: ignore[attr-defined]
        return fn

    return mark


class Panel(anywidget.AnyWidget):
    """One tab of PluresDB Lab over a Database (embedded or remote)."""

    _esm = STATIC / "widget.js"

    panel = traitlets.Unicode("").tag(sync=True)
    """Which view component renders this widget (set by each subclass)."""

    refresh_s = traitlets.Float(2.0).tag(sync=True)
    """Seconds between automatic refreshes in the view; 0 turns them off."""

    title = traitlets.Unicode("").tag(sync=True)
    """A heading shown above the panel (empty: none)."""

    _requests: ClassVar[dict[str, tuple[str, bool]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found = dict(cls._requests)
        for attr, value in vars(cls).items():
            marked = getattr(value, "__pluresdb_request__", None)
            if marked is not None:
                found[marked[0]] = (attr, marked[1])
        cls._requests = found

    def __init__(self, db: DatabaseAPI, **kwargs: Any) -> None:
        if not (STATIC / "widget.js").is_file():
            raise FrontEndMissingError(
                f"the panels' front end is not built ({STATIC / 'widget.js'} is missing): "
                "reinstall the package (`pip install -e .` builds it with npm), or run "
                "`npm ci && npm run build` in extension/"
            )
        super().__init__(**kwargs)
        self.db = db
        self._jobs: dict[str, threading.Event] = {}
        self._workers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="pluresdb-panel")
        self._watch: Any = None
        self._last_push = 0.0
        self.on_msg(self._receive)

    # -- answering requests ------------------------------------------------------------

    def handle(self, message: Mapping[str, Any], progress: Progress | None = None) -> Reply:
        """Answer one request message; returns the reply and its binary buffers."""
        request_id = message.get("id") if isinstance(message, Mapping) else None
        try:
            fn, wants_progress, params = self._resolve(message)
            if wants_progress:
                params["progress"] = progress or (lambda done, total: True)
            result = fn(**params)
        except Exception as error:  # reported to the view, never swallowed
            if not isinstance(error, PluresDBError):
                log.exception("panel request %r failed", message.get("method"))
            return _failure(request_id, error), []
        buffers: list[bytes] = []
        try:
            encoded = _encode(result, buffers)
        except TypeError as error:
            return _failure(request_id, error), []
        return {"kind": "response", "id": request_id, "ok": True, "result": encoded}, buffers

    def methods(self) -> list[str]:
        """The request names this panel answers."""
        return sorted(self._requests)

    def _resolve(
        self, message: Mapping[str, Any]
    ) -> tuple[Callable[..., Any], bool, dict[str, Any]]:
        if not isinstance(message, Mapping) or message.get("kind") != "request":
            raise InvalidRequestError("a request is a map with kind 'request'")
        method = message.get("method")
        if not isinstance(method, str) or method not in self._requests:
            raise InvalidRequestError(
                f"{type(self).__name__} has no request {method!r}; it answers: "
                + ", ".join(self.methods())
            )
        params = message.get("params", {})
        if not isinstance(params, dict):
            raise InvalidRequestError(f"params of {method!r} must be an object")
        attr, wants_progress = self._requests[method]
        fn = getattr(self, attr)
        try:
            extra = {"progress": None} if wants_progress else {}
            inspect.signature(fn).bind(**params, **extra)
        except TypeError as error:
            raise InvalidRequestError(f"bad params for {method!r}: {error}") from None
        return fn, wants_progress, dict(params)

    def _receive(self, _widget: Any, content: Any, buffers: Sequence[bytes]) -> None:
        if not isinstance(content, dict):
            return
        kind = content.get("kind")
        if kind == "cancel":
            cancelled = self._jobs.get(str(content.get("id")))
            if cancelled is not None:
                cancelled.set()
            return
        if kind != "request":
            return
        known = self._requests.get(str(content.get("method")))
        if known is not None and known[1]:
            self._workers.submit(self._run_long, content)
        else:
            self.send(*self.handle(content))

    def _run_long(self, message: dict[str, Any]) -> None:
        request_id = str(message.get("id"))
        cancelled = threading.Event()
        self._jobs[request_id] = cancelled
        last = 0.0

        def progress(done: int, total: int) -> bool:
            nonlocal last
            now = time.monotonic()
            if now - last >= _PROGRESS_EVERY_S or done >= total:
                last = now
                self.send({"kind": "progress", "id": request_id, "done": done, "total": total})
            return not cancelled.is_set()

        try:
            reply, buffers = self.handle(message, progress)
            self.send(reply, buffers)
        finally:
            self._jobs.pop(request_id, None)

    # -- live refresh -------------------------------------------------------------------

    def push(self, topic: str = "changed") -> None:
        """Tell the view to refresh now."""
        self.send({"kind": "push", "topic": topic})

    def watch_changes(self, min_interval_s: float = 1.0) -> None:
        """Push a refresh to the view after database changes, at most every `min_interval_s`."""

        def changed(_change: Any) -> None:
            now = time.monotonic()
            if now - self._last_push >= min_interval_s:
                self._last_push = now
                self.push("changed")

        self._watch = self.db.subscribe(changed)

    def close(self) -> None:
        """Stop listening to the database and end running work, then close the view."""
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        for cancelled in list(self._jobs.values()):
            cancelled.set()
        self._workers.shutdown(wait=False, cancel_futures=True)
        super().close()


def _failure(request_id: Any, error: BaseException) -> dict[str, Any]:
    return {
        "kind": "response",
        "id": request_id,
        "ok": False,
        "error": {"type": type(error).__name__, "message": str(error)},
    }


def _encode(value: Any, buffers: list[bytes]) -> Any:
    """JSON-ready form of a result; Arrow tables go to `buffers` as IPC streams."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, pa.Table | pa.RecordBatch):
        table = value if isinstance(value, pa.Table) else pa.Table.from_batches([value])
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        buffers.append(sink.getvalue().to_pybytes())
        return {"$arrow": len(buffers) - 1}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: _encode(getattr(value, field.name), buffers)
            for field in dataclasses.fields(value)
        }
    if isinstance(value, Mapping):
        return {str(key): _encode(item, buffers) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_encode(item, buffers) for item in value]
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Enum):
        return _encode(value.value, buffers)
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"a panel result cannot carry {type(value).__name__}")
