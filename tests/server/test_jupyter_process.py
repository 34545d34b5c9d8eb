"""A real `jupyter server` with the extension: kernels write through `connect()`.

Two kernels started by the server write at the same time through
`pluresdb_lab.connect()` (no arguments: they find the server through the environment
it exported); a third, plain process reads every write; a restarted server still has
them all.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jupyter_client.blocking import BlockingKernelClient

from tests.server.conftest import child_env, stop, wait_for

TOKEN = "jupyter-process-token"
WRITES = 150
KERNEL_CODE = """
import os, pluresdb_lab as pl
db = pl.connect()
assert type(db).__name__ == "RemoteDatabase", type(db)
assert os.environ["PLURESDB_URL"] == {url!r}, os.environ["PLURESDB_URL"]
for i in range({writes}):
    db.put(f"{name}-{{i}}", {{"i": i, "kernel": {name!r}}}, type="Write")
db.put_many([{{"id": f"{name}-bulk-{{i}}", "i": i}} for i in range(100)], type="Bulk")
db.close()
"""
READER = """
import json, pluresdb_lab as pl
db = pl.connect()
ids = {n.id for n in db.list(limit=100000)}
print(json.dumps({"type": type(db).__name__, "ids": sorted(ids), "types": db.sql(
    "SELECT type, count(*) AS n FROM nodes GROUP BY type ORDER BY type").to_pylist()}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class JupyterServer:
    """A `jupyter server` subprocess on 127.0.0.1 with its own Jupyter dirs."""

    def __init__(self, root: Path, data: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.api = self.url + "pluresdb/api/"
        self.runtime = root / "runtime"
        log = (root / "server.log").open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter",
                "server",
                "--no-browser",
                "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={self.port}",
                "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={TOKEN}",
                "--allow-root",
                f"--ServerApp.root_dir={root}",
                f"--PluresDBApp.data_dir={data}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_env(
                JUPYTER_RUNTIME_DIR=str(self.runtime),
                JUPYTER_CONFIG_DIR=str(root / "config"),
                JUPYTER_DATA_DIR=str(root / "data"),
            ),
        )
        log.close()
        self.http = httpx.Client(headers={"Authorization": f"token {TOKEN}"}, timeout=30)
        self.kernels: list[str] = []
        wait_for(self.ready, "jupyter server to serve the PluresDB API", timeout=60)

    def ready(self) -> bool:
        if self.process.poll() is not None:
            log = (self.root / "server.log").read_text()
            raise AssertionError(f"jupyter server exited:\n{log[-3000:]}")
        try:
            return self.http.get(self.api).status_code == 200
        except httpx.TransportError:
            return False

    def start_kernel(self) -> BlockingKernelClient:
        reply = self.http.post(self.url + "api/kernels", json={"name": "python3"})
        reply.raise_for_status()
        kernel_id = reply.json()["id"]
        self.kernels.append(kernel_id)
        connection = self.runtime / f"kernel-{kernel_id}.json"
        wait_for(connection.exists, "the kernel's connection file")
        client = BlockingKernelClient(connection_file=str(connection))
        client.load_connection_file()
        client.start_channels()
        client.wait_for_ready(timeout=60)
        return client

    def close(self) -> None:
        """Shut its kernels down, then the server (closing twice is harmless)."""
        kernels, self.kernels = self.kernels, []
        try:
            for kernel_id in kernels:
                self.http.delete(self.url + f"api/kernels/{kernel_id}")
        finally:
            self.http.close()
            stop(self.process)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def server(root: Path) -> Iterator[JupyterServer]:
    running = JupyterServer(root, root / "db")
    try:
        yield running
    finally:
        running.close()


def result_of(client: BlockingKernelClient, msg_id: str) -> dict[str, Any]:
    """The execute reply to `msg_id` (kernel errors carry their traceback)."""
    while True:
        reply = client.get_shell_msg(timeout=120)
        if reply["parent_header"].get("msg_id") == msg_id:
            content: dict[str, Any] = reply["content"]
            return content


def read_all(api: str) -> dict[str, Any]:
    env = child_env(PLURESDB_URL=api, PLURESDB_TOKEN=TOKEN)
    out = subprocess.run(
        [sys.executable, "-c", READER], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def test_kernels_write_concurrently_and_data_survives_restart(
    server: JupyterServer, root: Path
) -> None:
    kernels = [server.start_kernel() for _ in range(2)]
    try:
        pending = [
            (k, k.execute(KERNEL_CODE.format(url=server.api, writes=WRITES, name=f"k{n}")))
            for n, k in enumerate(kernels)
        ]
        for kernel, msg_id in pending:
            reply = result_of(kernel, msg_id)
            assert reply["status"] == "ok", "\n".join(reply.get("traceback", []))
    finally:
        for kernel in kernels:
            kernel.stop_channels()
    expected = sorted(
        [f"k{n}-{i}" for n in range(2) for i in range(WRITES)]
        + [f"k{n}-bulk-{i}" for n in range(2) for i in range(100)]
    )
    seen = read_all(server.api)
    assert seen["type"] == "RemoteDatabase"
    assert seen["ids"] == expected
    assert seen["types"] == [{"type": "Bulk", "n": 200}, {"type": "Write", "n": 2 * WRITES}]
    server.close()
    again = JupyterServer(root, root / "db")
    try:
        assert read_all(again.api)["ids"] == expected
    finally:
        again.close()
