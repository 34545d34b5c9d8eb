"""The REST API covers the database API: each member of `DatabaseAPI` (and of the mesh's
and profiler's protocols) has a route serving it, an OpenAPI operation named after it
and a same-named member on the remote client, unless listed here with why; and every
reply is described by a schema that says more than "an object"."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis

from pluresdb_lab._api import DatabaseAPI, MeshAPI, ProfilerAPI
from pluresdb_lab.client import RemoteDatabase, RemoteMesh, RemoteProfiler
from pluresdb_lab.server.openapi import document, written
from pluresdb_lab.server.routes import TABLE
from pluresdb_lab.server.schema import Schemas

NO_ROUTE = {
    "as_of": "a snapshot is not sent: the read routes take `?as_of=` instead",
    "close": "ends the client's own connections and feeds; the server's database stays open",
    "mesh": "an object: its members are served as `mesh.<name>`",
    "profiler": "an object: its members are served as `profiler.<name>`",
    "to_pandas": "written once in DatabaseAPI over `to_arrow`",
    "panel": "a notebook widget, drawn where the database object is",
}
SERVED_AS = {
    "mesh.identity": "mesh.peers",  # GET mesh answers identity, paused and peers at once
    "mesh.paused": "mesh.peers",
    "mesh.pause": "mesh.set_paused",  # PUT mesh {"paused": true | false}
    "mesh.resume": "mesh.set_paused",
}
OBJECT_REPLIES = {
    "openapi": "this document; its schema is the OpenAPI specification's",
    "create_index": "DatabaseAPI types an index's description dict[str, Any]",
    "indexes": "DatabaseAPI types an index's description dict[str, Any]",
    "explain": "DatabaseAPI types a query plan dict[str, Any]",
    "ops_since": "msgpack ops, opaque by design (`_values.Op`)",
    "subscribe": "server-sent events, which OpenAPI 3.0 cannot give a schema",
}

DOC = document("/")
OPERATIONS = {op["operationId"]: op for item in DOC["paths"].values() for op in item.values()}
SERVED = {serves.method for entry in TABLE for serves in entry.serves.values()}


def members(cls: type, prefix: str = "") -> list[str]:
    return [prefix + name for name in vars(cls) if not name.startswith("_")]


def test_the_document_is_valid_openapi_3_0() -> None:
    schemathesis.openapi.from_dict(DOC).validate()  # the specification's own JSON Schema


def test_operation_ids_are_the_served_methods() -> None:
    ids = [op["operationId"] for item in DOC["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids)) == len(SERVED)
    assert set(ids) == SERVED
    assert set(written(Schemas())) <= SERVED  # no hand-written part outlives its route


@pytest.mark.parametrize(
    ("name", "remote"),
    [(name, RemoteDatabase) for name in members(DatabaseAPI)]
    + [(name, RemoteMesh) for name in members(MeshAPI, "mesh.")]
    + [(name, RemoteProfiler) for name in members(ProfilerAPI, "profiler.")],
)
def test_every_member_is_served(name: str, remote: type) -> None:
    assert hasattr(remote, name.rpartition(".")[2]), f"{remote.__name__} lacks {name}"
    if name in NO_ROUTE:
        return
    served = SERVED_AS.get(name, name)
    assert served in SERVED, f"no route serves {name}: add one to routes.TABLE"
    assert served in OPERATIONS


def test_the_lists_name_real_members() -> None:
    known = set(
        members(DatabaseAPI) + members(MeshAPI, "mesh.") + members(ProfilerAPI, "profiler.")
    )
    assert set(NO_ROUTE) <= known
    assert set(SERVED_AS) <= known
    assert set(OBJECT_REPLIES) <= set(OPERATIONS)


def bare(schema: Any) -> bool:
    """Whether a reply schema, or one written inline in it, says no more than "an object"
    (schemas of value types, `$ref`s, are derived from their fields)."""
    if not isinstance(schema, dict) or "$ref" in schema:
        return False
    if not schema or (
        schema.get("type") == "object"
        and not schema.get("properties")
        and schema.get("additionalProperties", True) in (True, {})
    ):
        return True
    inner = [*schema.get("properties", {}).values(), schema.get("items"), *schema.get("anyOf", [])]
    return any(bare(part) for part in inner)


@pytest.mark.parametrize("operation_id", sorted(OPERATIONS))
def test_every_reply_has_a_schema(operation_id: str) -> None:
    content = OPERATIONS[operation_id]["responses"]["200"]["content"]
    schemas = [media.get("schema", {}) for media in content.values()]
    if operation_id in OBJECT_REPLIES:
        assert any(bare(schema) for schema in schemas), f"{operation_id} has a schema now"
    else:
        assert not any(bare(schema) for schema in schemas), operation_id
