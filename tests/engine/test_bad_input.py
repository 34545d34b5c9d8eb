"""Bad input gets the specific error from docs/api-contract.md and changes nothing.

Every rejection is checked three ways: the exception class named by the contract, a
readable message, and an unchanged database (count, types, every node, version
vector, conflicts) afterwards.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import pluresdb_lab as pl
from pluresdb_lab import errors

# --------------------------------------------------------------------------- helpers


def state(db: Any) -> dict[str, Any]:
    nodes = db.list(limit=10**9)
    return {
        "count": db.count(),
        "types": db.types(),
        "vv": db.version_vector(),
        "nodes": [
            (
                n.id,
                n.type,
                n.data,
                None if n.vector is None else [float(x) for x in n.vector],
                n.version,
            )
            for n in nodes
        ],
        "by_type": {t: [n.id for n in db.list(type=t, limit=10**9)] for t in db.types()},
        "conflicts": [(c.id, c.node_id, c.field) for c in db.conflicts()],
    }


def assert_rejected(
    db: Any,
    exc: type[BaseException] | tuple[type[BaseException], ...],
    call: Callable[[], Any],
    *mentions: str,
) -> BaseException:
    """``call()`` raises ``exc`` with a readable message and leaves ``db`` unchanged."""
    before = state(db)
    with pytest.raises(exc) as info:
        call()
    message = str(info.value)
    assert message.strip(), f"{type(info.value).__name__} has an empty message"
    assert len(message) >= 10, f"message too terse: {message!r}"
    assert "Traceback" not in message
    for text in mentions:
        assert text in message, f"message {message!r} should mention {text!r}"
    assert state(db) == before, "a rejected call changed the database"
    return info.value


@pytest.fixture
def seeded(db: Any) -> Any:
    db.put("existing", {"keep": 1, "name": "x"}, type="T", vector=[1.0, 2.0, 3.0])
    db.put("other", {"a": 1})
    return db


def test_error_hierarchy() -> None:
    names = [
        "InvalidIdError",
        "InvalidDataError",
        "VectorDimensionError",
        "NodeTooLargeError",
        "ReservedNameError",
        "DatabaseClosedError",
        "DatabaseLockedError",
        "CorruptDatabaseError",
        "ReadOnlyError",
        "NotFoundError",
        "InvalidOpError",
    ]
    for name in names:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.PluresDBError), name
    assert issubclass(errors.PluresDBError, Exception)


# --------------------------------------------------------------------------- ids

BAD_IDS = [
    pytest.param(123, id="int"),
    pytest.param(None, id="none"),
    pytest.param(b"bytes", id="bytes"),
    pytest.param(1.5, id="float"),
    pytest.param(("a",), id="tuple"),
    pytest.param("", id="empty"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("x" * 2000, id="huge"),
    pytest.param("é" * 600, id="huge-utf8"),  # 1200 bytes in UTF-8
]


@pytest.mark.parametrize("bad_id", BAD_IDS)
def test_put_rejects_bad_id(seeded: Any, bad_id: Any) -> None:
    assert_rejected(seeded, errors.InvalidIdError, lambda: seeded.put(bad_id, {"v": 1}))
    assert_rejected(seeded, errors.InvalidIdError, lambda: seeded.put(bad_id, {"v": 1}, type="T"))


@pytest.mark.parametrize("bad_id", BAD_IDS)
def test_put_many_rejects_bad_id(seeded: Any, bad_id: Any) -> None:
    records = [{"id": "fine1", "v": 1}, {"id": bad_id, "v": 2}, {"id": "fine2"}]
    assert_rejected(seeded, errors.InvalidIdError, lambda: seeded.put_many(records))
    assert seeded.get("fine1") is None


@pytest.mark.parametrize("bad_id", BAD_IDS)
def test_link_rejects_bad_id(seeded: Any, bad_id: Any) -> None:
    assert_rejected(seeded, errors.InvalidIdError, lambda: seeded.link(bad_id, "existing", "l"))
    assert_rejected(seeded, errors.InvalidIdError, lambda: seeded.link("existing", bad_id, "l"))


@pytest.mark.parametrize("bad_id", BAD_IDS)
def test_every_id_taking_call_rejects_bad_id(seeded: Any, bad_id: Any) -> None:
    calls: dict[str, Callable[[], Any]] = {
        "get": lambda: seeded.get(bad_id),
        "get_many": lambda: seeded.get_many(["existing", bad_id]),
        "delete": lambda: seeded.delete(bad_id),
        "history": lambda: seeded.history(bad_id),
        "neighbors": lambda: seeded.neighbors(bad_id),
        "restore": lambda: seeded.restore(bad_id, 1),
        "unlink(src)": lambda: seeded.unlink(bad_id, "existing", "l"),
        "unlink(dst)": lambda: seeded.unlink("existing", bad_id, "l"),
    }
    if bad_id is not None:  # id=None means "no filter"
        calls["subscribe(id=)"] = lambda: seeded.subscribe(lambda change: None, id=bad_id)
    failures = []
    for name, call in calls.items():
        before = state(seeded)
        try:
            result = call()
        except errors.InvalidIdError as e:
            if len(str(e)) < 10:
                failures.append(f"{name}: terse message {str(e)!r}")
        except Exception as e:
            failures.append(f"{name}: {type(e).__name__}: {e}")
        else:
            failures.append(f"{name}: returned {result!r} instead of raising InvalidIdError")
        if state(seeded) != before:
            failures.append(f"{name}: database changed")
    assert not failures, failures


# --------------------------------------------------------------------------- data

NON_DICT_DATA = [
    pytest.param(["a", 1], id="list"),
    pytest.param("text", id="str"),
    pytest.param(5, id="int"),
    pytest.param(None, id="none"),
    pytest.param(("a", 1), id="tuple"),
    pytest.param({"a", "b"}, id="set"),
]


@pytest.mark.parametrize("data", NON_DICT_DATA)
def test_put_rejects_non_dict_data(seeded: Any, data: Any) -> None:
    assert_rejected(seeded, errors.InvalidDataError, lambda: seeded.put("new", data))
    assert_rejected(seeded, errors.InvalidDataError, lambda: seeded.put("existing", data))


BAD_FIELD_NAMES = [
    pytest.param({1: "x"}, id="int-key"),
    pytest.param({None: "x"}, id="none-key"),
    pytest.param({("a",): "x"}, id="tuple-key"),
    pytest.param({b"k": "x"}, id="bytes-key"),
    pytest.param({"": "x"}, id="empty-key"),
    pytest.param({"ok": {1: "x"}}, id="nested-int-key"),
]


@pytest.mark.parametrize("data", BAD_FIELD_NAMES)
def test_put_rejects_bad_field_names(seeded: Any, data: dict[Any, Any]) -> None:
    for target in ("new", "existing"):
        assert_rejected(
            seeded,
            errors.InvalidDataError,
            lambda t=target: seeded.put(t, {"keep": 2, **data}),
        )


def test_put_rejects_reserved_field_name(seeded: Any) -> None:
    assert_rejected(
        seeded,
        errors.ReservedNameError,
        lambda: seeded.put("new", {"ok": 1, "_secret": 2}),
        "_secret",
    )
    assert_rejected(
        seeded,
        errors.ReservedNameError,
        lambda: seeded.put("existing", {"keep": 5, "_secret": 2}),
        "_secret",
    )


class Opaque:
    pass


NON_JSON_VALUES = [
    pytest.param({"v": {1, 2}}, id="set"),
    pytest.param({"v": object()}, id="object"),
    pytest.param({"v": Opaque()}, id="custom-object"),
    pytest.param({"v": b"bytes"}, id="bytes"),
    pytest.param({"v": bytearray(b"x")}, id="bytearray"),
    pytest.param({"v": 1 + 2j}, id="complex"),
    pytest.param({"v": [1, {2, 3}]}, id="set-in-list"),
    pytest.param({"v": {"w": b"x"}}, id="bytes-in-dict"),
    pytest.param({"v": {"w": [object()]}}, id="object-deep"),
    pytest.param({"v": float("nan")}, id="nan"),
    pytest.param({"v": float("inf")}, id="inf"),
    pytest.param({"v": float("-inf")}, id="-inf"),
    pytest.param({"v": np.float64("nan")}, id="numpy-nan"),
    pytest.param({"v": [1.0, math.nan]}, id="nan-in-list"),
    pytest.param({"v": {"w": {"x": math.inf}}}, id="inf-deep"),
    pytest.param({"v": [[-math.inf]]}, id="-inf-in-nested-list"),
]


@pytest.mark.parametrize("data", NON_JSON_VALUES)
def test_put_rejects_non_json_values(seeded: Any, data: dict[str, Any]) -> None:
    for target in ("new", "existing"):
        assert_rejected(
            seeded,
            errors.InvalidDataError,
            lambda t=target: seeded.put(t, {"keep": 2, **data}),
        )


@pytest.mark.parametrize("data", NON_JSON_VALUES[:3] + NON_JSON_VALUES[9:12])
def test_put_many_rejects_non_json_values_and_writes_nothing(
    seeded: Any, data: dict[str, Any]
) -> None:
    records = [{"id": "fine", "v": 1}, {"id": "bad", **data}, {"id": "existing", "keep": 9}]
    assert_rejected(seeded, errors.InvalidDataError, lambda: seeded.put_many(records))
    assert seeded.get("fine") is None
    assert seeded.get("existing").data == {"keep": 1, "name": "x"}


@pytest.mark.parametrize("data", NON_DICT_DATA[:3] + NON_DICT_DATA[4:])
def test_link_rejects_non_dict_edge_data(seeded: Any, data: Any) -> None:
    assert_rejected(
        seeded,
        errors.InvalidDataError,
        lambda: seeded.link("existing", "other", "rel", data),
    )


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(2**70, id="2**70"),
        pytest.param(-(2**63) - 1, id="below-int64"),
        pytest.param([1, 2**80], id="in-list"),
        pytest.param({"deep": -(2**90)}, id="in-dict"),
    ],
)
def test_integers_beyond_64_bits(seeded: Any, value: Any) -> None:
    """JSON has no integer limit: store it exactly or refuse it with InvalidDataError."""
    before = state(seeded)
    refused: errors.InvalidDataError | None = None
    try:
        node = seeded.put("bigint", {"v": value})
    except errors.InvalidDataError as e:
        refused = e
    if refused is None:
        assert node.data == {"v": value}
        assert seeded.get("bigint").data == {"v": value}
    else:
        assert len(str(refused)) >= 10
        assert state(seeded) == before


def test_link_rejects_non_json_edge_data(seeded: Any) -> None:
    assert_rejected(
        seeded,
        errors.InvalidDataError,
        lambda: seeded.link("existing", "other", "rel", {"w": math.nan}),
    )


# --------------------------------------------------------------------------- size


def test_oversized_node_default_limit(seeded: Any) -> None:
    big = "x" * ((1 << 20) + 100)
    assert_rejected(seeded, errors.NodeTooLargeError, lambda: seeded.put("big", {"s": big}))
    assert_rejected(seeded, errors.NodeTooLargeError, lambda: seeded.put("existing", {"s": big}))
    records = [{"id": "small", "s": "x"}, {"id": "big", "s": big}]
    assert_rejected(seeded, errors.NodeTooLargeError, lambda: seeded.put_many(records))


@pytest.mark.parametrize("backend_kind", ["memory", "disk"])
def test_oversized_node_custom_limit_and_merge_growth(
    open_db: Any, tmp_path: Path, backend_kind: str
) -> None:
    target = ":memory:" if backend_kind == "memory" else tmp_path / "small"
    d = open_db(target, max_node_bytes=1000)
    d.put("a", {"s": "x" * 600})
    assert_rejected(d, errors.NodeTooLargeError, lambda: d.put("b", {"s": "x" * 2000}))
    # each patch is small, but the merged node would be over the limit
    assert_rejected(d, errors.NodeTooLargeError, lambda: d.put("a", {"t": "y" * 600}))
    assert d.get("a").data == {"s": "x" * 600}
    # shrinking and then growing within the limit still works
    assert d.put("a", {"s": None, "t": "y" * 600}).data == {"t": "y" * 600}


# --------------------------------------------------------------------------- vectors


def test_wrong_vector_dimension(seeded: Any) -> None:
    exc = assert_rejected(
        seeded,
        errors.VectorDimensionError,
        lambda: seeded.put("v2", {}, type="T", vector=[1.0, 2.0]),
    )
    assert "3" in str(exc)
    assert "2" in str(exc)
    assert_rejected(
        seeded,
        errors.VectorDimensionError,
        lambda: seeded.put("existing", {"keep": 2}, type="T", vector=[1.0, 2.0, 3.0, 4.0]),
    )
    records = [
        {"id": "ok", "e": [1.0, 1.0, 1.0]},
        {"id": "wrong", "e": [1.0, 1.0]},
    ]
    assert_rejected(
        seeded,
        errors.VectorDimensionError,
        lambda: seeded.put_many(records, type="T", vector_field="e"),
    )
    # another type is another vector space: its first vector fixes its own dimension
    assert seeded.put("u1", {}, type="U", vector=[1.0, 2.0]).vector.shape == (2,)
    assert_rejected(
        seeded,
        errors.VectorDimensionError,
        lambda: seeded.put("u2", {}, type="U", vector=[1.0, 2.0, 3.0]),
    )


def test_rejected_first_vector_does_not_fix_the_dimension(seeded: Any) -> None:
    records = [
        {"id": "g1", "e": [1.0, 2.0, 3.0, 4.0]},
        {"id": "g1", "e": [1.0, 2.0, 3.0, 4.0]},  # duplicate id -> whole batch rejected
    ]
    assert_rejected(
        seeded,
        errors.InvalidDataError,
        lambda: seeded.put_many(records, type="G", vector_field="e"),
    )
    assert_rejected(
        seeded,
        errors.InvalidDataError,
        lambda: seeded.put("h1", {}, type="H", vector=["a", "b"]),
    )
    # neither rejected call fixed a dimension for G or H
    assert seeded.put("g2", {}, type="G", vector=[1.0, 2.0]).vector.shape == (2,)
    assert seeded.put("h2", {}, type="H", vector=[1.0, 2.0, 3.0, 4.0, 5.0]).vector.shape == (5,)


BAD_VECTORS = [
    pytest.param(["a", "b", "c"], errors.InvalidDataError, id="strings"),
    pytest.param([1.0, None, 2.0], errors.InvalidDataError, id="none-inside"),
    pytest.param("abc", errors.InvalidDataError, id="a-string"),
    pytest.param({"x": 1}, errors.InvalidDataError, id="dict"),
    pytest.param([1.0, math.nan, 2.0], errors.InvalidDataError, id="nan"),
    pytest.param(np.array([1.0, np.inf, 2.0]), errors.InvalidDataError, id="numpy-inf"),
    pytest.param([1.0, -math.inf, 2.0], errors.InvalidDataError, id="-inf"),
    pytest.param(
        [[1.0, 2.0, 3.0]],
        (errors.InvalidDataError, errors.VectorDimensionError),
        id="2d",
    ),
]


@pytest.mark.parametrize(("vector", "exc"), BAD_VECTORS)
def test_bad_vectors(seeded: Any, vector: Any, exc: Any) -> None:
    assert_rejected(seeded, exc, lambda: seeded.put("nv", {}, type="T", vector=vector))
    assert_rejected(seeded, exc, lambda: seeded.put("existing", {}, vector=vector))


# --------------------------------------------------------------------------- reserved types


@pytest.mark.parametrize("reserved", ["_x", "_", "_custom_type"])
def test_reserved_type_names(seeded: Any, reserved: str) -> None:
    assert_rejected(
        seeded,
        errors.ReservedNameError,
        lambda: seeded.put("r", {"v": 1}, type=reserved),
        reserved,
    )
    assert_rejected(
        seeded,
        errors.ReservedNameError,
        lambda: seeded.put("existing", {"v": 1}, type=reserved),
    )
    assert_rejected(
        seeded,
        errors.ReservedNameError,
        lambda: seeded.put_many([{"id": "r1"}, {"id": "r2"}], type=reserved),
    )


# --------------------------------------------------------------------------- put_many batches


def test_put_many_duplicate_ids_list(seeded: Any) -> None:
    records = [{"id": "n1", "v": 1}, {"id": "n2", "v": 2}, {"id": "n1", "v": 3}]
    assert_rejected(seeded, errors.InvalidDataError, lambda: seeded.put_many(records), "n1")
    assert seeded.get("n2") is None


def test_put_many_duplicate_ids_dataframe(seeded: Any) -> None:
    df = pd.DataFrame({"id": ["d1", "d2", "d1"], "v": [1, 2, 3]})
    assert_rejected(seeded, errors.InvalidDataError, lambda: seeded.put_many(df), "d1")


def test_put_many_duplicate_ids_arrow(seeded: Any) -> None:
    import pyarrow as pa

    table = pa.table({"key": ["e1", "e1"], "v": [1, 2]})
    assert_rejected(
        seeded, errors.InvalidDataError, lambda: seeded.put_many(table, id_field="key"), "e1"
    )


MISSING_ID_BATCHES = [
    pytest.param([{"id": "m1", "v": 1}, {"v": 2}], id="key-absent"),
    pytest.param([{"id": "m1", "v": 1}, {"id": None, "v": 2}], id="id-none"),
    pytest.param([{"key": "m1", "v": 1}], id="wrong-id-field"),
]


@pytest.mark.parametrize("records", MISSING_ID_BATCHES)
def test_put_many_missing_id(seeded: Any, records: list[dict[str, Any]]) -> None:
    assert_rejected(
        seeded,
        (errors.InvalidIdError, errors.InvalidDataError),
        lambda: seeded.put_many(records),
    )
    assert seeded.get("m1") is None


def test_put_many_missing_id_dataframe(seeded: Any) -> None:
    df = pd.DataFrame({"id": ["m1", None], "v": [1, 2]})
    assert_rejected(
        seeded, (errors.InvalidIdError, errors.InvalidDataError), lambda: seeded.put_many(df)
    )
    df2 = pd.DataFrame({"name": ["a", "b"]})
    assert_rejected(
        seeded, (errors.InvalidIdError, errors.InvalidDataError), lambda: seeded.put_many(df2)
    )


@pytest.mark.parametrize(
    "records",
    [
        pytest.param([{"id": "ok"}, "not-a-dict"], id="str-record"),
        pytest.param([{"id": "ok"}, ["id", "x"]], id="list-record"),
        pytest.param([{"id": "ok"}, None], id="none-record"),
        pytest.param("not-records", id="str"),
        pytest.param(42, id="int"),
    ],
)
def test_put_many_rejects_non_records(seeded: Any, records: Any) -> None:
    assert_rejected(seeded, errors.InvalidDataError, lambda: seeded.put_many(records))


def test_put_many_reserved_field_writes_nothing(seeded: Any) -> None:
    records = [{"id": "ok", "v": 1}, {"id": "bad", "_hidden": 1}]
    assert_rejected(seeded, errors.ReservedNameError, lambda: seeded.put_many(records), "_hidden")


# --------------------------------------------------------------------------- apply_ops


@pytest.fixture
def good_ops(open_db: Any) -> list[dict[str, Any]]:
    source = open_db(":memory:")
    source.put("s1", {"a": 1, "b": "x"}, type="S", vector=[1.0, 2.0])
    source.put("s2", {"c": [1, 2]})
    source.put("s1", {"a": None})
    ops = source.ops_since(None)
    assert len(ops) == 3
    return ops


@pytest.mark.parametrize("bad", [5, "op", None, ["list"], 1.5, b"bytes"])
def test_apply_ops_rejects_non_dict_op(
    seeded: Any, good_ops: list[dict[str, Any]], bad: Any
) -> None:
    batch = [copy.deepcopy(good_ops[0]), bad, copy.deepcopy(good_ops[1])]
    assert_rejected(seeded, errors.InvalidOpError, lambda: seeded.apply_ops(batch))
    assert seeded.get("s1") is None
    assert seeded.get("s2") is None


def test_apply_ops_rejects_non_list(seeded: Any) -> None:
    assert_rejected(seeded, errors.InvalidOpError, lambda: seeded.apply_ops(5))
    assert_rejected(seeded, errors.InvalidOpError, lambda: seeded.apply_ops({"not": "a list"}))


def test_apply_ops_rejects_op_with_missing_key(seeded: Any, good_ops: list[dict[str, Any]]) -> None:
    failures = []
    for key, value in good_ops[1].items():
        if value is None:
            continue  # an optional field may legitimately be left out
        op = copy.deepcopy(good_ops[1])
        del op[key]
        batch = [copy.deepcopy(good_ops[0]), op]
        before = state(seeded)
        try:
            seeded.apply_ops(batch)
        except errors.InvalidOpError as e:
            if len(str(e)) < 10:
                failures.append(f"{key}: terse message {str(e)!r}")
        except Exception as e:
            failures.append(f"{key}: {type(e).__name__}: {e}")
        else:
            failures.append(f"{key}: accepted")
        if state(seeded) != before:
            failures.append(f"{key}: database changed")
            break
    assert not failures, failures
    assert seeded.get("s1") is None


def _wrong(value: Any) -> Any:
    if isinstance(value, bool):
        return "yes"
    if isinstance(value, int | float):
        return "not-a-number"
    if isinstance(value, str | bytes):
        return 12345
    if isinstance(value, list | tuple):
        return "not-a-list"
    if isinstance(value, dict):
        return ["not", "a", "dict"]
    return object()


def test_apply_ops_rejects_op_with_wrong_types(seeded: Any, good_ops: list[dict[str, Any]]) -> None:
    failures = []
    checked = 0
    for key, value in good_ops[0].items():
        if value is None:
            continue  # an optional field; any replacement might be legitimate
        checked += 1
        op = copy.deepcopy(good_ops[0])
        op[key] = _wrong(value)
        batch = [copy.deepcopy(good_ops[1]), op]
        before = state(seeded)
        try:
            seeded.apply_ops(batch)
        except errors.InvalidOpError:
            pass
        except Exception as e:
            failures.append(f"{key}={op[key]!r}: {type(e).__name__}: {e}")
        else:
            failures.append(f"{key}={op[key]!r}: accepted")
        if state(seeded) != before:
            failures.append(f"{key}: database changed")
            break
    assert checked >= 3
    assert not failures, failures
    assert seeded.get("s2") is None


def test_apply_ops_valid_after_rejections(seeded: Any, good_ops: list[dict[str, Any]]) -> None:
    bad = copy.deepcopy(good_ops[2])
    first_key = next(iter(bad))
    del bad[first_key]
    assert_rejected(seeded, errors.InvalidOpError, lambda: seeded.apply_ops([*good_ops, bad]))
    # the same valid ops alone are then applied in full
    assert seeded.apply_ops(copy.deepcopy(good_ops)) == 3
    assert seeded.get("s1").data == {"b": "x"}


# --------------------------------------------------------------------------- deep documents


def nested(depth: int) -> Any:
    """A value whose lists and objects nest `depth` levels (a node's data adds one)."""
    value: Any = "leaf"
    for level in range(depth):
        value = {"k": value} if level % 2 else [value]
    return value


def test_data_nested_to_the_limit_is_stored(seeded: Any) -> None:
    seeded.put("deep", {"v": nested(99)})  # 100 levels with the data object itself
    assert seeded.get("deep").data == {"v": nested(99)}


@pytest.mark.parametrize("depth", [100, 989])
def test_put_rejects_data_nested_too_deeply(seeded: Any, depth: int) -> None:
    assert_rejected(
        seeded, errors.InvalidDataError, lambda: seeded.put("deep", {"v": nested(depth)}), "100"
    )


def test_put_many_rejects_data_nested_too_deeply(seeded: Any) -> None:
    records = [{"id": "fine", "v": 1}, {"id": "deep", "v": nested(300)}]
    assert_rejected(seeded, errors.InvalidDataError, lambda: seeded.put_many(records), "100")


def test_put_many_rejects_arrow_columns_nested_too_deeply(seeded: Any) -> None:
    kind: pa.DataType = pa.int64()
    value: Any = 1
    for _ in range(100):  # with the row object: 101 levels
        kind, value = pa.list_(kind), [value]
    table = pa.table({"id": ["deep"], "v": pa.array([value], type=kind)})
    assert_rejected(seeded, errors.InvalidDataError, lambda: seeded.put_many(table), "nest")


def test_apply_ops_rejects_ops_nested_too_deeply(seeded: Any, open_db: Any) -> None:
    """Found by review: a peer's apply_ops raised RecursionError on a document nested
    989 deep, so the link closed and redialled forever and nothing after it arrived."""
    source = open_db(":memory:")
    source.put("before", {"v": 1})
    source.put("deep", {"v": nested(50)})
    source.put("after", {"v": 1})
    ops = source.ops_since(None)
    ops[1]["p"] = {"v": nested(989)}
    assert_rejected(seeded, errors.InvalidOpError, lambda: seeded.apply_ops(ops), "100")
    assert seeded.get("before") is None


def test_apply_ops_rejects_batch_rows_nested_too_deeply(seeded: Any, open_db: Any) -> None:
    source = open_db(":memory:")
    source.put_many([{"id": "row", "v": 1}])
    [op] = source.ops_since(None)
    rows = pa.ipc.open_stream(op["r"]).read_all()
    deep = pa.array([json.dumps({"v": nested(150)})], pa.string())
    rows = rows.set_column(rows.schema.get_field_index("data"), "data", deep)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, rows.schema) as writer:
        writer.write_table(rows)
    op["r"] = sink.getvalue().to_pybytes()
    assert_rejected(seeded, errors.InvalidOpError, lambda: seeded.apply_ops([op]), "100")


# --------------------------------------------------------------------------- not found


def test_restore_unknown(seeded: Any) -> None:
    assert_rejected(seeded, errors.NotFoundError, lambda: seeded.restore("nope", 1), "nope")
    assert_rejected(seeded, errors.NotFoundError, lambda: seeded.restore("existing", 99), "99")
    assert_rejected(seeded, errors.NotFoundError, lambda: seeded.restore("existing", 0))
    assert_rejected(seeded, errors.NotFoundError, lambda: seeded.restore("existing", -1))


@pytest.mark.parametrize("version", ["1", True, 1.0, None])
def test_restore_needs_an_integer_version(seeded: Any, version: Any) -> None:
    """Found by review: restore("existing", True) restored version 1."""
    assert_rejected(
        seeded, errors.InvalidDataError, lambda: seeded.restore("existing", version), "integer"
    )


def test_resolve_unknown_conflict(seeded: Any) -> None:
    assert_rejected(
        seeded,
        errors.NotFoundError,
        lambda: seeded.resolve_conflict("no-such-conflict"),
        "no-such-conflict",
    )


def test_resolve_conflict_bad_choice(seeded: Any, open_db: Any) -> None:
    peer = open_db(":memory:")
    peer.put("c", {"f": 1})
    seeded.put("c", {"f": 2})
    seeded.apply_ops(peer.ops_since(seeded.version_vector()))
    (conflict,) = seeded.conflicts()
    assert_rejected(
        seeded,
        (ValueError, errors.PluresDBError),
        lambda: seeded.resolve_conflict(conflict.id, choose="neither"),
        "winner",
        "loser",
    )


def test_neighbors_bad_direction(seeded: Any) -> None:
    assert_rejected(
        seeded,
        (ValueError, errors.PluresDBError),
        lambda: seeded.neighbors("existing", direction="sideways"),
        "both",
    )


# --------------------------------------------------------------------------- closed database


CLOSED_CALLS: list[tuple[str, Callable[[Any], Any]]] = [
    ("put", lambda d: d.put("z", {"v": 1})),
    ("put_many", lambda d: d.put_many([{"id": "z"}])),
    ("get", lambda d: d.get("existing")),
    ("get_many", lambda d: d.get_many(["existing"])),
    ("delete", lambda d: d.delete("existing")),
    ("count", lambda d: d.count()),
    ("list", lambda d: d.list()),
    ("types", lambda d: d.types()),
    ("link", lambda d: d.link("existing", "other", "rel")),
    ("unlink", lambda d: d.unlink("existing", "other", "rel")),
    ("neighbors", lambda d: d.neighbors("existing")),
    ("subscribe", lambda d: d.subscribe(lambda change: None)),
    ("history", lambda d: d.history("existing")),
    ("restore", lambda d: d.restore("existing", 1)),
    ("as_of", lambda d: d.as_of(0)),
    ("to_arrow", lambda d: d.to_arrow()),
    ("to_pandas", lambda d: d.to_pandas("T")),
    ("sql", lambda d: d.sql("SELECT 1")),
    ("version_vector", lambda d: d.version_vector()),
    ("ops_since", lambda d: d.ops_since(None)),
    ("apply_ops", lambda d: d.apply_ops([])),
    ("conflicts", lambda d: d.conflicts()),
    ("resolve_conflict", lambda d: d.resolve_conflict("x")),
    ("flush", lambda d: d.flush()),
    ("compact", lambda d: d.compact()),
]


def test_closed_database_rejects_every_call(seeded: Any, open_db: Any) -> None:
    path = seeded.path
    seeded.close()
    assert seeded.closed is True
    failures = []
    for name, call in CLOSED_CALLS:
        try:
            call(seeded)
        except errors.DatabaseClosedError as e:
            if len(str(e)) < 10:
                failures.append(f"{name}: terse message {str(e)!r}")
        except Exception as e:
            failures.append(f"{name}: {type(e).__name__}: {e}")
        else:
            failures.append(f"{name}: no error")
    assert not failures, failures

    if path is not None:
        # closing released the folder and nothing was written after close
        again = open_db(path)
        assert again.get("existing").data == {"keep": 1, "name": "x"}
        assert again.get("z") is None
        assert again.count() == 2


# --------------------------------------------------------------------------- connect options


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"max_node_bytes": -1}, id="max_node_bytes-negative"),
        pytest.param({"max_node_bytes": 0}, id="max_node_bytes-zero"),
        pytest.param({"max_node_bytes": "1MB"}, id="max_node_bytes-str"),
        pytest.param({"retention": -5}, id="retention-negative"),
        pytest.param({"retention": "forever"}, id="retention-str"),
    ],
)
def test_bad_connect_options(tmp_path: Path, options: dict[str, Any]) -> None:
    target = tmp_path / "never"
    with pytest.raises((ValueError, TypeError, errors.PluresDBError)) as info:
        pl.connect(target, **options)
    (name,) = options
    assert name in str(info.value), str(info.value)
    assert not target.exists(), "a rejected connect created the folder"


@pytest.mark.parametrize("kind", ["memory", "disk"])
def test_bad_fsync_policy(tmp_path: Path, kind: str) -> None:
    target = ":memory:" if kind == "memory" else tmp_path / "never"
    with pytest.raises((ValueError, errors.PluresDBError)) as info:
        pl.connect(target, fsync="sometimes")
    message = str(info.value)
    for allowed in ("always", "interval", "off"):
        assert allowed in message, message
    assert "sometimes" in message
    if kind == "disk":
        assert not (tmp_path / "never").exists(), "a rejected connect created the folder"


@pytest.mark.parametrize(
    "call",
    [
        lambda db: db.count(5),
        lambda db: db.count(""),
        lambda db: db.list(5),
        lambda db: db.list(limit="10"),
        lambda db: db.list(offset=1.5),
        lambda db: db.list(limit=True),
        lambda db: db.to_arrow(["airport"]),
    ],
    ids=[
        "count-int",
        "count-empty",
        "list-int-type",
        "list-str-limit",
        "list-float-offset",
        "list-bool-limit",
        "to_arrow-list",
    ],
)
def test_reads_reject_wrong_argument_types(seeded: Any, call: Any) -> None:
    before = state(seeded)
    with pytest.raises(errors.InvalidDataError):
        call(seeded)
    assert state(seeded) == before
