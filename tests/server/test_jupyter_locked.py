"""A second `jupyter server` on a database folder the first one holds.

Its extension cannot open the database (the first server holds the folder's lock), so
the server keeps running without it: the error is logged, every PluresDB API route
answers 503 naming the folder and the first server's pid, `connect()` inside one of its
kernels raises that message, and SIGTERM stops it promptly.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import pluresdb_lab as pl
from pluresdb_lab.errors import DatabaseLockedError
from tests.server.conftest import JUPYTER_TOKEN, JupyterServer

STOP_WITHIN_S = 20
KERNEL_CODE = """
import json, pluresdb_lab as pl
try:
    pl.connect()
except Exception as exc:
    print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
else:
    print(json.dumps({"error": None}))
"""


class ServerWithoutDatabase(JupyterServer):
    """A JupyterServer that counts as up once Jupyter itself answers (its PluresDB
    API is expected not to serve)."""

    def ready(self) -> bool:
        if self.process.poll() is not None:
            log = (self.root / "server.log").read_text()
            raise AssertionError(f"jupyter server exited:\n{log[-3000:]}")
        try:
            return self.http.get(self.url + "api").status_code == 200
        except httpx.TransportError:
            return False


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[JupyterServer, ServerWithoutDatabase, Path]]:
    data = tmp_path / "db"
    first = JupyterServer(tmp_path / "first", data)
    try:
        second = ServerWithoutDatabase(tmp_path / "second", data)
        try:
            yield first, second, data
        finally:
            second.close()
    finally:
        first.close()


def kernel_output(server: JupyterServer, code: str) -> dict[str, Any]:
    """Run `code` in a new kernel of `server`; the JSON it printed."""
    kernel = server.start_kernel()
    printed: list[str] = []

    def collect(message: dict[str, Any]) -> None:
        if message["msg_type"] == "stream":
            printed.append(message["content"]["text"])

    try:
        reply = kernel.execute_interactive(code, timeout=120, output_hook=collect)
    finally:
        kernel.stop_channels()
    assert reply["content"]["status"] == "ok", reply["content"]
    result: dict[str, Any] = json.loads("".join(printed))
    return result


def test_second_server_on_a_held_folder_says_why_and_stops(
    servers: tuple[JupyterServer, ServerWithoutDatabase, Path],
) -> None:
    first, second, data = servers
    holder = f"pid {first.process.pid}"

    root = second.http.get(second.api)
    assert root.status_code == 503, root.text
    body = root.json()
    assert body["error"] == "DatabaseLockedError"
    message = body["message"]
    assert str(data) in message
    assert holder in message
    for method, route in [("GET", "nodes"), ("PUT", "node/x"), ("POST", "sql"), ("GET", "mesh")]:
        reply = second.http.request(method, second.api + route, json={})
        assert (reply.status_code, reply.json()) == (503, body), (method, route)
    stranger = httpx.get(second.api + "nodes")  # no token: the reason is not for strangers
    assert stranger.status_code == 403
    assert str(data) not in stranger.text

    log = (second.root / "server.log").read_text()
    assert f"PluresDB: {message}" in log

    with pytest.raises(DatabaseLockedError) as raised:
        pl.connect(second.api, token=JUPYTER_TOKEN)
    assert str(raised.value) == message
    in_kernel = kernel_output(second, KERNEL_CODE)
    assert in_kernel == {"error": "DatabaseLockedError", "message": message}
    for kernel_id in list(second.kernels):  # ending kernels is Jupyter's part, not measured
        assert second.http.delete(second.url + f"api/kernels/{kernel_id}").status_code == 204
    second.kernels.clear()

    second.process.terminate()
    try:
        second.process.wait(STOP_WITHIN_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the second server still runs {STOP_WITHIN_S} s after SIGTERM")
    log = (second.root / "server.log").read_text()
    assert "Traceback" not in log, log[-3000:]
    assert first.http.get(first.api).status_code == 200  # the first server is untouched
