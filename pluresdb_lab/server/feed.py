"""The change feed: server-sent events, one JSON `Change` per event, as they happen."""

from __future__ import annotations

import asyncio

from jupyter_server.auth.decorator import authorized
from tornado import web
from tornado.ioloop import IOLoop
from tornado.iostream import StreamClosedError

from pluresdb_lab import _wire, errors
from pluresdb_lab.engine import Change
from pluresdb_lab.server.api import ApiHandler
from pluresdb_lab.server.errors import ApiError

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
            subscription = self.db.subscribe(
                deliver, id=self.get_argument("id", None), type=self.get_argument("type", None)
            )
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
        if hasattr(self, "queue"):  # the stream had started
            self.queue.put_nowait(None)
