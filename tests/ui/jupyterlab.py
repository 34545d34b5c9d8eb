"""A real `jupyter lab` process for the UI tests, isolated from the user's Jupyter setup.

Its config, data, runtime, IPython, lab settings and workspaces folders all live in a
temporary home, so nothing a user set can leak in; the lab extensions (anywidget,
ipywidgets) and the pluresdb_lab server extension still load, because Jupyter finds
them under the virtual environment's prefix, which these variables do not replace.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

START_TIMEOUT = 90.0
"""Seconds `jupyter lab` may take to answer /api/status (4 to 19 s seen on 2 shared cores)."""

USER_SETTINGS: dict[str, dict[str, Any]] = {
    # The first visit asks whether to fetch Jupyter news in a toast that covers the
    # lower right corner of every screenshot, and answering "yes" would reach the web.
    "@jupyterlab/apputils-extension/notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}
"""User settings written before the server starts: path under the settings dir -> values."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class JupyterLab:
    """A `jupyter lab` subprocess on 127.0.0.1 with its own port, token and folders.

    Attributes:
        root: The folder the server shows (notebooks for tests are written here).
        port: The port it listens on.
        url: The server's base URL, ending in "/".
        token: The token every request (and the browser's first page load) carries.
        log: The file holding the server's stdout and stderr.
        http: A client for the server's REST API, the token in its headers.
        start_seconds: Seconds from spawning the process to the first answer of /api/status.
    """

    def __init__(self, home: Path) -> None:
        """Start the server in `home` and return once /api/status answers.

        Args:
            home: An empty folder for the server's files.

        Raises:
            AssertionError: The server exited or did not answer within START_TIMEOUT.
        """
        self.root = home / "root"
        self.root.mkdir()
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = home / "server.log"
        self.http = httpx.Client(
            base_url=self.url, headers={"Authorization": f"token {self.token}"}, timeout=30
        )
        settings = home / "lab-settings"
        for name, values in USER_SETTINGS.items():
            path = settings / f"{name}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        env = {k: v for k, v in os.environ.items() if not k.startswith("PLURESDB_")}
        env.update(
            JUPYTER_CONFIG_DIR=str(home / "config"),
            JUPYTER_DATA_DIR=str(home / "data"),
            JUPYTER_RUNTIME_DIR=str(home / "runtime"),
            JUPYTERLAB_SETTINGS_DIR=str(settings),
            JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
            IPYTHONDIR=str(home / "ipython"),
        )
        command = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            f"--PluresDBApp.data_dir={home / 'db'}",
        ]
        if os.geteuid() == 0:
            command.append("--allow-root")
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=home
            )
        started = time.monotonic()
        self._wait_ready(started + START_TIMEOUT)
        self.start_seconds = time.monotonic() - started

    def _wait_ready(self, deadline: float) -> None:
        while True:
            try:
                if self.http.get("api/status").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"jupyter lab did not answer in time:\n{self.tail()}")
            try:
                # Waiting on the process doubles as the pause between polls.
                code = self.process.wait(0.1)
            except subprocess.TimeoutExpired:
                continue
            raise AssertionError(f"jupyter lab exited with {code}:\n{self.tail()}")

    def tail(self, chars: int = 4000) -> str:
        """The end of the server log."""
        return self.log.read_text(errors="replace")[-chars:]

    def page_url(self, path: str) -> str:
        """The browser URL of `path` under the server, with the token that logs it in."""
        return f"{self.url}{path}?token={self.token}"

    def shutdown_kernels(self) -> None:
        """End every session and kernel, so the next test starts with none running."""
        for session in self.http.get("api/sessions").json():
            self.http.delete(f"api/sessions/{session['id']}")
        for kernel in self.http.get("api/kernels").json():
            self.http.delete(f"api/kernels/{kernel['id']}")

    def stop(self) -> None:
        """Shut the kernels down, then the server: SIGTERM, SIGKILL after 15 s."""
        try:
            if self.process.poll() is None:
                self.shutdown_kernels()
        finally:
            self.http.close()
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(15)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(15)
