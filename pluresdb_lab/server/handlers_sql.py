"""SQL over the current state (or an `as_of` view): Arrow IPC or JSON rows."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from pluresdb_lab.server.api import ApiHandler
from pluresdb_lab.server.errors import bad_request


class SqlHandler(ApiHandler):
    """POST {"query": str, "params": list|object|null}; Accept Arrow IPC for bulk results.
    The engine judges `query` as given (it names what it needs)."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.json_object()
        query, params = body.get("query"), body.get("params")
        if params is not None and not isinstance(params, (list, dict)):
            raise bad_request("'params' is a list, an object or null")
        view = await self.view()
        self.reply_table(await self.call(view.sql, query, params))
