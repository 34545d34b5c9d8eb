"""What `pluresdb/api` answers when the extension could not open its database.

Every API route stays registered and answers 503 with the reason (the folder, and the
process holding it), so a client, a panel or `connect()` in a kernel says why instead
of failing with a bare 404. Callers must still be authenticated: the reason names a
local folder and process.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web

from pluresdb_lab import _wire
from pluresdb_lab.server.errors import ApiError, error_body
from pluresdb_lab.server.routes import API, Route

# the API root and everything under it
PATTERN = API.rstrip("/") + "(?:/.*)?"


def unavailable_routes(error: str, message: str) -> list[Route]:
    """The one route that stands for every API route: 503 with `error` and `message`."""
    return [(PATTERN, UnavailableHandler, {"error": error, "message": message})]


class UnavailableHandler(ExtensionHandlerMixin, APIHandler):
    """Answers every method with 503 `{"error": <class name>, "message": <why>}`;
    RemoteDatabase raises that class with that message."""

    auth_resource = "pluresdb"

    def initialize(self, name: str, error: str, message: str) -> None:
        super().initialize(name)
        self.error = error
        self.message = message

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        self.finish(_wire.dumps(error_body(status_code, exc, self._reason)))

    def _refuse(self) -> None:
        raise ApiError(503, self.error, self.message)

    # one decorated method per HTTP method: `authorized` maps each to its action
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self._refuse()

    @web.authenticated
    @authorized
    async def post(self) -> None:
        self._refuse()

    @web.authenticated
    @authorized
    async def put(self) -> None:
        self._refuse()

    @web.authenticated
    @authorized
    async def patch(self) -> None:
        self._refuse()

    @web.authenticated
    @authorized
    async def delete(self) -> None:
        self._refuse()
