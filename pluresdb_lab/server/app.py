"""The Jupyter server extension: one Database per server, its REST API and mesh endpoint.

The database opens when the extension loads and closes when the server stops. Once
the server listens, its API URL and token go into `os.environ` (PLURESDB_URL,
PLURESDB_TOKEN), which kernels it starts inherit, so `pluresdb_lab.connect()` in a
kernel reaches this database. When the database cannot open (most often: another
Jupyter server of the same user holds the folder), the server still runs: the error is
logged, and every API route answers 503 with it, so `connect()` in a kernel raises it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, cast

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.extension.application import ExtensionApp
from jupyter_server.utils import url_path_join
from tornado.platform.asyncio import BaseAsyncIOLoop
from traitlets import Bool, Enum, Float, Int, List, Unicode, default

from pluresdb_lab._database import Database
from pluresdb_lab.errors import PluresDBError
from pluresdb_lab.mesh import Mesh, MeshSocketHandler
from pluresdb_lab.server.body import DEFAULT_MAX_BODY_BYTES
from pluresdb_lab.server.routes import API, routes
from pluresdb_lab.server.unavailable import unavailable_routes

URL_VAR = "PLURESDB_URL"
TOKEN_VAR = "PLURESDB_TOKEN"
MESH_PATH = "pluresdb/mesh"


class PluresDBApp(ExtensionApp):
    """Serves a PluresDB database from a Jupyter server."""

    name = "pluresdb_lab"

    data_dir = Unicode(config=True, help="The database folder (created if missing).")
    """The database folder; by default `pluresdb/default` under the Jupyter data dir."""

    fsync = Enum(["always", "interval", "off"], "interval", config=True, help="WAL fsync policy.")
    """"always" (group commit), "interval" (about once a second) or "off"."""

    auto_compact = Bool(True, config=True, help="Compact in the background.")
    """Merge a level once it holds four segments."""

    retention = Float(
        None, allow_none=True, config=True, help="Seconds of history kept (None: all)."
    )
    """History older than this is dropped by compaction; None keeps it all."""

    mesh_secret = Unicode(None, allow_none=True, config=True, help="Shared mesh secret.")
    """Peers proving this secret in the handshake are accepted."""

    mesh_allow = List(Unicode(), config=True, help="Peer ids accepted without the secret.")
    """Peer ids accepted on the mesh endpoint without the secret."""

    mesh_peers = List(Unicode(), config=True, help="ws:// mesh URLs to keep links to.")
    """Mesh URLs (`{base_url}pluresdb/mesh` of other servers) dialed at start."""

    allowed_paths = List(
        Unicode(), config=True, help="Folders REST import/export/backup paths may name."
    )
    """Folders (besides the database folder) that file paths given over REST may lie in."""

    max_body_bytes = Int(
        DEFAULT_MAX_BODY_BYTES, config=True, help="Largest REST request body, in bytes."
    )
    """A larger body is refused with 413 before it is read."""

    @default("data_dir")
    def _default_data_dir(self) -> str:
        return str(Path(jupyter_data_dir()) / "pluresdb" / "default")

    db: Database | None = None  # None until the database opened, or when it could not
    unavailable: tuple[str, str] | None = None  # error class name, message

    def initialize_settings(self) -> None:
        assert self.serverapp is not None
        try:
            db = Database(
                self.data_dir,
                fsync=self.fsync,
                retention=self.retention,
                auto_compact=self.auto_compact,
            )
        except (PluresDBError, OSError) as exc:
            self._failed(exc)
            return
        self.db = db
        self.db.mesh = Mesh(
            self.db,
            secret=self.mesh_secret,
            allow=self.mesh_allow,
            loop=cast(BaseAsyncIOLoop, self.serverapp.io_loop).asyncio_loop,
        )
        self.log.info("PluresDB: serving %s (peer %s)", self.data_dir, self.db.peer_id)

    def _failed(self, exc: Exception) -> None:
        """Keep the server up without the database, and say why everywhere."""
        reason = str(exc) if isinstance(exc, PluresDBError) else f"{self.data_dir}: {exc}"
        message = (
            f"PluresDB is not available in this Jupyter server (pid {os.getpid()}): {reason}. "
            "Or give this server another folder (PluresDBApp.data_dir) and restart it."
        )
        # RemoteDatabase raises the engine's class again; an OSError has none of its own
        error = type(exc).__name__ if isinstance(exc, PluresDBError) else "RemoteError"
        self.unavailable = (error, message)
        self.log.error("PluresDB: %s", message)

    def initialize_handlers(self) -> None:
        if self.db is None:
            self.handlers.extend(unavailable_routes(*(self.unavailable or ("RemoteError", ""))))
            return
        self.handlers.extend(routes(self.db))
        self.handlers.append((MESH_PATH, MeshSocketHandler, {"mesh": self.db.mesh}))

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        os.environ[URL_VAR] = url_path_join(serverapp.connection_url, API)
        os.environ[TOKEN_VAR] = serverapp.identity_provider.token or ""
        if self.db is not None:
            for url in self.mesh_peers:
                self.db.mesh.connect(url)

    async def stop_extension(self) -> None:
        """Called on every server stop, also after a failed start: must never raise, or
        the server hangs on SIGTERM."""
        for var in (URL_VAR, TOKEN_VAR):
            os.environ.pop(var, None)
        db, self.db = self.db, None
        if db is None:
            return
        try:
            db.close()
        except Exception:
            self.log.exception("PluresDB: closing %s failed", self.data_dir)
