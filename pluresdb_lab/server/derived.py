"""The regular routes, served from the route table (`_routes.ENDPOINTS`) and the API's
signatures by one handler: the server's side of `_derive`, so that a method served by
an endpoint needs no handler code of its own.

A call is read back the way `_derive` sends it and `operations` describes it:

- the path's `{segments}` take the first parameters, as text;
- GET and DELETE take the others from the query string: an integer where the
  signature says `int`, the text as sent elsewhere; a parameter left out keeps the
  engine's default, and a required one left out is a 400;
- POST and PUT take them from one JSON or msgpack object by name (`**name` from an
  object under `name`); an unknown name or a required one left out is a 400;
- a file path (`str | os.PathLike`, see `schema.is_server_path`) goes through the
  server's `PathPolicy` (403 outside the allowed folders); every other value goes to
  the engine as given, for it to judge as it would in process;
- callbacks (`progress`) do not travel;
- the result goes back by its type hint: a table as Arrow IPC (when accepted) or JSON
  rows; under the reply key when there is one (a method returning None echoes its
  first argument there), else as itself, `{}` for None, or a 404 for a None that
  stands for "not found".
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal

import pyarrow as pa
from jupyter_server.auth.decorator import authorized
from tornado import web

from pluresdb_lab import _wire
from pluresdb_lab._database import Database
from pluresdb_lab._hints import arms, hints, is_callback, without_none
from pluresdb_lab._routes import SEGMENT, Endpoint, Serves
from pluresdb_lab._values import Change, Conflict, Node, Version
from pluresdb_lab.server.api import ApiHandler
from pluresdb_lab.server.errors import ApiError, bad_request
from pluresdb_lab.server.operations import TYPE_ONLY
from pluresdb_lab.server.schema import is_server_path

Read = Callable[[ApiHandler, Any], Any]
"""Reads one argument from its raw request value (a path checked against the policy)."""
Encoder = Callable[[Any], Any]

QUERY_VERBS = ("GET", "DELETE")
OWN: dict[object, Encoder] = {
    Node: _wire.node_to_json,
    Version: _wire.version_to_json,
    Change: _wire.change_to_json,
    Conflict: _wire.conflict_to_json,
    dict[str | None, int]: _wire.types_to_json,
}
"""Types with an encoder of their own in `_wire` (the decoders of `_decode.OWN`); any
other value is written by `_wire.dumps` as it is."""
MAX_QUERY_INT = 2**62


class Served:
    """How one verb of an endpoint reads its arguments and writes its reply, worked out
    once from the signature of the method it serves."""

    def __init__(
        self, fn: Callable[..., Any], endpoint: Endpoint, serves: Serves, verb: str
    ) -> None:
        typed = hints(fn, TYPE_ONLY)
        own = list(inspect.signature(fn).parameters.values())[1:]  # after self
        segments = SEGMENT.findall(endpoint.path)
        owner, _, self.name = serves.method.rpartition(".")
        self.owners = owner.split(".") if owner else []
        self.as_of = serves.as_of
        self.path = [
            (p.name, _reader(serves.method, p.name, typed[p.name])) for p in own[: len(segments)]
        ]
        rest = [p for p in own[len(segments) :] if not is_callback(typed.get(p.name))]
        self.in_query = verb in QUERY_VERBS
        self.fields: dict[str, Read] = {}
        self.query: dict[str, Read] = {}
        for p in rest:
            if self.in_query:
                self.query[p.name] = _query(serves.method, p.name, typed[p.name])
            else:
                self.fields[p.name] = _reader(serves.method, p.name, typed[p.name])
        self.required = [
            p.name for p in rest if p.default is p.empty and p.kind is not p.VAR_KEYWORD
        ]
        self.spread = next((p.name for p in rest if p.kind is p.VAR_KEYWORD), None)
        result = typed["return"]
        self.key = serves.reply
        self.table = result is pa.Table
        self.void = result is type(None)
        self.echo = own[0].name if own and self.void else None
        self.encode = None if self.table or self.void else encoder(result)
        self.none_is_missing = serves.reply is None and type(None) in arms(result)

    def arguments(self, handler: ApiHandler, segments: tuple[str, ...]) -> dict[str, Any]:
        """The call's arguments by parameter name, from the request."""
        given = {
            name: read(handler, raw) for (name, read), raw in zip(self.path, segments, strict=True)
        }
        if self.in_query:
            for name, read in self.query.items():
                raw = handler.arg(name)
                if raw is not None:
                    given[name] = read(handler, raw)
                elif name in self.required:
                    raise bad_request(f"the query parameter {name!r} is required")
            return given
        body = handler.json_object()
        if not body.keys() <= self.fields.keys():
            unknown = [name for name in body if name not in self.fields]  # keys of any type
            raise bad_request(f"unknown fields {unknown}; this route takes {sorted(self.fields)}")
        if missing := [name for name in self.required if name not in body]:
            raise bad_request(f"missing fields {missing}")
        given.update((name, self.fields[name](handler, value)) for name, value in body.items())
        if self.spread is not None:
            spread = given.pop(self.spread, None)
            if not isinstance(spread, dict | None):
                raise bad_request(f"{self.spread!r} is an object of named arguments")
            given.update(spread or {})
        return given

    def reply(self, handler: ApiHandler, result: Any, arguments: dict[str, Any]) -> None:
        if self.table:
            handler.reply_table(result)
            return
        if self.void:
            echoed = None if self.echo is None else arguments.get(self.echo)
            handler.reply({} if self.key is None else {self.key: echoed})
            return
        if result is None and self.none_is_missing:
            found = ", ".join(f"{name}={value!r}" for name, value in arguments.items())
            raise ApiError(404, "NotFoundError", f"{self.name}: nothing found for {found}")
        value = result if self.encode is None else self.encode(result)
        handler.reply(value if self.key is None else {self.key: value})


class DerivedHandler(ApiHandler):
    """Serves the regular verbs of one route (`served`, by verb); a subclass writes the
    irregular ones (`routes`)."""

    def initialize(  # type: ignore[override]  # tornado passes each route's own kwargs
        self, name: str, db: Database, served: Mapping[str, Served]
    ) -> None:
        super().initialize(name, db)
        self.served = served

    async def serve(self, verb: str, segments: tuple[str, ...]) -> None:
        served = self.served.get(verb)
        if served is None:
            raise web.HTTPError(405)
        target: Any = await self.view() if served.as_of else self.db
        for owner in served.owners:  # `mesh.x`, `profiler.x`
            target = getattr(target, owner)
        arguments = served.arguments(self, segments)
        result = await self.call(_invoke, getattr(target, served.name), arguments)
        served.reply(self, result, arguments)

    # one decorated method per HTTP method: `authorized` maps each to its action
    @web.authenticated
    @authorized
    async def get(self, *segments: str) -> None:
        await self.serve("GET", segments)

    @web.authenticated
    @authorized
    async def post(self, *segments: str) -> None:
        await self.serve("POST", segments)

    @web.authenticated
    @authorized
    async def put(self, *segments: str) -> None:
        await self.serve("PUT", segments)

    @web.authenticated
    @authorized
    async def delete(self, *segments: str) -> None:
        await self.serve("DELETE", segments)


def _invoke(method: Callable[..., Any], arguments: dict[str, Any]) -> Any:
    """`method(**arguments)`, in the worker thread: a bad name in a `**params` object is
    then the call's TypeError, which `ApiHandler.call` answers 400."""
    return method(**arguments)


# -- arguments ---------------------------------------------------------------------------


def _reader(method: str, name: str, hint: object) -> Read:
    """A body or path value: a file path through the policy, anything else as given."""
    if not is_server_path(hint):
        return _as_given
    optional = type(None) in arms(hint)
    what = f"{method} {name}"

    def read(handler: ApiHandler, raw: Any) -> Any:
        if raw is None and optional:
            return None
        if not isinstance(raw, str) or not raw:
            raise bad_request(f"{name!r} is a non-empty string (a path on the server)")
        return handler.server_path(raw, what)

    return read


def _as_given(handler: ApiHandler, raw: Any) -> Any:
    return raw


def _query(method: str, name: str, hint: object) -> Read:
    """A query value, the inverse of `_derive._query`: what the client can send."""
    present = arms(without_none(hint))
    if present == (int,):
        return functools.partial(_query_int, name)
    if not all(arm is str or is_server_path(arm) or _is_literal_text(arm) for arm in present):
        raise TypeError(f"{method}: {name}: {hint!r} does not travel in a query string")
    return _reader(method, name, hint)


def _query_int(name: str, handler: ApiHandler, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"query parameter {name!r} must be an integer, got {raw!r}") from None
    if not -MAX_QUERY_INT <= value <= MAX_QUERY_INT:
        raise bad_request(f"query parameter {name!r} is out of range: {raw}")
    return value


def _is_literal_text(hint: object) -> bool:
    return typing.get_origin(hint) is Literal and all(
        isinstance(v, str) for v in typing.get_args(hint)
    )


# -- replies -----------------------------------------------------------------------------


def encoder(hint: object) -> Encoder | None:
    """How to write a value of type `hint` for `_wire.dumps` (None: as it is); the
    inverse of `_decode.decoder`."""
    if hint in OWN:
        return OWN[hint]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if len(arms(hint)) > 1:  # `X | None`; `dumps` writes other unions as they are
        if type(None) not in arms(hint) or len(arms(hint)) > 2:
            return None
        present = encoder(without_none(hint))
        return None if present is None else _optional(present)
    if origin is list:
        return None if (each := encoder(args[0])) is None else _each(each)
    if origin is dict:
        return None if (value := encoder(args[1])) is None else _values(value)
    return None


def _optional(encode: Encoder) -> Encoder:
    return lambda value: None if value is None else encode(value)


def _each(encode: Encoder) -> Encoder:
    return lambda values: [encode(value) for value in values]


def _values(encode: Encoder) -> Encoder:
    return lambda values: {key: encode(value) for key, value in values.items()}
