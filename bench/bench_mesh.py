"""Mesh benchmark: catch-up throughput, bytes per op and live latency between two peers.

Usage:
    python bench/bench_mesh.py [--nodes N] [--singles M] [--live L] [--out FILE]

Side by side in one run (see bench/README.md):
  1. catch-up of N nodes written with `put_many` (chunks of 1,000), and of M single
     `put`s, from a peer process to an empty peer over ws:// on 127.0.0.1; against
     pycrdt (Yjs) syncing the same records held in a Y.Map: state vector, encoded
     update, apply (in one process, no network).
  2. live replication latency: a `put` on one peer until the change callback fires on
     the other, L times; against one msgpack message over a bare tornado WebSocket.

Progress goes to stderr; the table to stdout; everything as JSON to --out.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application
from tornado.websocket import WebSocketHandler, websocket_connect

import pluresdb_lab as pl

SECRET = "bench-mesh-secret"
CHUNK = 1000


def say(message: str) -> None:
    print(f"[bench_mesh {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def records(n: int) -> list[dict[str, Any]]:
    """N records of four fields (fixed seed), the same for both sides."""
    rng = np.random.default_rng(7)
    ints = rng.integers(0, 1_000_000, n)
    floats = rng.random(n)
    return [
        {"id": f"n{i:09d}", "i": int(ints[i]), "score": float(floats[i]), "name": f"node {i}"}
        for i in range(n)
    ]


def fields(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "id"}


# -- the serving peer (a child process) ---------------------------------------------------


def serve(folder: str, n: int, mode: str) -> None:
    """Write the records, listen, print the URL and version vector, wait for stdin EOF."""
    db = pl.connect(folder, fsync="off")
    db.mesh.configure(secret=SECRET)
    data = records(n)
    if mode == "batch":
        for start in range(0, n, CHUNK):
            db.put_many(data[start : start + CHUNK], type="row")
    else:
        for record in data:
            db.put(record["id"], fields(record), type="row")
    url = db.mesh.listen()
    print(json.dumps({"url": url, "vv": db.version_vector(), "ops": len(db.ops_since({}))}))
    sys.stdout.flush()
    sys.stdin.read()
    db.close()


def catch_up(n: int, mode: str, workdir: Path) -> dict[str, Any]:
    """Time an empty peer catching up with a serving peer that holds n nodes."""
    say(f"pluresdb catch-up: serving peer writes {n:,} nodes ({mode})")
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(workdir / f"src-{mode}"), str(n), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        if not line:
            raise RuntimeError(f"the serving peer exited with {child.wait(60)}")
        served = json.loads(line)
        db = pl.connect(workdir / f"dst-{mode}", fsync="off")
        db.mesh.configure(secret=SECRET)
        start = time.perf_counter()
        db.mesh.connect(served["url"])
        pause = threading.Event()
        while db.version_vector() != served["vv"]:
            if time.perf_counter() - start > 600:
                raise RuntimeError("catch-up did not finish within 10 minutes")
            pause.wait(0.002)
        seconds = time.perf_counter() - start
        (link,) = db.mesh.peers()
        assert db.count() == n, (db.count(), n)
        db.close()
    finally:
        if child.stdin is not None:
            child.stdin.close()
        child.wait(60)
    wire = link["bytes_in"] + link["bytes_out"]
    say(f"  {seconds:.2f} s, {wire:,} bytes on the wire, {served['ops']:,} ops")
    return {
        "nodes": n,
        "ops": served["ops"],
        "seconds": seconds,
        "nodes_per_s": n / seconds,
        "wire_bytes": wire,
        "bytes_per_node": wire / n,
    }


def pycrdt_catch_up(n: int, mode: str) -> dict[str, Any]:
    """The same records in a Y.Map: state vector -> encoded update -> apply, in process."""
    from pycrdt import Doc, Map

    say(f"pycrdt catch-up: {n:,} records ({mode})")
    source = Doc()
    rows = source.get("rows", type=Map)
    data = records(n)
    if mode == "batch":
        for start in range(0, n, CHUNK):
            with source.transaction():
                for record in data[start : start + CHUNK]:
                    rows[record["id"]] = fields(record)
    else:
        for record in data:
            with source.transaction():
                rows[record["id"]] = fields(record)
    target = Doc()
    target_rows = target.get("rows", type=Map)
    begin = time.perf_counter()
    state = target.get_state()
    update = source.get_update(state)
    target.apply_update(update)
    seconds = time.perf_counter() - begin
    assert len(target_rows) == n
    wire = len(state) + len(update)
    say(f"  {seconds:.2f} s, {wire:,} bytes")
    return {
        "nodes": n,
        "seconds": seconds,
        "nodes_per_s": n / seconds,
        "wire_bytes": wire,
        "bytes_per_node": wire / n,
    }


# -- live latency -------------------------------------------------------------------------


def percentiles(samples: list[float]) -> dict[str, float]:
    ms = np.array(samples) * 1000
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "n": len(samples),
    }


def live_latency(count: int) -> dict[str, float]:
    """put on a, until b's subscriber sees it; two embedded peers in this process."""
    say(f"pluresdb live latency: {count:,} puts")
    a, b = pl.connect(":memory:"), pl.connect(":memory:")
    for db in (a, b):
        db.mesh.configure(secret=SECRET)
    arrived = threading.Event()
    seen_at: list[float] = [0.0]

    def on_change(change: Any) -> None:
        seen_at[0] = time.perf_counter()
        arrived.set()

    b.subscribe(on_change)
    b.mesh.connect(a.mesh.listen())
    while not any(p["state"] == "connected" for p in b.mesh.peers()):
        arrived.wait(0.01)
    samples = []
    for i in range(count + 50):
        arrived.clear()
        sent = time.perf_counter()
        a.put(f"live{i}", {"i": i, "name": f"live {i}"})
        if not arrived.wait(10):
            raise RuntimeError(f"live write {i} did not arrive within 10 s")
        if i >= 50:  # warm-up
            samples.append(seen_at[0] - sent)
    b.close()
    a.close()
    return percentiles(samples)


class _Sink(WebSocketHandler):
    def initialize(self, arrived: threading.Event, seen_at: list[float]) -> None:
        self.arrived, self.seen_at = arrived, seen_at

    def on_message(self, message: str | bytes) -> None:
        msgpack.unpackb(message)
        self.seen_at[0] = time.perf_counter()
        self.arrived.set()


def bare_websocket_latency(count: int) -> dict[str, float]:
    """One msgpack message over a bare tornado WebSocket (no CRDT, no storage)."""
    say(f"bare websocket latency: {count:,} messages")
    arrived = threading.Event()
    seen_at: list[float] = [0.0]
    samples: list[float] = []
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def setup() -> Any:
        app = Application([("/", _Sink, {"arrived": arrived, "seen_at": seen_at})])
        sockets = bind_sockets(0, "127.0.0.1")
        HTTPServer(app).add_sockets(sockets)
        return await websocket_connect(f"ws://127.0.0.1:{sockets[0].getsockname()[1]}/")

    connection = asyncio.run_coroutine_threadsafe(setup(), loop).result(10)
    for i in range(count + 50):
        arrived.clear()
        sent = time.perf_counter()
        frame = msgpack.packb({"id": f"live{i}", "i": i, "name": f"live {i}"})
        loop.call_soon_threadsafe(connection.write_message, frame, True)
        if not arrived.wait(10):
            raise RuntimeError("a websocket message did not arrive within 10 s")
        if i >= 50:
            samples.append(seen_at[0] - sent)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    return percentiles(samples)


# -- report -------------------------------------------------------------------------------


def table(results: dict[str, Any]) -> str:
    lines = [
        "| benchmark | pluresdb_lab | baseline | ratio | goal | met? |",
        "|-----------|-------------:|---------:|------:|------|------|",
    ]
    for mode in ("batch", "singles"):
        ours, theirs = results[f"catch_up_{mode}"], results[f"pycrdt_{mode}"]
        speed = ours["nodes_per_s"] / theirs["nodes_per_s"]
        size = ours["bytes_per_node"] / theirs["bytes_per_node"]
        label = f"catch-up {ours['nodes']:,} nodes ({mode}, {ours['ops']:,} ops)"
        lines.append(
            f"| {label}: nodes/s | {ours['nodes_per_s']:,.0f} | {theirs['nodes_per_s']:,.0f} "
            f"(pycrdt) | {speed:.2f}x | >= 1x | {'yes' if speed >= 1 else '**no**'} |"
        )
        lines.append(
            f"| {label}: bytes/node | {ours['bytes_per_node']:.1f} | "
            f"{theirs['bytes_per_node']:.1f} (pycrdt) | {size:.2f}x | <= 1x | "
            f"{'yes' if size <= 1 else '**no**'} |"
        )
    live, bare = results["live"], results["bare_websocket"]
    for key in ("p50_ms", "p99_ms"):
        goal = "< 5 ms" if key == "p50_ms" else "-"
        met = ("yes" if live[key] < 5 else "**no**") if key == "p50_ms" else "-"
        lines.append(
            f"| live latency {key[:3]} | {live[key]:.2f} ms | {bare[key]:.2f} ms (bare ws) | "
            f"{live[key] / bare[key]:.1f}x | {goal} | {met} |"
        )
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--serve":
        serve(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100_000, help="nodes written by put_many")
    parser.add_argument("--singles", type=int, default=100_000, help="nodes written one by one")
    parser.add_argument("--live", type=int, default=1000, help="live writes timed")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "mesh.json"))
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-mesh-") as tmp:
        for mode, n in (("batch", args.nodes), ("singles", args.singles)):
            results[f"catch_up_{mode}"] = catch_up(n, mode, Path(tmp))
            results[f"pycrdt_{mode}"] = pycrdt_catch_up(n, mode)
    results["live"] = live_latency(args.live)
    results["bare_websocket"] = bare_websocket_latency(args.live)
    import pycrdt
    import tornado

    report = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "versions": {"pycrdt": pycrdt.__version__, "tornado": tornado.version},
        "args": vars(args),
        "results": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(table(results))


if __name__ == "__main__":
    main()
