"""The one interface (issue #12): `DatabaseAPI` and `SnapshotAPI` against their
implementations, the names only one side offers, docs/api-contract.md, and what
`import pluresdb_lab.client` loads.

Signatures are compared parameter by parameter (names, kinds, defaults, annotations as
text), so a drift fails here as well as in mypy. docs/api-contract.md is checked by
method name rather than generated: the page is prose with shorthand signatures, and the
full signatures already have one definition (`pluresdb_lab/_api.py`) that these tests
and mypy hold the implementations to.
"""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import pluresdb_lab as pl
from pluresdb_lab._api import EMBEDDED_ONLY, REMOTE_ONLY, DatabaseAPI, SnapshotAPI
from pluresdb_lab.client import RemoteDatabase, RemoteSnapshot
from pluresdb_lab.engine import Snapshot

DOC = Path(__file__).resolve().parents[2] / "docs" / "api-contract.md"
HEAVY = ("duckdb", "hnswlib", "tantivy", "networkx")


def _abstract_methods(api: type) -> list[str]:
    """The interface's abstract methods (abstract properties are checked by mypy)."""
    return sorted(
        name
        for name in api.__abstractmethods__
        if not isinstance(inspect.getattr_static(api, name), property)
    )


def _text(annotation: Any) -> str:
    # `builtins.list` is how a class with a `list` method spells the builtin
    return str(annotation).replace("builtins.", "")


def _shape(function: Any) -> list[tuple[str, Any, Any, str]]:
    signature = inspect.signature(function)  # follows the engine's `measured` wrappers
    return [
        (p.name, p.kind, p.default, _text(p.annotation)) for p in signature.parameters.values()
    ] + [("return", None, None, _text(signature.return_annotation))]


def _public(names: Any) -> set[str]:
    return {name for name in names if not name.startswith("_")}


def _interface_names(api: type) -> set[str]:
    annotated = {name for cls in api.__mro__ for name in getattr(cls, "__annotations__", {})}
    return _public(dir(api)) | _public(annotated)


@pytest.mark.parametrize(
    ("api", "implementation"),
    [
        (DatabaseAPI, pl.Database),
        (DatabaseAPI, RemoteDatabase),
        (SnapshotAPI, Snapshot),
        (SnapshotAPI, RemoteSnapshot),
    ],
    ids=["Database", "RemoteDatabase", "Snapshot", "RemoteSnapshot"],
)
def test_signatures_match_the_interface(api: type, implementation: type) -> None:
    assert issubclass(implementation, api)
    assert not getattr(implementation, "__abstractmethods__", None)
    methods = _abstract_methods(api)
    assert methods
    for name in methods:
        ours = getattr(implementation, name)
        assert ours is not getattr(api, name), f"{implementation.__name__}.{name} is missing"
        assert _shape(ours) == _shape(getattr(api, name)), f"{implementation.__name__}.{name}"


def test_the_interface_has_every_shared_method() -> None:
    abstract = _abstract_methods(DatabaseAPI)
    assert len(abstract) >= 40
    assert {"put", "neighbors", "as_of", "ops_since", "apply_ops", "close"} <= set(abstract)
    for name in ("to_pandas", "panel", "__enter__", "__exit__"):  # written once, there
        assert getattr(pl.Database, name) is getattr(DatabaseAPI, name)
        assert getattr(RemoteDatabase, name) is getattr(DatabaseAPI, name)
    assert Snapshot.to_pandas is RemoteSnapshot.to_pandas is SnapshotAPI.to_pandas


def test_one_sided_names_are_documented() -> None:
    assert not EMBEDDED_ONLY & REMOTE_ONLY
    for name in EMBEDDED_ONLY | REMOTE_ONLY:
        assert f"`{name}" in (DatabaseAPI.__doc__ or ""), name
        assert name not in _interface_names(DatabaseAPI), name


def test_every_public_name_is_on_the_interface_or_one_sided(tmp_path: Path, served: Any) -> None:
    interface = _interface_names(DatabaseAPI)
    embedded = pl.connect(":memory:")
    remote = served.connect(tmp_path / "db")
    try:
        for db, own, other in ((embedded, EMBEDDED_ONLY, REMOTE_ONLY), (remote, REMOTE_ONLY, ())):
            names = _public(dir(type(db))) | _public(vars(db))
            assert names - interface == set(own), type(db).__name__
            assert not names & set(other), type(db).__name__
            for name in DatabaseAPI.__annotations__:
                getattr(db, name)  # every attribute the interface declares is set
        assert not _public(dir(type(remote))) & EMBEDDED_ONLY
    finally:
        embedded.close()


def test_snapshot_writes_are_refused_alike(tmp_path: Path, served: Any) -> None:
    for db in (pl.connect(":memory:"), served.connect(tmp_path / "db")):
        db.put("a", {"x": 1})
        view = db.as_of(9e9)
        assert isinstance(view, SnapshotAPI)
        assert view.count() == 1
        with pytest.raises(pl.errors.ReadOnlyError, match="read-only view"):
            view.put("b", {})
        db.close()


def _doc_names() -> set[str]:
    return set(re.findall(r"\bdb\.([a-z_]+)", DOC.read_text()))


def test_the_contract_names_every_interface_method() -> None:
    methods = {
        name
        for name in _public(dir(DatabaseAPI))
        if callable(getattr(DatabaseAPI, name)) and name not in DatabaseAPI.__annotations__
    }
    missing = methods - _doc_names()
    assert not missing, f"docs/api-contract.md does not describe db.{sorted(missing)}"


def test_the_contract_names_no_method_the_interface_lacks() -> None:
    known = _interface_names(DatabaseAPI) | EMBEDDED_ONLY | REMOTE_ONLY
    unknown = _doc_names() - known
    assert not unknown, f"docs/api-contract.md names db.{sorted(unknown)}, not in DatabaseAPI"
    (as_of,) = [line for line in DOC.read_text().splitlines() if "db.as_of(" in line]
    for name in [*_abstract_methods(SnapshotAPI), "to_pandas"]:
        assert re.search(rf"\b{name}\b", as_of), f"the as_of line does not name {name}"


def test_the_client_and_the_panels_load_no_engine() -> None:
    """A kernel that reaches a server's database needs neither the engine nor the mesh
    (the panels depend only on the interface)."""
    probe = (
        "import pluresdb_lab.client, pluresdb_lab.widgets, sys; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {set(HEAVY)!r}"
        " or m.startswith(('pluresdb_lab.engine', 'pluresdb_lab.mesh'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]", result.stdout
