"""Import and export (issue #3): round trips for every format, field mapping, generated
ids, all-or-nothing imports with clear errors, progress and cancel, query exports."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

import pluresdb_lab as pl
from pluresdb_lab import errors

FORMATS = ["csv", "json", "ndjson", "parquet", "arrow"]

TRICKY = ["plain", 'with "quotes"', "a, comma", "line\nbreak", "café 日本", "  spaces  "]


def typed_records(n: int = 30) -> list[dict[str, Any]]:
    return [
        {
            "id": f"item-{i:03d}",
            "count": i * 7 - 50,
            "ratio": i / 8 + 0.125,
            "label": f"{TRICKY[i % len(TRICKY)]} #{i}",
            "active": i % 3 == 0,
        }
        for i in range(n)
    ]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Any]:
    database = pl.connect(tmp_path / "db")
    try:
        yield database
    finally:
        database.close()


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Any]:
    """A second, empty database to import into."""
    database = pl.connect(tmp_path / "target")
    try:
        yield database
    finally:
        database.close()


def typed_state(db: Any, type_name: str) -> pd.DataFrame:
    frame = db.to_pandas(type_name).drop(columns=["time"])
    frame = frame[sorted(frame.columns)]
    return frame.sort_values("id").reset_index(drop=True)


def all_nodes(db: Any) -> dict[str, tuple[str | None, dict[str, Any]]]:
    return {n.id: (n.type, n.data) for n in db.list(limit=10**6)}


# -- round trips ----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_import_round_trip_of_one_type(
    db: Any, target: Any, tmp_path: Path, fmt: str
) -> None:
    db.put_many(typed_records(), type="Item")
    db.put("other", {"count": 1}, type="Other")  # not part of the export
    path = tmp_path / f"items.{fmt}"

    assert db.export(path, type="Item") == 30
    assert target.import_file(path, type="Item", id_field="id") == 30

    assert target.types() == {"Item": 30}
    expected = typed_state(db, "Item")
    got = typed_state(target, "Item")
    pd.testing.assert_frame_equal(got, expected)  # CSV carries all four types
    for record in typed_records():
        node = target.get(record["id"])
        assert node.type == "Item"
        assert node.data == {k: v for k, v in record.items() if k != "id"}
        assert type(node.data["count"]) is int
        assert type(node.data["ratio"]) is float
        assert type(node.data["active"]) is bool


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_of_one_type_writes_id_and_its_fields(db: Any, tmp_path: Path, fmt: str) -> None:
    db.put_many(typed_records(5), type="Item")
    db.put("other", {"elsewhere": 1}, type="Other")
    path = tmp_path / f"items.{fmt}"
    db.export(path, type="Item")
    table = read_back(path, fmt)
    assert sorted(table.column_names) == ["active", "count", "id", "label", "ratio"]
    assert sorted(table.column("id").to_pylist()) == [f"item-{i:03d}" for i in range(5)]


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_import_round_trip_of_every_type(
    db: Any, target: Any, tmp_path: Path, fmt: str
) -> None:
    db.put_many(typed_records(12), type="Item")
    db.put_many(
        [{"id": f"city-{i}", "name": f"City {i}", "pop": i * 1000} for i in range(5)], type="City"
    )
    db.put("untyped", {"name": "no type", "count": 3})
    path = tmp_path / f"everything.{fmt}"

    assert db.export(path) == 18
    table = read_back(path, fmt)
    assert "_type" in table.column_names
    assert target.import_file(path, id_field="id") == 18

    assert target.types() == db.types()
    assert all_nodes(target) == all_nodes(db)


@pytest.mark.parametrize("fmt", FORMATS)
def test_missing_fields_stay_missing_after_a_round_trip(
    db: Any, target: Any, tmp_path: Path, fmt: str
) -> None:
    """Nodes of one type need not share fields (airports without a city, say): an
    absent field must not come back as an empty string, zero or null."""
    db.put("full", {"city": "Oslo", "pop": 700000, "note": ""}, type="Place")
    db.put("no-city", {"pop": 5, "note": "x"}, type="Place")
    db.put("no-pop", {"city": "Bergen", "note": "y"}, type="Place")
    path = tmp_path / f"places.{fmt}"
    db.export(path, type="Place")
    target.import_file(path, type="Place", id_field="id")
    assert all_nodes(target) == all_nodes(db)


def read_back(path: Path, fmt: str) -> pa.Table:
    if fmt == "csv":
        return pa_csv.read_csv(path)
    if fmt == "json":
        return pa.Table.from_pylist(json.loads(path.read_text("utf-8")))
    if fmt == "ndjson":
        lines = path.read_text("utf-8").splitlines()
        return pa.Table.from_pylist([json.loads(line) for line in lines if line.strip()])
    if fmt == "parquet":
        return pq.read_table(path)
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_file(source).read_all()


def test_export_with_a_query_exports_only_its_rows(db: Any, target: Any, tmp_path: Path) -> None:
    db.put_many(typed_records(), type="Item")
    path = tmp_path / "selected.parquet"
    n = db.export(path, query="SELECT id, count, label FROM Item WHERE count >= 0 AND active")
    expected = [r for r in typed_records() if r["count"] >= 0 and r["active"]]
    assert n == len(expected) > 0
    table = pq.read_table(path)
    assert table.column_names == ["id", "count", "label"]
    assert sorted(table.to_pylist(), key=lambda r: r["id"]) == [
        {"id": r["id"], "count": r["count"], "label": r["label"]} for r in expected
    ]
    target.import_file(path, type="Item", id_field="id")
    assert target.count() == len(expected)
    assert target.get(expected[0]["id"]).data == {
        "count": expected[0]["count"],
        "label": expected[0]["label"],
    }


def test_export_with_a_query_to_csv(db: Any, tmp_path: Path) -> None:
    db.put_many(typed_records(), type="Item")
    path = tmp_path / "few.csv"
    assert db.export(path, query="SELECT id FROM Item ORDER BY id LIMIT 3") == 3
    assert path.read_text("utf-8").split() == ['"id"', '"item-000"', '"item-001"', '"item-002"']


def test_export_leaves_no_temporary_files(db: Any, tmp_path: Path) -> None:
    db.put_many(typed_records(), type="Item")
    out = tmp_path / "out"
    out.mkdir()
    for fmt in FORMATS:
        db.export(out / f"items.{fmt}", type="Item")
    assert sorted(p.name for p in out.iterdir()) == sorted(f"items.{fmt}" for fmt in FORMATS)


def test_export_into_a_missing_folder_is_a_clear_error(db: Any, tmp_path: Path) -> None:
    """Found by review: over REST this was a 500 (an unmapped OSError)."""
    db.put_many(typed_records(3), type="Item")
    with pytest.raises(errors.InvalidDataError, match="does not exist"):
        db.export(tmp_path / "missing" / "items.csv", type="Item")
    assert not (tmp_path / "missing").exists()


def test_export_to_an_unknown_extension_needs_a_format(db: Any, tmp_path: Path) -> None:
    db.put_many(typed_records(3), type="Item")
    with pytest.raises(errors.InvalidDataError, match="format"):
        db.export(tmp_path / "items.txt", type="Item")
    assert not (tmp_path / "items.txt").exists()
    assert db.export(tmp_path / "items.txt", "ndjson", type="Item") == 3
    assert len((tmp_path / "items.txt").read_text("utf-8").splitlines()) == 3


# -- mapping and ids ------------------------------------------------------------------


def test_import_with_mapping_renames_and_skips(target: Any, tmp_path: Path) -> None:
    path = tmp_path / "towns.csv"
    path.write_text("code,name,population,internal\nA1,Alpha,10,x\nB2,Beta,20,y\n", "utf-8")
    n = target.import_file(
        path, type="Town", id_field="code", mapping={"name": "title", "internal": None}
    )
    assert n == 2
    assert target.get("A1").data == {"title": "Alpha", "population": 10}
    assert target.get("B2").data == {"title": "Beta", "population": 20}
    assert target.types() == {"Town": 2}


def test_import_generates_ids_when_no_id_field(target: Any, tmp_path: Path) -> None:
    path = tmp_path / "rows.ndjson"
    path.write_text("".join(json.dumps({"v": i, "s": f"r{i}"}) + "\n" for i in range(50)), "utf-8")
    assert target.import_file(path, type="Row") == 50
    nodes = target.list("Row", limit=100)
    assert len({n.id for n in nodes}) == 50
    assert all(n.id for n in nodes)
    assert sorted(n.data["v"] for n in nodes) == list(range(50))
    assert all(set(n.data) == {"v", "s"} for n in nodes)
    # importing the same file again makes 50 new nodes
    assert target.import_file(path, type="Row") == 50
    assert target.count("Row") == 100


def test_import_generated_ids_with_an_id_column_in_the_file(target: Any, tmp_path: Path) -> None:
    """The file has an `id` column but no id_field is given: ids are generated. Either
    that column is kept as a field, or a clear error says so; never a raw KeyError."""
    path = tmp_path / "has-id.csv"
    path.write_text("id,v\na,1\nb,2\n", "utf-8")
    outcome: int | errors.PluresDBError
    try:
        outcome = target.import_file(path)
    except errors.InvalidDataError as exc:
        outcome = exc
    if isinstance(outcome, errors.PluresDBError):
        assert path.name in str(outcome)
        assert target.count() == 0
    else:
        assert outcome == 2
        assert target.count() == 2
        assert {node.id for node in target.list()}.isdisjoint({"a", "b"})


def test_import_updates_existing_nodes_by_id(db: Any, tmp_path: Path) -> None:
    db.put("A1", {"title": "old", "keep": True}, type="Town")
    path = tmp_path / "towns.json"
    path.write_text(json.dumps([{"code": "A1", "title": "new"}, {"code": "C3", "title": "c"}]))
    assert db.import_file(path, type="Town", id_field="code") == 2
    assert db.get("A1").data == {"title": "new", "keep": True}  # merge-patch, like put
    assert db.get("A1").version == 2
    assert db.get("C3").data == {"title": "c"}


def test_import_reads_a_large_file_in_batches(target: Any, tmp_path: Path) -> None:
    rows = 150_000  # more than one read batch
    pq.write_table(
        pa.table({"key": [f"k{i:06d}" for i in range(rows)], "v": list(range(rows))}),
        tmp_path / "big.parquet",
    )
    calls: list[tuple[int, int]] = []
    n = target.import_file(
        tmp_path / "big.parquet",
        type="Big",
        id_field="key",
        progress=lambda d, t: calls.append((d, t)),
    )
    assert n == rows == target.count("Big")
    assert target.get("k149999").data == {"v": 149999}
    assert len(calls) >= 3
    dones = [d for d, _ in calls]
    assert dones == sorted(dones)
    assert {t for _, t in calls} == {rows}
    assert dones[-1] == rows


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_progress_of_text_formats_counts_bytes(
    db: Any, target: Any, tmp_path: Path, fmt: str
) -> None:
    db.put_many(typed_records(200), type="Item")
    path = tmp_path / f"items.{fmt}"
    db.export(path, type="Item")
    calls: list[tuple[int, int]] = []
    target.import_file(path, type="Item", id_field="id", progress=lambda d, t: calls.append((d, t)))
    dones = [d for d, _ in calls]
    assert calls
    assert dones == sorted(dones)
    assert calls[-1] == (path.stat().st_size, path.stat().st_size)


@pytest.mark.parametrize("fmt", FORMATS)
def test_cancel_via_progress_writes_nothing(db: Any, target: Any, tmp_path: Path, fmt: str) -> None:
    db.put_many(typed_records(), type="Item")
    path = tmp_path / f"items.{fmt}"
    db.export(path, type="Item")
    target.put("existing", {"v": 1})
    vv = target.version_vector()
    with pytest.raises(errors.OperationCancelled):
        target.import_file(path, type="Item", id_field="id", progress=lambda d, t: False)
    assert target.count() == 1
    assert target.version_vector() == vv
    assert target.get("item-000") is None


# -- bad input: a clear error, nothing written ----------------------------------------


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def truncated_parquet(path: Path) -> Path:
    full = path.with_name("full.parquet")
    pq.write_table(pa.table({"id": [f"n{i}" for i in range(2000)], "v": list(range(2000))}), full)
    blob = full.read_bytes()
    full.unlink()
    return write(path, blob[: len(blob) * 2 // 3])


ROW = r"\b(row|line|record)s? \(?[0-9]"


BAD_FILES: dict[str, tuple[Any, dict[str, Any], type[Exception], str | None]] = {
    # name: (content or builder, import kwargs, error class, regex the message must match
    #        besides the file name: the row, where the format numbers rows)
    "ragged.csv": (
        "id,a,b\nn1,1,2\nn2,3,4\nn3,5\nn4,6,7\n",
        {"id_field": "id"},
        errors.InvalidDataError,
        r"\b(row 2|row 3|line 4)\b",
    ),
    "unterminated.json": (
        '[{"id": "n1", "v": 1}, {"id": "n2", "v": 2}',
        {"id_field": "id"},
        errors.InvalidDataError,
        None,
    ),
    "syntax.json": (
        '[{"id": "n1", "v": 1}, {"id": "n2", "v": 2,}, {"id": "n3", "v": 3}]',
        {"id_field": "id"},
        errors.InvalidDataError,
        None,
    ),
    "object.json": ('{"id": "n1", "v": 1}', {"id_field": "id"}, errors.InvalidDataError, None),
    "badline.ndjson": (
        '{"id": "n1", "v": 1}\n{"id": "n2", "v": 2}\n{"id": "n3", v: 3}\n{"id": "n4", "v": 4}\n',
        {"id_field": "id"},
        errors.InvalidDataError,
        r"\b(row 2|row 3|line 3)\b",
    ),
    "truncated.parquet": (truncated_parquet, {"id_field": "id"}, errors.InvalidDataError, None),
    "garbage.arrow": (
        b"ARROW1\x00\x00" + b"\x07" * 64,
        {"id_field": "id"},
        errors.InvalidDataError,
        None,
    ),
    "latin1.csv": (
        "id,name\nn1,plain\nn2,caf\xe9\n".encode("latin-1"),
        {"id_field": "id"},
        errors.InvalidDataError,
        None,
    ),
    "latin1.ndjson": (
        '{"id": "n1", "name": "plain"}\n{"id": "n2", "name": "caf\xe9"}\n'.encode("latin-1"),
        {"id_field": "id"},
        errors.InvalidDataError,
        None,
    ),
    "latin1.json": (
        '[{"id": "n1", "name": "plain"}, {"id": "n2", "name": "na\xefve"}]'.encode("latin-1"),
        {"id_field": "id"},
        errors.InvalidDataError,
        None,
    ),
    "duplicates.csv": (
        "id,v\nn1,1\nn2,2\nn1,3\n",
        {"id_field": "id"},
        errors.InvalidDataError,
        r"'n1'",
    ),
    "duplicates.ndjson": (
        '{"id": "n1", "v": 1}\n{"id": "n1", "v": 2}\n',
        {"id_field": "id"},
        errors.InvalidDataError,
        r"'n1'",
    ),
    "reserved-column.csv": (
        "id,_secret\nn1,1\n",
        {"id_field": "id"},
        errors.ReservedNameError,
        r"_secret",
    ),
    "empty-id.csv": ("id,v\nn1,1\n,2\n", {"id_field": "id"}, errors.PluresDBError, ROW),
    "infinite.csv": ("id,v\nn1,1.5\nn2,inf\n", {"id_field": "id"}, errors.InvalidDataError, ROW),
    "mixed.ndjson": (
        '{"id": "n1", "v": 1}\n{"id": "n2", "v": "text"}\n',
        {"id_field": "id"},
        errors.InvalidDataError,
        None,
    ),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_file_raises_a_clear_error_and_writes_nothing(
    db: Any, tmp_path: Path, name: str
) -> None:
    content, kwargs, error, pattern = BAD_FILES[name]
    path = tmp_path / name
    if callable(content):
        content(path)
    else:
        write(path, content)
    db.put("existing", {"v": 1}, type="Item")
    count, vv, wal = db.count(), db.version_vector(), db.storage_stats().wal_bytes

    with pytest.raises(error) as caught:
        db.import_file(path, type="Item", **kwargs)
    message = str(caught.value)
    assert name in message, f"the error does not name the file: {message}"
    if pattern is not None:
        assert re.search(pattern, message), f"{pattern!r} not in {message!r}"

    assert db.count() == count
    assert db.version_vector() == vv
    assert db.storage_stats().wal_bytes == wal, "the rejected import reached the WAL"
    assert db.get("n1") is None
    # ... and the database reopens as it was
    folder = db.path
    db.close()
    with pl.connect(folder) as again:
        assert again.count() == count
        assert again.version_vector() == vv
        again.put("after", {"ok": True})


def test_duplicate_ids_across_read_batches(target: Any, tmp_path: Path) -> None:
    rows = 70_000  # the second copy of the id is in the second Parquet batch
    keys = [f"k{i:06d}" for i in range(rows)]
    keys[69_000] = "k000005"
    pq.write_table(pa.table({"key": keys, "v": list(range(rows))}), tmp_path / "dups.parquet")
    with pytest.raises(errors.InvalidDataError) as caught:
        target.import_file(tmp_path / "dups.parquet", id_field="key")
    message = str(caught.value)
    assert "dups.parquet" in message
    assert "k000005" in message
    assert "5" in message
    assert "69000" in message
    assert target.count() == 0
    assert target.version_vector() == {}


@pytest.mark.parametrize(
    ("mapping", "error"),
    [
        ({"v": "_x"}, errors.ReservedNameError),
        ({"v": ""}, errors.InvalidDataError),
        ({"v": "same", "w": "same"}, errors.InvalidDataError),
        ({"nope": "x"}, errors.InvalidDataError),
        (["v"], errors.InvalidDataError),
    ],
)
def test_bad_mapping_raises_and_writes_nothing(
    target: Any, tmp_path: Path, mapping: Any, error: type[Exception]
) -> None:
    path = write(tmp_path / "m.csv", "id,v,w\nn1,1,2\n")
    with pytest.raises(error) as caught:
        target.import_file(path, id_field="id", mapping=mapping)
    if mapping == {"v": "_x"}:
        assert "_x" in str(caught.value)
    assert target.count() == 0
    assert target.version_vector() == {}


def test_unknown_format_and_missing_file(target: Any, tmp_path: Path) -> None:
    path = write(tmp_path / "data.txt", "id,v\nn1,1\n")
    with pytest.raises(errors.InvalidDataError, match=r"data\.txt"):
        target.import_file(path, id_field="id")
    with pytest.raises(errors.InvalidDataError):
        target.import_file(path, "xml", id_field="id")
    assert target.import_file(path, "csv", id_field="id") == 1
    with pytest.raises(errors.NotFoundError):
        target.import_file(tmp_path / "absent.csv", id_field="id")
    with pytest.raises(errors.InvalidDataError):
        target.import_file(path, "csv", type="_hidden", id_field="id")
    assert target.count() == 1


def test_import_into_a_closed_database_raises(tmp_path: Path) -> None:
    path = write(tmp_path / "ok.csv", "id,v\nn1,1\n")
    db = pl.connect(tmp_path / "db")
    db.close()
    with pytest.raises(errors.DatabaseClosedError):
        db.import_file(path, id_field="id")
    with pytest.raises(errors.DatabaseClosedError):
        db.export(tmp_path / "out.csv")


CRASH_AFTER_FAILED_IMPORT = """
import os, sys
import pluresdb_lab as pl
from pluresdb_lab import errors

db = pl.connect(sys.argv[1], fsync="always")
db.put("before", {"v": 1})
try:
    db.import_file(sys.argv[2], id_field="id")
except errors.PluresDBError:
    pass
except Exception as exc:
    print("import raised", type(exc).__name__, flush=True)
db.put("after", {"v": 2})
os._exit(0)  # a crash: no close, no flush
"""


@pytest.mark.parametrize("name", ["latin1.ndjson", "ragged.csv", "duplicates.csv"])
def test_database_reopens_after_a_crash_following_a_rejected_import(
    tmp_path: Path, name: str
) -> None:
    """A rejected import must leave nothing in the WAL that recovery would replay."""
    content = BAD_FILES[name][0]
    path = write(tmp_path / name, content)
    folder = tmp_path / "db"
    result = subprocess.run(
        [sys.executable, "-c", CRASH_AFTER_FAILED_IMPORT, str(folder), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    with pl.connect(folder) as db:
        assert db.count() == 2
        assert db.get("before").data == {"v": 1}
        assert db.get("after").data == {"v": 2}
        assert db.get("n1") is None
