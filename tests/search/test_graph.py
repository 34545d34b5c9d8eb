"""Graph algorithms over edges: traverse, shortest_path, degree, to_networkx; they see
every link and unlink made before the call."""

from __future__ import annotations

from typing import Any

import networkx as nx
import pytest

from pluresdb_lab import errors


@pytest.fixture
def chain(db: Any) -> Any:
    for name in "abcdef":
        db.put(name, {"name": name.upper()}, type="City")
    for src, dst in ["ab", "bc", "cd", "ae", "ed"]:
        db.link(src, dst, "road")
    db.link("a", "f", "ferry")
    return db


def test_traverse_by_depth_and_label(chain: Any) -> None:
    hops = chain.traverse("a", 2)
    assert [(h.id, h.depth) for h in hops] == [
        ("a", 0),
        ("b", 1),
        ("e", 1),
        ("f", 1),
        ("c", 2),
        ("d", 2),
    ]
    assert {h.id: h.parent for h in hops}["c"] == "b"
    assert [h.id for h in chain.traverse("a", 1, label="road")] == ["a", "b", "e"]
    assert [h.id for h in chain.traverse("d", 1, direction="in")] == ["d", "c", "e"]


def test_shortest_path_follows_links_and_unlinks(chain: Any) -> None:
    assert chain.shortest_path("a", "d") == ["a", "e", "d"]
    chain.unlink("e", "d", "road")
    assert chain.shortest_path("a", "d") == ["a", "b", "c", "d"]
    assert chain.shortest_path("d", "a") is None
    assert chain.shortest_path("d", "a", direction="both") == ["d", "c", "b", "a"]


def test_degree(chain: Any) -> None:
    assert chain.degree("a") == 3
    assert chain.degree("a", label="road") == 2
    assert chain.degree("d", direction="in") == 2
    assert chain.degree("d", direction="out") == 0


def test_to_networkx(chain: Any) -> None:
    graph = chain.to_networkx()
    assert isinstance(graph, nx.MultiDiGraph)
    assert graph.number_of_nodes() == 6
    assert graph.number_of_edges() == 6
    assert graph.nodes["a"]["name"] == "A"
    assert graph.nodes["a"]["_type"] == "City"
    assert nx.shortest_path(graph, "a", "d") == chain.shortest_path("a", "d")


def test_unknown_nodes_and_bad_arguments(chain: Any) -> None:
    with pytest.raises(errors.NotFoundError, match="zz"):
        chain.traverse("zz", 1)
    with pytest.raises(errors.NotFoundError, match="zz"):
        chain.shortest_path("a", "zz")
    with pytest.raises(errors.InvalidDataError, match="depth"):
        chain.traverse("a", -1)
    with pytest.raises(errors.InvalidDataError, match="direction"):
        chain.degree("a", direction="sideways")
