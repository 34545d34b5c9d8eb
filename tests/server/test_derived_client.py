"""The remote client's methods follow from the interface and the route table (issue #12):
every method is derived (`_derive`) unless client.py's docstring lists it as written by
hand, and a method added to an interface with an endpoint needs no client code to work
against a real server."""

from __future__ import annotations

import abc
import inspect
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import pytest

from pluresdb_lab import client, errors
from pluresdb_lab._api import DatabaseAPI, MeshAPI, ProfilerAPI, SnapshotAPI
from pluresdb_lab._database import Database
from pluresdb_lab._derive import Call, Request, derive, derived
from pluresdb_lab._routes import Endpoint, Serves
from pluresdb_lab._values import Direction, Node
from pluresdb_lab.client import RemoteDatabase, RemoteMesh, RemoteProfiler, RemoteSnapshot
from pluresdb_lab.server.standalone import Background

TOKEN = "derived-client-token"
CLIENTS = [
    (RemoteDatabase, DatabaseAPI),
    (RemoteSnapshot, SnapshotAPI),
    (RemoteMesh, MeshAPI),
    (RemoteProfiler, ProfilerAPI),
]
WRITTEN = set(re.findall(r"`(Remote\w+\.\w+)`", client.__doc__ or ""))


def interface(api: type) -> list[str]:
    """The members a client must provide: an ABC's abstract ones, a protocol's own."""
    if getattr(api, "_is_protocol", False):
        return [name for name in vars(api) if not name.startswith("_")]
    return sorted(api.__abstractmethods__)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("remote", "api"), CLIENTS, ids=[c.__name__ for c, _ in CLIENTS])
def test_every_member_is_derived_unless_listed_as_written(remote: type, api: type) -> None:
    for name in interface(api):
        member = inspect.getattr_static(remote, name)
        listed = f"{remote.__name__}.{name}" in WRITTEN
        if derived(member):
            assert not listed, f"{remote.__name__}.{name} is derived: take it off the list"
        else:
            assert listed, f"{remote.__name__}.{name} is written by hand but not listed"
            assert name in vars(remote), f"{remote.__name__}.{name} is neither written nor made"


def test_the_list_names_members_written_in_client_py() -> None:
    assert WRITTEN
    for qualified in WRITTEN:
        owner, _, name = qualified.partition(".")
        cls = getattr(client, owner)
        assert name in vars(cls), qualified
        assert not derived(vars(cls)[name]), qualified


def test_the_client_loads_no_server() -> None:
    probe = (
        "import pluresdb_lab.client, sys; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tornado', 'jupyter_server')"
        " or m.startswith('pluresdb_lab.server')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]", result.stdout


def test_a_call_is_encoded_the_regular_way() -> None:
    neighbors = Call(
        DatabaseAPI.neighbors,
        Endpoint("node/{node_id}/neighbors", {}),
        "GET",
        Serves("neighbors", "nodes"),
    )
    request = neighbors.request({"id": "a/b ü", "label": None, "direction": "in"})
    assert request == Request("node/a%2Fb%20%C3%BC/neighbors", {"direction": "in"}, None)
    with pytest.raises(errors.InvalidIdError, match="cannot be empty"):
        neighbors.request({"id": "", "label": None, "direction": "in"})
    with pytest.raises(errors.InvalidDataError, match="label is a string"):
        neighbors.request({"id": "a", "label": 5, "direction": "in"})
    compact = Call(DatabaseAPI.compact, Endpoint("storage/compact", {}), "POST", Serves("compact"))
    assert compact.request({"level": 1, "progress": None}) == Request(
        "storage/compact", {}, {"level": 1}
    )
    with pytest.raises(errors.InvalidDataError, match="progress callbacks"):
        compact.request({"level": None, "progress": print})


# -- a method added to an interface: one definition and one endpoint, no client code ----


class Later(abc.ABC):
    """Methods a later DatabaseAPI might add, served by routes the server already has."""

    @abc.abstractmethod
    def upsert(
        self,
        id: str,
        data: dict[str, Any],
        *,
        type: str | None = None,
        vector: Sequence[float] | np.ndarray[Any, Any] | None = None,
    ) -> Node:
        """Write a node."""

    @abc.abstractmethod
    def lookup(self, id: str) -> Node | None:
        """A node, or None."""

    @abc.abstractmethod
    def fetch(self, ids: Iterable[str]) -> list[Node | None]:
        """Nodes, None where absent."""

    @abc.abstractmethod
    def page(self, type: str | None = None, limit: int = 100, offset: int = 0) -> list[Node]:
        """Nodes by id."""

    @abc.abstractmethod
    def join(self, src: str, dst: str, label: str, data: dict[str, Any] | None = None) -> Node:
        """Link two nodes."""

    @abc.abstractmethod
    def edges_at(self, id: str, *, label: str | None = None, direction: Direction = "both") -> int:
        """How many edges touch a node."""


LATER = (
    Endpoint("node/{node_id}", {"PUT": Serves("upsert"), "GET": Serves("lookup")}),
    Endpoint("nodes/get", {"POST": Serves("fetch", "nodes")}),
    Endpoint("nodes", {"GET": Serves("page", "nodes")}),
    Endpoint("edges", {"POST": Serves("join")}),
    Endpoint("node/{node_id}/degree", {"GET": Serves("edges_at", "degree")}),
)


@derive(Later, LATER)
class LaterClient(Later):
    def __init__(self, db: RemoteDatabase) -> None:
        self._db = db

    def _call(self, call: Call, values: dict[str, Any]) -> Any:
        return self._db._call(call, values)


@pytest.fixture
def later() -> Iterator[LaterClient]:
    served = Database(None)
    server = Background(served, token=TOKEN)
    remote = RemoteDatabase(server.url, TOKEN)
    try:
        # mypy would want the derived names declared (client.py's TYPE_CHECKING blocks)
        yield LaterClient(remote)  # type: ignore[abstract]
    finally:
        remote.close()
        server.close()
        served.close()


def test_a_new_method_takes_the_interface_signature_and_docstring() -> None:
    for name in ("upsert", "lookup", "fetch", "page", "join", "edges_at"):
        made, defined = getattr(LaterClient, name), getattr(Later, name)
        assert derived(made)
        assert inspect.signature(made) == inspect.signature(defined)
        assert made.__doc__ == defined.__doc__
        assert made.__qualname__ == f"LaterClient.{name}"


def test_a_new_method_works_against_a_real_server(later: LaterClient) -> None:
    node = later.upsert("a/b ü", {"x": 1}, type="T", vector=np.array([1.0, 2.0]))
    assert (node.id, node.type, node.data, node.version) == ("a/b ü", "T", {"x": 1}, 1)
    assert node.vector is not None
    assert node.vector.dtype == np.float32
    later.upsert("c", {})
    found = later.lookup("a/b ü")
    assert found is not None
    assert found.data == {"x": 1}
    assert later.lookup("absent") is None
    assert [n and n.id for n in later.fetch(iter(["c", "absent"]))] == ["c", None]
    assert [n.id for n in later.page(limit=1, offset=1)] == ["c"]
    assert later.join("a/b ü", "c", "knows").type == "_edge"
    assert later.edges_at("c") == 1
    assert later.edges_at("c", direction="out") == 0


def test_a_new_method_raises_what_the_engine_raises(later: LaterClient) -> None:
    later.upsert("a", {})
    with pytest.raises(errors.InvalidIdError):
        later.upsert(5, {})  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidIdError):
        later.lookup("")
    with pytest.raises(errors.ReservedNameError, match="_hidden"):
        later.upsert("a", {"_hidden": 1})
    with pytest.raises(errors.InvalidDataError, match="get_many"):
        later.fetch("a")
    with pytest.raises(errors.InvalidDataError):
        later.page(limit="3")  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidDataError, match="both"):
        later.edges_at("a", direction="sideways")  # type: ignore[arg-type]
    with pytest.raises(errors.NotFoundError):
        later.join("a", "absent", "knows")
    with pytest.raises(TypeError, match="upsert"):
        later.upsert("a")  # type: ignore[call-arg]
