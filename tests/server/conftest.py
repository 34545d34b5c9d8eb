"""Fixtures of the server tests: a Jupyter server with the extension (in process, and as
a `jupyter server` subprocess), a `pluresdb serve` subprocess, and helpers that bound
every subprocess and poll with deadlines."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jupyter_client.blocking import BlockingKernelClient
from jupyter_core.utils import ensure_event_loop
from jupyter_server.serverapp import ServerApp
from traitlets.config import Config

from pluresdb_lab._database import Database

TOKEN = "server-test-token"
JUPYTER_TOKEN = "jupyter-process-token"
SERVE = re.compile(r"at (http://127\.0\.0\.1:\d+/pluresdb/api/) token=")
ALLOWED = "allowed"  # the folder, next to each test server's database, that REST paths may name


@pytest.fixture(autouse=True)
def jp_asyncio_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """pytest-jupyter's per-test event loop (turned off for other folders in tests/conftest.py)."""
    loop = ensure_event_loop(prefer_selector_loop=True)
    yield loop
    loop.close()


@pytest.fixture(autouse=True)
def jp_server_cleanup(jp_asyncio_loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    """pytest-jupyter's ServerApp cleanup: stops the extension, which closes the database."""
    yield
    app = ServerApp.instance()
    jp_asyncio_loop.run_until_complete(app._cleanup())
    ServerApp.clear_instance()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "db"


@pytest.fixture
def allowed_dir(tmp_path: Path) -> Path:
    """The folder the in-process server allows REST file paths in (`allowed_paths`)."""
    folder = tmp_path / ALLOWED
    folder.mkdir()
    return folder


@pytest.fixture
def jp_server_config(data_dir: Path, allowed_dir: Path) -> Config:
    return Config(
        {
            "ServerApp": {"jpserver_extensions": {"pluresdb_lab": True}},
            "PluresDBApp": {
                "data_dir": str(data_dir),
                "fsync": "off",
                "allowed_paths": [str(allowed_dir)],
            },
        }
    )


@pytest.fixture
def served_db(jp_serverapp: ServerApp) -> Database:
    """The Database the extension opened."""
    db: Database = jp_serverapp.extension_manager.extension_points["pluresdb_lab"].app.db
    return db


@pytest.fixture
def api(jp_fetch: Callable[..., Any]) -> Callable[..., Any]:
    """`await api(method, route, body=..., params=...)` -> (status, parsed JSON body)."""

    async def call(
        method: str,
        route: str,
        body: Any = None,
        *,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        raw = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
        if raw is None and method in ("POST", "PUT"):
            raw = b""
        response = await jp_fetch(
            "pluresdb",
            "api",
            route,
            method=method,
            body=raw,
            params=params,
            headers=dict(headers or {}),
            raise_error=False,
            allow_nonstandard_methods=True,
        )
        text = response.body
        kind = response.headers.get("Content-Type", "")
        return response.code, json.loads(text) if kind.startswith("application/json") else text

    return call


def wait_for(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Poll `check` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def stop(process: subprocess.Popen[Any]) -> None:
    """End a subprocess: SIGTERM, then SIGKILL after 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def start_serve(
    data: Path, log: Path, token: str = TOKEN, *extra: str
) -> tuple[subprocess.Popen[bytes], str]:
    """Start `pluresdb serve` on a free 127.0.0.1 port; returns the process and API URL."""
    out = log.open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pluresdb_lab.cli",
            "serve",
            "--data",
            str(data),
            "--port",
            "0",
            "--token",
            token,
            *extra,
        ],
        stdout=out,
        stderr=subprocess.STDOUT,
        cwd=log.parent,
    )
    out.close()

    def listening() -> str | None:
        if process.poll() is not None:
            raise AssertionError(f"pluresdb serve exited: {log.read_text()}")
        match = SERVE.search(log.read_text())
        return match.group(1) if match else None

    try:
        url = wait_for(listening, "pluresdb serve to listen")
    except BaseException:
        stop(process)
        raise
    return process, url


@pytest.fixture(scope="module")
def serve_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where `serve_url` keeps its database (`db`), log and allowed folder (ALLOWED)."""
    folder = tmp_path_factory.mktemp("serve")
    (folder / ALLOWED).mkdir()
    return folder


@pytest.fixture(scope="module")
def serve_url(serve_folder: Path) -> Iterator[str]:
    """A `pluresdb serve` subprocess for the module's tests (REST paths: `serve_folder/ALLOWED`)."""
    process, url = start_serve(
        serve_folder / "db",
        serve_folder / "serve.log",
        TOKEN,
        "--allow-path",
        str(serve_folder / ALLOWED),
    )
    try:
        yield url
    finally:
        stop(process)


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLURESDB_")}
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class JupyterServer:
    """A `jupyter server` subprocess on 127.0.0.1 with its own Jupyter dirs.

    Args:
        root: its root dir; its config, data and runtime dirs and log go in there.
        data: the database folder (`PluresDBApp.data_dir`).
        config: more `PluresDBApp` traits, written to its `jupyter_server_config.json`.
    """

    def __init__(self, root: Path, data: Path, config: dict[str, Any] | None = None) -> None:
        self.root = root
        self.port = free_port()
        self.mesh_url = f"ws://127.0.0.1:{self.port}/pluresdb/mesh"
        (root / "config").mkdir(parents=True, exist_ok=True)
        (root / "config" / "jupyter_server_config.json").write_text(
            json.dumps({"PluresDBApp": config or {}})
        )
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
                f"--IdentityProvider.token={JUPYTER_TOKEN}",
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
        self.http = httpx.Client(headers={"Authorization": f"token {JUPYTER_TOKEN}"}, timeout=30)
        self.kernels: list[str] = []
        try:
            wait_for(self.ready, "jupyter server to serve the PluresDB API", timeout=60)
        except BaseException:
            self.close()
            raise

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
