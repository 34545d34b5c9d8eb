"""A server mounts MeshSocketHandler on its own loop (as the Jupyter extension does)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application

import pluresdb_lab as pl
from pluresdb_lab.mesh import PATH, Mesh, MeshSocketHandler


@pytest.fixture
def server_loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def test_handler_mounted_on_a_server_loop(server_loop, embedded, wait_until) -> None:
    served = pl.connect(":memory:")
    served.mesh = Mesh(served, secret="test-mesh-secret", loop=server_loop)
    served.put("from-server", {"x": 1})

    async def start() -> int:
        app = Application([(PATH, MeshSocketHandler, {"mesh": served.mesh})])
        sockets = bind_sockets(0, "127.0.0.1")
        HTTPServer(app).add_sockets(sockets)
        return int(sockets[0].getsockname()[1])

    port = asyncio.run_coroutine_threadsafe(start(), server_loop).result(10)
    client = embedded()
    client.mesh.connect(f"ws://127.0.0.1:{port}{PATH}")
    wait_until(lambda: client.get("from-server") is not None, what="server -> client")
    client.put("from-client", {"y": 2})
    wait_until(lambda: served.get("from-client") is not None, what="client -> server (live)")
    served.put("server-live", {"z": 3})
    wait_until(lambda: client.get("server-live") is not None, what="server -> client (live)")
    assert served.mesh.peers()[0]["direction"] == "incoming"
    served.close()
    assert served.mesh.closed
