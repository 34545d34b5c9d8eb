"""The JSON query spec (DESIGN §6): validation, filter evaluation with Arrow compute,
index choice for the filter, and the group-by / sort / page / projection steps.

Spec keys: `type`, `filter`, `text`, `vector`, `sort`, `limit`, `offset`, `select`,
`group_by`, `aggregates`. A filter is `{"and": [...]}`, `{"or": [...]}`, `{"not": f}`
or a clause `{"field": name, "op": op, "value": v}` with op one of eq, ne, lt, lte,
gt, gte, contains, in, exists. A clause on a missing field is false (so is `ne`), and
`not` negates that: the same rule as a plain Python evaluator over the node dicts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from pluresdb_lab.engine._index_sorted import SortedIndex
from pluresdb_lab.errors import InvalidQueryError

Mask = npt.NDArray[np.bool_]

COMPARISONS: dict[str, Callable[..., Any]] = {
    "eq": pc.equal,
    "ne": pc.not_equal,
    "lt": pc.less,
    "lte": pc.less_equal,
    "gt": pc.greater,
    "gte": pc.greater_equal,
}
OPERATORS = (*COMPARISONS, "contains", "in", "exists")
AGGREGATES = {"count": "count_all", "sum": "sum", "avg": "mean", "min": "min", "max": "max"}
SPEC_KEYS = (
    "type",
    "filter",
    "text",
    "vector",
    "sort",
    "limit",
    "offset",
    "select",
    "group_by",
    "aggregates",
)
RANGE_OPS = ("eq", "lt", "lte", "gt", "gte")


@dataclass
class Spec:
    """A checked query spec."""

    type: str | None = None
    filter: dict[str, Any] | None = None
    text: dict[str, Any] | None = None
    vector: dict[str, Any] | None = None
    sort: list[tuple[str, str]] = field(default_factory=list)
    limit: int | None = None
    offset: int = 0
    select: list[str] | None = None
    group_by: list[str] = field(default_factory=list)
    aggregates: list[tuple[str, str | None, str]] = field(default_factory=list)


def _fail(path: str, message: str) -> InvalidQueryError:
    return InvalidQueryError(f"query spec {path}: {message}")


def _count(value: Any, path: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _fail(path, f"must be an int >= 0, got {value!r}")
    return value


def _names(value: Any, path: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _fail(path, f"must be a field name or a list of field names, got {value!r}")
    return list(value)


def check_spec(spec: Any) -> Spec:
    """A Spec from the JSON form; raises InvalidQueryError naming the bad part."""
    if not isinstance(spec, dict):
        raise InvalidQueryError(f"a query spec is a dict, got {type(spec).__name__}")
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise _fail(str(unknown), f"unknown key(s); a spec has {', '.join(SPEC_KEYS)}")
    out = Spec()
    if spec.get("type") is not None:
        if not isinstance(spec["type"], str):
            raise _fail("type", f"must be a type name, got {spec['type']!r}")
        out.type = spec["type"]
    if spec.get("filter") is not None:
        check_filter(spec["filter"], "filter")
        out.filter = spec["filter"]
    for key in ("text", "vector"):
        clause = spec.get(key)
        if clause is not None:
            if not isinstance(clause, dict) or "query" not in clause:
                raise _fail(key, 'must be a dict with "query"')
            setattr(out, key, clause)
    for i, item in enumerate(_listed(spec.get("sort"))):
        out.sort.append(_sort_key(item, f"sort[{i}]"))
    if spec.get("limit") is not None:
        out.limit = _count(spec["limit"], "limit")
    out.offset = _count(spec.get("offset", 0), "offset")
    if spec.get("select") is not None:
        out.select = _names(spec["select"], "select")
    if spec.get("group_by") is not None:
        out.group_by = _names(spec["group_by"], "group_by")
    for i, item in enumerate(_listed(spec.get("aggregates"))):
        out.aggregates.append(_aggregate(item, f"aggregates[{i}]"))
    if out.group_by and not out.aggregates:
        out.aggregates.append(("count", None, "count"))
    return out


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _sort_key(item: Any, path: str) -> tuple[str, str]:
    if isinstance(item, str) and item:
        return (item[1:], "descending") if item.startswith("-") else (item, "ascending")
    if isinstance(item, dict) and isinstance(item.get("field"), str):
        order = item.get("order", "asc")
        if order not in ("asc", "desc"):
            raise _fail(f"{path}.order", f"is 'asc' or 'desc', got {order!r}")
        return item["field"], "ascending" if order == "asc" else "descending"
    raise _fail(path, f'is "field", "-field" or {{"field": ..., "order": ...}}, got {item!r}')


def _aggregate(item: Any, path: str) -> tuple[str, str | None, str]:
    if not isinstance(item, dict) or item.get("op") not in AGGREGATES:
        raise _fail(f"{path}.op", f"must be one of {list(AGGREGATES)}, got {item!r}")
    op, name = item["op"], item.get("field")
    if op != "count" and not isinstance(name, str):
        raise _fail(f"{path}.field", f"{op} needs a field name")
    alias = item.get("as") or (op if name is None else f"{op}_{name}")
    if not isinstance(alias, str):
        raise _fail(f"{path}.as", "must be a column name")
    return op, name, alias


def check_filter(node: Any, path: str) -> None:
    """Check a filter tree's shape (its field types are checked against the data)."""
    if not isinstance(node, dict):
        raise _fail(path, f"a filter is a dict, got {node!r}")
    if "and" in node or "or" in node:
        key = "and" if "and" in node else "or"
        parts = node[key]
        if len(node) != 1 or not isinstance(parts, list):
            raise _fail(path, f'"{key}" takes a list of filters and nothing else')
        for i, part in enumerate(parts):
            check_filter(part, f"{path}.{key}[{i}]")
        return
    if "not" in node:
        if len(node) != 1:
            raise _fail(path, '"not" takes one filter and nothing else')
        check_filter(node["not"], f"{path}.not")
        return
    if not isinstance(node.get("field"), str) or not node["field"]:
        raise _fail(path, f'a clause needs "field", or use and/or/not; got {node!r}')
    extra = sorted(set(node) - {"field", "op", "value"})
    if extra:
        raise _fail(path, f"unknown key(s) {extra} in a clause")
    op = node.get("op")
    if op not in OPERATORS:
        raise _fail(f"{path}.op", f"unknown operator {op!r}; use one of {list(OPERATORS)}")
    value = node.get("value")
    if op == "in" and not isinstance(value, list):
        raise _fail(f"{path}.value", f'"in" takes a list, got {value!r}')
    if op == "exists" and not isinstance(value, bool) and "value" in node:
        raise _fail(f"{path}.value", f'"exists" takes true or false, got {value!r}')
    if op not in ("exists",) and (value is None or isinstance(value, dict)):
        raise _fail(f"{path}.value", f"{op} needs a value (not null or an object)")


# -- evaluation ----------------------------------------------------------------------------


def _column(table: pa.Table, name: str, path: str) -> pa.ChunkedArray | None:
    """The column for a field; None when no rows exist to know it from."""
    if name in table.column_names:
        return table.column(name)
    if table.num_rows == 0:
        return None
    raise _fail(f"{path}.field", f"unknown field {name!r}; fields are {table.column_names}")


def _scalar(kind: pa.DataType, value: Any, path: str) -> pa.Scalar:
    """`value` as a scalar comparable with a column of `kind`, or a clear error."""
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if pa.types.is_timestamp(kind):
        if is_number:
            return pa.scalar(datetime.fromtimestamp(value, UTC), kind)
        if isinstance(value, str):
            try:
                when = datetime.fromisoformat(value)
            except ValueError:
                raise _fail(f"{path}.value", f"{value!r} is not an ISO time") from None
            return pa.scalar(when if when.tzinfo else when.replace(tzinfo=UTC), kind)
    elif pa.types.is_integer(kind) or pa.types.is_floating(kind):
        if is_number:
            return pa.scalar(value)
    elif pa.types.is_boolean(kind):
        if isinstance(value, bool):
            return pa.scalar(value)
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        if isinstance(value, str):
            return pa.scalar(value)
    elif pa.types.is_null(kind):
        return pa.scalar(None)
    else:
        raise _fail(f"{path}.field", f"a {kind} field cannot be compared")
    raise _fail(f"{path}.value", f"{value!r} does not match the field's type {kind}")


def filter_mask(table: pa.Table, node: dict[str, Any], path: str = "filter") -> Mask:
    """Which rows of `table` the filter keeps (and checks values against field types)."""
    if "and" in node:
        mask = np.ones(table.num_rows, dtype=bool)
        for i, part in enumerate(node["and"]):
            mask &= filter_mask(table, part, f"{path}.and[{i}]")
        return mask
    if "or" in node:
        mask = np.zeros(table.num_rows, dtype=bool)
        for i, part in enumerate(node["or"]):
            mask |= filter_mask(table, part, f"{path}.or[{i}]")
        return mask
    if "not" in node:
        return ~filter_mask(table, node["not"], f"{path}.not")
    return _clause(table, node, path)


def _clause(table: pa.Table, node: dict[str, Any], path: str) -> Mask:
    column = _column(table, node["field"], path)
    op: str = node["op"]
    value: Any = node.get("value")
    if column is None:
        return np.zeros(table.num_rows, dtype=bool)
    kind = column.type
    if op == "exists":
        present = pc.is_valid(column).to_numpy(zero_copy_only=False)
        return np.asarray(present if value is not False else ~present, dtype=bool)
    if pa.types.is_null(kind):
        return np.zeros(table.num_rows, dtype=bool)
    if op == "contains":
        return _contains(column, value, path)
    if op == "in":
        mask = np.zeros(table.num_rows, dtype=bool)
        for i, item in enumerate(value):
            mask |= _compare(column, pc.equal, _scalar(kind, item, f"{path}.value[{i}]"))
        return mask
    return _compare(column, COMPARISONS[op], _scalar(kind, value, path))


def _compare(column: pa.ChunkedArray, compare: Callable[..., Any], scalar: pa.Scalar) -> Mask:
    result = pc.fill_null(compare(column, scalar), False)
    return np.asarray(result.to_numpy(zero_copy_only=False), dtype=bool)


def _contains(column: pa.ChunkedArray, value: Any, path: str) -> Mask:
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        if not isinstance(value, str):
            raise _fail(f"{path}.value", f"contains on a text field takes a string, got {value!r}")
        return _compare(column, lambda c, v: pc.match_substring(c, v.as_py()), pa.scalar(value))
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        array = column.combine_chunks()
        flat = pc.list_flatten(array)
        owners = pc.list_parent_indices(array).to_numpy()
        hits = _compare(
            pa.chunked_array([flat]), pc.equal, _scalar(flat.type, value, f"{path}.value")
        )
        mask = np.zeros(len(array), dtype=bool)
        mask[owners[hits]] = True
        return mask
    raise _fail(f"{path}.op", f"contains works on text and list fields, not {kind}")


# -- index choice --------------------------------------------------------------------------


@dataclass
class Bounds:
    """What the top-level conjuncts of a filter say about one field."""

    equal: Any = None
    has_equal: bool = False
    low: Any = None
    low_inclusive: bool = True
    high: Any = None
    high_inclusive: bool = True

    @property
    def ranged(self) -> bool:
        return self.low is not None or self.high is not None


def field_bounds(node: dict[str, Any] | None, table: pa.Table) -> dict[str, Bounds]:
    """Equality and range conjuncts of the filter, by field, in index key form."""
    if node is None:
        return {}
    parts = node.get("and", [node])
    found: dict[str, Bounds] = {}
    for part in parts:
        if "field" not in part or part["op"] not in RANGE_OPS:
            continue
        name = part["field"]
        if name not in table.column_names:
            continue
        value = _key(table.column(name).type, part["value"])
        if value is None:
            continue
        bounds = found.setdefault(name, Bounds())
        op = part["op"]
        if op == "eq" and not bounds.has_equal:
            bounds.equal, bounds.has_equal = value, True
        elif op in ("gt", "gte") and (bounds.low is None or value >= bounds.low):
            exclusive = op == "gt" or (value == bounds.low and not bounds.low_inclusive)
            bounds.low, bounds.low_inclusive = value, not exclusive
        elif op in ("lt", "lte") and (bounds.high is None or value <= bounds.high):
            exclusive = op == "lt" or (value == bounds.high and not bounds.high_inclusive)
            bounds.high, bounds.high_inclusive = value, not exclusive
    return found


def _key(kind: pa.DataType, value: Any) -> Any:
    """A filter value as the sorted index stores it, or None if it cannot be one."""
    scalar = _scalar(kind, value, "filter")
    if pa.types.is_timestamp(kind):
        return pc.cast(scalar, pa.int64()).as_py()
    return scalar.as_py()


def index_positions(index: SortedIndex, bounds: dict[str, Bounds]) -> npt.NDArray[np.int64] | None:
    """Row positions `index` yields for these bounds, or None if it cannot serve them."""
    equal: list[Any] = []
    for name in index.fields:
        b = bounds.get(name)
        if b is not None and b.has_equal:
            equal.append(b.equal)
            continue
        if b is not None and b.ranged:
            return index.lookup(equal, b.low, b.high, (b.low_inclusive, b.high_inclusive))
        break
    if not equal:
        return None
    return index.lookup(equal, None, None, (True, True))


# -- shaping the result --------------------------------------------------------------------


def shape(table: pa.Table, spec: Spec, scored: bool) -> pa.Table:
    """Group and aggregate, sort, page and project the filtered rows."""
    keys: list[tuple[str, str]]
    if spec.group_by or spec.aggregates:
        table = _grouped(table, spec)
        keys = spec.sort + [(k, "ascending") for k in spec.group_by]
    else:
        default = [("score", "descending")] if scored and not spec.sort else []
        keys = spec.sort + default + [("id", "ascending")]
    for i, (name, _) in enumerate(spec.sort):
        if name not in table.column_names:
            raise _fail(f"sort[{i}]", f"unknown column {name!r}; columns are {table.column_names}")
    if keys and table.num_rows:
        order = pc.sort_indices(table, sort_keys=[(name, way, "at_end") for name, way in keys])
        table = table.take(order)
    stop = None if spec.limit is None else spec.offset + spec.limit
    table = table.slice(spec.offset, None if stop is None else stop - spec.offset)
    if spec.select is not None:
        missing = [n for n in spec.select if n not in table.column_names]
        if missing:
            raise _fail("select", f"unknown column(s) {missing}; columns are {table.column_names}")
        table = table.select(spec.select)
    return table


def _grouped(table: pa.Table, spec: Spec) -> pa.Table:
    for i, key in enumerate(spec.group_by):
        if key not in table.column_names:
            if table.num_rows:
                raise _fail(f"group_by[{i}]", f"unknown field {key!r}")
            table = table.append_column(key, pa.nulls(0))
    wanted: list[tuple[Any, str]] = []
    for i, (op, name, _) in enumerate(spec.aggregates):
        if name is None:
            wanted.append(([], "count_all"))
            continue
        if name not in table.column_names:
            if table.num_rows:
                raise _fail(f"aggregates[{i}].field", f"unknown field {name!r}")
            table = table.append_column(name, pa.nulls(0, pa.float64()))
        kind = table.column(name).type
        numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind)
        if op in ("sum", "avg") and not (numeric or pa.types.is_null(kind)):
            raise _fail(f"aggregates[{i}]", f"{op} needs a numeric field; {name!r} is {kind}")
        if pa.types.is_null(kind):
            table = table.set_column(
                table.column_names.index(name), name, pa.nulls(table.num_rows, pa.float64())
            )
        wanted.append((name, AGGREGATES[op]))
    grouped = table.group_by(spec.group_by, use_threads=False).aggregate(wanted)
    columns = {k: grouped.column(k) for k in spec.group_by}
    for (_, field_name, alias), (_, function) in zip(spec.aggregates, wanted, strict=True):
        source = "count_all" if field_name is None else f"{field_name}_{function}"
        if alias in columns:
            raise _fail("aggregates", f"two output columns are named {alias!r}; use 'as'")
        columns[alias] = grouped.column(source)
    return pa.table(columns)
