"""What the profiler suggests, derived only from what it measured.

- create_index: at least MIN_SLOW_QUERIES slow query/explain/search calls of one type
  bound a field (a top-level `eq`/`lt`/`lte`/`gt`/`gte` clause, the kind a numeric
  index serves) that no numeric or composite index leads with.
- compact: compaction level 0 holds L0_SEGMENTS segments or more (the count at which
  automatic compaction merges; a read of a node not in memory looks through each).
- split_node: a node read or written since the profiler started holds at least
  SPLIT_SHARE of `max_node_bytes`. Only a person can decide how to split it, so its
  action describes the change and `Profiler.apply` refuses it.

A suggestion's id names its finding ("index:airport.elevation", "compact:level0",
"split:<node id>"), so the same finding keeps its id from call to call.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa

from pluresdb_lab._values import Suggestion
from pluresdb_lab.engine._index_sorted import _sortable
from pluresdb_lab.engine._store import FANOUT

if TYPE_CHECKING:
    from pluresdb_lab._values import LargeNode, SlowOp

MIN_SLOW_QUERIES = 3
L0_SEGMENTS = FANOUT
SPLIT_SHARE = 0.5
RANGE_OPS = ("eq", "lt", "lte", "gt", "gte")
FILTERING = ("query", "explain", "search")  # a spec (or search's type and filter) to read
PRIORITIES = ("high", "medium", "low")


@dataclass(frozen=True, slots=True)
class FilterUse:
    """What one slow filtering call leaves for index advice: its type and bound fields."""

    type: str
    fields: tuple[str, ...]
    duration_ms: float


def filter_use(op: SlowOp) -> FilterUse | None:
    """The fields a slow query/explain/search bound, read back from its detail (the
    spec, or search's type and filter, as JSON; one cut at 500 characters is skipped).

    Only a typed spec counts (a numeric index covers one type), and only top-level
    conjuncts, the clauses the query planner can answer from an index.
    """
    if op.op not in FILTERING:
        return None
    try:
        spec = json.loads(op.detail)
    except ValueError:
        return None
    if not isinstance(spec, dict):
        return None
    type_name, tree = spec.get("type"), spec.get("filter")
    if not isinstance(type_name, str) or not isinstance(tree, dict):
        return None
    parts = tree.get("and", [tree])
    if not isinstance(parts, list):
        return None
    fields: list[str] = []
    for part in parts:
        if isinstance(part, dict) and part.get("op") in RANGE_OPS:
            name = part.get("field")
            if isinstance(name, str) and name and name not in fields:
                fields.append(name)
    return FilterUse(type_name, tuple(fields), op.duration_ms) if fields else None


def index_advice(
    uses: Iterable[FilterUse],
    served: Callable[[str], set[str]],
    kind_of: Callable[[str, str], pa.DataType | None],
) -> list[Suggestion]:
    """create_index suggestions for fields slow calls bound and no index serves.

    Args:
        uses: what the slow calls still remembered bound.
        served: type -> the fields an existing index serves ranges on.
        kind_of: (type, field) -> the field's Arrow type now, None when it has none.
    """
    durations: dict[tuple[str, str], list[float]] = {}
    for use in uses:
        for name in use.fields:
            durations.setdefault((use.type, name), []).append(use.duration_ms)
    found = []
    for (type_name, name), times in sorted(durations.items()):
        if len(times) < MIN_SLOW_QUERIES or name in served(type_name):
            continue
        kind = kind_of(type_name, name)
        if kind is None or not _sortable(kind):
            continue
        count, total_s = len(times), sum(times) / 1000
        priority = "high" if count >= 20 or total_s >= 10 else "medium" if count >= 5 else "low"
        found.append(
            Suggestion(
                f"index:{type_name}.{name}",
                "create_index",
                priority,
                f"{count} slow queries (p50 {milliseconds(percentile(times, 50))}) filter on "
                f"{type_name}.{name}, which has no index",
                {"create_index": {"kind": "numeric", "type": type_name, "fields": [name]}},
            )
        )
    return found


def compaction_advice(segments: int, nbytes: int) -> Suggestion | None:
    """A compact suggestion when level 0 holds L0_SEGMENTS segments or more."""
    if segments < L0_SEGMENTS:
        return None
    priority = (
        "high"
        if segments >= 3 * L0_SEGMENTS
        else "medium"
        if segments >= 2 * L0_SEGMENTS
        else "low"
    )
    return Suggestion(
        "compact:level0",
        "compact",
        priority,
        f"level 0 holds {segments} segments ({size_text(nbytes)}); a read of a node not in "
        "memory looks through each of them, and compacting merges them into level 1",
        {"compact": {"level": 0}},
    )


def split_advice(nodes: Iterable[LargeNode], max_node_bytes: int) -> list[Suggestion]:
    """split_node suggestions for nodes holding SPLIT_SHARE of the size limit or more."""
    found = []
    for node in nodes:
        share = node.bytes / max_node_bytes
        if share < SPLIT_SHARE:
            continue
        found.append(
            Suggestion(
                f"split:{node.id}",
                "split_node",
                "high" if share >= 0.9 else "medium",
                f"node {node.id!r} holds {size_text(node.bytes)} of JSON, {share:.0%} of the "
                f"{size_text(max_node_bytes)} limit (max_node_bytes); it was read "
                f"{node.reads} and written {node.writes} times, whole each time",
                {
                    "split_node": {"id": node.id, "type": node.type, "bytes": node.bytes},
                    "manual": "move parts of the node into nodes of their own and link them "
                    "to it with db.link(); this cannot be done automatically",
                },
            )
        )
    return found


def ranked(found: Iterable[Suggestion]) -> list[Suggestion]:
    """Most urgent first, then by id."""
    return sorted(found, key=lambda s: (PRIORITIES.index(s.priority), s.id))


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank `q`th percentile of `values` (which must not be empty)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def milliseconds(value: float) -> str:
    return f"{value:,.0f} ms" if value >= 10 else f"{value:.1f} ms"


def size_text(nbytes: int) -> str:
    """Bytes as a person reads them: 812 B, 64.0 KiB, 1.2 MiB."""
    if nbytes < 1024:
        return f"{nbytes} B"
    if nbytes < 1 << 20:
        return f"{nbytes / 1024:.1f} KiB"
    return f"{nbytes / (1 << 20):.1f} MiB"
