"""Helpers shared by the benchmarks: logging, timing, sizes, the test frame, tables."""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import json
import os
import platform
import sqlite3
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import pluresdb_lab as pl

SEED = 20240601
F0_MAX = 1_000_000
_T_START = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - _T_START:8.1f}s] {msg}", file=sys.stderr, flush=True)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def dir_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def source_digest() -> str:
    """Digest of the engine's .py files: identifies the code measured (it has no commit yet)."""
    h = hashlib.sha256()
    root = Path(pl.__file__).resolve().parent
    for f in sorted(root.rglob("*.py")):
        h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def make_frame(n: int, seed: int = SEED) -> pd.DataFrame:
    """N rows, an ``id`` column and 10 fields: 3 ints, 3 floats, 3 short strings, 1 bool."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    pool = np.array(
        ["".join(rng.choice(letters, size=rng.integers(3, 11))) for _ in range(1000)],
        dtype=object,
    )
    colors = np.array(["red", "green", "blue", "cyan", "magenta", "yellow", "black"], dtype=object)
    return pd.DataFrame(
        {
            "id": [f"n{i:09d}" for i in range(n)],
            "f0": rng.integers(0, F0_MAX, size=n, dtype=np.int64),
            "f1": rng.integers(-1000, 1000, size=n, dtype=np.int64),
            "f2": rng.normal(0.0, 1.0, size=n),
            "f3": np.round(rng.uniform(0.0, 100.0, size=n), 2),
            "f4": rng.exponential(10.0, size=n),
            "f5": pool[rng.integers(0, len(pool), size=n)],
            "f6": colors[rng.integers(0, len(colors), size=n)],
            "f7": pool[rng.integers(0, len(pool), size=n)],
            "f8": rng.random(size=n) < 0.5,
            "f9": rng.integers(1_600_000_000, 1_700_000_000, size=n, dtype=np.int64),
        }
    )


def sqlite_open(path: Path, synchronous: str = "NORMAL") -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("CREATE TABLE IF NOT EXISTS nodes(id TEXT PRIMARY KEY, type TEXT, data TEXT)")
    return conn


def print_table(rows: list[dict[str, Any]], baseline: str = "sqlite") -> None:
    """Rows with benchmark, pluresdb, <baseline>, ratio, goal and met keys, aligned."""
    cols = ["benchmark", "pluresdb", baseline, "ratio", "goal", "met?"]

    def cell(r: dict[str, Any], c: str) -> str:
        if c == "met?":
            return {True: "yes", False: "NO", None: "-"}[r["met"]]
        return str(r[c])

    widths = [max(len(c), *(len(cell(r, c)) for r in rows)) for c in cols]
    line = "  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))
    print(line)
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(cell(r, c).ljust(w) for c, w in zip(cols, widths, strict=True)))


class Run:
    """One benchmark run: facts about the machine and code, failures recorded per
    benchmark (the others still run), and the JSON results file."""

    def __init__(self, **facts: Any) -> None:
        self.meta: dict[str, Any] = {
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "python": sys.version.split()[0],
            "sqlite": sqlite3.sqlite_version,
            "pluresdb_lab": getattr(pl, "__version__", None),
            "pluresdb_lab_source_sha256": source_digest(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "loadavg_at_start": os.getloadavg(),
            **facts,
        }
        self.errors: dict[str, str] = {}

    def attempt(self, name: str, fn: Callable[[], Any]) -> Any:
        """Run one benchmark; on failure log the traceback, record it and carry on."""
        try:
            return fn()
        except Exception as e:
            log(f"{name} FAILED: {e!r}\n{traceback.format_exc()}")
            self.errors[name] = f"{e!r}"
            return None

    def finish(self, res: dict[str, Any]) -> None:
        """Record failures and the load at the end; warn if the code changed meanwhile."""
        if self.errors:
            res["errors"] = self.errors
        self.meta["loadavg_at_end"] = os.getloadavg()
        self.meta["pluresdb_lab_source_sha256_at_end"] = source_digest()
        if (
            self.meta["pluresdb_lab_source_sha256_at_end"]
            != self.meta["pluresdb_lab_source_sha256"]
        ):
            log("WARNING: pluresdb_lab source files changed during the run")

    def save(self, out: Path, res: dict[str, Any], table: list[dict[str, Any]]) -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"meta": self.meta, "results": res, "table": table}, indent=2))
        log(f"wrote {out}")
