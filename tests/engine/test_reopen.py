"""A 100k-node database survives close + reopen exactly (DESIGN.md section 5).

The database is built so that both segments and the WAL matter: a bulk load, updates,
deletes and resurrections, ``flush()`` (segments), then more bulk and single writes
that only live in the WAL.  A clean ``close()`` flushes the memtable too, so the same
build is also run in a child process that is SIGKILLed instead of closed: then the
post-flush writes can only come back by WAL replay.  After reopen the analytics view,
counts, per-node history and point reads must be identical, and match an independent
model.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import pluresdb_lab as pl

N_FIRST = 60_000
N_SECOND = 40_000
N_TOTAL = N_FIRST + N_SECOND
HISTORY_SAMPLE = 200


def item_id(i: int) -> str:
    return f"item-{i:06d}"


class Model:
    """Expected data of every item, without asking the engine."""

    def __init__(self) -> None:
        self.base: dict[str, dict[str, Any]] = {}
        self.deleted: set[str] = set()
        self.updates: dict[str, int] = {}  # id -> number of writes after the bulk load

    def bulk(self, df: pd.DataFrame) -> None:
        for rec in df.to_dict("records"):
            nid = rec.pop("id")
            self.base[nid] = {k: (v.item() if hasattr(v, "item") else v) for k, v in rec.items()}

    def put(self, nid: str, patch: dict[str, Any]) -> None:
        data = {} if nid in self.deleted or nid not in self.base else dict(self.base[nid])
        for k, v in patch.items():
            if v is None:
                data.pop(k, None)
            else:
                data[k] = v
        self.base[nid] = data
        self.deleted.discard(nid)
        self.updates[nid] = self.updates.get(nid, 0) + 1

    def delete(self, nid: str) -> None:
        self.base.pop(nid, None)
        self.deleted.add(nid)
        self.updates[nid] = self.updates.get(nid, 0) + 1


def frame(lo: int, hi: int, rng: np.random.Generator) -> pd.DataFrame:
    n = hi - lo
    return pd.DataFrame(
        {
            "id": [item_id(i) for i in range(lo, hi)],
            "qty": rng.integers(-1_000_000, 1_000_000, size=n, dtype=np.int64),
            "price": np.round(rng.random(n) * 1000, 3),
            "name": [f"name {i} {'é' if i % 7 == 0 else ''}" for i in range(lo, hi)],
            "flag": rng.random(n) < 0.5,
        }
    )


def snapshot(db: Any, sample: list[str]) -> dict[str, Any]:
    types = db.types()
    frames = {"*": db.to_pandas()}
    for t in types:
        if t is not None:
            frames[t] = db.to_pandas(type=t)
    for key, df in frames.items():
        frames[key] = df.sort_values("id", kind="stable").reset_index(drop=True)
    return {
        "count": db.count(),
        "count_item": db.count(type="item"),
        "types": dict(types),
        "frames": frames,
        "history": {
            nid: [(v.version, v.time, v.origin, v.type, v.data, v.deleted) for v in db.history(nid)]
            for nid in sample
        },
        "nodes": [
            None if n is None else (n.id, n.type, n.data, n.time, n.version)
            for n in db.get_many(sample)
        ],
        "vv": db.version_vector(),
        "peer_id": db.peer_id,
    }


def assert_same_frame(before: pd.DataFrame, after: pd.DataFrame, label: str) -> None:
    assert list(after.columns) == list(before.columns), label
    assert len(after) == len(before), label
    if "data" in before.columns and "type" in before.columns:
        # Semantic comparison first (clearer failure), then byte-for-byte.
        parsed_b = before.assign(data=before["data"].map(json.loads))
        parsed_a = after.assign(data=after["data"].map(json.loads))
        pd.testing.assert_frame_equal(parsed_a, parsed_b, obj=f"{label} (data parsed)")
    pd.testing.assert_frame_equal(after, before, obj=label)


def assert_same_snapshot(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert after["count"] == before["count"]
    assert after["count_item"] == before["count_item"]
    assert after["types"] == before["types"]
    assert after["peer_id"] == before["peer_id"], "peer_id must be stable per data folder"
    assert after["vv"] == before["vv"]
    assert sorted(after["frames"], key=str) == sorted(before["frames"], key=str)
    for key in before["frames"]:
        assert_same_frame(before["frames"][key], after["frames"][key], f"to_pandas({key})")
    for nid, hist in before["history"].items():
        assert after["history"][nid] == hist, f"history({nid!r}) changed across reopen"
    assert after["nodes"] == before["nodes"]


def build(folder: Path) -> tuple[Any, dict[str, Any]]:
    """Write the database; returns it still open, and what the tests need to know."""
    rng = np.random.default_rng(20240611)
    prng = random.Random(20240611)
    model = Model()

    db = pl.connect(folder)
    df1 = frame(0, N_FIRST, rng)
    assert db.put_many(df1, type="item") == N_FIRST
    model.bulk(df1)

    # History before the flush: updates (some twice), deletes, resurrections.
    upd1 = prng.sample(range(N_FIRST), 600)
    for i in upd1:
        patch = {"qty": prng.randint(0, 99), "note": f"first update of {i}"}
        db.put(item_id(i), patch, type="item")
        model.put(item_id(i), patch)
    for i in upd1[:150]:
        patch = {"note": None, "price": 0.5}
        db.put(item_id(i), patch, type="item")
        model.put(item_id(i), patch)
    dele1 = prng.sample(sorted(set(range(N_FIRST)) - set(upd1)), 200)
    for i in dele1:
        assert db.delete(item_id(i)) is True
        model.delete(item_id(i))
    for i in dele1[:40]:
        patch = {"qty": 7, "name": "resurrected"}
        db.put(item_id(i), patch, type="item")
        model.put(item_id(i), patch)
    notes = [f"note-{j:03d}" for j in range(60)]
    for j, nid in enumerate(notes):
        db.put(nid, {"text": f"note {j}", "tags": ["a", str(j)], "meta": {"k": j}}, type="note")
    for j in range(60):
        db.link(notes[j], item_id(upd1[j]), "about", {"w": j})

    db.flush()

    df2 = frame(N_FIRST, N_TOTAL, rng)
    assert db.put_many(df2, type="item") == N_SECOND
    model.bulk(df2)

    # History after the flush: some of it on ids whose older versions are in segments.
    upd2 = upd1[:100] + prng.sample(range(N_TOTAL), 400)
    for i in upd2:
        patch = {"qty": prng.randint(100, 199), "note": f"second update of {i}"}
        db.put(item_id(i), patch, type="item")
        model.put(item_id(i), patch)
    # (edge ends are kept: deleting a node also deletes its edges)
    live = sorted(
        set(range(N_TOTAL)) - {int(d.split("-")[1]) for d in model.deleted} - set(upd1[:60])
    )
    dele2 = prng.sample(live, 200)
    for i in dele2:
        assert db.delete(item_id(i)) is True
        model.delete(item_id(i))
    for i in dele1[40:60] + dele2[:20]:
        patch = {"qty": 8, "name": "back again"}
        db.put(item_id(i), patch, type="item")
        model.put(item_id(i), patch)
    for j in range(0, 60, 3):
        db.put(notes[j], {"text": f"edited note {j}"}, type="note")
    db.unlink(notes[1], item_id(upd1[1]), "about")

    deleted = sorted(model.deleted)
    updated = sorted(n for n, k in model.updates.items() if k >= 2 and n not in model.deleted)
    once = sorted(n for n, k in model.updates.items() if k == 1 and n not in model.deleted)
    untouched = [item_id(i) for i in prng.sample(range(N_TOTAL), 400)]
    untouched = [nid for nid in untouched if nid not in model.updates]
    sample = sorted(
        set(
            prng.sample(updated, 80)
            + prng.sample(once, 40)
            + prng.sample(deleted, 30)
            + prng.sample(notes, 10)
            + untouched[: HISTORY_SAMPLE - 160]
        )
    )
    assert len(sample) == HISTORY_SAMPLE

    before = snapshot(db, sample)
    return db, {
        "folder": folder,
        "model": model,
        "sample": sample,
        "before": before,
        "notes": notes,
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    db, info = build(tmp_path_factory.mktemp("reopen") / "db")
    db.close()
    assert db.closed
    return info


def test_state_matches_independent_model(built: dict[str, Any]) -> None:
    model: Model = built["model"]
    before = built["before"]
    expected_items = len(model.base)
    assert before["count_item"] == expected_items
    assert before["count"] == expected_items + 60 + 59  # notes + edges (one unlinked)
    assert before["types"].get("item") == expected_items
    assert before["types"].get("note") == 60
    assert before["types"].get("_edge") == 59

    items = before["frames"]["item"]
    assert len(items) == expected_items
    assert items["id"].is_unique
    assert set(items["id"]) == set(model.base)
    by_id = items.set_index("id")
    for nid in built["sample"]:
        if not nid.startswith("item-"):
            continue
        if nid in model.deleted:
            assert nid not in by_id.index
            continue
        row = by_id.loc[nid]
        for field, value in model.base[nid].items():
            assert row[field] == value, (nid, field, row[field], value)

    for nid, hist in before["history"].items():
        assert [h[0] for h in hist] == list(range(1, len(hist) + 1)), nid
        if nid in model.updates:
            assert len(hist) >= model.updates[nid] + 1, f"{nid}: bulk load + updates"
        if nid in model.deleted:
            assert hist[-1][5] is True, f"{nid}: last version is not a deletion"
        elif nid.startswith("item-"):
            assert hist[-1][5] is False
            assert hist[-1][4] == model.base[nid]
    for node, nid in zip(before["nodes"], built["sample"], strict=True):
        if nid in model.deleted:
            assert node is None
        elif nid.startswith("item-"):
            assert node is not None
            assert node[2] == model.base[nid]
            assert node[1] == "item"


def test_reopen_is_identical(built: dict[str, Any]) -> None:
    with pl.connect(built["folder"]) as db:
        after = snapshot(db, built["sample"])
        assert db.recovery is not None
    assert_same_snapshot(built["before"], after)


def test_reopen_after_flush_and_compact_is_identical(built: dict[str, Any]) -> None:
    with pl.connect(built["folder"]) as db:
        db.flush()
        db.compact()
        mid = snapshot(db, built["sample"])
    assert_same_snapshot(built["before"], mid)
    with pl.connect(built["folder"]) as db:
        after = snapshot(db, built["sample"])
    assert_same_snapshot(built["before"], after)


def test_more_writes_after_reopen_persist(built: dict[str, Any]) -> None:
    # Runs last: it changes the database.  notes[1] has no edge (it was unlinked).
    with pl.connect(built["folder"]) as db:
        n = db.count()
        db.put("item-extra", {"qty": 1}, type="item")
        assert db.delete(built["notes"][1]) is True
    with pl.connect(built["folder"]) as db:
        assert db.count() == n
        assert db.get("item-extra").data == {"qty": 1}
        assert db.get(built["notes"][1]) is None
        assert db.get(built["notes"][2]) is not None


# A clean close flushes the memtable into segments, so the reopen above replays no WAL.
# Here the writer is SIGKILLed instead: what came after the flush() must come back from
# the WAL (and what came before it from segments).

KILL_CHILD = r"""
import importlib.util
import pickle
import sys

spec = importlib.util.spec_from_file_location("reopen_build", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
db, info = mod.build(mod.Path(sys.argv[2]))
info["model"] = vars(info["model"])
info["folder"] = str(info["folder"])
with open(sys.argv[3], "wb") as f:
    pickle.dump(info, f)
sys.stdout.write("built\n")
sys.stdout.flush()
sys.stdin.read()  # hold the database open until killed
"""


def test_reopen_after_sigkill_replays_the_wal(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    out = tmp_path / "snapshot.pickle"
    script = tmp_path / "child.py"
    script.write_text(KILL_CHILD)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    with open(tmp_path / "child.stderr", "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, str(script), __file__, str(folder), str(out)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            env=env,
        )
        try:
            # communicate() would wait for exit; read one line with a bounded wait instead
            line = read_line(proc, timeout=180)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
            assert proc.stdin is not None
            assert proc.stdout is not None
            proc.stdin.close()
            proc.stdout.close()
    assert line == b"built\n", (tmp_path / "child.stderr").read_text(errors="replace")[-3000:]
    with open(out, "rb") as f:
        info = pickle.load(f)
    model = Model()
    vars(model).update(info["model"])

    assert list(folder.glob("*.arrow")), "flush() wrote no segment"
    with pl.connect(folder) as db:
        assert db.recovery.replayed_records > 0, "the writes after flush() must come from the WAL"
        assert db.recovery.torn_bytes == 0
        after = snapshot(db, info["sample"])
    assert_same_snapshot(info["before"], after)
    assert after["count_item"] == len(model.base)
    for nid in info["sample"]:
        if nid.startswith("item-"):
            node = after["nodes"][info["sample"].index(nid)]
            assert (node[2] if node else None) == model.base.get(nid), nid


def read_line(proc: subprocess.Popen[bytes], timeout: float) -> bytes:
    result: list[bytes] = []
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: result.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return result[0] if result else b""
