"""OpenAPI operations derived from the database method each route serves (`_routes.Serves`).

Arguments bind in order: the path's `{segments}` take the method's first parameters,
then GET and DELETE take the rest from the query string, POST and PUT from a JSON
object body (`**name` as an object under `name`); callbacks (`progress`) do not
travel. A parameter typed `str | os.PathLike[str]` is a file on the server, checked
against the allowed folders. The reply is the method's result (see `_routes.Serves`): a
table is Arrow IPC or JSON rows, None is `{}`, and a result that may be None is a 404
when it is. Whatever a route does differently is written by hand (`openapi.written`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from pluresdb_lab._api import DatabaseAPI, MeshAPI, ProfilerAPI
from pluresdb_lab._hints import hints as type_hints
from pluresdb_lab._hints import is_callback, without_none
from pluresdb_lab._routes import SEGMENT, Endpoint, Serves
from pluresdb_lab._wire import ARROW
from pluresdb_lab.mesh import PeerInfo, SnapshotInfo
from pluresdb_lab.mesh._log import Entry as LogEntry
from pluresdb_lab.server import docstrings
from pluresdb_lab.server.schema import Schema, Schemas, is_server_path, obj, ref

OWNERS: dict[str, type] = {"": DatabaseAPI, "profiler": ProfilerAPI, "mesh": MeshAPI}
"""Where `Serves.method` names are looked up: `x` on the database, `profiler.x`, `mesh.x`."""

TYPE_ONLY = {"pa": pa, "PeerInfo": PeerInfo, "SnapshotInfo": SnapshotInfo, "Entry": LogEntry}
"""Names `_api` imports only for type checking that its signatures need here (pandas and
the widgets stay unresolved: the parts that use them are written by hand)."""

PARTS = ("summary", "parameters", "requestBody", "reply")
"""What `openapi.written` may give instead of the derived part."""

PATH_RULE = (
    "Paths are on the server's machine; a relative path is relative to the database "
    "folder. A path must resolve (`..` and symlinks followed) to inside the database "
    "folder, but not to its own files, or inside a folder the operator allows "
    "(`pluresdb serve --allow-path DIR`, `PluresDBApp.allowed_paths`); else 403."
)
SERVER_PATH = {"type": "string", "description": "On the server's machine (see the description)."}
AS_OF = {
    "name": "as_of",
    "in": "query",
    "required": False,
    "schema": {"type": "string"},
    "description": "read the state at this moment: epoch seconds or ISO 8601",
}
EMPTY = {"type": "object", "additionalProperties": False}


def json_reply(schema: Schema, description: str = "OK") -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def json_body(schema: Schema) -> Schema:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def query(name: str, schema: Schema, required: bool = False) -> Schema:
    return {"name": name, "in": "query", "required": required, "schema": schema}


ERRORS = {
    "400": json_reply(ref("Error"), "Bad request (InvalidDataError, InvalidIdError, ...)"),
    "403": json_reply(ref("Error"), "Not authenticated or not authorized"),
    "404": json_reply(ref("Error"), "Unknown node, version or conflict (NotFoundError)"),
    "409": json_reply(ref("Error"), "Refused in the current state"),
}
TOO_LARGE = json_reply(
    ref("Error"),
    "The body is over the server's limit (`pluresdb serve --max-body-mib`, "
    "`PluresDBApp.max_body_bytes`; 64 MiB by default), refused before it is read",
)
PATH_REFUSED = json_reply(
    ref("Error"),
    "Not authenticated, or a path outside the database folder and the allowed folders "
    "(PathNotAllowedError; the message names the path and how to allow a folder)",
)
TABLE = {
    "description": "Arrow IPC (Accept: Arrow) or JSON rows",
    "content": {
        ARROW: {"schema": {"type": "string", "format": "binary"}},
        "application/json": {"schema": ref("Rows")},
    },
}


def method(name: str) -> Callable[..., Any] | None:
    """The function `Serves.method` names, or None when it names no method (a property, or
    something only the server has)."""
    owner, _, attr = name.rpartition(".")
    found = inspect.getattr_static(OWNERS[owner], attr, None)
    return found if inspect.isfunction(found) else None


def operation(entry: Endpoint, verb: str, written: Schema, schemas: Schemas) -> Schema:
    """The OpenAPI operation of `verb` on `entry`: `written` parts, the rest derived."""
    serves = entry.serves[verb]
    fn = method(serves.method)
    missing = [part for part in PARTS if part not in written]
    if fn is None and "reply" in missing:
        raise TypeError(f"{serves.method} is no method of the API: write its reply by hand")
    derived = _derived(fn, entry, verb, missing, schemas) if fn else {}
    parts = {"parameters": [], **derived, **written}
    done: Schema = {"operationId": serves.method}
    if "summary" in parts:
        done["summary"] = parts["summary"]
    if parts["parameters"] or serves.as_of:
        done["parameters"] = parts["parameters"] + ([AS_OF] if serves.as_of else [])
    if parts.get("requestBody"):
        done["requestBody"] = parts["requestBody"]
    done["responses"] = {"200": parts["reply"], **ERRORS}
    if "requestBody" in done:
        done["responses"]["413"] = TOO_LARGE
    if parts.get("server_paths"):
        done["description"] = PATH_RULE
        done["responses"]["403"] = PATH_REFUSED
    return done


def _derived(
    fn: Callable[..., Any], entry: Endpoint, verb: str, missing: list[str], schemas: Schemas
) -> Schema:
    """The `missing` parts, from `fn`'s signature (only those: a written part may stand
    for one that cannot be derived)."""
    hints = type_hints(fn, TYPE_ONLY)
    params = [
        p
        for p in inspect.signature(fn).parameters.values()
        if p.name != "self" and not is_callback(hints.get(p.name))
    ]
    derived: Schema = {}
    if "summary" in missing and (text := docstrings.summary(fn)):
        derived["summary"] = text
    if "parameters" in missing or "requestBody" in missing:
        told = docstrings.arguments(fn)
        derived.update(_request(entry, verb, params, hints, told, schemas))
    if "reply" in missing:
        derived["reply"] = _reply(entry.serves[verb], params, hints, schemas)
    return derived


def _request(
    entry: Endpoint,
    verb: str,
    params: list[inspect.Parameter],
    hints: dict[str, Any],
    told: dict[str, str],
    schemas: Schemas,
) -> Schema:
    segments = SEGMENT.findall(entry.path)
    in_path, rest = params[: len(segments)], params[len(segments) :]
    parameters: list[Schema] = [
        _told(
            {"name": segment, "in": "path", "required": True, "schema": schemas.of(hints[p.name])},
            told.get(p.name),
        )
        for segment, p in zip(segments, in_path, strict=True)
    ]
    required = [p.name for p in rest if p.default is p.empty and p.kind is not p.VAR_KEYWORD]
    body = None
    if verb in ("GET", "DELETE"):  # a None argument is one left out of the query string
        parameters += [
            _told(
                query(p.name, _field(p, without_none(hints[p.name]), schemas), p.name in required),
                told.get(p.name),
            )
            for p in rest
        ]
    elif rest:
        fields = {p.name: _told(_field(p, hints[p.name], schemas), told.get(p.name)) for p in rest}
        body = {
            "required": bool(required),
            "content": {"application/json": {"schema": obj(required, **fields)}},
        }
    return {
        "parameters": parameters,
        "requestBody": body,
        "server_paths": any(is_server_path(hints[p.name]) for p in rest),
    }


def _told(schema: Schema, description: str | None) -> Schema:
    """`schema` with the docstring's `description` of its argument, when there is one
    (OpenAPI 3.0 ignores keys beside a `$ref`)."""
    if description is None or "$ref" in schema:
        return schema
    return {
        **schema,
        "description": " ".join(filter(None, (description, schema.get("description")))),
    }


def _field(p: inspect.Parameter, hint: object, schemas: Schemas) -> Schema:
    if p.kind is p.VAR_KEYWORD:  # `**params` travels as one object under `params`
        return {"type": "object", "additionalProperties": schemas.of(hint) or True}
    if is_server_path(hint):
        return dict(SERVER_PATH)
    schema = schemas.of(hint)
    if isinstance(p.default, bool | int | float | str) and "$ref" not in schema:
        schema["default"] = p.default
    return schema


def _reply(
    serves: Serves, params: list[inspect.Parameter], hints: dict[str, Any], schemas: Schemas
) -> Schema:
    result, key = hints["return"], serves.reply
    if result is pa.Table:
        return TABLE
    if result is type(None):
        if key is None:
            return json_reply(EMPTY)
        return json_reply(obj([key], **{key: schemas.of(hints[params[0].name])}))
    if key is not None:
        return json_reply(obj([key], **{key: schemas.of(result)}))
    return json_reply(schemas.of(without_none(result)))  # a None result is a 404 instead
