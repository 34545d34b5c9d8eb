"""Requests to a panel as its view sends them, for the Python-side panel tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pytest

from pluresdb_lab.widgets import Panel


def poll(condition: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    """Wait until `condition` holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        pause.wait(0.02)


def ask(
    panel: Panel, method: str, progress: Callable[[int, int], bool] | None = None, **params: Any
) -> dict[str, Any]:
    """One request; returns the reply, with an Arrow table result as a list of rows."""
    reply, buffers = panel.handle(
        {"kind": "request", "id": "req-1", "method": method, "params": params}, progress
    )
    assert reply["id"] == "req-1"
    result = reply.get("result")
    if isinstance(result, dict) and set(result) == {"$arrow"}:
        reply["result"] = pa.ipc.open_stream(buffers[result["$arrow"]]).read_all().to_pylist()
    else:
        assert buffers == []
    return reply


def ok(panel: Panel, method: str, **params: Any) -> Any:
    """The result of a request that must succeed."""
    reply = ask(panel, method, **params)
    assert reply["ok"], reply
    return reply["result"]


def refused(panel: Panel, method: str, error: str, **params: Any) -> str:
    """Assert the request fails with the exception class `error`; returns its message."""
    reply = ask(panel, method, **params)
    assert not reply["ok"], reply
    assert reply["error"]["type"] == error, reply["error"]
    assert reply["error"]["message"]
    return str(reply["error"]["message"])


def error_type(panel: Panel, method: str, **params: Any) -> str:
    """The exception class name of a request that must fail."""
    reply = ask(panel, method, **params)
    assert not reply["ok"], reply
    assert reply["error"]["message"]
    return str(reply["error"]["type"])
