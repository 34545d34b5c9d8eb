"""Graph algorithms over the `_edge` nodes: breadth-first traversal, shortest path,
degree, and export to networkx.

Each call reads the current edges once as an Arrow table (one scan, no per-edge
lookups), so the answer reflects every write made before it.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

import networkx as nx
import pyarrow as pa

from pluresdb_lab._values import EDGE_TYPE, Direction, Hop
from pluresdb_lab.errors import InvalidDataError


class Edges:
    """Adjacency lists of the current edges, optionally of one label."""

    def __init__(self, edges: pa.Table, label: str | None = None) -> None:
        self.out: dict[str, list[str]] = {}
        self.into: dict[str, list[str]] = {}
        self.rows: list[dict[str, Any]] = []
        for text in edges.column("data").to_pylist():
            data = json.loads(text)
            if label is not None and data.get("label") != label:
                continue
            self.rows.append(data)
            self.out.setdefault(data["from"], []).append(data["to"])
            self.into.setdefault(data["to"], []).append(data["from"])

    def next_to(self, node: str, direction: Direction) -> list[str]:
        found: list[str] = []
        if direction in ("out", "both"):
            found += self.out.get(node, [])
        if direction in ("in", "both"):
            found += self.into.get(node, [])
        return sorted(set(found))


def check_direction(direction: str) -> Direction:
    if direction not in ("out", "in", "both"):
        raise InvalidDataError(f"direction is 'out', 'in' or 'both', got {direction!r}")
    return direction  # type: ignore[return-value]


def breadth_first(edges: Edges, start: str, depth: int, direction: Direction) -> list[Hop]:
    """Nodes within `depth` edges of `start` (start first), nearest first, ties by id."""
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 0:
        raise InvalidDataError(f"depth is an int >= 0, got {depth!r}")
    seen = {start}
    hops = [Hop(start, 0, None)]
    frontier = deque([hops[0]])
    while frontier:
        hop = frontier.popleft()
        if hop.depth == depth:
            continue
        for other in edges.next_to(hop.id, direction):
            if other not in seen:
                seen.add(other)
                reached = Hop(other, hop.depth + 1, hop.id)
                hops.append(reached)
                frontier.append(reached)
    return hops


def path_between(edges: Edges, a: str, b: str, direction: Direction) -> list[str] | None:
    """The ids on a shortest path from a to b (both included), or None if none exists."""
    parents: dict[str, str | None] = {a: None}
    frontier = deque([a])
    while frontier:
        node = frontier.popleft()
        if node == b:
            path = [b]
            while (parent := parents[path[-1]]) is not None:
                path.append(parent)
            return path[::-1]
        for other in edges.next_to(node, direction):
            if other not in parents:
                parents[other] = node
                frontier.append(other)
    return None


def as_networkx(nodes: pa.Table, edges: Edges) -> nx.MultiDiGraph:
    """A MultiDiGraph: node attributes are the data fields plus `_type` (the node type,
    under a reserved name so no data field collides); edges are keyed by label."""
    graph: nx.MultiDiGraph = nx.MultiDiGraph()
    for node_id, type_name, text in zip(
        nodes.column("id").to_pylist(),
        nodes.column("type").to_pylist(),
        nodes.column("data").to_pylist(),
        strict=True,
    ):
        if type_name != EDGE_TYPE:
            graph.add_node(node_id, **(json.loads(text) | {"_type": type_name}))
    for data in edges.rows:
        attributes = {k: v for k, v in data.items() if k not in ("from", "to")}
        graph.add_edge(data["from"], data["to"], key=data["label"], **attributes)
    return graph
