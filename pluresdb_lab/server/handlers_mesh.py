"""The served database's mesh: identity, peers, connect/disconnect, sync, logs, snapshots.

Mesh calls hop to the server's loop and wait there, so they run from a worker thread.
"""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from pluresdb_lab.server.api import ApiHandler
from pluresdb_lab.server.errors import bad_request


class MeshHandler(ApiHandler):
    """GET: identity, paused, peers. PUT {"paused": bool}: pause or resume syncing."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        mesh = self.db.mesh
        identity = mesh.identity
        self.reply(
            {
                "peer_id": identity.peer_id,
                "public_key": identity.public_key,
                "paused": mesh.paused,
                "peers": await self.call(mesh.peers),
            }
        )

    @web.authenticated
    @authorized
    async def put(self) -> None:
        paused = self.json_object().get("paused")
        if not isinstance(paused, bool):
            raise bad_request("the body is {'paused': true or false}")
        await self.call(self.db.mesh.pause if paused else self.db.mesh.resume)
        self.reply({"paused": paused})


class PeersHandler(ApiHandler):
    """POST {"url", "peer_id"}: keep a link to a peer. DELETE ?peer_id=: disconnect it."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.json_object()
        await self.call(self.db.mesh.connect, body.get("url"), peer_id=body.get("peer_id"))
        self.reply({"connecting": body.get("url")})

    @web.authenticated
    @authorized
    async def delete(self) -> None:
        await self.call(self.db.mesh.disconnect, self.required_arg("peer_id"))
        self.reply({"disconnected": self.required_arg("peer_id")})


class SyncHandler(ApiHandler):
    """POST {"peer_id": id or null}: run a sync round with one peer or all."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        await self.call(self.db.mesh.sync, self.json_object().get("peer_id"))
        self.reply({})


class LogsHandler(ApiHandler):
    """GET ?limit=&level=: the newest mesh log entries."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        entries = await self.call(self.db.mesh.logs, self.int_arg("limit", 200), self.arg("level"))
        self.reply({"entries": entries})


class SnapshotsHandler(ApiHandler):
    """GET: snapshots. POST: take one now. DELETE ?id=: remove one."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply({"snapshots": await self.call(self.db.mesh.snapshots)})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        self.reply(await self.call(self.db.mesh.snapshot))

    @web.authenticated
    @authorized
    async def delete(self) -> None:
        await self.call(self.db.mesh.delete_snapshot, self.required_arg("id"))
        self.reply({"deleted": self.required_arg("id")})
