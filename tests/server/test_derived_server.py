"""The server serves the regular routes from the route table and the interface's
signatures (`server.derived`, issue #12): every verb is derived unless routes.py's
docstring lists it as written by hand, and a method added to an interface and the
engine with an endpoint needs no handler code to work end to end."""

from __future__ import annotations

import abc
import importlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgpack
import pytest

from pluresdb_lab import _wire, errors
from pluresdb_lab._api import DatabaseAPI
from pluresdb_lab._database import Database
from pluresdb_lab._derive import Call, derive
from pluresdb_lab._routes import ENDPOINTS, Endpoint, Serves
from pluresdb_lab._values import Node
from pluresdb_lab.client import RemoteDatabase
from pluresdb_lab.server import operations
from pluresdb_lab.server.derived import DerivedHandler
from pluresdb_lab.server.routes import TABLE, WRITTEN, Entry
from pluresdb_lab.server.standalone import Background

TOKEN = "derived-server-token"
MSGPACK = {"Content-Type": _wire.MSGPACK}
# the module (`pluresdb_lab.server.routes` is also the package's name for its function)
server_routes = importlib.import_module("pluresdb_lab.server.routes")
LISTED = {
    name
    for line in (server_routes.__doc__ or "").splitlines()
    if line.startswith("- ")
    for name in re.findall(r"`([\w.]+)`", line.partition(":")[0])
}
"""The methods routes.py's docstring lists as written by hand."""


def test_every_verb_is_derived_unless_listed_as_written() -> None:
    assert LISTED
    served = set()
    for entry in TABLE:
        for verb, serves in entry.serves.items():
            served.add(serves.method)
            listed = serves.method in LISTED
            assert entry.derived(verb) != listed, f"{verb} {entry.path} ({serves.method}) is " + (
                "listed but derived" if listed else "written by hand but not listed"
            )
    assert served >= LISTED, f"listed but served by no route: {LISTED - served}"


def test_no_handler_written_by_hand_is_left_over() -> None:
    assert set(WRITTEN) <= {endpoint.path for endpoint in ENDPOINTS}
    for entry in TABLE:
        if entry.path in WRITTEN and entry.serves:
            assert not all(map(entry.derived, entry.serves)), f"{entry.path}: all derived"


# -- a method added to an interface and the engine: one endpoint, no handler code -------


class Later(abc.ABC):
    """Methods a later DatabaseAPI might add, with routes no handler knows."""

    @abc.abstractmethod
    def tag(self, id: str, tags: list[str], *, note: str | None = None) -> Node:
        """Tag a node."""

    @abc.abstractmethod
    def tagged(self, tag: str, limit: int = 10) -> list[Node]:
        """Nodes with a tag, by id."""

    @abc.abstractmethod
    def untag(self, id: str) -> Node | None:
        """Take a node's tags off; None when there is no such node."""

    @abc.abstractmethod
    def file_size(self, path: str | os.PathLike[str]) -> int:
        """A file's size on the database's machine."""


class LaterAPI(DatabaseAPI, Later):
    """The interface with the later methods, where the server looks signatures up."""


class LaterDatabase(Database, Later):
    """The engine with the later methods."""

    def tag(self, id: str, tags: list[str], *, note: str | None = None) -> Node:
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise errors.InvalidDataError(f"tags is a list of strings, got {tags!r:.60}")
        return self.put(id, {"tags": tags, "note": note})

    def tagged(self, tag: str, limit: int = 10) -> list[Node]:
        return [n for n in self.list(limit=1000) if tag in n.data.get("tags", [])][:limit]

    def untag(self, id: str) -> Node | None:
        return None if self.get(id) is None else self.put(id, {"tags": None})

    def file_size(self, path: str | os.PathLike[str]) -> int:
        return Path(path).stat().st_size


LATER = (
    Endpoint("later", {"GET": Serves("tagged", "nodes")}),
    Endpoint("later/{node_id}", {"POST": Serves("tag"), "DELETE": Serves("untag")}),
    Endpoint("file-size", {"POST": Serves("file_size", "bytes")}),
)


@derive(Later, LATER)
class LaterClient(Later):
    def __init__(self, db: RemoteDatabase) -> None:
        self._db = db

    def _call(self, call: Call, values: dict[str, Any]) -> Any:
        return self._db._call(call, values)


@pytest.fixture
def allowed(tmp_path: Path) -> Path:
    folder = tmp_path / "allowed"
    folder.mkdir()
    return folder


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, allowed: Path) -> Iterator[Background]:
    monkeypatch.setattr(
        server_routes, "TABLE", [*TABLE, *(Entry(e.path, e.serves, DerivedHandler) for e in LATER)]
    )
    monkeypatch.setitem(operations.OWNERS, "", LaterAPI)
    served = LaterDatabase(None)
    background = Background(served, token=TOKEN, allowed_paths=[allowed])
    try:
        yield background
    finally:
        background.close()
        served.close()


@pytest.fixture
def later(server: Background) -> Iterator[LaterClient]:
    remote = RemoteDatabase(server.url, TOKEN)
    try:
        yield LaterClient(remote)  # type: ignore[abstract]
    finally:
        remote.close()


def test_a_new_method_is_served_without_handler_code(later: LaterClient) -> None:
    node = later.tag("a/b ü", ["x", "y"], note="n")
    assert (node.id, node.data) == ("a/b ü", {"tags": ["x", "y"], "note": "n"})
    later.tag("c", ["y"])
    assert [n.id for n in later.tagged("y")] == ["a/b ü", "c"]
    assert [n.id for n in later.tagged("y", limit=1)] == ["a/b ü"]
    assert later.untag("absent") is None  # None: a 404 the client reads back as None
    untagged = later.untag("c")
    assert untagged is not None
    assert untagged.data == {}


def test_a_new_method_raises_what_the_engine_raises(later: LaterClient) -> None:
    with pytest.raises(errors.InvalidDataError, match="tags is a list"):
        later.tag("a", "x")  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidIdError):
        later.tag("", [])


def test_a_new_path_parameter_goes_through_the_path_policy(
    later: LaterClient, allowed: Path, tmp_path: Path
) -> None:
    (allowed / "f.txt").write_text("12345")
    assert later.file_size(allowed / "f.txt") == 5
    (tmp_path / "secret.txt").write_text("hunter2")
    with pytest.raises(errors.PathNotAllowedError, match="--allow-path"):
        later.file_size(tmp_path / "secret.txt")


def test_a_new_route_refuses_malformed_requests(server: Background) -> None:
    auth = {"Authorization": f"token {TOKEN}"}
    with httpx.Client(base_url=server.url, headers=auth) as http:
        malformed: list[tuple[str, str, dict[str, Any]]] = [
            ("POST", "later/a", {"json": {"tags": [], "colour": 1}}),  # an unknown field
            ("POST", "later/a", {"json": {"note": "n"}}),  # a required one left out
            ("POST", "later/a", {"json": [1]}),  # not an object
            ("POST", "later/a", {"content": msgpack.packb({1: 2}), "headers": MSGPACK}),
            ("GET", "later", {}),  # a required query parameter left out
            ("GET", "later", {"params": {"tag": "y", "limit": "many"}}),
            ("POST", "file-size", {"json": {"path": 5}}),
        ]
        for method, route, options in malformed:
            response = http.request(method, route, **options)
            assert response.status_code == 400, (method, route, response.text)
            assert response.json()["error"] == "InvalidDataError"
        assert http.put("later/a", json={"tags": []}).status_code == 405
