"""Outgoing links: dial a peer's URL and keep redialing with exponential backoff."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from pluresdb_lab.errors import MeshError
from pluresdb_lab.mesh._link import Link
from pluresdb_lab.mesh._sockets import ClientTransport, dial, run_client

if TYPE_CHECKING:
    from pluresdb_lab.mesh._mesh import Mesh

BACKOFF_FIRST_S, BACKOFF_MAX_S = 0.2, 10.0


class Dialer:
    """Keeps an outgoing link to one URL up, redialing with exponential backoff."""

    def __init__(self, mesh: Mesh, url: str, pinned: str | None) -> None:
        self.mesh, self.url, self.pinned = mesh, url, pinned
        self.peer_id = pinned  # who answered at this URL last
        self.stopped = False
        self._wake = asyncio.Event()
        self.link = self._new_link()
        self.task = asyncio.ensure_future(self._run())

    def _new_link(self) -> Link:
        link = Link(self.mesh, _Unconnected(), "outgoing", self.url, self.pinned)
        self.mesh.link_opened(link)
        return link

    def wake(self) -> None:
        """Redial now instead of after the backoff delay."""
        self._wake.set()

    def stop(self) -> None:
        self.stopped = True
        self._wake.set()
        self.link.close()

    async def _run(self) -> None:
        delay = BACKOFF_FIRST_S
        link = self.link
        while True:
            try:
                connection = await dial(self.url, self.mesh.max_frame_bytes, self.mesh.cafile)
            except Exception as exc:
                link.state, link.last_error = "error", f"cannot connect: {exc}"
                self.mesh.log.add("warning", "connect-failed", f"{self.url}: {exc}", self.peer_id)
                link.closed(None)
            else:
                if self.stopped:
                    connection.close()
                    return
                link.transport = ClientTransport(connection)
                await run_client(link, connection)
            self.peer_id = link.peer_id or self.peer_id
            if link.authenticated:
                delay = BACKOFF_FIRST_S
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, BACKOFF_MAX_S)
            if self.stopped:
                return
            link = self.link = self._new_link()


class _Unconnected:
    """The transport of an outgoing link before its socket opens."""

    def send(self, frame: bytes) -> Awaitable[None]:
        raise MeshError("this link is not connected yet")

    def close(self, code: int, reason: str) -> None:
        return None
