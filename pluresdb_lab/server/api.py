"""The base of every REST handler: Jupyter auth, engine calls off the loop, JSON/Arrow replies.

Bodies stream in (see `body`): the token and the size are checked from the headers in
`prepare()`, before any byte of the body is read.
"""

from __future__ import annotations

import functools
import json
import math
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import msgpack
import pyarrow as pa
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web
from tornado.http1connection import HTTP1Connection
from tornado.httputil import HTTPServerRequest
from tornado.ioloop import IOLoop

from pluresdb_lab import _wire, errors
from pluresdb_lab._api import SnapshotAPI
from pluresdb_lab._database import Database
from pluresdb_lab.server.body import Body, declared_size, has_body, too_large
from pluresdb_lab.server.errors import ApiError, bad_request, error_body
from pluresdb_lab.server.paths import PathPolicy

T = TypeVar("T")
TOO_DEEP = "is nested too deeply to decode"


class ServerOptions(Protocol):
    """What handlers read from `settings[name]`: the PluresDBApp, or `pluresdb serve`'s."""

    allowed_paths: list[str]
    max_body_bytes: int


@web.stream_request_body
class ApiHandler(ExtensionHandlerMixin, APIHandler):
    """A handler of `{base_url}pluresdb/api/...` bound to one Database."""

    auth_resource = "pluresdb"

    def initialize(self, name: str, db: Database) -> None:
        super().initialize(name)
        self.db = db
        self._body = Body(0)

    @property
    def server_options(self) -> ServerOptions:
        return cast(ServerOptions, self.settings[self.name])

    async def prepare(self) -> None:  # type: ignore[override]
        if isinstance(self.request.connection, HTTP1Connection):
            # Tornado's server-wide cap answers with a reset (or a bare 400 after a
            # refusal); the checks below and `data_received` bound what is kept instead.
            self.request.connection.set_max_body_size(sys.maxsize)
        await super().prepare()  # Jupyter's auth, from the headers alone
        if not has_body(self.request):
            return
        if not self.current_user:  # never read a body from an unauthenticated caller
            raise web.HTTPError(403, "a request body needs the server's token")
        limit = self.server_options.max_body_bytes
        declared = declared_size(self.request)
        if declared is not None and declared > limit:
            raise too_large(declared, limit, declared=True)
        self._body = Body(limit)

    def data_received(self, chunk: bytes) -> None:
        if self._finished:
            return
        if not self._body.add(chunk):
            error = too_large(self._body.received, self._body.limit, declared=False)
            self.send_error(413, exc_info=(type(error), error, None))

    @property
    def body(self) -> bytes:
        """The whole request body (streamed in under the size limit)."""
        return self._body.bytes()

    def server_path(self, raw: str, what: str) -> Path:
        """A file path from the request, resolved; 403 unless inside an allowed folder."""
        policy = PathPolicy.of(self.db.path, self.server_options.allowed_paths)
        try:
            return policy.check(raw, what)
        except errors.PluresDBError as exc:
            raise ApiError.of(exc) from None

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run an engine call in a worker thread; its PluresDBError becomes an ApiError."""
        try:
            return await IOLoop.current().run_in_executor(
                None, functools.partial(fn, *args, **kwargs)
            )
        except errors.PluresDBError as exc:
            raise ApiError.of(exc) from None
        except TypeError as exc:  # an argument of the wrong type that the engine let through
            raise bad_request(f"an argument has the wrong type: {exc}") from None
        except RecursionError:  # data nested deeper than the engine's recursion can follow
            raise bad_request(f"the request's data {TOO_DEEP}") from None

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        self.finish(_wire.dumps(error_body(status_code, exc, self._reason)))

    # -- requests ----------------------------------------------------------------------

    def json_body(self) -> Any:
        """The request body parsed as JSON (an empty body is an empty object).

        A body sent as `application/msgpack` is unpacked instead: msgpack keeps what
        JSON would change (bytes, non-string keys, NaN), so the engine judges exactly
        what the caller passed, as it would in process. RemoteDatabase sends msgpack.
        """
        if not self.body:
            return {}
        if self.request.headers.get("Content-Type", "").startswith(_wire.MSGPACK):
            return unpack(self.body)
        try:
            return json.loads(self.body)
        except RecursionError:
            raise bad_request(f"the request body {TOO_DEEP} (JSON)") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise bad_request(f"the request body is not valid JSON: {exc}") from None

    def json_object(self) -> dict[str, Any]:
        body = self.json_body()
        if not isinstance(body, dict):
            raise bad_request(f"the request body must be a JSON object, got {type(body).__name__}")
        return body

    def arg(self, name: str, default: str | None = None) -> str | None:
        """A query argument exactly as sent (the last one given), or `default`."""
        return query_arg(self.request, name, default)

    def required_arg(self, name: str) -> str:
        """A query argument exactly as sent; 400 when it is missing."""
        value = self.arg(name)
        if value is None:
            raise bad_request(f"the query parameter {name!r} is required")
        return value

    def wants_arrow(self) -> bool:
        return _wire.ARROW in self.request.headers.get("Accept", "")

    async def view(self) -> Database | SnapshotAPI:
        """The database, or the read-only view `?as_of=` (epoch seconds or ISO 8601) asks for."""
        raw = self.arg("as_of")
        if raw is None:
            return self.db
        return await self.call(self.db.as_of, parse_time(raw))

    # -- replies -----------------------------------------------------------------------

    def reply(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(_wire.dumps(value))

    def reply_table(self, table: pa.Table) -> None:
        """A table as Arrow IPC when the client accepts it, else JSON rows."""
        if self.wants_arrow():
            self.finish(_wire.table_to_ipc(table), set_content_type=_wire.ARROW)
        else:
            self.reply({"columns": table.column_names, "rows": table.to_pylist()})


def unpack(raw: bytes) -> Any:
    """A msgpack body, keeping bytes, non-string keys and NaN; 400 when it is not msgpack."""
    try:
        return msgpack.unpackb(raw, raw=False, strict_map_key=False)
    except msgpack.StackError:  # its message is empty
        raise bad_request(f"the request body {TOO_DEEP} (msgpack allows 1,024 levels)") from None
    except RecursionError:
        raise bad_request(f"the request body {TOO_DEEP} (msgpack)") from None
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise bad_request(f"the request body is not valid msgpack: {exc}") from None


def query_arg(request: HTTPServerRequest, name: str, default: str | None = None) -> str | None:
    """A query argument exactly as sent (the last one given), or `default`.

    Tornado's `get_argument` turns control characters into spaces and strips
    whitespace, which would quietly change node ids, labels and type names.
    """
    values = request.query_arguments.get(name)
    if not values:
        return default
    try:
        return values[-1].decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request(f"query parameter {name!r} is not UTF-8") from None


def parse_time(raw: str) -> float:
    """Epoch seconds from a number or an ISO 8601 timestamp."""
    try:
        seconds = float(raw)
    except ValueError:
        try:
            return datetime.fromisoformat(raw).timestamp()
        except ValueError:
            raise bad_request(
                f"as_of is epoch seconds or an ISO 8601 timestamp, got {raw!r}"
            ) from None
    if not math.isfinite(seconds):
        raise bad_request(f"as_of must be finite, got {raw!r}")
    return seconds
