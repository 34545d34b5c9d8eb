"""Indexes, text and vector search, query specs, and graph algorithms."""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from pluresdb_lab.server.api import ApiHandler
from pluresdb_lab.server.errors import bad_request


def _arguments(body: dict[str, Any], allowed: set[str], required: set[str]) -> dict[str, Any]:
    """The body as keyword arguments, refusing unknown or missing keys."""
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise bad_request(f"unknown fields {unknown}; this route takes {sorted(allowed)}")
    missing = sorted(required - set(body))
    if missing:
        raise bad_request(f"missing fields {missing}")
    return body


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


class IndexesHandler(ApiHandler):
    """GET: every index with its statistics. POST {"kind", "name", "type", "fields",
    "params"}: create and build an index."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply({"indexes": await self.call(self.db.indexes)})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = _arguments(
            self.json_object(), {"kind", "name", "type", "fields", "params"}, {"kind"}
        )
        params = body.pop("params", None) or {}
        if not isinstance(params, dict):
            raise bad_request("'params' is an object of index parameters")
        for key in ("kind", "name", "type"):
            if not isinstance(body.get(key, ""), str | None):
                raise bad_request(f"{key!r} is a string")
        fields = body.get("fields")
        if not (fields is None or isinstance(fields, str) or _strings(fields)):
            raise bad_request("'fields' is a field name or a list of field names")
        kind = body.pop("kind")
        self.reply(await self.call(self.db.create_index, kind, **body, **params))


class IndexHandler(ApiHandler):
    """DELETE: drop an index."""

    @web.authenticated
    @authorized
    async def delete(self, name: str) -> None:
        await self.call(self.db.drop_index, name)
        self.reply({"dropped": name})


class SearchHandler(ApiHandler):
    """POST {"text", "fields", "type", "facets", "filter", "limit"}: BM25 text search."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = _arguments(
            self.json_object(),
            {"text", "fields", "type", "facets", "filter", "limit"},
            {"text"},
        )
        text = body.pop("text")
        self.reply(await self.call(self.db.search, text, **body))


class VectorSearchHandler(ApiHandler):
    """POST {"query", "k", "filter", "index"}: nearest neighbours of a vector, id or text."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = _arguments(self.json_object(), {"query", "k", "filter", "index"}, {"query"})
        query = body.pop("query")
        self.reply({"hits": await self.call(self.db.vector_search, query, **body)})


class QueryHandler(ApiHandler):
    """POST a query spec: the result table (Arrow IPC or JSON rows)."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        self.reply_table(await self.call(self.db.query, self.json_object()))


class ExplainHandler(ApiHandler):
    """POST a query spec: the plan (which index serves it)."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        self.reply(await self.call(self.db.explain, self.json_object()))


class TraverseHandler(ApiHandler):
    """GET ?depth=&label=&direction=: nodes within `depth` edges, breadth first."""

    @web.authenticated
    @authorized
    async def get(self, node_id: str) -> None:
        hops = await self.call(
            self.db.traverse,
            node_id,
            self.int_arg("depth", 1),
            self.arg("label"),
            self.arg("direction", "out"),
        )
        self.reply({"hops": hops})


class PathHandler(ApiHandler):
    """GET ?a=&b=&label=&direction=: ids on a shortest path, or null."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        path = await self.call(
            self.db.shortest_path,
            self.required_arg("a"),
            self.required_arg("b"),
            label=self.arg("label"),
            direction=self.arg("direction", "out"),
        )
        self.reply({"path": path})


class DegreeHandler(ApiHandler):
    """GET ?label=&direction=: how many edges touch a node."""

    @web.authenticated
    @authorized
    async def get(self, node_id: str) -> None:
        degree = await self.call(
            self.db.degree,
            node_id,
            label=self.arg("label"),
            direction=self.arg("direction", "both"),
        )
        self.reply({"degree": degree})
