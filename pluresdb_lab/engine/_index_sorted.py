"""Numeric and composite indexes: sorted numpy arrays over a type's Arrow columns.

The index holds the row order of the type's typed table (`db.to_arrow(type)`) sorted by
its fields. That table is replaced whenever the type changes, so the index compares
identity and re-sorts when its table is no longer the current one: never stale.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from pluresdb_lab._values import Change, Node
from pluresdb_lab.engine._index_base import Host, Index
from pluresdb_lab.errors import InvalidQueryError

Positions = npt.NDArray[np.int64]


class SortedIndex(Index):
    """Rows of one type sorted by one field (numeric) or several (composite)."""

    def __init__(
        self, name: str, type_name: str | None, fields: list[str], params: dict[str, Any]
    ) -> None:
        if type_name is None:
            raise InvalidQueryError(f"a {self.kind} index needs type=... (it indexes one type)")
        if params:
            raise InvalidQueryError(f"unknown {self.kind} index parameter(s) {sorted(params)}")
        super().__init__(name, type_name, fields, params)
        self.table: pa.Table | None = None
        self._order: Positions = np.zeros(0, dtype=np.int64)
        self._keys: list[npt.NDArray[Any]] = []

    def on_change(self, change: Change) -> None:
        """Nothing to queue: `ready` notices the type's table was replaced."""

    def ready(self, host: Host) -> None:
        table = host.to_arrow(self.type)
        if table is self.table:
            return
        started = time.perf_counter()
        self._sort(table)
        self.stats.build_seconds = time.perf_counter() - started
        self.table = table
        self.built = True

    def _sort(self, table: pa.Table) -> None:
        missing = [f for f in self.fields if f not in table.column_names]
        valid = np.ones(table.num_rows, dtype=bool)
        columns: list[npt.NDArray[Any]] = []
        for name in self.fields:
            if name in missing:
                valid[:] = False
                columns.append(np.zeros(table.num_rows))
                continue
            column = table.column(name)
            if not _sortable(column.type):
                raise InvalidQueryError(
                    f"index {self.name!r}: field {name!r} is {column.type}; numeric and "
                    "composite indexes take numbers, strings, booleans or times"
                )
            valid &= pc.is_valid(column).to_numpy(zero_copy_only=False)
            columns.append(_numpy(column))
        rows = np.flatnonzero(valid)
        keys = [c[rows] for c in columns]
        order = np.lexsort(keys[::-1]) if keys else np.zeros(0, dtype=np.int64)
        self._order = rows[order].astype(np.int64)
        self._keys = [k[order] for k in keys]

    def apply(self, pending: dict[str, Node | None]) -> None:
        """Unused: the index re-sorts from the current table instead."""

    def entries(self) -> int:
        return len(self._order)

    def memory_bytes(self) -> int:
        return int(self._order.nbytes + sum(k.nbytes for k in self._keys))

    def lookup(
        self, equal: list[Any], low: Any, high: Any, inclusive: tuple[bool, bool]
    ) -> Positions:
        """Row positions with the first fields equal to `equal` and the next in [low, high]."""
        start, stop = 0, len(self._order)
        for depth, value in enumerate(equal):
            keys = self._keys[depth][start:stop]
            left = int(np.searchsorted(keys, value, "left"))
            right = int(np.searchsorted(keys, value, "right"))
            start, stop = start + left, start + right
        if len(equal) < len(self._keys) and (low is not None or high is not None):
            keys = self._keys[len(equal)][start:stop]
            lo = (
                0
                if low is None
                else int(np.searchsorted(keys, low, "left" if inclusive[0] else "right"))
            )
            hi = (
                len(keys)
                if high is None
                else int(np.searchsorted(keys, high, "right" if inclusive[1] else "left"))
            )
            start, stop = start + lo, start + max(lo, hi)
        return np.sort(self._order[start:stop])


class NumericIndex(SortedIndex):
    """Range lookups over one field."""

    kind = "numeric"

    def __init__(
        self, name: str, type_name: str | None, fields: list[str], params: dict[str, Any]
    ) -> None:
        if len(fields) != 1:
            raise InvalidQueryError(f"a numeric index takes exactly one field, got {fields}")
        super().__init__(name, type_name, fields, params)


class CompositeIndex(SortedIndex):
    """Equality on a prefix of its fields plus a range on the next one."""

    kind = "composite"

    def __init__(
        self, name: str, type_name: str | None, fields: list[str], params: dict[str, Any]
    ) -> None:
        if len(fields) < 2:
            raise InvalidQueryError(f"a composite index takes two or more fields, got {fields}")
        super().__init__(name, type_name, fields, params)


def _sortable(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_timestamp(kind)
    )


def _numpy(column: pa.ChunkedArray) -> npt.NDArray[Any]:
    """Sort keys as numpy: times as int microseconds, strings as fixed-width unicode."""
    if pa.types.is_timestamp(column.type):
        column = pc.cast(column, pa.int64())
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return np.asarray(column.fill_null("").to_numpy(zero_copy_only=False).astype(str))
    if pa.types.is_boolean(column.type):
        return np.asarray(column.fill_null(False).to_numpy(zero_copy_only=False))
    return np.asarray(column.fill_null(0).to_numpy(zero_copy_only=False))
