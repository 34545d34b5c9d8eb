"""Storage benchmark (issue #3): import, backup and compaction, side by side in one run.

Usage:
    python bench/bench_storage.py [--rows N] [--quick] [--out bench/results/storage.json]

Benchmarks (see bench/README.md for details):
  1. import of an N-row CSV and Parquet file (id + 10 fields) with db.import_file, vs DuckDB
     loading the same file into a table of a file database (CREATE TABLE t AS SELECT * FROM
     read_csv_auto / read_parquet) and vs sqlite3 executemany of the rows (csv module /
     pyarrow, JSON text column, one transaction, WAL, synchronous=NORMAL)
  2. full backup (db.backup(dest)) vs shutil.copytree of the database folder after db.flush()
  3. incremental backup after put_many of 1% of the ids with a changed field, vs the full one
  4. full compaction (db.compact()) after several flushed rounds of updates: MB/s and rows/s

Progress goes to stderr; the result table to stdout; everything as JSON to --out.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sqlite3
import statistics
import tempfile
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from _common import (
    SEED,
    Run,
    dir_size,
    log,
    make_frame,
    print_table,
    sqlite_open,
    timed,
)

import pluresdb_lab as pl

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "storage.json"
MB = 1_000_000
UPDATE_ROUNDS = 4  # flushed rounds of updates before compaction (-> several segments)
UPDATE_FRACTION = 0.05  # of the rows, per round
REPEATS = 3  # copytree and full backup are timed this often (median reported)


def fmt_list(xs: list[float]) -> str:
    return "[" + ", ".join(f"{x:.3f}" for x in xs) + "]"


# --------------------------------------------------------------------------- data

INT_FIELDS = ("f0", "f1", "f9")
FLOAT_FIELDS = ("f2", "f3", "f4")
BOOL_FIELDS = ("f8",)


def write_files(df: pd.DataFrame, tmp: Path) -> tuple[Path, Path]:
    csv_path, pq_path = tmp / "rows.csv", tmp / "rows.parquet"
    df.to_csv(csv_path, index=False)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), pq_path)
    return csv_path, pq_path


# --------------------------------------------------------------------------- sqlite helpers


def sqlite_rows_csv(path: Path) -> list[tuple[str, str, str]]:
    """Read the CSV with the csv module, converting fields back to their types."""
    rows = []
    with open(path, newline="") as f:
        for rec in csv.DictReader(f):
            i = rec.pop("id")
            for k in INT_FIELDS:
                rec[k] = int(rec[k])  # type: ignore[assignment]
            for k in FLOAT_FIELDS:
                rec[k] = float(rec[k])  # type: ignore[assignment]
            for k in BOOL_FIELDS:
                rec[k] = rec[k] == "True"  # type: ignore[assignment]
            rows.append((i, "Row", json.dumps(rec)))
    return rows


def sqlite_rows_parquet(path: Path) -> list[tuple[str, str, str]]:
    rows = []
    for rec in pq.read_table(path).to_pylist():
        i = rec.pop("id")
        rows.append((i, "Row", json.dumps(rec)))
    return rows


# --------------------------------------------------------------------------- benchmarks


def bench_import(tmp: Path, fmt: str, path: Path, n: int, res: dict[str, Any], keep: bool) -> Any:
    """1. import one file into a fresh pluresdb / duckdb / sqlite database.

    Returns the open pluresdb database if `keep` (used by the backup/compaction benchmarks).
    """
    r: dict[str, Any] = {"rows": n, "file_bytes": path.stat().st_size}
    pl_path = tmp / f"pluresdb_{fmt}"
    log(f"import/{fmt}: pluresdb import_file({path.name}, type='Row', id_field='id')")
    db = pl.connect(str(pl_path), fsync="interval", auto_compact=False)
    t_pl, count = timed(lambda: db.import_file(path, type="Row", id_field="id"))
    t_flush, _ = timed(db.flush)
    r |= {"pluresdb_s": t_pl, "pluresdb_flush_s": t_flush, "pluresdb_returned": count}
    r["pluresdb_count"] = db.count("Row")
    log(f"  pluresdb: {t_pl:.2f}s ({n / t_pl:,.0f} rows/s) -> {count:,}; flush {t_flush:.2f}s")
    if not keep:
        db.close()
        shutil.rmtree(pl_path, ignore_errors=True)
        db = None

    reader = "read_csv_auto" if fmt == "csv" else "read_parquet"
    log(f"import/{fmt}: duckdb CREATE TABLE t AS SELECT * FROM {reader}(...) (file database)")
    dk_path = tmp / f"duck_{fmt}.duckdb"
    con = duckdb.connect(str(dk_path))
    sql = f"CREATE TABLE t AS SELECT * FROM {reader}(?)"
    t_dk, _ = timed(lambda: con.execute(sql, [str(path)]))
    r["duckdb_count"] = con.execute("SELECT count(*) FROM t").fetchone()[0]  # type: ignore[index]
    t_dk_close, _ = timed(con.close)
    r |= {"duckdb_s": t_dk, "duckdb_close_s": t_dk_close}
    log(f"  duckdb:   {t_dk:.2f}s ({n / t_dk:,.0f} rows/s); close {t_dk_close:.2f}s")
    for p in tmp.glob(dk_path.name + "*"):
        p.unlink()

    log(f"import/{fmt}: sqlite read + json.dumps + executemany, one transaction, WAL")
    sq_path = tmp / f"sqlite_{fmt}.db"
    conn = sqlite_open(sq_path)
    read = sqlite_rows_csv if fmt == "csv" else sqlite_rows_parquet

    def sqlite_load() -> None:
        rows = read(path)
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO nodes(id, type, data) VALUES (?, ?, ?)", rows)
        conn.execute("COMMIT")

    t_sq, _ = timed(sqlite_load)
    r["sqlite_count"] = conn.execute("SELECT count(*) FROM nodes").fetchone()[0]
    conn.close()
    for p in tmp.glob(sq_path.name + "*"):
        p.unlink()
    r["sqlite_s"] = t_sq
    log(f"  sqlite:   {t_sq:.2f}s ({n / t_sq:,.0f} rows/s)")
    for k in ("pluresdb", "duckdb", "sqlite"):
        r[f"{k}_rows_per_s"] = n / r[f"{k}_s"]
    if not r["pluresdb_count"] == r["duckdb_count"] == r["sqlite_count"] == n:
        counts = [r[f"{k}_count"] for k in ("pluresdb", "duckdb", "sqlite")]
        log(f"  WARNING: counts differ (pluresdb, duckdb, sqlite): {counts}")
    res[f"import_{fmt}"] = r
    return db


def bench_backup(db: Any, tmp: Path, ids: list[str], df: pd.DataFrame, res: dict[str, Any]) -> None:
    """2. full backup vs copytree; 3. incremental backup after 1% of nodes changed."""
    dest = tmp / "backups"
    t_flush, _ = timed(db.flush)
    db_bytes = dir_size(db.path)
    log(f"backup: db.flush() {t_flush:.2f}s; database folder {db_bytes / MB:,.1f} MB")

    log(f"backup: shutil.copytree of the live database folder (after db.flush()), x{REPEATS}")
    t_copies = []
    for i in range(REPEATS):
        t, _ = timed(lambda i=i: shutil.copytree(db.path, tmp / f"copytree{i}"))
        t_copies.append(t)
    copy_bytes = dir_size(tmp / "copytree0")
    for i in range(REPEATS):
        shutil.rmtree(tmp / f"copytree{i}", ignore_errors=True)
    t_copy = statistics.median(t_copies)
    log(f"  copytree: median {t_copy:.3f}s of {fmt_list(t_copies)}, {copy_bytes / MB:,.1f} MB")

    log(f"backup: db.backup(dest) (full), x{REPEATS} into the same dest")
    t_fulls = []
    for _ in range(REPEATS):
        t, full = timed(lambda: db.backup(dest))
        t_fulls.append(t)
    t_full = statistics.median(t_fulls)
    log(f"  full:     median {t_full:.3f}s of {fmt_list(t_fulls)}, {full.size / MB:,.1f} MB")

    k = max(1, len(ids) // 100)
    rng = np.random.default_rng(SEED + 2)
    pick = np.sort(rng.choice(len(ids), size=k, replace=False))
    changed = df.iloc[pick].copy()
    changed["f1"] = changed["f1"] + 1_000_000
    log(f"incremental: put_many of {k:,} rows (1%, f1 changed), flush, backup(incremental)")
    t_put, _ = timed(lambda: db.put_many(changed, type="Row"))
    t_flush2, _ = timed(db.flush)
    log(f"  put_many: {t_put:.2f}s, flush {t_flush2:.3f}s (neither included)")
    t_inc, inc = timed(lambda: db.backup(dest, incremental=True))
    log(f"  incremental: {t_inc:.3f}s, {inc.size / MB:,.2f} MB, kind={inc.kind}")
    node = db.get(ids[int(pick[0])])
    if node is None or node.data.get("f1") != int(changed["f1"].iloc[0]):
        log("  WARNING: changed node not read back")
    ver = pl.verify_backup(inc.path)
    log(f"  verify_backup(incremental): ok={ver.ok} files={ver.files_checked}")
    res["backup"] = {
        "db_bytes": db_bytes,
        "flush_before_s": t_flush,
        "repeats": REPEATS,
        "copytree_runs_s": t_copies,
        "full_runs_s": t_fulls,
        "flush_after_put_s": t_flush2,
        "copytree_s": t_copy,
        "copytree_bytes": copy_bytes,
        "full_s": t_full,
        "full_bytes": full.size,
        "full_nodes": full.nodes,
        "changed_nodes": k,
        "put_many_s": t_put,
        "incremental_s": t_inc,
        "incremental_bytes": inc.size,
        "incremental_verified": ver.ok,
        "full_over_copytree": t_full / t_copy,
        "incremental_over_full": t_inc / t_full,
    }
    shutil.rmtree(dest, ignore_errors=True)


def bench_compact(db: Any, df: pd.DataFrame, res: dict[str, Any]) -> None:
    """4. full compaction after several flushed rounds of updates."""
    n = len(df)
    k = max(1, int(n * UPDATE_FRACTION))
    rng = np.random.default_rng(SEED + 3)
    log(f"compaction: {UPDATE_ROUNDS} rounds of put_many({k:,} updates) + flush")
    for r in range(UPDATE_ROUNDS):
        upd = df.iloc[np.sort(rng.choice(n, size=k, replace=False))][["id", "f0"]].copy()
        upd["f0"] = upd["f0"] + r + 1
        db.put_many(upd, type="Row")
        db.flush()
    stats = db.storage_stats()
    log(f"  storage_stats before: {stats}")
    log("compaction: db.compact() (full)")
    t_wall, rep = timed(db.compact)
    mbps = rep.bytes_before / MB / rep.duration_s
    rps = rep.rows_before / rep.duration_s
    log(
        f"  {rep.segments_before} -> {rep.segments_after} segments, "
        f"{rep.bytes_before / MB:,.1f} -> {rep.bytes_after / MB:,.1f} MB, "
        f"{rep.rows_before:,} -> {rep.rows_after:,} rows in {rep.duration_s:.2f}s "
        f"(wall {t_wall:.2f}s): {mbps:,.1f} MB/s, {rps:,.0f} rows/s"
    )
    res["compaction"] = {
        "update_rounds": UPDATE_ROUNDS,
        "updates_per_round": k,
        "segments_before": rep.segments_before,
        "segments_after": rep.segments_after,
        "bytes_before": rep.bytes_before,
        "bytes_after": rep.bytes_after,
        "rows_before": rep.rows_before,
        "rows_after": rep.rows_after,
        "duration_s": rep.duration_s,
        "wall_s": t_wall,
        "mb_per_s": mbps,
        "rows_per_s": rps,
    }


# --------------------------------------------------------------------------- report


def row(
    name: str, p: str, o: str, ratio: str, goal: str, met: bool | None, **values: Any
) -> dict[str, Any]:
    return {
        "benchmark": name,
        "pluresdb": p,
        "other": o,
        "ratio": ratio,
        "goal": goal,
        "met": met,
        **values,
    }


def build_table(res: dict[str, Any], n: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for fmt in ("csv", "parquet"):
        r = res.get(f"import_{fmt}")
        if r is None:
            continue
        p = r["pluresdb_rows_per_s"]
        for other, goal in (("duckdb", 1.0 if fmt == "parquet" else None), ("sqlite", 2.0)):
            o = r[f"{other}_rows_per_s"]
            rows.append(
                row(
                    f"import {fmt} ({n:,} rows) vs {other}",
                    f"{p:,.0f} rows/s",
                    f"{o:,.0f} rows/s",
                    f"{p / o:.2f}x",
                    f">= {goal:g}x" if goal else "-",
                    (p / o >= goal) if goal else None,
                    pluresdb_value=p,
                    other_value=o,
                    ratio_value=p / o,
                )
            )
    b = res.get("backup")
    if b is not None:
        mb = b["full_bytes"] / MB
        rows.append(
            row(
                f"full backup ({mb:,.0f} MB) vs copytree",
                f"{b['full_s']:.3f} s",
                f"{b['copytree_s']:.3f} s",
                f"{b['full_over_copytree']:.2f}x",
                "<= 1.2x",
                b["full_over_copytree"] <= 1.2,
                pluresdb_value=b["full_s"],
                other_value=b["copytree_s"],
                ratio_value=b["full_over_copytree"],
            )
        )
        rows.append(
            row(
                f"incremental backup (1% changed, {b['incremental_bytes'] / MB:,.1f} MB) vs full",
                f"{b['incremental_s']:.3f} s",
                f"{b['full_s']:.3f} s",
                f"{b['incremental_over_full'] * 100:.1f}%",
                "<= 5%",
                b["incremental_over_full"] <= 0.05,
                pluresdb_value=b["incremental_s"],
                other_value=b["full_s"],
                ratio_value=b["incremental_over_full"],
            )
        )
    c = res.get("compaction")
    if c is not None:
        rows.append(
            row(
                f"compaction ({c['segments_before']} segments, {c['bytes_before'] / MB:,.0f} MB)",
                f"{c['mb_per_s']:,.1f} MB/s",
                "-",
                "-",
                "-",
                None,
                pluresdb_value=c["mb_per_s"],
                other_value=None,
                ratio_value=None,
            )
        )
        rows.append(
            row(
                f"compaction ({c['rows_before']:,} rows in)",
                f"{c['rows_per_s']:,.0f} rows/s",
                "-",
                "-",
                "-",
                None,
                pluresdb_value=c["rows_per_s"],
                other_value=None,
                ratio_value=None,
            )
        )
    return rows


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=None, help="rows in the files (default 1,000,000)")
    ap.add_argument("--quick", action="store_true", help="N=100,000")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    ap.add_argument("--tmpdir", default=None, help="parent folder for the temporary files")
    args = ap.parse_args(argv)
    n = args.rows if args.rows is not None else (100_000 if args.quick else 1_000_000)

    res: dict[str, Any] = {}
    run = Run(
        rows=n,
        quick=args.quick,
        duckdb=duckdb.__version__,
        pyarrow=pa.__version__,
        copytree_of="the live database folder right after db.flush()",
        timing="copytree and full backup: median of 3; incremental after an explicit flush",
    )
    meta = run.meta
    log(f"pluresdb_lab storage vs duckdb {duckdb.__version__} / sqlite {sqlite3.sqlite_version}")
    tmp = Path(tempfile.mkdtemp(prefix="pluresdb_bench_storage_", dir=args.tmpdir))
    attempt = run.attempt

    db = None
    try:
        log(f"generating {n:,} rows (seed {SEED}) and writing CSV + Parquet")
        t_gen, df = timed(lambda: make_frame(n))
        t_files, (csv_path, pq_path) = timed(lambda: write_files(df, tmp))
        meta["csv_bytes"] = csv_path.stat().st_size
        meta["parquet_bytes"] = pq_path.stat().st_size
        log(
            f"  generated in {t_gen:.1f}s, files in {t_files:.1f}s: "
            f"csv {meta['csv_bytes'] / MB:,.1f} MB, parquet {meta['parquet_bytes'] / MB:,.1f} MB"
        )
        ids = df["id"].tolist()
        attempt("import_csv", lambda: bench_import(tmp, "csv", csv_path, n, res, keep=False))
        db = attempt(
            "import_parquet", lambda: bench_import(tmp, "parquet", pq_path, n, res, keep=True)
        )
        if db is not None:
            attempt("backup", lambda: bench_backup(db, tmp, ids, df, res))
            attempt("compaction", lambda: bench_compact(db, df, res))
    finally:
        if db is not None:
            try:
                db.close()
            except Exception as e:
                log(f"close failed: {e!r}")
        shutil.rmtree(tmp, ignore_errors=True)
    run.finish(res)

    table = build_table(res, n)
    print()
    print(f"pluresdb_lab storage - N={n:,} rows, {meta['date']}, {meta['cpus']} CPUs")
    print_table(table, baseline="other")
    print("(copytree copies the live database folder right after db.flush())")

    run.save(args.out, res, table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
