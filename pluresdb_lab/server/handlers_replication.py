"""Replication over HTTP: the version vector, `ops_since` and `apply_ops`, as msgpack."""

from __future__ import annotations

import msgpack
from jupyter_server.auth.decorator import authorized
from tornado import web

from pluresdb_lab import _wire
from pluresdb_lab.server.api import ApiHandler, unpack
from pluresdb_lab.server.errors import bad_request


class VersionVectorHandler(ApiHandler):
    """GET: peer id -> highest sequence applied, and this database's peer id."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        vv = await self.call(self.db.version_vector)
        self.reply({"peer_id": self.db.peer_id, "version_vector": vv})


class OpsHandler(ApiHandler):
    """POST msgpack {"since": vv} -> msgpack [ops]; PUT msgpack [ops] -> {"applied": n}."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = unpack(self.body) if self.body else {}
        if not isinstance(body, dict):
            raise bad_request("the body is msgpack {'since': version vector or nil}")
        ops = await self.call(self.db.ops_since, body.get("since"))
        self.finish(msgpack.packb(ops, use_bin_type=True), set_content_type=_wire.MSGPACK)

    @web.authenticated
    @authorized
    async def put(self) -> None:
        ops = unpack(self.body)
        if not isinstance(ops, list):
            raise bad_request("the body is a msgpack array of ops")
        self.reply({"applied": await self.call(self.db.apply_ops, ops)})
