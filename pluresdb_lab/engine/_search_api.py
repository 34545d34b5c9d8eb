"""The public index, search, query and graph methods of Database (DESIGN §6), as a mixin.

Every method holds the database lock, so an index brought up to date at the start of
a call stays consistent with the rows the call reads.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol, cast

import networkx as nx
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pluresdb_lab._values import (
    EDGE_TYPE,
    Change,
    Direction,
    Hop,
    IndexKind,
    Node,
    SearchHit,
    SearchResult,
    Subscription,
    VectorHit,
)
from pluresdb_lab.engine import _query
from pluresdb_lab.engine._analytics import typed_table
from pluresdb_lab.engine._facets import count_facets, facet_name
from pluresdb_lab.engine._graph import (
    Edges,
    as_networkx,
    breadth_first,
    check_direction,
    path_between,
)
from pluresdb_lab.engine._index_base import Index, untyped
from pluresdb_lab.engine._index_sorted import SortedIndex
from pluresdb_lab.engine._index_text import TextIndex
from pluresdb_lab.engine._index_vector import VectorIndex
from pluresdb_lab.engine._indexes import Registry
from pluresdb_lab.errors import IndexNotFoundError, InvalidQueryError, NotFoundError


class _Host(Protocol):
    """The Database members this mixin uses."""

    path: Path | None
    _lock: threading.RLock

    def _open(self) -> None: ...

    def scan(self, type: str | None = None) -> pa.Table: ...

    def to_arrow(self, type: str | None = None) -> pa.Table: ...

    def get(self, id: str) -> Node | None: ...

    def get_many(self, ids: Iterable[str]) -> builtins.list[Node | None]: ...

    def version_vector(self) -> dict[str, int]: ...

    def subscribe(
        self, callback: Callable[[Change], None], *, id: str | None = None, type: str | None = None
    ) -> Subscription: ...


class SearchMixin:
    """Indexes, vector and text search, the query spec, and graph algorithms."""

    _registry: Registry
    _registry_subscription: Subscription | None

    def _host(self) -> _Host:
        return cast(_Host, self)

    # -- lifecycle (called by Database.__init__ and Database.close) ----------------------

    def _open_indexes(self) -> None:
        host = self._host()
        self._registry = Registry(host.path, host.version_vector())
        self._registry_subscription = None
        self._follow_writes()

    def _close_indexes(self) -> None:
        host = self._host()
        self._registry.save(host, host.version_vector())
        if self._registry_subscription is not None:
            self._registry_subscription.cancel()

    def _follow_writes(self) -> None:
        """Subscribe to changes only while a vector or text index needs them: a change
        feed costs every bulk write a Change per row, which sorted indexes avoid."""
        needed = any(i.kind in ("vector", "text") for i in self._registry.indexes.values())
        if needed and self._registry_subscription is None:
            self._registry_subscription = self._host().subscribe(self._registry.on_change)
        elif not needed and self._registry_subscription is not None:
            self._registry_subscription.cancel()
            self._registry_subscription = None

    # -- index management --------------------------------------------------------------

    def create_index(
        self,
        kind: IndexKind,
        *,
        name: str | None = None,
        type: str | None = None,
        fields: str | Sequence[str] | None = None,
        **params: Any,
    ) -> dict[str, Any]:
        """Create and build an index; returns its description (as in `indexes()`)."""
        definition = {
            "kind": kind,
            "name": name,
            "type": type,
            "fields": [fields] if isinstance(fields, str) else list(fields or []),
            "params": params,
        }
        host = self._host()
        with host._lock:
            host._open()
            index = self._registry.create(definition)
            try:
                index.ready(host)
            except Exception:
                self._registry.drop(index.name)
                raise
            self._follow_writes()
            return index.describe()

    def drop_index(self, name: str) -> None:
        """Remove an index and its saved files."""
        host = self._host()
        with host._lock:
            host._open()
            self._registry.drop(name)
            self._follow_writes()

    def indexes(self) -> builtins.list[dict[str, Any]]:
        """Every index: definition, entries, build time, memory, queries, p50/p95 latency."""
        host = self._host()
        with host._lock:
            host._open()
            for index in self._registry.indexes.values():
                if index.built:
                    index.ready(host)
            return [index.describe() for index in self._registry.indexes.values()]

    def _index_named(self, kind: str, name: str | None, type_name: str | None = None) -> Index:
        if name is not None:
            index = self._registry.get(name)
            if index.kind != kind:
                raise InvalidQueryError(f"index {name!r} is a {index.kind} index, not {kind}")
        elif type_name is not None:
            index = self._registry.find(kind, type_name)
        else:
            found = [i for i in self._registry.indexes.values() if i.kind == kind]
            if not found:
                raise IndexNotFoundError(
                    f"there is no {kind} index; create one with db.create_index({kind!r}, ...)"
                )
            if len(found) > 1:
                names = sorted(i.name for i in found)
                raise InvalidQueryError(f"several {kind} indexes {names}; name one with index=")
            index = found[0]
        index.ready(self._host())
        return index

    # -- rows the query spec runs over ---------------------------------------------------

    def _query_rows(self, type_name: str | None) -> pa.Table:
        """Typed rows of one type, or of every user type with a `type` column."""
        host = self._host()
        if type_name is not None:
            return host.to_arrow(type_name)
        rows = untyped(host.scan())
        return typed_table(rows).append_column("type", rows.column("type"))

    def _query_filtered(
        self, spec: _query.Spec, plan: dict[str, Any]
    ) -> tuple[pa.Table, np.ndarray[Any, Any]]:
        """Rows of the spec's type and which pass its filter, using a sorted index when
        one serves the filter's top-level conditions."""
        table = self._query_rows(spec.type)
        plan.update(access="scan", index=None, estimated_rows=table.num_rows)
        if spec.filter is None:
            return table, np.ones(table.num_rows, dtype=bool)
        # Check fields and value types against the whole type first: an index may leave
        # no rows to evaluate, and a bad spec must fail the same way either way.
        _query.filter_mask(table.slice(0, 1), spec.filter)
        bounds = _query.field_bounds(spec.filter, table)
        best: tuple[SortedIndex, np.ndarray[Any, Any]] | None = None
        for index in self._registry.indexes.values():
            if not isinstance(index, SortedIndex) or index.type != spec.type or not bounds:
                continue
            index.ready(self._host())
            with index.timed():
                positions = _query.index_positions(index, bounds)
            if positions is not None and (best is None or len(positions) < len(best[1])):
                best = (index, positions)
        if best is None:
            return table, _query.filter_mask(table, spec.filter)
        index, positions = best
        plan.update(access="index", index=index.name, estimated_rows=len(positions))
        subset = table.take(pa.array(positions))
        return subset, _query.filter_mask(subset, spec.filter)

    # -- vector search -----------------------------------------------------------------

    def vector_search(
        self,
        query: Any,
        k: int = 10,
        *,
        filter: dict[str, Any] | None = None,
        index: str | None = None,
    ) -> builtins.list[VectorHit]:
        """The k nodes nearest to `query`: few filtered candidates exactly, else HNSW."""
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise InvalidQueryError(f"k is an int >= 1, got {k!r}")
        host = self._host()
        with host._lock:
            host._open()
            found = self._vector_nearest(query, k, filter, index, {})
            nodes = host.get_many([node_id for node_id, _ in found])
        return [
            VectorHit(node_id, score, node)
            for (node_id, score), node in zip(found, nodes, strict=True)
            if node is not None
        ]

    def _vector_nearest(
        self,
        query: Any,
        k: int,
        filter: dict[str, Any] | None,
        name: str | None,
        plan: dict[str, Any],
    ) -> builtins.list[tuple[str, float]]:
        index = cast(VectorIndex, self._index_named("vector", name))
        vector = self._query_vector(index, query)
        allowed = None
        if filter is not None:
            _query.check_filter(filter, "filter")
            spec = _query.Spec(type=index.type, filter=filter)
            rows, mask = self._query_filtered(spec, plan)
            allowed = index.labels_where(rows, mask)
        plan.update(
            vector_index=index.name,
            vector_plan=index.plan(None if allowed is None else len(allowed)),
            vector_candidates=index.entries() if allowed is None else len(allowed),
        )
        with index.timed():
            return index.search(vector, k, allowed)

    def _query_vector(self, index: VectorIndex, query: Any) -> np.ndarray[Any, Any]:
        if isinstance(query, str):
            own = index.vector_of(query)
            return own if own is not None else index.embed_text(query)
        try:
            vector = np.asarray(query, dtype=np.float32)
        except (TypeError, ValueError):
            raise InvalidQueryError(
                "a vector query is a list of numbers, a node id or text"
            ) from None
        if vector.ndim != 1 or not np.all(np.isfinite(vector)):
            raise InvalidQueryError("a vector query is one finite vector")
        return vector

    # -- text search -------------------------------------------------------------------

    def search(
        self,
        text: str,
        *,
        fields: Sequence[str] | dict[str, float] | None = None,
        type: str | None = None,
        facets: Sequence[Any] | None = None,
        filter: dict[str, Any] | None = None,
        limit: int = 10,
    ) -> SearchResult:
        """BM25 text search over the text index, narrowed by type and filter after it."""
        if not isinstance(text, str):
            raise InvalidQueryError(f"search() takes text, got {text!r}")
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise InvalidQueryError(f"limit is an int >= 0, got {limit!r}")
        boosts = _boosts(fields)
        for facet in facets or []:
            facet_name(facet)
        host = self._host()
        with host._lock:
            host._open()
            index = cast(TextIndex, self._index_named("text", None, type))
            narrowed = filter is not None or (type is not None and index.type is None)
            with index.timed():
                hits, total = index.search(text, boosts, None if narrowed or facets else limit)
            rows = None
            if narrowed or facets:
                rows = self._search_rows([h[0] for h in hits], type, filter)
                kept = set(rows.column("id").to_pylist())
                hits = [h for h in hits if h[0] in kept]
                total = len(hits)
            top = hits[:limit]
            snippets = index.snippets(text, boosts, [h[0] for h in top])
            counted = count_facets(rows, list(facets)) if facets and rows is not None else {}
            nodes = host.get_many([h[0] for h in top])
        return SearchResult(
            [
                SearchHit(node_id, score, snippets[node_id], node)
                for (node_id, score), node in zip(top, nodes, strict=True)
                if node is not None
            ],
            total,
            counted,
        )

    def _search_rows(
        self, ids: builtins.list[str], type_name: str | None, filter: dict[str, Any] | None
    ) -> pa.Table:
        """Raw rows (id, type, data, written) of the hits passing type and filter."""
        rows = self._host().scan(type_name)
        rows = rows.filter(pc.is_in(rows.column("id"), pa.array(ids, pa.string())))
        if filter is not None:
            _query.check_filter(filter, "filter")
            table, mask = self._query_filtered(_query.Spec(type=type_name, filter=filter), {})
            passing = table.column("id").filter(pa.array(mask))
            rows = rows.filter(pc.is_in(rows.column("id"), passing))
        return rows

    # -- the query spec ----------------------------------------------------------------

    def query(self, spec: dict[str, Any]) -> pa.Table:
        """Run a JSON query spec (DESIGN §6); the result is an Arrow table."""
        checked = _query.check_spec(spec)
        host = self._host()
        with host._lock:
            host._open()
            table, _ = self._query_run(checked)
        return table

    def explain(self, spec: dict[str, Any]) -> dict[str, Any]:
        """How `query(spec)` runs: the plan `_query_run` records on its way."""
        checked = _query.check_spec(spec)
        host = self._host()
        with host._lock:
            host._open()
            _, plan = self._query_run(checked)
        return plan

    def _query_run(self, spec: _query.Spec) -> tuple[pa.Table, dict[str, Any]]:
        plan: dict[str, Any] = {"type": spec.type}
        scores: dict[str, float] | None = None
        if spec.vector is not None:
            clause = spec.vector
            k = clause.get("k", 10)
            if not isinstance(k, int) or isinstance(k, bool) or k < 1:
                raise InvalidQueryError(f"query spec vector.k: an int >= 1, got {k!r}")
            found = self._vector_nearest(clause["query"], k, spec.filter, clause.get("index"), plan)
            scores = dict(found)
        table, mask = self._query_filtered(spec, plan)
        table = table.filter(pa.array(mask))
        if spec.text is not None:
            clause = spec.text
            if not isinstance(clause["query"], str):
                raise InvalidQueryError("query spec text.query: must be a string")
            index = cast(TextIndex, self._index_named("text", clause.get("index"), spec.type))
            plan.update(text_index=index.name)
            with index.timed():
                hits = dict(index.search(clause["query"], _boosts(clause.get("fields")))[0])
            scores = hits if scores is None else {i: s for i, s in scores.items() if i in hits}
        if scores is not None:
            table = table.filter(pc.is_in(table.column("id"), pa.array(list(scores), pa.string())))
            column = [scores[i] for i in table.column("id").to_pylist()]
            table = table.append_column("score", pa.array(column, pa.float64()))
        return _query.shape(table, spec, scored=scores is not None), plan

    # -- graph -------------------------------------------------------------------------

    def _graph_edges(self, label: str | None) -> Edges:
        return Edges(self._host().scan(EDGE_TYPE), label)

    def _graph_check(self, *ids: str) -> None:
        host = self._host()
        for node_id in ids:
            if host.get(node_id) is None:
                raise NotFoundError(f"there is no node {node_id!r}")

    def traverse(
        self, start: str, depth: int, label: str | None = None, direction: Direction = "out"
    ) -> builtins.list[Hop]:
        """Nodes within `depth` edges of `start` (breadth first; start included at depth 0)."""
        host = self._host()
        with host._lock:
            host._open()
            self._graph_check(start)
            return breadth_first(self._graph_edges(label), start, depth, check_direction(direction))

    def shortest_path(
        self, a: str, b: str, *, label: str | None = None, direction: Direction = "out"
    ) -> builtins.list[str] | None:
        """Ids on a shortest path from a to b (fewest edges), or None if unreachable."""
        host = self._host()
        with host._lock:
            host._open()
            self._graph_check(a, b)
            return path_between(self._graph_edges(label), a, b, check_direction(direction))

    def degree(self, id: str, *, label: str | None = None, direction: Direction = "both") -> int:
        """How many edges touch node `id` (out, in or both)."""
        host = self._host()
        with host._lock:
            host._open()
            self._graph_check(id)
            edges = self._graph_edges(label)
            chosen = check_direction(direction)
            total = len(edges.out.get(id, [])) if chosen in ("out", "both") else 0
            return total + (len(edges.into.get(id, [])) if chosen in ("in", "both") else 0)

    def to_networkx(self) -> nx.MultiDiGraph:
        """The whole graph: nodes with their data, edges keyed by label."""
        host = self._host()
        with host._lock:
            host._open()
            return as_networkx(host.scan(), self._graph_edges(None))


def _boosts(fields: Sequence[str] | dict[str, float] | None) -> dict[str, float] | None:
    if fields is None:
        return None
    if isinstance(fields, str):
        return {fields: 1.0}
    if isinstance(fields, dict):
        for name, boost in fields.items():
            if not isinstance(boost, (int, float)) or isinstance(boost, bool) or boost <= 0:
                raise InvalidQueryError(f"the boost of field {name!r} is a number > 0")
        return {name: float(boost) for name, boost in fields.items()}
    return dict.fromkeys(fields, 1.0)
