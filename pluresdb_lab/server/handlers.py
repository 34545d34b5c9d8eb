"""The handlers of the irregular routes, written by hand: each verb here is one whose
wire shape is not the regular one that `derived` serves (`routes` lists them with why)."""

from __future__ import annotations

import dataclasses
from typing import Any

import msgpack
import pyarrow as pa
from jupyter_server.auth.decorator import authorized
from tornado import web

import pluresdb_lab
from pluresdb_lab import _wire
from pluresdb_lab.engine import Profiler
from pluresdb_lab.server.api import ApiHandler, unpack
from pluresdb_lab.server.derived import DerivedHandler
from pluresdb_lab.server.errors import bad_request

# -- what the server is ------------------------------------------------------------------


class InfoHandler(ApiHandler):
    """GET: version, peer id, folder, options and recovery report of the served database."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(
            {
                "version": pluresdb_lab.__version__,
                "peer_id": self.db.peer_id,
                "path": None if self.db.path is None else str(self.db.path),
                "fsync": self.db.fsync,
                "max_node_bytes": self.db.max_node_bytes,
                "max_body_bytes": self.server_options.max_body_bytes,
                "recovery": dataclasses.asdict(self.db.recovery),
            }
        )


class OpenApiHandler(ApiHandler):
    """GET: the OpenAPI 3 document of this API."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        # imported here: the document derives from the route table, which lists this handler
        from pluresdb_lab.server.openapi import document

        self.reply(document(self.base_url))


# -- nodes, replication and queries ------------------------------------------------------


class NodesHandler(DerivedHandler):
    """POST: `put_many`, the records the body (a JSON or msgpack array of objects, or
    Arrow IPC), the options in the query. GET (`list`) is derived."""

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


class VersionVectorHandler(ApiHandler):
    """GET: peer id -> highest sequence applied, with this database's peer id."""

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


# -- mesh and profiler: properties, and query names that differ --------------------------


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


class SnapshotsHandler(DerivedHandler):
    """DELETE ?id=: remove a snapshot. GET and POST are derived."""

    @web.authenticated
    @authorized
    async def delete(self) -> None:
        await self.call(self.db.mesh.delete_snapshot, self.required_arg("id"))
        self.reply({"deleted": self.required_arg("id")})


def _set_threshold(profiler: Profiler, value: float) -> float:
    profiler.slow_threshold_ms = value
    return profiler.slow_threshold_ms


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
