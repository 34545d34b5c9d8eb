"""The two WebSocket ends of a link: `MeshSocketHandler` (incoming) and `dial` (outgoing).

Both are thin: they move bytes between a tornado socket and a `Link`. A Jupyter
server mounts `MeshSocketHandler` at ``{base_url}pluresdb/mesh`` with
``{"mesh": db.mesh}`` and the mesh then runs its links on the server's loop.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, WebSocketHandler, websocket_connect

from pluresdb_lab.mesh._link import Link

if TYPE_CHECKING:
    from pluresdb_lab.mesh._mesh import Mesh

PATH = "/pluresdb/mesh"
LOST = "connection lost (peer gone, or it sent a frame far over the size limit)"


def transport_limit(max_frame_bytes: int) -> int:
    """What tornado buffers at most: room to see and report a frame somewhat over the limit."""
    return 2 * max_frame_bytes + 65536


class MeshSocketHandler(WebSocketHandler):
    """Accepts incoming mesh links; peers authenticate in the handshake, not via HTTP."""

    def initialize(self, mesh: Mesh) -> None:
        self.mesh = mesh
        self.link: Link | None = None

    @property
    def max_message_size(self) -> int:
        return transport_limit(self.mesh.max_frame_bytes)

    def check_origin(self, origin: str) -> bool:
        return True  # no cookies or ambient authority: the handshake decides

    def open(self, *args: Any, **kwargs: Any) -> None:
        self.set_nodelay(True)
        where = f"{self.request.remote_ip}"
        self.link = Link(self.mesh, self, "incoming", where)
        self.mesh.link_opened(self.link)
        self.link.start()

    def on_message(self, message: str | bytes) -> Awaitable[None] | None:
        return self.link.receive(message) if self.link is not None else None

    def on_close(self) -> None:
        if self.link is not None:
            self.link.closed(LOST if self.close_code is None else None)

    def send(self, frame: bytes) -> Awaitable[None]:
        return self.write_message(frame, binary=True)


class ClientTransport:
    """The outgoing side of a link: a tornado WebSocket client connection."""

    def __init__(self, connection: WebSocketClientConnection) -> None:
        self.connection = connection

    def send(self, frame: bytes) -> Awaitable[None]:
        return self.connection.write_message(frame, binary=True)

    def close(self, code: int, reason: str) -> None:
        self.connection.close(code, reason)


async def dial(url: str, max_frame_bytes: int, cafile: str | None) -> WebSocketClientConnection:
    """Open the WebSocket to a peer's mesh endpoint."""
    request = HTTPRequest(url, connect_timeout=10, request_timeout=10, ca_certs=cafile)
    connection = await websocket_connect(request, max_message_size=transport_limit(max_frame_bytes))
    if connection.protocol is not None:
        connection.protocol.set_nodelay(True)
    return connection


async def run_client(link: Link, connection: WebSocketClientConnection) -> None:
    """Feed received frames to `link` until the socket closes."""
    link.start()
    while True:
        message = await connection.read_message()
        if message is None:
            link.closed(LOST if connection.close_code is None else None)
            return
        await link.receive(message)
