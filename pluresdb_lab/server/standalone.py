"""`pluresdb serve`: the extension's handlers on a plain tornado Application, without Jupyter.

Requests authenticate with the token (`Authorization: token T` or `?token=T`) through
jupyter_server's IdentityProvider, exactly as on a Jupyter server.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import signal
from dataclasses import dataclass, field
from typing import Any

from jupyter_server.auth.authorizer import AllowAllAuthorizer
from jupyter_server.auth.identity import IdentityProvider
from tornado import httpserver, netutil, web

from pluresdb_lab._database import Database
from pluresdb_lab.mesh import Mesh, MeshSocketHandler
from pluresdb_lab.server.app import MESH_PATH, PluresDBApp
from pluresdb_lab.server.routes import API, routes

log = logging.getLogger("pluresdb_lab.serve")


@dataclass
class Standalone:
    """What handlers read from `settings[name]` in place of the ExtensionApp."""

    log: logging.Logger = field(default_factory=lambda: log)


def make_app(db: Database, token: str) -> web.Application:
    """A tornado Application serving `db`'s REST API and mesh endpoint at the root URL."""
    identity = IdentityProvider(token=token)
    handlers = [("/" + pattern, cls, kwargs) for pattern, cls, kwargs in routes(db)]
    handlers = [*handlers, (f"/{MESH_PATH}", MeshSocketHandler, {"mesh": db.mesh})]
    named = [(p, c, {"name": PluresDBApp.name, **k}) for p, c, k in handlers[:-1]]
    settings: dict[str, Any] = {
        "base_url": "/",
        "cookie_secret": secrets.token_bytes(32),
        "identity_provider": identity,
        "authorizer": AllowAllAuthorizer(identity_provider=identity),
        "serverapp": None,
        PluresDBApp.name: Standalone(),
    }
    return web.Application([*named, handlers[-1]], **settings)


async def serve(
    db: Database,
    *,
    host: str = "127.0.0.1",
    port: int = 34568,
    token: str | None = None,
    peers: tuple[str, ...] = (),
    mesh_secret: str | None = None,
) -> None:
    """Serve `db` until SIGINT or SIGTERM; prints the API URL and token once listening."""
    token = token or secrets.token_hex(24)
    db.mesh = Mesh(db, secret=mesh_secret, loop=asyncio.get_running_loop())
    server = httpserver.HTTPServer(make_app(db, token))
    sockets = netutil.bind_sockets(port, host)
    server.add_sockets(sockets)
    bound = sockets[0].getsockname()[1]
    for url in peers:
        db.mesh.connect(url)
    print(f"PluresDB serving {db.path} at http://{host}:{bound}/{API} token={token}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    server.stop()
    await server.close_all_connections()
