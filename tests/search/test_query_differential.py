"""`db.query(spec)` against a plain-Python evaluator of the same spec over the same
nodes: random nodes, random filter trees, sorts, pages and group-bys (Hypothesis),
with and without sorted indexes serving the filter."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pluresdb_lab as pl

WORDS = ["", "a", "ab", "b", "ba", "c"]
TAGS = ["red", "green", "blue"]
FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "a": st.integers(-4, 4),
    "b": st.integers(-8, 8).map(lambda x: x / 4),
    "s": st.sampled_from(WORDS),
    "flag": st.booleans(),
    "tags": st.lists(st.sampled_from(TAGS), max_size=3),
}
SORTABLE = ["a", "b", "s", "flag", "id"]
COMPARE = ["eq", "ne", "lt", "lte", "gt", "gte"]

records = st.fixed_dictionaries({}, optional=FIELDS)
# One node has every field, so every field has a column to type it.
FULL = {"a": 0, "b": 0.5, "s": "ab", "flag": True, "tags": ["red"]}


def clauses() -> st.SearchStrategy[dict[str, Any]]:
    scalar = st.sampled_from(["a", "b", "s", "flag"]).flatmap(
        lambda f: st.one_of(
            st.fixed_dictionaries(
                {"field": st.just(f), "op": st.sampled_from(COMPARE), "value": FIELDS[f]}
            ),
            st.fixed_dictionaries(
                {"field": st.just(f), "op": st.just("in"), "value": st.lists(FIELDS[f])}
            ),
        )
    )
    contains = st.one_of(
        st.fixed_dictionaries(
            {"field": st.just("s"), "op": st.just("contains"), "value": st.sampled_from(WORDS)}
        ),
        st.fixed_dictionaries(
            {"field": st.just("tags"), "op": st.just("contains"), "value": st.sampled_from(TAGS)}
        ),
    )
    exists = st.fixed_dictionaries(
        {"field": st.sampled_from(list(FIELDS)), "op": st.just("exists"), "value": st.booleans()}
    )
    return st.one_of(scalar, contains, exists)


filters = st.recursive(
    clauses(),
    lambda inner: st.one_of(
        st.fixed_dictionaries({"and": st.lists(inner, max_size=3)}),
        st.fixed_dictionaries({"or": st.lists(inner, max_size=3)}),
        st.fixed_dictionaries({"not": inner}),
    ),
    max_leaves=6,
)
sorts = st.lists(
    st.tuples(st.sampled_from(SORTABLE), st.sampled_from(["asc", "desc"])),
    max_size=2,
    unique_by=lambda t: t[0],
).map(lambda keys: [{"field": f, "order": o} for f, o in keys])
plain_specs = st.fixed_dictionaries(
    {"type": st.just("Item")},
    optional={
        "filter": filters,
        "sort": sorts,
        "limit": st.integers(0, 12),
        "offset": st.integers(0, 5),
    },
)
aggregates = st.lists(
    st.sampled_from(
        [
            {"op": "count"},
            {"op": "sum", "field": "a"},
            {"op": "avg", "field": "b"},
            {"op": "min", "field": "s"},
            {"op": "max", "field": "a"},
        ]
    ),
    min_size=1,
    max_size=3,
    unique_by=lambda a: (a["op"], a.get("field")),
)
grouped_specs = st.fixed_dictionaries(
    {
        "type": st.just("Item"),
        "group_by": st.lists(st.sampled_from(["s", "flag", "a"]), max_size=2, unique=True),
        "aggregates": aggregates,
    },
    optional={"filter": filters},
)


# -- the reference evaluator ---------------------------------------------------------------


def matches(data: dict[str, Any], node: dict[str, Any]) -> bool:
    if "and" in node:
        return all(matches(data, part) for part in node["and"])
    if "or" in node:
        return any(matches(data, part) for part in node["or"])
    if "not" in node:
        return not matches(data, node["not"])
    value, op, wanted = data.get(node["field"]), node["op"], node.get("value")
    if op == "exists":
        return (value is not None) == wanted
    if value is None:
        return False
    if op == "contains":
        return wanted in value
    if op == "in":
        return any(value == item for item in wanted)
    return {
        "eq": value == wanted,
        "ne": value != wanted,
        "lt": value < wanted,
        "lte": value <= wanted,
        "gt": value > wanted,
        "gte": value >= wanted,
    }[op]


def sort_rows(rows: list[dict[str, Any]], keys: list[tuple[str, str]]) -> list[dict[str, Any]]:
    for name, order in reversed(keys):
        present = [r for r in rows if r.get(name) is not None]
        missing = [r for r in rows if r.get(name) is None]
        present.sort(key=lambda r: r[name], reverse=order == "desc")
        rows = present + missing
    return rows


def aggregate(op: str, values: list[Any], count: int) -> Any:
    present = [v for v in values if v is not None]
    if op == "count":
        return count
    if not present:
        return None
    return {"sum": sum, "min": min, "max": max, "avg": lambda v: sum(v) / len(v)}[op](present)


def reference(nodes: dict[str, dict[str, Any]], spec: dict[str, Any]) -> list[dict[str, Any]]:
    rows = [
        {"id": node_id, **data}
        for node_id, data in sorted(nodes.items())
        if "filter" not in spec or matches(data, spec["filter"])
    ]
    if "group_by" in spec:
        keys = spec["group_by"]
        groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        for row in rows:
            groups.setdefault(tuple(row.get(k) for k in keys), []).append(row)
        if not keys:
            groups.setdefault((), [])  # as in SQL, no group keys make exactly one row
        out = []
        for key, members in groups.items():
            result = dict(zip(keys, key, strict=True))
            for agg in spec["aggregates"]:
                name = agg["op"] if "field" not in agg else f"{agg['op']}_{agg['field']}"
                values = [m.get(agg.get("field", "id")) for m in members]
                result[name] = aggregate(agg["op"], values, len(members))
            out.append(result)
        return sort_rows(out, [(k, "asc") for k in keys])
    keys = [(s["field"], s["order"]) for s in spec.get("sort", [])] + [("id", "asc")]
    rows = sort_rows(rows, keys)
    offset = spec.get("offset", 0)
    stop = None if "limit" not in spec else offset + spec["limit"]
    return rows[offset:stop]


def same(left: Any, right: Any) -> bool:
    if isinstance(left, float) or isinstance(right, float):
        return left is not None and right is not None and math.isclose(left, right)
    return bool(left == right)


def load(nodes: dict[str, dict[str, Any]], indexed: bool) -> Any:
    db = pl.connect(":memory:")
    db.put_many([{"id": i, **d} for i, d in nodes.items()], type="Item")
    if indexed:
        db.create_index("numeric", type="Item", fields="a")
        db.create_index("composite", type="Item", fields=["s", "b"])
    return db


node_sets = st.dictionaries(
    st.from_regex(r"n[0-9]{1,3}", fullmatch=True), records, max_size=25
).map(lambda d: {**d, "full": FULL})
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(nodes=node_sets, spec=plain_specs, indexed=st.booleans())
def test_filter_sort_page_match_reference(
    nodes: dict[str, dict[str, Any]], spec: dict[str, Any], indexed: bool
) -> None:
    db = load(nodes, indexed)
    try:
        got = db.query(spec).column("id").to_pylist()
    finally:
        db.close()
    assert got == [row["id"] for row in reference(nodes, spec)]


@SETTINGS
@given(nodes=node_sets, spec=grouped_specs, indexed=st.booleans())
def test_group_by_matches_reference(
    nodes: dict[str, dict[str, Any]], spec: dict[str, Any], indexed: bool
) -> None:
    db = load(nodes, indexed)
    try:
        got = db.query(spec).to_pylist()
    finally:
        db.close()
    expected = reference(nodes, spec)
    assert len(got) == len(expected), (got, expected)
    for mine, theirs in zip(got, expected, strict=True):
        assert mine.keys() == theirs.keys()
        assert all(same(mine[k], theirs[k]) for k in mine), (mine, theirs)
