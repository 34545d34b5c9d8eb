"""Import from and export to files: CSV, JSON (an array), NDJSON, Parquet, Arrow IPC.

An import reads the file in batches, checks and converts each (rows keep their file
numbering in errors), and writes nothing until the whole file has passed: a bad row,
a cancel or a crash before the end leaves the database as it was. What is held in
memory meanwhile is the compact converted form (ids, JSON text), not the parsed file.
"""

from __future__ import annotations

import io
import json
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from pluresdb_lab._values import Progress
from pluresdb_lab.engine._analytics import typed_table
from pluresdb_lab.engine._ingest import TYPE_COLUMN, to_batch
from pluresdb_lab.engine._store import report
from pluresdb_lab.errors import InvalidDataError, InvalidIdError, NotFoundError, ReservedNameError

FORMATS = ("csv", "json", "ndjson", "parquet", "arrow")
SUFFIXES = {
    ".csv": "csv",
    ".json": "json",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".parquet": "parquet",
    ".arrow": "arrow",
    ".feather": "arrow",
    ".ipc": "arrow",
}
BATCH_ROWS = 65_536
GENERATED_ID = "_generated_id"  # '_' names cannot clash with a file's columns


def file_format(path: Path, format: str | None) -> str:
    if format is not None:
        if format not in FORMATS:
            raise InvalidDataError(f"format is one of {', '.join(FORMATS)}; got {format!r}")
        return format
    guessed = SUFFIXES.get(path.suffix.lower())
    if guessed is None:
        raise InvalidDataError(
            f"cannot tell the format of {path.name} from its extension; pass format= "
            f"({', '.join(FORMATS)})"
        )
    return guessed


class _CountingFile(io.RawIOBase):
    """A file that counts the bytes read from it, for progress on CSV and NDJSON."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._file.readinto(buffer)
        self.read_bytes += n
        return n

    def close(self) -> None:
        self._file.close()
        super().close()


def _batches(path: Path, fmt: str) -> Iterator[tuple[pa.Table, int, int]]:
    """(batch, units done, units total) over the file; units are bytes or rows."""
    if fmt in ("csv", "ndjson"):
        size = path.stat().st_size
        counting = _CountingFile(path)
        try:
            if fmt == "csv":
                reader: Any = pa_csv.open_csv(
                    counting,
                    read_options=pa_csv.ReadOptions(block_size=1 << 22, use_threads=False),
                    parse_options=pa_csv.ParseOptions(invalid_row_handler=_refuse_row),
                    # an unquoted empty cell is a missing value, a quoted "" an empty string
                    convert_options=pa_csv.ConvertOptions(
                        strings_can_be_null=True, quoted_strings_can_be_null=False
                    ),
                )
            else:
                reader = pa_json.open_json(
                    counting, read_options=pa_json.ReadOptions(block_size=1 << 22)
                )
            for batch in reader:
                yield pa.Table.from_batches([batch]), counting.read_bytes, size
        finally:
            counting.close()
    elif fmt == "json":
        _check_array_edges(path)
        _check_json_syntax(path)
        con = duckdb.connect()
        try:
            counted = con.execute(
                "SELECT count(*) FROM read_json(?, format = 'array')", [str(path)]
            ).fetchall()
            relation = con.read_json(str(path), format="array")
            rows = int(counted[0][0])
            done = 0
            for batch in relation.to_arrow_reader(BATCH_ROWS):
                done += batch.num_rows
                yield pa.Table.from_batches([batch]), done, rows
        finally:
            con.close()
    elif fmt == "parquet":
        parquet = pq.ParquetFile(path)
        rows = parquet.metadata.num_rows
        done = 0
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
            done += batch.num_rows
            yield pa.Table.from_batches([batch]), done, rows
    else:
        source = pa.memory_map(str(path))
        try:
            stream: Any = pa.ipc.open_file(source)
            batches = [stream.get_batch(i) for i in range(stream.num_record_batches)]
        except pa.ArrowInvalid:
            source.seek(0)
            batches = list(pa.ipc.open_stream(source))
        rows = sum(b.num_rows for b in batches)
        done = 0
        for batch in batches:
            done += batch.num_rows
            yield pa.Table.from_batches([batch]), done, rows


def _refuse_row(row: Any) -> str:
    """Stop at a ragged CSV row; with a handler set, Arrow's error names the row."""
    return "error"


def _check_json_syntax(path: Path) -> None:
    """DuckDB forgives some malformed JSON (a trailing comma); Python's parser does not,
    and says where the fault is. Parsed objects are dropped at once."""
    try:
        with open(path, "rb") as f:
            json.load(f)
    except json.JSONDecodeError as exc:
        raise InvalidDataError(
            f"{path.name} is not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except UnicodeDecodeError:
        raise InvalidDataError(f"{path.name} is not UTF-8 text; convert it to UTF-8") from None


def _check_array_edges(path: Path) -> None:
    """DuckDB forgives a JSON array that is cut short; a truncated file must not import."""
    with open(path, "rb") as f:
        head = f.read(4096).lstrip()
        f.seek(max(0, path.stat().st_size - 4096))
        tail = f.read().rstrip()
    if not head.startswith(b"[") or not tail.endswith(b"]"):
        raise InvalidDataError(
            f"{path.name} is not a JSON array (it must start with '[' and end with ']'); "
            "for one object per line use format='ndjson'"
        )


def _check_text(table: pa.Table, path: Path, offset: int) -> None:
    """Text that is not UTF-8 arrives as binary, or (from the JSON reader) as strings
    that fail validation; say so instead of storing mojibake."""
    try:
        table.validate(full=True)
    except pa.ArrowInvalid:
        raise InvalidDataError(
            f"{path.name}: rows from {offset} hold text that is not valid UTF-8; convert the "
            "file to UTF-8"
        ) from None
    for field in table.schema:
        if pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
            raise InvalidDataError(
                f"{path.name}: column {field.name!r} (rows from {offset}) is not valid UTF-8 "
                "text; convert the file to UTF-8"
            )


def _apply_mapping(table: pa.Table, mapping: dict[str, str | None] | None, path: Path) -> pa.Table:
    if not mapping:
        return table
    missing = [source for source in mapping if source not in table.column_names]
    if missing:
        raise InvalidDataError(
            f"mapping names columns {missing} that the file does not have; it has "
            f"{table.column_names}"
        )
    keep = [c for c in table.column_names if mapping.get(c, c) is not None]
    names = [mapping.get(c) or c for c in keep]
    return table.select(keep).rename_columns(names)


def check_mapping(mapping: object) -> dict[str, str | None] | None:
    if mapping is None:
        return None
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in mapping.items()
    ):
        raise InvalidDataError("mapping maps source column names to field names (or None to skip)")
    for source, target in mapping.items():
        if target is not None and (not target or target.startswith("_")):
            raise ReservedNameError(
                f"mapping sends column {source!r} to {target!r}; field names are non-empty "
                "and may not start with '_'"
            )
    targets = [t for t in mapping.values() if t is not None]
    if len(targets) != len(set(targets)):
        raise InvalidDataError(f"mapping sends two columns to the same field: {mapping}")
    return mapping


def read_file(
    path: str | os.PathLike[str],
    *,
    format: str | None,
    type_name: str | None,
    id_field: str | None,
    mapping: dict[str, str | None] | None,
    max_bytes: int,
    dims: dict[str, int],
    progress: Progress | None,
) -> pa.Table:
    """The whole file, checked and converted to one batch (nothing is written here)."""
    source = Path(path)
    if not source.is_file():
        raise NotFoundError(f"no file {source}")
    fmt = file_format(source, format)
    mapping = check_mapping(mapping)
    parts: list[pa.Table] = []
    offset = 0
    batches = _batches(source, fmt)
    while True:
        try:
            item = next(batches)
        except StopIteration:
            break
        except (
            pa.ArrowInvalid,
            pa.ArrowTypeError,
            duckdb.Error,
            UnicodeDecodeError,
            OSError,
        ) as exc:
            reason = re.sub(r"Row #(\d+)", r"line \1", str(exc))  # Arrow counts lines from 1
            raise InvalidDataError(f"{source.name} is not valid {fmt}: {reason}") from None
        table, done, total = item
        _check_text(table, source, offset)
        try:
            table = _apply_mapping(table, mapping, source)
        except InvalidDataError as exc:
            raise InvalidDataError(f"{source.name}: {exc}") from None
        key = id_field
        if key is None:
            generated = pa.array([uuid.uuid4().hex for _ in range(table.num_rows)], pa.string())
            table = table.append_column(GENERATED_ID, generated)
            key = GENERATED_ID
        try:
            parts.append(
                to_batch(
                    table,
                    type_name=type_name,
                    id_field=key,
                    vector_field=None,
                    max_bytes=max_bytes,
                    dims=dims,
                    row_offset=offset,
                )
            )
        except (InvalidDataError, InvalidIdError) as exc:
            raise type(exc)(f"{source.name}: {exc}") from None
        offset += table.num_rows
        report(progress, done, total)
    if not parts:
        return pa.table({})
    batch = pa.concat_tables(parts).combine_chunks()
    ids = batch.column("id")
    if pc.count_distinct(ids).as_py() != len(ids):
        counts = pc.value_counts(ids)
        twice = counts.filter(pc.greater(counts.field("counts"), 1))[0]["values"].as_py()
        rows = [i for i, v in enumerate(ids.to_pylist()) if v == twice][:2]
        raise InvalidDataError(
            f"{source.name}: id {twice!r} appears more than once (rows {rows[0]} and {rows[1]}); "
            "each node may appear once per import"
        )
    return batch


def _flatten_nested(table: pa.Table) -> pa.Table:
    """CSV holds no nested values: lists and objects become JSON text."""
    for i, field in enumerate(table.schema):
        if pa.types.is_nested(field.type):
            con = duckdb.connect()
            try:
                con.register("nested", table.select([i]))
                quoted = field.name.replace('"', '""')
                text = con.sql(f'SELECT to_json("{quoted}")::VARCHAR FROM nested').to_arrow_table()
            finally:
                con.close()
            table = table.set_column(i, field.name, text.column(0))
    return table


def export_rows(rows: pa.Table, type_name: str | None) -> pa.Table:
    """What an export writes: `id` and the fields (plus `_type` for several types)."""
    table = typed_table(rows).drop_columns(["time"])
    if type_name is None:
        table = table.add_column(1, TYPE_COLUMN, rows.column("type"))
    return table


def write_file(table: pa.Table, path: str | os.PathLike[str], format: str | None) -> int:
    """Write `table` to `path` (via a temporary file, renamed when complete)."""
    target = Path(path)
    fmt = file_format(target, format)
    if not target.parent.is_dir():
        raise InvalidDataError(
            f"cannot export to {target}: the folder {target.parent} does not exist; create "
            "it first, or choose another path"
        )
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:6]}.tmp")
    try:
        if fmt == "csv":
            pa_csv.write_csv(_flatten_nested(table), tmp)
        elif fmt == "parquet":
            pq.write_table(table, tmp)
        elif fmt == "arrow":
            with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)
        else:
            con = duckdb.connect()
            try:
                con.register("exported", table)
                array = "true" if fmt == "json" else "false"
                quoted = str(tmp).replace("'", "''")
                con.execute(f"COPY exported TO '{quoted}' (FORMAT JSON, ARRAY {array})")
            finally:
                con.close()
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return int(table.num_rows)
