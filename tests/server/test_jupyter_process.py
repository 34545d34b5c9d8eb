"""A real `jupyter server` with the extension: kernels write through `connect()`.

Two kernels started by the server write at the same time through
`pluresdb_lab.connect()` (no arguments: they find the server through the environment
it exported); a third, plain process reads every write; a restarted server still has
them all.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.blocking import BlockingKernelClient

from tests.server.conftest import JUPYTER_TOKEN as TOKEN
from tests.server.conftest import JupyterServer, child_env

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
