"""Checks on everything a user hands to the database, before anything is written."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from pluresdb_lab._checks import id_string
from pluresdb_lab.errors import (
    InvalidDataError,
    InvalidIdError,
    NodeTooLargeError,
    ReservedNameError,
    VectorDimensionError,
)

MAX_ID_BYTES = 1024
FSYNC_POLICIES = ("always", "interval", "off")

Vector = npt.NDArray[np.float32]


def check_id(node_id: object) -> str:
    node_id = id_string(node_id)
    if "\x00" in node_id:
        raise InvalidIdError(f"node id {node_id!r} contains a NUL character")
    if len(node_id.encode("utf-8", "surrogatepass")) > MAX_ID_BYTES:
        raise InvalidIdError(f"node id is longer than {MAX_ID_BYTES} bytes: {node_id[:40]!r}...")
    return node_id


def check_type(type_name: object, *, internal: bool = False) -> str | None:
    if type_name is None:
        return None
    if not isinstance(type_name, str) or not type_name:
        raise InvalidDataError(f"a type is a non-empty string or None, got {type_name!r}")
    if type_name.startswith("_") and not internal:
        raise ReservedNameError(
            f"type {type_name!r} starts with '_', which is reserved for the database's own "
            "types (edges, rules, settings); choose another name"
        )
    return type_name


def check_fields(data: object) -> dict[str, Any]:
    """Check a merge patch's shape; values are checked when encoded."""
    if not isinstance(data, dict):
        raise InvalidDataError(f"node data is a dict of fields, got {type(data).__name__}")
    for field in data:
        if not isinstance(field, str):
            raise InvalidDataError(f"field names are strings, got {field!r}")
        if not field:
            raise InvalidDataError("field names cannot be empty")
        if field.startswith("_"):
            raise ReservedNameError(
                f"field {field!r} starts with '_', which is reserved; rename the field"
            )
    return data


def _reject(value: object) -> Any:
    if isinstance(value, np.generic):  # numpy scalars from DataFrames and arrays
        return value.item()
    raise InvalidDataError(
        f"{type(value).__name__} value {value!r:.60} is not JSON; use str, int, float, bool, "
        "None, list or dict"
    )


INT_RANGE = (-(2**63), 2**63 - 1)


MAX_DEPTH = 100
"""How deeply lists and objects may nest in a node's data (as in MySQL's JSON type).
Deeper documents are refused on write: every peer must be able to merge and encode
them without running out of stack, or replication would stall on them."""


def _too_deep(where: str) -> InvalidDataError:
    return InvalidDataError(
        f"{where} nests lists and objects more than {MAX_DEPTH} levels deep; flatten it"
    )


def _check_keys(value: Any, where: str, depth: int = 1) -> None:
    """What json.dumps would accept but change or a reader could not hold: non-string
    keys (1 silently becomes "1"), integers beyond 64 bits, and nesting deeper than
    MAX_DEPTH. Written for speed: the common scalar types are skipped by an identity
    test on their type."""
    kind = type(value)
    if kind is dict:
        if depth > MAX_DEPTH:
            raise _too_deep(where)
        for key, item in value.items():
            if type(key) is not str:
                raise InvalidDataError(
                    f"{where} has a non-string key {key!r}; JSON keys are strings"
                )
            item_kind = type(item)
            if item_kind is str or item_kind is float or item_kind is bool or item is None:
                continue
            _check_keys(item, f"{where}.{key}", depth + 1)
    elif kind is list or kind is tuple:
        if depth > MAX_DEPTH:
            raise _too_deep(where)
        for item in value:
            _check_keys(item, where, depth + 1)
    elif kind is int and not INT_RANGE[0] <= value <= INT_RANGE[1]:
        raise InvalidDataError(
            f"{where} holds the integer {value}, outside the 64-bit range; store it as a string"
        )


_ENCODER = json.JSONEncoder(allow_nan=False, separators=(",", ":"), default=_reject)


def encode_json(value: Any, *, max_bytes: int, what: str) -> str:
    """JSON text of `value`, or a specific error (NaN/inf, non-JSON types, size)."""
    _check_keys(value, what)
    try:
        text = _ENCODER.encode(value)
    except ValueError as exc:
        if isinstance(exc, InvalidDataError):
            raise
        raise InvalidDataError(
            f"{what} holds NaN or infinity, which JSON cannot represent: {exc}"
        ) from None
    except (TypeError, RecursionError) as exc:
        raise InvalidDataError(f"{what} cannot be encoded as JSON: {exc}") from None
    if len(text) > max_bytes:
        raise NodeTooLargeError(
            f"{what} is {len(text):,} bytes of JSON, over the limit of {max_bytes:,} "
            "(max_node_bytes); split it into several nodes"
        )
    return text


def check_vector(vector: object, expected_dim: int | None) -> Vector:
    try:
        array = np.asarray(vector, dtype=np.float32)
    except (TypeError, ValueError):
        raise InvalidDataError(
            f"a vector is a sequence of numbers, got {type(vector).__name__}"
        ) from None
    if array.ndim != 1 or array.size == 0:
        raise InvalidDataError(
            f"a vector is one-dimensional and non-empty, got shape {array.shape}"
        )
    if not np.isfinite(array).all():
        raise InvalidDataError("a vector cannot hold NaN or infinity")
    if expected_dim is not None and array.size != expected_dim:
        raise VectorDimensionError(
            f"vector has {array.size} dimensions but this type's vectors have {expected_dim}"
        )
    return array


def check_options(max_node_bytes: object, retention: object) -> tuple[int, float | None]:
    if (
        not isinstance(max_node_bytes, int)
        or isinstance(max_node_bytes, bool)
        or max_node_bytes < 1
    ):
        raise InvalidDataError(
            f"max_node_bytes is a positive number of bytes, got {max_node_bytes!r}"
        )
    if retention is None:
        return max_node_bytes, None
    if not isinstance(retention, (int, float)) or isinstance(retention, bool) or not retention >= 0:
        raise InvalidDataError(
            f"retention is seconds (>= 0), or None to keep all history; got {retention!r}"
        )
    return max_node_bytes, float(retention)


def check_vv(vv: object) -> dict[str, int]:
    if vv is None:
        return {}
    if not isinstance(vv, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) for k, v in vv.items()
    ):
        raise InvalidDataError(f"a version vector maps peer ids to integers, got {vv!r:.100}")
    return dict(vv)


def check_fsync(policy: object) -> str:
    if policy not in FSYNC_POLICIES:
        raise InvalidDataError(f"fsync must be one of {', '.join(FSYNC_POLICIES)}; got {policy!r}")
    return str(policy)


def nesting_depth(value: object) -> int:
    """How deeply lists and objects nest in a decoded value, without recursion (a
    peer's op may be nested deeper than Python's stack allows)."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[object] = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        depth += 1
        if depth > deepest:
            deepest = depth
            if deepest > MAX_DEPTH:
                break
        stack.extend((child, depth) for child in children)
    return deepest


def too_deep_rows(data: pa.Array | pa.ChunkedArray) -> list[int]:
    """Rows of JSON text nested deeper than MAX_DEPTH. A row with fewer opening
    brackets than the limit cannot be too deep, so only the rare others are parsed."""
    brackets = pc.add(pc.count_substring(data, "{"), pc.count_substring(data, "["))
    suspects = pc.indices_nonzero(pc.fill_null(pc.greater(brackets, MAX_DEPTH), False))
    deep = []
    for i in suspects.to_pylist():
        text = data[i].as_py()
        if _text_depth(text) > MAX_DEPTH:
            deep.append(i)
    return deep


def _text_depth(text: str) -> int:
    """Nesting depth of JSON text, counting brackets outside strings."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def is_finite_number(value: object) -> bool:
    return not isinstance(value, float) or math.isfinite(value)
