"""`pluresdb serve`: the extension's handlers on a plain tornado Application, without Jupyter.

Requests authenticate with the token (`Authorization: token T` or `?token=T`) through
jupyter_server's IdentityProvider, as on a Jupyter server, but no login cookie is set.
`serve` runs in the foreground until a signal; `Background` runs the same server on a
thread of its own, for tests, benchmarks and notebooks that want a database reached over
HTTP in one process.

File paths given over REST must lie in the database folder or in `allowed_paths`
(see `paths`); API request bodies stream in under `max_body_bytes` (see `body`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_server.auth.authorizer import AllowAllAuthorizer
from jupyter_server.auth.identity import IdentityProvider, User
from tornado import httpserver, netutil, web

from pluresdb_lab._database import Database
from pluresdb_lab.mesh import Mesh, MeshSocketHandler
from pluresdb_lab.server.app import MESH_PATH, PluresDBApp
from pluresdb_lab.server.body import DEFAULT_MAX_BODY_BYTES
from pluresdb_lab.server.routes import API, routes

log = logging.getLogger("pluresdb_lab.serve")
# Bodies of routes that do not stream theirs (none expects one: 404s, the mesh socket)
# are read whole by tornado before any check, so keep them small.
UNSTREAMED_BODY_BYTES = 64 * 2**10

Folders = Sequence[str | os.PathLike[str]]


@dataclass
class Standalone:
    """What handlers read from `settings[name]` in place of the ExtensionApp."""

    log: logging.Logger = field(default_factory=lambda: log)
    allowed_paths: list[str] = field(default_factory=list)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES


@dataclass
class Listening:
    """A started server: the tornado HTTPServer, its API URL and its token."""

    server: httpserver.HTTPServer
    url: str
    token: str


class TokenIdentity(IdentityProvider):
    """Jupyter's token check without its login cookie: `pluresdb serve` has no login
    page, so a cookie would only cost a signature to make or check on every request."""

    def get_user_cookie(self, handler: web.RequestHandler) -> User | None:
        return None

    def set_login_cookie(self, handler: web.RequestHandler, user: User) -> None:
        return None


def make_app(
    db: Database,
    token: str,
    *,
    allowed_paths: Folders = (),
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> web.Application:
    """A tornado Application serving `db`'s REST API and mesh endpoint at the root URL.

    `allowed_paths`: folders besides the database folder that REST file paths may name.
    `max_body_bytes`: the largest API request body (a larger one is answered 413).
    """
    identity = TokenIdentity(token=token)
    handlers = [("/" + pattern, cls, kwargs) for pattern, cls, kwargs in routes(db)]
    handlers = [*handlers, (f"/{MESH_PATH}", MeshSocketHandler, {"mesh": db.mesh})]
    named = [(p, c, {"name": PluresDBApp.name, **k}) for p, c, k in handlers[:-1]]
    settings: dict[str, Any] = {
        "base_url": "/",
        "cookie_secret": secrets.token_bytes(32),
        "identity_provider": identity,
        "authorizer": AllowAllAuthorizer(identity_provider=identity),
        "serverapp": None,
        PluresDBApp.name: Standalone(
            allowed_paths=[str(Path(a).resolve()) for a in allowed_paths],
            max_body_bytes=max_body_bytes,
        ),
    }
    return web.Application([*named, handlers[-1]], **settings)


async def start(
    db: Database,
    *,
    host: str = "127.0.0.1",
    port: int = 34568,
    token: str | None = None,
    peers: tuple[str, ...] = (),
    mesh_secret: str | None = None,
    allowed_paths: Folders = (),
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> Listening:
    """Listen on `host:port` (0: a free port) on the running loop, which the mesh shares."""
    token = token or secrets.token_hex(24)
    db.mesh = Mesh(db, secret=mesh_secret, loop=asyncio.get_running_loop())
    app = make_app(db, token, allowed_paths=allowed_paths, max_body_bytes=max_body_bytes)
    # API handlers raise this per request once the token is checked (see `body`).
    server = httpserver.HTTPServer(app, max_body_size=UNSTREAMED_BODY_BYTES)
    sockets = netutil.bind_sockets(port, host)
    server.add_sockets(sockets)
    bound = sockets[0].getsockname()[1]
    for url in peers:
        db.mesh.connect(url)
    return Listening(server, f"http://{host}:{bound}/{API}", token)


async def stop(listening: Listening) -> None:
    """Stop accepting connections and close the open ones."""
    listening.server.stop()
    await listening.server.close_all_connections()


async def serve(
    db: Database,
    *,
    host: str = "127.0.0.1",
    port: int = 34568,
    token: str | None = None,
    peers: tuple[str, ...] = (),
    mesh_secret: str | None = None,
    allowed_paths: Folders = (),
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> None:
    """Serve `db` until SIGINT or SIGTERM; prints the API URL and token once listening."""
    listening = await start(
        db,
        host=host,
        port=port,
        token=token,
        peers=peers,
        mesh_secret=mesh_secret,
        allowed_paths=allowed_paths,
        max_body_bytes=max_body_bytes,
    )
    print(f"PluresDB serving {db.path} at {listening.url} token={listening.token}", flush=True)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, done.set)
    await done.wait()
    await stop(listening)


class Background:
    """`db` served by a thread of its own until `close()`; the caller still owns `db`.

    Args:
        db: the database to serve (its mesh moves onto the server's loop).
        host: the interface to listen on.
        port: the port (0, the default, picks a free one).
        token: the API token (default: a random one).
        mesh_secret: the shared secret mesh peers must prove.
        allowed_paths: folders besides the database folder that REST file paths
            (import, export, backups) may name.
        max_body_bytes: the largest API request body; a larger one is answered 413.

    Attributes:
        url: the API base URL (`http://host:port/pluresdb/api/`).
        token: the token requests must carry.
    """

    def __init__(
        self,
        db: Database,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        mesh_secret: str | None = None,
        allowed_paths: Folders = (),
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self.db = db
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="pluresdb-serve", daemon=True
        )
        self._thread.start()
        try:
            self._listening = self._run(
                start(
                    db,
                    host=host,
                    port=port,
                    token=token,
                    mesh_secret=mesh_secret,
                    allowed_paths=allowed_paths,
                    max_body_bytes=max_body_bytes,
                )
            )
        except BaseException:
            self._end_loop()
            raise
        self.url = self._listening.url
        self.token = self._listening.token
        self.closed = False

    def _run(self, work: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(30)

    def _end_loop(self) -> None:
        self._run(self._loop.shutdown_default_executor())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()

    def __enter__(self) -> Background:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving, close the mesh it started and end the thread; `db` stays open.

        Closing twice is harmless.
        """
        if self.closed:
            return
        self.closed = True
        self._run(stop(self._listening))
        # The mesh runs on this loop: close it while the loop still turns.
        self.db.mesh.close()
        self._end_loop()
