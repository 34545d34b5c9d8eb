"""History, restore and conflicts of nodes."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from pluresdb_lab import _wire
from pluresdb_lab.server.api import ApiHandler
from pluresdb_lab.server.errors import bad_request


class HistoryHandler(ApiHandler):
    """GET: every visible version of a node, oldest first (404 when it never existed)."""

    @web.authenticated
    @authorized
    async def get(self, node_id: str) -> None:
        versions = await self.call(self.db.history, node_id)
        self.reply({"versions": [_wire.version_to_json(v) for v in versions]})


class RestoreHandler(ApiHandler):
    """POST {"version": n}: make that version current again."""

    @web.authenticated
    @authorized
    async def post(self, node_id: str) -> None:
        version = self.json_object().get("version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise bad_request("the body is {'version': <integer>}")
        node = await self.call(self.db.restore, node_id, version)
        self.reply(_wire.node_to_json(node))


class ConflictsHandler(ApiHandler):
    """GET: conflicts LWW resolved (of node `id`, when given)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        found = await self.call(self.db.conflicts, self.arg("id"))
        self.reply({"conflicts": [_wire.conflict_to_json(c) for c in found]})


class ResolveHandler(ApiHandler):
    """POST {"choose": "winner"|"loser"}: settle a conflict."""

    @web.authenticated
    @authorized
    async def post(self, conflict_id: str) -> None:
        choose = self.json_object().get("choose", "winner")
        node = await self.call(self.db.resolve_conflict, conflict_id, choose)
        self.reply(_wire.node_to_json(node))
