"""Profiling (`db.profiler`): slow operations and their threshold, large nodes, top
talkers, trends, and suggestions with apply and dismiss."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from pluresdb_lab.engine import Profiler
from pluresdb_lab.server.api import ApiHandler
from pluresdb_lab.server.errors import bad_request


def _set_threshold(profiler: Profiler, value: float) -> float:
    profiler.slow_threshold_ms = value
    return profiler.slow_threshold_ms


class SlowOpsHandler(ApiHandler):
    """GET ?limit=: the newest slow operations, newest first."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        limit = self.int_arg("limit", 100)
        self.reply({"ops": await self.call(self.db.profiler.slow_ops, limit)})


class ThresholdHandler(ApiHandler):
    """GET: the slow threshold. PUT {"slow_threshold_ms": number}: change it."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply({"slow_threshold_ms": self.db.profiler.slow_threshold_ms})

    @web.authenticated
    @authorized
    async def put(self) -> None:
        body = self.json_object()
        if "slow_threshold_ms" not in body:
            raise bad_request("the body is {'slow_threshold_ms': milliseconds}")
        value = await self.call(_set_threshold, self.db.profiler, body["slow_threshold_ms"])
        self.reply({"slow_threshold_ms": value})


class LargeNodesHandler(ApiHandler):
    """GET ?limit=: the largest nodes read or written, with read and write counts."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        limit = self.int_arg("limit", 20)
        self.reply({"nodes": await self.call(self.db.profiler.large_nodes, limit)})


class TalkersHandler(ApiHandler):
    """GET ?limit=: peers by bytes their mesh links carried."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        limit = self.int_arg("limit", 10)
        self.reply({"talkers": await self.call(self.db.profiler.top_talkers, limit)})


class TrendsHandler(ApiHandler):
    """GET ?window=seconds: ops/s and latency percentiles per second."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        raw = self.arg("window")
        try:
            window = 300.0 if raw is None else float(raw)
        except ValueError:
            raise bad_request(f"query parameter 'window' is seconds, got {raw!r}") from None
        self.reply({"points": await self.call(self.db.profiler.trends, window)})


class SuggestionsHandler(ApiHandler):
    """GET: what the measurements suggest doing, most urgent first."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply({"suggestions": await self.call(self.db.profiler.suggestions)})


class ApplyHandler(ApiHandler):
    """POST: do what a suggestion says (404 when there is no such suggestion)."""

    @web.authenticated
    @authorized
    async def post(self, suggestion_id: str) -> None:
        self.reply(await self.call(self.db.profiler.apply, suggestion_id))


class DismissHandler(ApiHandler):
    """POST: stop offering a suggestion (404 when there is no such suggestion)."""

    @web.authenticated
    @authorized
    async def post(self, suggestion_id: str) -> None:
        await self.call(self.db.profiler.dismiss, suggestion_id)
        self.reply({"dismissed": suggestion_id})


class ResetHandler(ApiHandler):
    """POST: forget every measurement and dismissal."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        await self.call(self.db.profiler.reset)
        self.reply({})
