"""Edges: link, unlink and neighbors."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from pluresdb_lab import _wire
from pluresdb_lab.server.api import ApiHandler
from pluresdb_lab.server.errors import bad_request


class EdgesHandler(ApiHandler):
    """POST {"src", "dst", "label", "data"}: link. DELETE ?src=&dst=&label=: unlink."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.json_object()
        missing = [k for k in ("src", "dst", "label") if k not in body]
        if missing:
            raise bad_request(f"an edge needs {missing}")
        edge = await self.call(
            self.db.link, body["src"], body["dst"], body["label"], body.get("data")
        )
        self.reply(_wire.node_to_json(edge))

    @web.authenticated
    @authorized
    async def delete(self) -> None:
        removed = await self.call(
            self.db.unlink,
            self.required_arg("src"),
            self.required_arg("dst"),
            self.required_arg("label"),
        )
        self.reply({"deleted": removed})


class NeighborsHandler(ApiHandler):
    """GET ?label=&direction=out|in|both: nodes one edge away."""

    @web.authenticated
    @authorized
    async def get(self, node_id: str) -> None:
        nodes = await self.call(
            self.db.neighbors,
            node_id,
            self.arg("label"),
            self.arg("direction", "out"),
        )
        self.reply({"nodes": [_wire.node_to_json(n) for n in nodes]})
