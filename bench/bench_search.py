"""Search benchmark: pluresdb_lab indexes against the raw libraries, in one run.

Usage:
    python bench/bench_search.py [--vectors N] [--dim D] [--docs N] [--rows N]
                                 [--queries Q] [--out bench/results/search.json]

Benchmarks (see bench/README.md):
  1. vector search, unfiltered: db.vector_search vs a raw hnswlib index with the same
     vectors and parameters (M, ef_construction, ef); QPS and recall@10 vs brute force
  2. filtered vector search at 1% selectivity: db.vector_search(filter=...) vs numpy
     brute force over the filtered rows; QPS and recall@10
  3. text search: db.search vs SQLite FTS5 (bm25) on the same corpus; QPS
  4. filter + group-by: db.query(spec) vs DuckDB over a Parquet file of the same rows

Progress goes to stderr, the table to stdout, everything as JSON to --out.
"""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import hnswlib
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import pluresdb_lab as pl

SEED = 20261125
K = 10
M, EF_CONSTRUCTION, EF = 16, 100, 64
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "search.json"
_START = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - _START:7.1f}s] {message}", file=sys.stderr, flush=True)


def per_second(count: int, run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return count / (time.perf_counter() - started)


def mixture(rng: np.random.Generator, n: int, dim: int) -> np.ndarray[Any, Any]:
    """Clustered vectors (a Gaussian mixture), closer to real embeddings than noise."""
    centers = rng.normal(size=(max(n // 500, 10), dim)).astype(np.float32)
    picks = rng.integers(0, len(centers), n)
    return (centers[picks] + rng.normal(scale=0.6, size=(n, dim))).astype(np.float32)


def exact_top(unit: np.ndarray[Any, Any], query: np.ndarray[Any, Any]) -> set[int]:
    scores = unit @ (query / np.linalg.norm(query))
    return set(np.argpartition(-scores, K)[:K].tolist())


def bench_vectors(n: int, dim: int, queries: int) -> dict[str, Any]:
    rng = np.random.default_rng(SEED)
    vectors = mixture(rng, n + queries, dim)
    vectors, probes = vectors[:n], vectors[n:]
    buckets = rng.integers(0, 100, n)  # bucket == 0 keeps 1%
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"v{i:07d}" for i in range(n)]
    out: dict[str, Any] = {"n": n, "dim": dim, "queries": queries}

    log(f"vectors: raw hnswlib build ({n} x {dim})")
    started = time.perf_counter()
    raw = hnswlib.Index(space="cosine", dim=dim)
    raw.init_index(n, M=M, ef_construction=EF_CONSTRUCTION)
    raw.add_items(vectors, np.arange(n))
    raw.set_ef(EF)
    out["raw_build_s"] = time.perf_counter() - started

    log("vectors: pluresdb ingest + index build")
    db = pl.connect(":memory:")
    db.put_many(
        pa.table({"id": ids, "bucket": buckets, "vec": list(vectors)}),
        type="Vec",
        vector_field="vec",
    )
    started = time.perf_counter()
    db.create_index("vector", type="Vec", M=M, ef_construction=EF_CONSTRUCTION, ef=EF)
    out["pluresdb_build_s"] = time.perf_counter() - started

    truth = [exact_top(unit, q) for q in probes]
    raw_found: list[set[int]] = []
    ours_found: list[set[int]] = []

    def raw_run() -> None:
        for q in probes:
            labels, _ = raw.knn_query(q, k=K, num_threads=1)
            raw_found.append(set(labels[0].tolist()))

    def ours_run() -> None:
        for q in probes:
            hits = db.vector_search(q, K)
            ours_found.append({int(h.id[1:]) for h in hits})

    log("vectors: unfiltered queries")
    out["raw_qps"] = per_second(queries, raw_run)
    out["pluresdb_qps"] = per_second(queries, ours_run)
    out["raw_recall"] = recall(raw_found, truth)
    out["pluresdb_recall"] = recall(ours_found, truth)

    log("vectors: filtered queries at 1%")
    where = {"field": "bucket", "op": "eq", "value": 0}
    keep = np.flatnonzero(buckets == 0)
    filtered_truth = [{int(keep[i]) for i in exact_top(unit[keep], q)} for q in probes]
    brute_found: list[set[int]] = []
    ours_filtered: list[set[int]] = []

    def brute_run() -> None:
        for q in probes:
            rows = np.flatnonzero(buckets == 0)
            scores = unit[rows] @ (q / np.linalg.norm(q))
            brute_found.append(set(rows[np.argpartition(-scores, K)[:K]].tolist()))

    def ours_filtered_run() -> None:
        for q in probes:
            hits = db.vector_search(q, K, filter=where)
            ours_filtered.append({int(h.id[1:]) for h in hits})

    out["brute_filtered_qps"] = per_second(queries, brute_run)
    out["pluresdb_filtered_qps"] = per_second(queries, ours_filtered_run)
    out["pluresdb_filtered_recall"] = recall(ours_filtered, filtered_truth)
    out["filtered_plan"] = db.explain(
        {"type": "Vec", "filter": where, "vector": {"query": probes[0].tolist()}}
    )["vector_plan"]
    db.close()
    return out


def recall(found: list[set[int]], truth: list[set[int]]) -> float:
    return float(np.mean([len(f & t) / K for f, t in zip(found, truth, strict=True)]))


WORDS = [f"w{i}" for i in range(5000)]


def bench_text(docs: int, queries: int) -> dict[str, Any]:
    rng = np.random.default_rng(SEED + 1)
    # Zipf-like word frequencies, as in natural text.
    weights = 1 / np.arange(1, len(WORDS) + 1)
    weights /= weights.sum()
    bodies = [
        " ".join(rng.choice(WORDS, size=int(rng.integers(8, 40)), p=weights)) for _ in range(docs)
    ]
    probes = [" ".join(rng.choice(WORDS[20:500], size=2)) for _ in range(queries)]
    out: dict[str, Any] = {"docs": docs, "queries": queries}
    log(f"text: pluresdb ingest + index ({docs} docs)")
    db = pl.connect(":memory:")
    db.put_many([{"id": f"d{i}", "body": b} for i, b in enumerate(bodies)], type="Doc")
    started = time.perf_counter()
    db.create_index("text", type="Doc", fields=["body"])
    out["pluresdb_build_s"] = time.perf_counter() - started
    log("text: sqlite FTS5 build")
    con = sqlite3.connect(":memory:")
    started = time.perf_counter()
    con.execute("CREATE VIRTUAL TABLE docs USING fts5(body)")
    con.executemany("INSERT INTO docs(rowid, body) VALUES (?, ?)", enumerate(bodies))
    con.commit()
    out["sqlite_build_s"] = time.perf_counter() - started

    def ours() -> None:
        for q in probes:
            db.search(q, limit=K)

    def fts() -> None:
        for q in probes:
            con.execute(
                "SELECT rowid, body, bm25(docs) FROM docs WHERE docs MATCH ? ORDER BY rank LIMIT ?",
                (" OR ".join(q.split()), K),
            ).fetchall()

    log("text: queries")
    out["pluresdb_qps"] = per_second(queries, ours)
    out["sqlite_qps"] = per_second(queries, fts)
    db.close()
    return out


def bench_query(rows: int, repeats: int) -> dict[str, Any]:
    rng = np.random.default_rng(SEED + 2)
    table = pa.table(
        {
            "id": [f"r{i:07d}" for i in range(rows)],
            "g": rng.choice(["a", "b", "c", "d", "e", "f", "g", "h"], rows),
            "x": rng.integers(0, 1_000_000, rows),
            "y": rng.random(rows),
        }
    )
    out: dict[str, Any] = {"rows": rows, "repeats": repeats}
    spec = {
        "type": "Row",
        "filter": {"field": "x", "op": "gt", "value": 500_000},
        "group_by": ["g"],
        "aggregates": [{"op": "count"}, {"op": "avg", "field": "y"}],
    }
    sql = (
        "SELECT g, count(*) AS count, avg(y) AS avg_y FROM read_parquet(?) "
        "WHERE x > 500000 GROUP BY g ORDER BY g"
    )
    log(f"query: pluresdb ingest ({rows} rows)")
    db = pl.connect(":memory:")
    db.put_many(table, type="Row")
    with tempfile.TemporaryDirectory() as folder:
        parquet = str(Path(folder) / "rows.parquet")
        pq.write_table(table.drop(["id"]), parquet)
        started = time.perf_counter()
        first = db.query(spec)
        out["pluresdb_cold_s"] = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(repeats):
            db.query(spec)
        out["pluresdb_warm_s"] = (time.perf_counter() - started) / repeats
        con = duckdb.connect()
        started = time.perf_counter()
        for _ in range(repeats):
            theirs = con.sql(sql, params=[parquet]).to_arrow_table()
        out["duckdb_s"] = (time.perf_counter() - started) / repeats
    out["same_result"] = first.column("count").to_pylist() == theirs.column("count").to_pylist()
    db.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    results = {
        "vector": bench_vectors(args.vectors, args.dim, args.queries),
        "text": bench_text(args.docs, args.queries),
        "query": bench_query(args.rows, 5),
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    v, t, q = results["vector"], results["text"], results["query"]
    table = [
        ("vector QPS (unfiltered)", v["pluresdb_qps"], v["raw_qps"], "raw hnswlib", 0.8),
        (
            "vector QPS (1% filter)",
            v["pluresdb_filtered_qps"],
            v["brute_filtered_qps"],
            "numpy brute force",
            1.0,
        ),
        ("text QPS", t["pluresdb_qps"], t["sqlite_qps"], "sqlite FTS5", 1.0),
        (
            "filter+group-by (1/s, warm)",
            1 / q["pluresdb_warm_s"],
            1 / q["duckdb_s"],
            "duckdb parquet",
            1 / 1.5,
        ),
    ]
    print(f"{'benchmark':32} {'pluresdb':>10} {'other':>10} {'ratio':>7} goal")
    for name, ours, theirs, other, goal in table:
        print(
            f"{name:32} {ours:10.1f} {theirs:10.1f} {ours / theirs:6.2f}x >= {goal:.2f}x ({other})"
        )
    print(
        f"recall@10: pluresdb {v['pluresdb_recall']:.3f}, raw hnswlib {v['raw_recall']:.3f}, "
        f"pluresdb 1% filter {v['pluresdb_filtered_recall']:.3f} ({v['filtered_plan']})"
    )


if __name__ == "__main__":
    main()
