"""Nodes: CRUD, listing, counts, batches (Arrow IPC or JSON), types and whole tables."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from jupyter_server.auth.decorator import authorized
from tornado import web

from pluresdb_lab import _wire
from pluresdb_lab.server.api import ApiHandler
from pluresdb_lab.server.errors import ApiError, bad_request


class NodesHandler(ApiHandler):
    """GET: nodes sorted by id (`type`, `limit`, `offset`, `as_of`). POST: `put_many`."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        view = await self.view()
        nodes = await self.call(
            view.list,
            self.arg("type"),
            self.int_arg("limit", 100),
            self.int_arg("offset", 0),
        )
        self.reply({"nodes": [_wire.node_to_json(n) for n in nodes]})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        records: pa.Table | list[Any]
        if self.request.headers.get("Content-Type", "").startswith(_wire.ARROW):
            try:
                records = _wire.table_from_ipc(self.body)
            except (pa.ArrowInvalid, OSError) as exc:
                raise bad_request(f"the body is not an Arrow IPC stream: {exc}") from None
        else:
            body = self.json_body()
            if not isinstance(body, list) or not all(isinstance(r, dict) for r in body):
                raise bad_request("the body is a JSON array of record objects (or Arrow IPC)")
            records = body
        written = await self.call(
            self.db.put_many,
            records,
            type=self.arg("type"),
            id_field=self.arg("id_field", "id"),
            vector_field=self.arg("vector_field"),
        )
        self.reply({"written": written})


class NodeHandler(ApiHandler):
    """One node: GET (404 when absent), PUT (merge-patch), DELETE."""

    @web.authenticated
    @authorized
    async def get(self, node_id: str) -> None:
        view = await self.view()
        node = await self.call(view.get, node_id)
        if node is None:
            raise ApiError(404, "NotFoundError", f"there is no node {node_id!r}")
        self.reply(_wire.node_to_json(node))

    @web.authenticated
    @authorized
    async def put(self, node_id: str) -> None:
        body = self.json_object()
        if not isinstance(body.get("data", {}), dict):
            raise bad_request("'data' is a JSON object of fields")
        node = await self.call(
            self.db.put,
            node_id,
            body.get("data", {}),
            type=body.get("type"),
            vector=body.get("vector"),
        )
        self.reply(_wire.node_to_json(node))

    @web.authenticated
    @authorized
    async def delete(self, node_id: str) -> None:
        self.reply({"deleted": await self.call(self.db.delete, node_id)})


class GetManyHandler(ApiHandler):
    """POST {"ids": [...]}: the nodes in the same order, null where absent (the engine
    judges `ids` as given: one id instead of a list gets its message)."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        nodes = await self.call(self.db.get_many, self.json_object().get("ids"))
        self.reply({"nodes": [None if n is None else _wire.node_to_json(n) for n in nodes]})


class CountHandler(ApiHandler):
    """GET: how many nodes (of `type`)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        view = await self.view()
        self.reply({"count": await self.call(view.count, self.arg("type"))})


class TypesHandler(ApiHandler):
    """GET: node count per type."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        view = await self.view()
        self.reply({"types": _wire.types_to_json(await self.call(view.types))})


class TableHandler(ApiHandler):
    """GET: `to_arrow(type)`, as Arrow IPC (Accept header) or JSON rows: bulk reads."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        view = await self.view()
        self.reply_table(await self.call(view.to_arrow, self.arg("type")))
