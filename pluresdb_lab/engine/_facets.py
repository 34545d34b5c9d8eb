"""Facet counts over a set of search hits: by value, by numeric range, by time bucket.

A facet is a field name (`"type"`, `"tags"`, any field: counts per value, each element
of a list counted), `{"field": f, "ranges": [edges...]}` (counts per half-open range
`[a, b)`, with `< first` and `>= last` buckets) or `{"field": f, "bucket": unit}` with
unit hour, day, month or year (`"time"` is the node's write time; other fields are ISO
strings or epoch seconds).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

import pyarrow as pa

from pluresdb_lab.errors import InvalidQueryError

BUCKETS = {"hour": "%Y-%m-%dT%H", "day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}


def facet_name(facet: Any) -> str:
    if isinstance(facet, str) and facet:
        return facet
    if isinstance(facet, dict) and isinstance(facet.get("field"), str):
        if "ranges" in facet:
            return f"{facet['field']}:ranges"
        if "bucket" in facet:
            return f"{facet['field']}:{facet['bucket']}"
    raise InvalidQueryError(
        f'a facet is a field name, {{"field": f, "ranges": [...]}} or '
        f'{{"field": f, "bucket": "day"}}, got {facet!r}'
    )


def count_facets(rows: pa.Table, facets: list[Any]) -> dict[str, dict[str, int]]:
    """Counts per facet over `rows` (id, type, data JSON text, written)."""
    records = [json.loads(text) for text in rows.column("data").to_pylist()]
    types = rows.column("type").to_pylist()
    written = rows.column("written").to_pylist()
    out: dict[str, dict[str, int]] = {}
    for facet in facets:
        name = facet_name(facet)
        field = facet if isinstance(facet, str) else facet["field"]
        if field == "type":
            values: list[Any] = types
        elif field == "time":
            values = written
        else:
            values = [r.get(field) for r in records]
        counts: Counter[str] = Counter()
        for value in values:
            for key in _keys(facet, field, value):
                counts[key] += 1
        out[name] = dict(counts.most_common())
    return out


def _keys(facet: Any, field: str, value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(facet, str):
        items = value if isinstance(value, list) else [value]
        return [str(v) for v in items]
    if "ranges" in facet:
        return [_range(facet["ranges"], value)]
    unit = facet["bucket"]
    if unit not in BUCKETS:
        raise InvalidQueryError(f"facet bucket is one of {list(BUCKETS)}, got {unit!r}")
    when = _time(value)
    return [] if when is None else [when.strftime(BUCKETS[unit])]


def _range(edges: Any, value: Any) -> str:
    if not isinstance(edges, list) or not all(
        isinstance(e, (int, float)) and not isinstance(e, bool) for e in edges
    ):
        raise InvalidQueryError(f"facet ranges is a list of numbers, got {edges!r}")
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "other"
    edges = sorted(edges)
    if not edges or value < edges[0]:
        return f"< {edges[0]}" if edges else "all"
    for low, high in pairwise(edges):
        if value < high:
            return f"{low}..{high}"
    return f">= {edges[-1]}"


def _time(value: Any) -> datetime | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            return None
        return when if when.tzinfo else when.replace(tzinfo=UTC)
    return None
