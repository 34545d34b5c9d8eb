"""RemoteDatabase's indexes, search, query specs and graph calls against `pluresdb serve`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import pluresdb_lab as pl
from pluresdb_lab import errors
from pluresdb_lab.client import RemoteDatabase
from tests.server.conftest import TOKEN


@pytest.fixture
def db(serve_url: str) -> Iterator[RemoteDatabase]:
    remote = pl.connect(serve_url, token=TOKEN)
    assert isinstance(remote, RemoteDatabase)
    with remote:
        yield remote


def test_indexes_search_and_queries(db: RemoteDatabase) -> None:
    db.put_many(
        [
            {"id": f"doc{n}", "n": n, "title": f"red fox {n}" if n % 2 else "blue whale"}
            for n in range(10)
        ],
        type="Doc",
    )
    for n in range(4):
        db.put(f"vec{n}", {"n": n}, type="Vec", vector=[1.0, float(n), 0.5])
    text = db.create_index("text", type="Doc", fields="title", name="doc_title")
    assert text["name"] == "doc_title"
    db.create_index("vector", type="Vec", name="vec_index")
    assert {"doc_title", "vec_index"} <= {i["name"] for i in db.indexes()}
    found = db.search("fox", type="Doc", limit=3)
    assert found.total == 5
    assert len(found.hits) == 3
    assert all("fox" in hit.node.data["title"] for hit in found.hits)
    hits = db.vector_search([1.0, 3.0, 0.5], k=2, index="vec_index")
    assert hits[0].id == "vec3"
    assert hits[0].node.type == "Vec"
    spec = {"type": "Doc", "filter": {"field": "n", "op": "gte", "value": 7}, "sort": ["n"]}
    assert db.query(spec).column("id").to_pylist() == ["doc7", "doc8", "doc9"]
    assert isinstance(db.explain(spec), dict)
    with pytest.raises(errors.InvalidQueryError):
        db.query({"type": "Doc", "limit": -1})
    with pytest.raises(errors.IndexNotFoundError):
        db.drop_index("absent")
    db.drop_index("doc_title")
    assert "doc_title" not in {i["name"] for i in db.indexes()}


def test_graph_calls(db: RemoteDatabase) -> None:
    for name in ("ga", "gb", "gc", "gd"):
        db.put(name, {}, type="G")
    db.link("ga", "gb", "to")
    db.link("gb", "gc", "to")
    hops = db.traverse("ga", 2, label="to")
    assert [(h.id, h.depth, h.parent) for h in hops] == [
        ("ga", 0, None),
        ("gb", 1, "ga"),
        ("gc", 2, "gb"),
    ]
    assert db.shortest_path("ga", "gc") == ["ga", "gb", "gc"]
    assert db.shortest_path("ga", "gd") is None
    assert db.degree("gb") == 2
    with pytest.raises(errors.NotFoundError):
        db.traverse("nowhere", 1)
