"""What the server is: database identity and options, and the OpenAPI document."""

from __future__ import annotations

import dataclasses

from jupyter_server.auth.decorator import authorized
from tornado import web

import pluresdb_lab
from pluresdb_lab.server.api import ApiHandler


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
