"""Server benchmark: RemoteDatabase over `pluresdb serve` vs the embedded Database, one run.

Usage:
    python bench/bench_server.py [--rows N] [--ops N] [--quick] [--out bench/results/server.json]

Benchmarks (see bench/README.md):
  1. single put and single get latency (p50/p99), one client, loopback
  2. bulk write of an N-row Arrow table (`put_many`; Arrow IPC over HTTP) and bulk read
     (`to_arrow`; Arrow IPC back), rows per second
  3. change-feed latency: from the start of a `put` to the subscriber's callback

Progress goes to stderr; the result table to stdout; everything as JSON to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

import pluresdb_lab as pl
from pluresdb_lab._database import Database
from pluresdb_lab.client import RemoteDatabase

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "server.json"
TOKEN = "bench-token"
LISTENING = re.compile(r"at (http://127\.0\.0\.1:\d+/pluresdb/api/) token=")

AnyDatabase = Database | RemoteDatabase


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentiles(samples: list[float]) -> dict[str, float]:
    ms = np.asarray(samples) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99))}


def latency(fn: Callable[[int], object], count: int) -> dict[str, float]:
    for i in range(min(50, count)):  # warm the connection pool and caches
        fn(i)
    samples = []
    for i in range(count):
        start = time.perf_counter()
        fn(i)
        samples.append(time.perf_counter() - start)
    return percentiles(samples)


def table(rows: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "id": [f"bulk{seed}-{i}" for i in range(rows)],
            "n": rng.integers(0, 1_000_000, rows),
            "x": rng.random(rows),
            "name": [f"name {i % 1000}" for i in range(rows)],
            "flag": rng.random(rows) < 0.5,
        }
    )


def throughput(fn: Callable[[], object], rows: int) -> float:
    start = time.perf_counter()
    fn()
    return rows / (time.perf_counter() - start)


def feed_latency(db: AnyDatabase, count: int) -> dict[str, float]:
    arrived = threading.Event()
    stamps: list[float] = []

    def got(change: pl.Change) -> None:
        stamps.append(time.perf_counter())
        arrived.set()

    subscription = db.subscribe(got, type="Feed")
    samples = []
    try:
        for i in range(count):
            arrived.clear()
            start = time.perf_counter()
            db.put(f"feed{i}", {"i": i}, type="Feed")
            if not arrived.wait(10):
                raise RuntimeError("a change did not arrive within 10 s")
            samples.append(stamps[-1] - start)
    finally:
        subscription.cancel()
    return percentiles(samples)


def measure(db: AnyDatabase, rows: int, ops: int) -> dict[str, Any]:
    result: dict[str, Any] = {}
    log("  put latency")
    result["put"] = latency(lambda i: db.put(f"p{i}", {"i": i, "s": "x" * 40}, type="P"), ops)
    log("  get latency")
    result["get"] = latency(lambda i: db.get(f"p{i % ops}"), ops)
    log(f"  bulk write of {rows} rows")
    bulk = table(rows, 1)
    result["bulk_write_rows_per_s"] = throughput(lambda: db.put_many(bulk, type="Bulk"), rows)
    log(f"  bulk read of {rows} rows")
    result["bulk_read_rows_per_s"] = throughput(lambda: db.to_arrow("Bulk"), rows)
    log("  change-feed latency")
    result["feed"] = feed_latency(db, max(50, ops // 10))
    return result


def serve(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    out = folder / "serve.log"
    with out.open("wb") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pluresdb_lab.cli",
                "serve",
                "--data",
                str(folder / "db"),
                "--port",
                "0",
                "--token",
                TOKEN,
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=folder,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        match = LISTENING.search(out.read_text())
        if match:
            return process, match.group(1)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"pluresdb serve did not start: {out.read_text()}")


def report(results: dict[str, dict[str, Any]]) -> None:
    embedded, remote = results["embedded"], results["remote"]
    rows = [
        ("put p50 (ms)", embedded["put"]["p50_ms"], remote["put"]["p50_ms"]),
        ("put p99 (ms)", embedded["put"]["p99_ms"], remote["put"]["p99_ms"]),
        ("get p50 (ms)", embedded["get"]["p50_ms"], remote["get"]["p50_ms"]),
        ("get p99 (ms)", embedded["get"]["p99_ms"], remote["get"]["p99_ms"]),
        (
            "bulk write (rows/s)",
            embedded["bulk_write_rows_per_s"],
            remote["bulk_write_rows_per_s"],
        ),
        ("bulk read (rows/s)", embedded["bulk_read_rows_per_s"], remote["bulk_read_rows_per_s"]),
        ("feed p50 (ms)", embedded["feed"]["p50_ms"], remote["feed"]["p50_ms"]),
        ("feed p99 (ms)", embedded["feed"]["p99_ms"], remote["feed"]["p99_ms"]),
    ]
    print(f"{'measure':<22}{'embedded':>14}{'remote':>14}{'remote/embedded':>18}")
    for name, local, over_http in rows:
        ratio = over_http / local if local else float("nan")
        print(f"{name:<22}{local:>14.4g}{over_http:>14.4g}{ratio:>18.3g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows of the bulk table")
    parser.add_argument("--ops", type=int, default=2000, help="single puts/gets timed")
    parser.add_argument("--quick", action="store_true", help="20k rows, 300 ops")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    rows, ops = (20_000, 300) if args.quick else (args.rows, args.ops)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="pluresdb-bench-server-") as tmp:
        folder = Path(tmp)
        log("embedded")
        with Database(folder / "embedded") as db:
            results["embedded"] = measure(db, rows, ops)
        log("remote (pluresdb serve on 127.0.0.1)")
        process, url = serve(folder)
        try:
            with RemoteDatabase(url, TOKEN) as remote:
                results["remote"] = measure(remote, rows, ops)
        finally:
            process.terminate()
            process.wait(30)
    report(results)
    results["config"] = {
        "rows": rows,
        "ops": ops,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "fsync": "interval",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
