"""Remote client methods derived from the route table (`_routes.ENDPOINTS`) and the API's
signatures, so that a method served by an endpoint needs no client code of its own.

`derive(api)` gives a client class, for each method of `api` that an endpoint serves
and the class does not write itself, a function with that method's signature and
docstring which makes the call the regular way, the way `server.operations` describes
it to OpenAPI:

- the path's `{segments}` take the first parameters, URL-quoted; a `{node_id}` must
  be a node id by `_checks.id_string` (as the engine checks ids first), any other
  segment a non-empty string, since nothing else can travel there;
- GET and DELETE send the other parameters in the query string, leaving out those that
  are None by default and are None. A query string flattens every value to text, so
  types are checked here, as the engine checks them: an integer where the signature
  says `int`, a string elsewhere (node ids, `NODE_IDS`, by `id_string`);
- POST and PUT send them as one msgpack object by name (`**name` as an object under
  `name`), for the server's engine to judge as given; a numpy array goes as a list, a
  path (`os.PathLike`) as its text, and a one-pass iterable where the signature says
  `Iterable` as a list;
- callbacks (`progress`) do not travel: passing one raises InvalidDataError;
- the reply, `{reply: result}` or the result itself (`_routes.Serves`), is read back
  into the return type (`_decode`); a table comes as Arrow IPC; when a method that
  may return None has no reply key, a 404 stands for None.

The class sends each call with its method `_call(call, values)`, `values` the arguments
by parameter name.
"""

from __future__ import annotations

import abc
import functools
import inspect
import json
import os
import typing
from collections.abc import Callable, Iterable
from typing import Any, Literal, NamedTuple, TypeVar
from urllib.parse import quote

import numpy as np
import pyarrow as pa

from pluresdb_lab import _wire
from pluresdb_lab._checks import id_string
from pluresdb_lab._decode import decoder
from pluresdb_lab._hints import arms, hints, is_callback, without_none
from pluresdb_lab._routes import ENDPOINTS, SEGMENT, Endpoint, Serves
from pluresdb_lab.errors import InvalidDataError

C = TypeVar("C", bound=type)
Encoder = Callable[[Any], Any]

NODE_SEGMENT = "node_id"
NODE_IDS = frozenset({"id", "src", "dst", "a", "b"})
"""Query parameters that name a node."""
QUERY_VERBS = ("GET", "DELETE")
WIRE = "__wire__"
"""The name under which a derived method holds its `Call`."""
KNOWN = {"pa": pa}
"""What `_api` imports only for type checking that the derived calls need."""


class Request(NamedTuple):
    """A call's route, query parameters and body (None: no body)."""

    route: str
    params: dict[str, str]
    body: dict[str, Any] | None


class Call:
    """The wire shape of one method served by one endpoint, worked out once."""

    def __init__(
        self, fn: Callable[..., Any], endpoint: Endpoint, verb: str, serves: Serves
    ) -> None:
        typed = hints(fn, KNOWN)
        own = list(inspect.signature(fn).parameters.values())[1:]  # after self
        self.verb = verb
        segments = SEGMENT.findall(endpoint.path)
        self._route = SEGMENT.sub("{}", endpoint.path)
        self._path = [
            (p.name, _segment(segment, p.name))
            for segment, p in zip(segments, own[: len(segments)], strict=True)
        ]
        rest = own[len(segments) :]
        self._callbacks = [p.name for p in rest if is_callback(typed.get(p.name))]
        sent = [p for p in rest if p.name not in self._callbacks]
        in_query = verb in QUERY_VERBS
        self._query = [(p.name, _query(p.name, typed[p.name])) for p in sent] if in_query else []
        self._optional = frozenset(p.name for p in sent if p.default is None)
        self._body = None
        if not in_query and sent:
            self._body = [(p.name, _body(typed[p.name])) for p in sent]
        result = typed["return"]
        self._key = serves.reply
        self._table = result is pa.Table
        self._void = result is type(None)
        self._read = None if self._table or self._void else decoder(result)
        self.headers = {"Accept": _wire.ARROW} if self._table else {}
        self.none_if_missing = serves.reply is None and type(None) in arms(result)

    def request(self, values: dict[str, Any]) -> Request:
        """The request for a call with these arguments, by parameter name."""
        for name in self._callbacks:
            if values[name] is not None:
                raise InvalidDataError(
                    f"{name} callbacks are not available over HTTP; the call returns when done"
                )
        route = self._route.format(*[encode(values[name]) for name, encode in self._path])
        params = {
            name: encode(values[name])
            for name, encode in self._query
            if values[name] is not None or name not in self._optional
        }
        body = None
        if self._body is not None:
            body = {name: encode(values[name]) for name, encode in self._body}
        return Request(route, params, body)

    def result(self, content: bytes) -> Any:
        """The method's result from the reply's body."""
        if self._table:
            return _wire.table_from_ipc(content)
        if self._void:
            return None
        reply = json.loads(content)
        if self._key is not None:
            reply = reply[self._key]
        return reply if self._read is None else self._read(reply)


def derive(
    api: type, endpoints: Iterable[Endpoint] = ENDPOINTS, *, owner: str = "", as_of: bool = False
) -> Callable[[C], C]:
    """A class decorator that adds the derived methods (see the module's docstring).

    Args:
        api: the interface whose methods the endpoints serve.
        endpoints: the route table.
        owner: the prefix of the methods served (`mesh` for `mesh.peers`); "" for the
            database's own.
        as_of: derive only the methods of endpoints that read a past state (`?as_of=`).
    """

    def made(cls: C) -> C:
        for endpoint in endpoints:
            for verb, serves in endpoint.serves.items():
                prefix, _, name = serves.method.rpartition(".")
                fn = inspect.getattr_static(api, name, None)
                wanted = prefix == owner and (serves.as_of or not as_of)
                if wanted and inspect.isfunction(fn) and name not in vars(cls):
                    setattr(cls, name, _method(cls, fn, Call(fn, endpoint, verb, serves)))
        abc.update_abstractmethods(cls)
        if missing := sorted(getattr(cls, "__abstractmethods__", ())):
            raise TypeError(f"{cls.__name__} neither writes nor derives {missing}")
        return cls

    return made


def _method(cls: type, fn: Callable[..., Any], call: Call) -> Callable[..., Any]:
    """A method with the signature and docstring of `fn` that binds its arguments by
    that signature (defaults applied) and passes them to `self._call`."""
    signature = inspect.signature(fn)
    receiver = next(iter(signature.parameters))

    def method(*args: Any, **kwargs: Any) -> Any:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as exc:  # worded like Python's own: name the method
            raise TypeError(f"{fn.__name__}() {exc}") from None
        bound.apply_defaults()
        values = dict(bound.arguments)
        return values.pop(receiver)._call(call, values)

    # `__wrapped__` gives it the signature of `fn`, annotations included
    functools.update_wrapper(method, fn, ("__name__", "__doc__", "__annotations__"), ())
    method.__qualname__ = f"{cls.__qualname__}.{fn.__name__}"
    method.__module__ = cls.__module__
    setattr(method, WIRE, call)
    return method


def derived(fn: object) -> bool:
    """Whether `fn` is a method that `derive` made."""
    return isinstance(getattr(fn, WIRE, None), Call)


# -- arguments ---------------------------------------------------------------------------


def _segment(segment: str, name: str) -> Encoder:
    if segment == NODE_SEGMENT:
        return lambda value: quote(id_string(value), safe="")
    return functools.partial(_segment_text, name)


def _segment_text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidDataError(f"{name} is a non-empty string, got {value!r:.60}")
    return quote(value, safe="")


def _query(name: str, hint: object) -> Encoder:
    present = arms(without_none(hint))
    if present == (int,):
        return functools.partial(_query_int, name)
    if not all(arm is str or _is_path(arm) or _is_literal_text(arm) for arm in present):
        raise TypeError(f"{name}: {hint!r} does not travel in a query string; write the call")
    if any(_is_path(arm) for arm in present):
        return lambda value: query_text(name, _path(value))
    return functools.partial(query_text, name)


def _query_int(name: str, value: object) -> str:
    """An integer argument as query text (bool, though an int, is refused)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InvalidDataError(f"{name} is an integer, got {type(value).__name__}: {value!r:.60}")
    return str(value)


def query_text(name: str, value: object) -> str:
    """A string argument as query text; a node id checked as the engine checks one."""
    if name in NODE_IDS:
        return id_string(value)
    if not isinstance(value, str):
        raise InvalidDataError(f"{name} is a string, got {type(value).__name__}: {value!r:.60}")
    return value


def _body(hint: object) -> Encoder:
    hint = without_none(hint)
    if any(_is_path(arm) for arm in arms(hint)):
        return _path
    if typing.get_origin(hint) is Iterable:
        return _listed
    return _sendable


def _path(value: object) -> object:
    return os.fspath(value) if isinstance(value, os.PathLike) else value


def _listed(value: object) -> object:
    """A one-pass iterable as a list; a str or a mapping stays itself, for the engine."""
    if isinstance(value, str | bytes | dict | list | tuple) or not isinstance(value, Iterable):
        return value
    return list(value)


def _sendable(value: object) -> object:
    return value.tolist() if isinstance(value, np.ndarray) else value


def _is_path(hint: object) -> bool:
    return typing.get_origin(hint) is os.PathLike or hint is os.PathLike


def _is_literal_text(hint: object) -> bool:
    return typing.get_origin(hint) is Literal and all(
        isinstance(v, str) for v in typing.get_args(hint)
    )
