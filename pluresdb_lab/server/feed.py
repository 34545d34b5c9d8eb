"""The change feed: one JSON `Change` per change, as it happens, to whoever listens.

Two transports carry the same events: server-sent events (`changes`, what
RemoteDatabase reads) and a WebSocket (`changes/ws`, for browsers and async clients).
Both take `?id=` and `?type=` filters and authenticate like every other route.
"""

from __future__ import annotations

import asyncio
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized, ws_authenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web
from tornado.ioloop import IOLoop
from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from pluresdb_lab import _wire, errors
from pluresdb_lab._database import Database
from pluresdb_lab.engine import Change, Subscription
from pluresdb_lab.server.api import ApiHandler, query_arg
from pluresdb_lab.server.errors import ApiError, error_body

KEEPALIVE_S = 5.0


class ChangesHandler(ApiHandler):
    """GET ?id=&type=: a `text/event-stream` of changes until the client goes away.

    The first event is `ready` (the subscription is in place); each change is a
    `change` event; a comment line every KEEPALIVE_S notices closed connections.
    """

    @web.authenticated
    @authorized
    async def get(self) -> None:
        loop = IOLoop.current()
        self.queue: asyncio.Queue[Change | None] = asyncio.Queue()

        def deliver(change: Change) -> None:
            loop.add_callback(self.queue.put_nowait, change)

        try:
            subscription = self.db.subscribe(deliver, id=self.arg("id"), type=self.arg("type"))
        except errors.PluresDBError as exc:
            raise ApiError.of(exc) from None
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        try:
            self.write("event: ready\ndata: {}\n\n")
            await self.flush()
            while True:
                try:
                    change = await asyncio.wait_for(self.queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    self.write(": keepalive\n\n")
                else:
                    if change is None:
                        return
                    self.write(
                        f"event: change\ndata: {_wire.dumps(_wire.change_to_json(change))}\n\n"
                    )
                await self.flush()
        except StreamClosedError:
            pass
        finally:
            subscription.cancel()

    def on_connection_close(self) -> None:
        super().on_connection_close()  # ends a body still streaming in
        if hasattr(self, "queue"):  # the stream had started
            self.queue.put_nowait(None)


class ChangesSocketHandler(WebSocketMixin, WebSocketHandler, ExtensionHandlerMixin, JupyterHandler):
    """GET ?id=&type= with a WebSocket upgrade: JSON text messages until either side closes.

    The first message is `{"event": "ready"}` (the subscription is in place); each
    change is `{"event": "change", "change": <Change as JSON>}`. Messages from the
    client are ignored. A bad filter is refused with a JSON 400 before the upgrade,
    a missing or wrong token with 403, as on every route.
    """

    auth_resource = "pluresdb"

    def initialize(self, name: str, db: Database) -> None:
        super().initialize(name)
        self.db = db
        self.subscription: Subscription | None = None
        # Changes that arrive between subscribing and the upgrade wait here.
        self.early: list[Change] | None = []

    def set_default_headers(self) -> None:
        """None of JupyterHandler's page headers: this reply is a protocol switch."""

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        self.set_header("Content-Type", _wire.JSON)
        self.finish(_wire.dumps(error_body(status_code, exc, self._reason)))

    @ws_authenticated
    async def get(self, *args: Any, **kwargs: Any) -> None:
        allowed = await ensure_async(
            self.authorizer.is_authorized(self, self.current_user, "read", self.auth_resource)
        )
        if not allowed:
            raise web.HTTPError(403, "not authorized to read the change feed")
        loop = IOLoop.current()
        try:
            self.subscription = self.db.subscribe(
                lambda change: loop.add_callback(self._deliver, change),
                id=query_arg(self.request, "id"),
                type=query_arg(self.request, "type"),
            )
        except errors.PluresDBError as exc:
            raise ApiError.of(exc) from None
        await super().get(*args, **kwargs)
        if self.ws_connection is None:  # the upgrade was refused: no socket, no feed
            self._unsubscribe()

    def open(self, *args: Any, **kwargs: Any) -> None:
        super().open(*args, **kwargs)
        self._send({"event": "ready"})
        early, self.early = self.early or [], None
        for change in early:
            self._deliver(change)

    def _deliver(self, change: Change) -> None:
        if self.early is not None:
            self.early.append(change)
        else:
            self._send({"event": "change", "change": _wire.change_to_json(change)})

    def _send(self, message: dict[str, Any]) -> None:
        try:
            self.write_message(_wire.dumps(message))
        except WebSocketClosedError:
            self._unsubscribe()

    def on_message(self, message: str | bytes) -> None:
        """The feed only speaks; what a client says is ignored."""

    def on_close(self) -> None:
        self._unsubscribe()

    def _unsubscribe(self) -> None:
        if self.subscription is not None:
            self.subscription.cancel()
            self.subscription = None
