"""The Jupyter server extension: one Database per server, its REST API and mesh endpoint.

The database opens when the extension loads and closes when the server stops. Once
the server listens, its API URL and token go into `os.environ` (PLURESDB_URL,
PLURESDB_TOKEN), which kernels it starts inherit, so `pluresdb_lab.connect()` in a
kernel reaches this database.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, cast

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.extension.application import ExtensionApp
from jupyter_server.utils import url_path_join
from tornado.platform.asyncio import BaseAsyncIOLoop
from traitlets import Bool, Enum, Float, List, Unicode, default

from pluresdb_lab._database import Database
from pluresdb_lab.mesh import Mesh, MeshSocketHandler
from pluresdb_lab.server.routes import API, routes

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

    @default("data_dir")
    def _default_data_dir(self) -> str:
        return str(Path(jupyter_data_dir()) / "pluresdb" / "default")

    def initialize_settings(self) -> None:
        assert self.serverapp is not None
        self.db = Database(
            self.data_dir,
            fsync=self.fsync,
            retention=self.retention,
            auto_compact=self.auto_compact,
        )
        self.db.mesh = Mesh(
            self.db,
            secret=self.mesh_secret,
            allow=self.mesh_allow,
            loop=cast(BaseAsyncIOLoop, self.serverapp.io_loop).asyncio_loop,
        )
        self.log.info("PluresDB: serving %s (peer %s)", self.data_dir, self.db.peer_id)

    def initialize_handlers(self) -> None:
        self.handlers.extend(routes(self.db))
        self.handlers.append((MESH_PATH, MeshSocketHandler, {"mesh": self.db.mesh}))

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        os.environ[URL_VAR] = url_path_join(serverapp.connection_url, API)
        os.environ[TOKEN_VAR] = serverapp.identity_provider.token or ""
        for url in self.mesh_peers:
            self.db.mesh.connect(url)

    async def stop_extension(self) -> None:
        for var in (URL_VAR, TOKEN_VAR):
            os.environ.pop(var, None)
        self.db.close()
