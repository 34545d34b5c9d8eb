"""Bad specs, filters and index calls get a clear error naming the offending part."""

from __future__ import annotations

from typing import Any

import pytest

from pluresdb_lab import errors


@pytest.fixture
def items(db: Any) -> Any:
    db.put_many([{"id": f"i{n}", "n": n, "name": f"item {n}"} for n in range(10)], type="Item")
    return db


@pytest.mark.parametrize(
    ("spec", "part"),
    [
        ({"type": "Item", "filter": {"field": "n", "op": "like", "value": 1}}, "filter.op"),
        ({"type": "Item", "filter": {"field": "n", "op": "eq", "value": "x"}}, "filter.value"),
        (
            {"type": "Item", "filter": {"and": [{"field": "zz", "op": "eq", "value": 1}]}},
            "filter.and[0].field",
        ),
        ({"type": "Item", "filter": {"not": [1]}}, "filter.not"),
        ({"type": "Item", "filter": {"field": "n", "op": "in", "value": 3}}, "filter.value"),
        ({"type": "Item", "limit": -1}, "limit"),
        ({"type": "Item", "sort": [{"field": "n", "order": "up"}]}, "sort[0].order"),
        ({"type": "Item", "sort": ["nope"]}, "sort[0]"),
        ({"type": "Item", "select": ["nope"]}, "select"),
        ({"type": "Item", "group_by": ["n"], "aggregates": [{"op": "median"}]}, "aggregates[0].op"),
        (
            {"type": "Item", "group_by": ["n"], "aggregates": [{"op": "sum", "field": "name"}]},
            "aggregates[0]",
        ),
        ({"type": "Item", "colour": "red"}, "['colour']"),
        ({"type": "Item", "vector": {"k": 3}}, "vector"),
    ],
)
def test_bad_spec_names_the_part(items: Any, spec: dict[str, Any], part: str) -> None:
    with pytest.raises(errors.InvalidQueryError) as caught:
        items.query(spec)
    assert part in str(caught.value)
    assert isinstance(caught.value, errors.InvalidDataError)


def test_unknown_index_and_kind(items: Any) -> None:
    with pytest.raises(errors.IndexNotFoundError, match="nope"):
        items.drop_index("nope")
    with pytest.raises(errors.IndexNotFoundError, match="create one"):
        items.search("item")
    with pytest.raises(errors.InvalidQueryError, match="unknown index kind"):
        items.create_index("btree", type="Item", fields="n")
    with pytest.raises(errors.InvalidQueryError, match="space"):
        items.create_index("vector", type="Item", space="manhattan")
    with pytest.raises(errors.InvalidQueryError, match="exactly one field"):
        items.create_index("numeric", type="Item", fields=["n", "name"])
    items.create_index("numeric", type="Item", fields="n", name="by_n")
    with pytest.raises(errors.InvalidQueryError, match="exists"):
        items.create_index("numeric", type="Item", fields="n", name="by_n")
    with pytest.raises(errors.InvalidQueryError, match="is a numeric index"):
        items.vector_search([1.0, 2.0], index="by_n")
    assert [i["name"] for i in items.indexes()] == ["by_n"]


def test_bad_vector_queries(items: Any) -> None:
    items.put("v1", {"n": 1}, type="Vec", vector=[1.0, 0.0, 0.0])
    items.create_index("vector", type="Vec")
    with pytest.raises(errors.VectorDimensionError, match="3-dimensional"):
        items.vector_search([1.0, 2.0])
    with pytest.raises(errors.InvalidQueryError, match="k is"):
        items.vector_search([1.0, 2.0, 3.0], k=0)
    with pytest.raises(errors.InvalidQueryError, match=r"filter\.op"):
        items.vector_search([1.0, 2.0, 3.0], filter={"field": "n", "op": "~", "value": 1})
    with pytest.raises(errors.InvalidQueryError, match="finite"):
        items.vector_search([1.0, float("nan"), 3.0])
