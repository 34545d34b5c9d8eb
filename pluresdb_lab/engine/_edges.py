"""Edges: link, unlink and neighbors, and the edge adjacency kept for them.

An edge is a node of type `_edge` whose id is derived from its ends and label
(`edge_id`), with the ends in its data ("from", "to", "label").
"""

from __future__ import annotations

import builtins
import hashlib
import json
from typing import Any

from pluresdb_lab._values import EDGE_TYPE, Direction, Node
from pluresdb_lab.engine._apply import Core
from pluresdb_lab.engine._graph import check_direction
from pluresdb_lab.engine._instrument import measured
from pluresdb_lab.engine._validate import check_fields, check_id
from pluresdb_lab.errors import InvalidDataError, NotFoundError, ReservedNameError

EDGE_FIELDS = ("from", "to", "label")


def edge_id(src: str, dst: str, label: str) -> str:
    """Edges are nodes with a deterministic id, so linking twice is idempotent."""
    digest = hashlib.blake2b(json.dumps([src, label, dst]).encode(), digest_size=12)
    return f"_e:{digest.hexdigest()}"


class EdgesMixin(Core):
    """Links between nodes, and the nodes one link away."""

    @measured("link", about=("src", "label", "dst"))
    def link(self, src: str, dst: str, label: str, data: dict[str, Any] | None = None) -> Node:
        """Create (or update) the edge `src -[label]-> dst`; both nodes must exist."""
        check_id(src)
        check_id(dst)
        if not isinstance(label, str) or not label:
            raise InvalidDataError(f"an edge label is a non-empty string, got {label!r}")
        data = dict(check_fields({} if data is None else data))
        taken = [f for f in EDGE_FIELDS if f in data]
        if taken:
            raise ReservedNameError(
                f"edge data cannot use the field names {taken}: they hold the edge's ends"
            )
        for end in (src, dst):
            if self.get(end) is None:
                raise NotFoundError(f"cannot link: there is no node {end!r}")
        fields = {"from": src, "to": dst, "label": label, **data}
        return self._put(edge_id(src, dst, label), fields, type_name=EDGE_TYPE, internal=True)

    @measured("unlink", about=("src", "label", "dst"))
    def unlink(self, src: str, dst: str, label: str) -> bool:
        """Remove the edge `src -[label]-> dst`; False when there was none."""
        check_id(src)
        check_id(dst)
        if not isinstance(label, str) or not label:
            raise InvalidDataError(f"an edge label is a non-empty string, got {label!r}")
        return self.delete(edge_id(src, dst, label))

    @measured("neighbors", about="id")
    def neighbors(
        self, id: str, label: str | None = None, direction: Direction = "out"
    ) -> builtins.list[Node]:
        """Nodes one edge away from `id`, sorted by id."""
        check_direction(direction)
        check_id(id)
        with self._lock:
            self._open()
            if self.get(id) is None:
                raise NotFoundError(f"there is no node {id!r}")
            others: set[str] = set()
            for edge in self._incident_edges(id, label, direction):
                data = self._store.state(edge)
                assert data is not None
                ends = (data.data["from"], data.data["to"])
                others.update(e for e in ends if e != id or ends[0] == ends[1])
            nodes = [self.get(other) for other in sorted(others)]
        return [n for n in nodes if n is not None]

    def _incident_edges(self, node_id: str, label: str | None, direction: Direction) -> set[str]:
        edges = self._edge_adjacency()
        found: set[str] = set()
        if direction in ("out", "both"):
            found |= edges["out"].get(node_id, set())
        if direction in ("in", "both"):
            found |= edges["in"].get(node_id, set())
        if label is not None:
            found = {e for e in found if self._edge_label(e) == label}
        return found

    def _edge_label(self, edge: str) -> str | None:
        state = self._store.state(edge)
        return state.data.get("label") if state else None

    def _edge_adjacency(self) -> dict[str, dict[str, set[str]]]:
        if self._adjacency is None:
            self._adjacency = {"out": {}, "in": {}}
            for row in self._rows_of_type(EDGE_TYPE).select(["id", "data"]).to_pylist():
                self._edge_index(row["id"], json.loads(row["data"]), add=True)
        return self._adjacency

    def _edge_index(self, edge: str, data: dict[str, Any], *, add: bool) -> None:
        assert self._adjacency is not None
        for side, key in (("out", "from"), ("in", "to")):
            end = data.get(key)
            if end is None:
                continue
            bucket = self._adjacency[side].setdefault(end, set())
            if add:
                bucket.add(edge)
            else:
                bucket.discard(edge)
