"""Crash safety with real processes (DESIGN.md section 5, "Recovery").

A writer process runs a fixed plan of writes against ``pl.connect(folder,
fsync="always")`` and prints one JSON line per write *after* the call returned (an
acknowledgement).  The parent SIGKILLs it after a random number of acknowledgements,
reads every line the writer managed to print, reopens the folder and checks that each
acknowledged write is there with its acknowledged value.  The one write that may have
been in flight when the signal landed may be present or absent, nothing else.

Synchronisation is only by reading the child's stdout (a reader thread and a queue
with timeouts); every wait is bounded.
"""

from __future__ import annotations

import copy
import json
import random
import signal
import string
from pathlib import Path
from typing import Any

import pytest

import pluresdb_lab as pl
from pluresdb_lab import errors
from tests.engine.crashkit import (
    LINE_TIMEOUT,
    STARTUP_TIMEOUT,
    Spawner,
    check_recovery_report,
    db_state,
)

N_TRIALS = 24
PLAN_LEN = 260

CHILD_SCRIPT = r"""
import json
import sys

import pluresdb_lab as pl


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


mode, folder = sys.argv[1], sys.argv[2]

if mode == "write":
    with open(sys.argv[3]) as f:
        plan = json.load(f)
    db = pl.connect(folder, fsync="always")
    emit({"ready": True})
    for i, op in enumerate(plan):
        kind = op["kind"]
        if kind == "put":
            ret = dict(db.put(op["id"], op["data"]).data)
        elif kind == "put_many":
            ret = db.put_many(op["records"])
        elif kind == "delete":
            ret = db.delete(op["id"])
        else:
            raise SystemExit("bad op " + kind)
        emit({"i": i, "kind": kind, "ret": ret})
    emit({"done": True})
    sys.stdin.read()  # keep the database open until killed / stdin closed
elif mode == "hold":
    db = pl.connect(folder, fsync="always")
    db.put("held-by-child", {"v": 1})
    emit({"ready": True})
    sys.stdin.read()  # parent closes stdin to release
    db.close()
    emit({"closed": True})
elif mode == "try":
    try:
        db = pl.connect(folder)
    except Exception as exc:
        emit({"error": type(exc).__name__, "msg": str(exc)})
    else:
        db.close()
        emit({"ok": True})
else:
    raise SystemExit("bad mode " + mode)
"""


# --------------------------------------------------------------------------- child handling


@pytest.fixture
def spawn(tmp_path: Path):
    spawner = Spawner(CHILD_SCRIPT, tmp_path)
    yield spawner
    spawner.close()


# --------------------------------------------------------------------------- plans and model

INT_FIELDS = ["a", "c"]
STR_FIELDS = ["b", "d"]
ALPHABET = string.ascii_letters + string.digits + " _-éß日本"


def rand_value(rng: random.Random, field: str) -> Any:
    if field in INT_FIELDS:
        return rng.randint(-(10**9), 10**9)
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 24)))


def rand_fields(rng: random.Random, k: int | None = None) -> list[str]:
    fields = INT_FIELDS + STR_FIELDS
    return sorted(rng.sample(fields, k if k is not None else rng.randint(1, len(fields))))


def apply_model(model: dict[str, dict[str, Any]], op: dict[str, Any]) -> None:
    kind = op["kind"]
    if kind == "put":
        data = dict(model.get(op["id"], {}))
        for k, v in op["data"].items():
            if v is None:
                data.pop(k, None)
            else:
                data[k] = v
        model[op["id"]] = data
    elif kind == "put_many":
        for rec in op["records"]:
            model[rec["id"]] = {k: v for k, v in rec.items() if k != "id" and v is not None}
    elif kind == "delete":
        model.pop(op["id"], None)


def touched_ids(op: dict[str, Any]) -> set[str]:
    if op["kind"] == "put_many":
        return {r["id"] for r in op["records"]}
    return {op["id"]}


def make_plan(
    rng: random.Random, n_ops: int
) -> tuple[list[dict[str, Any]], list[dict[str, dict[str, Any]]], list[Any]]:
    """Returns (plan, states, expected_returns); states[i] is the state after i ops."""
    model: dict[str, dict[str, Any]] = {}
    deleted: set[str] = set()
    next_id = 0
    plan: list[dict[str, Any]] = []
    states = [{}]
    rets: list[Any] = []

    def fresh() -> str:
        nonlocal next_id
        next_id += 1
        return f"node-{next_id:05d}"

    for _ in range(n_ops):
        live = sorted(model)
        r = rng.random()
        if r < 0.30 or not live:
            op = {"kind": "put", "id": fresh()}
            op["data"] = {f: rand_value(rng, f) for f in rand_fields(rng)}
        elif r < 0.58:
            nid = rng.choice(live)
            patch: dict[str, Any] = {}
            for f in rand_fields(rng):
                patch[f] = None if rng.random() < 0.25 else rand_value(rng, f)
            after = {k: v for k, v in {**model[nid], **patch}.items() if v is not None}
            if not after:  # never leave a node with no fields at all
                f = rng.choice(INT_FIELDS)
                patch[f] = rand_value(rng, f)
            op = {"kind": "put", "id": nid, "data": patch}
        elif r < 0.72:
            keys = rand_fields(rng)
            op = {
                "kind": "put_many",
                "records": [
                    {"id": fresh(), **{f: rand_value(rng, f) for f in keys}}
                    for _ in range(rng.randint(2, 6))
                ],
            }
        elif r < 0.86:
            op = {"kind": "delete", "id": rng.choice(live)}
        elif r < 0.95 and deleted:
            # resurrect: a put on a deleted id keeps only the new fields
            nid = rng.choice(sorted(deleted))
            op = {"kind": "put", "id": nid}
            op["data"] = {f: rand_value(rng, f) for f in rand_fields(rng)}
        else:
            op = {"kind": "delete", "id": rng.choice(sorted(deleted)) if deleted else "never"}

        was_live = op.get("id") in model
        apply_model(model, op)
        if op["kind"] == "delete":
            deleted.add(op["id"])
            rets.append(was_live)
        elif op["kind"] == "put":
            deleted.discard(op["id"])
            rets.append(dict(model[op["id"]]))
        else:
            rets.append(len(op["records"]))
        plan.append(op)
        states.append(copy.deepcopy(model))
    return plan, states, rets


def segment_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.arrow") if p.is_file())


def wal_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.log") if p.is_file())


# --------------------------------------------------------------------------- SIGKILL trials


def kill_point(rng: random.Random) -> int:
    bucket = rng.random()
    if bucket < 0.1:
        return 0  # right after the database opened
    if bucket < 0.3:
        return rng.randint(1, 5)
    if bucket < 0.8:
        return rng.randint(6, 80)
    return rng.randint(81, 200)


@pytest.mark.parametrize("seed", range(N_TRIALS))
def test_sigkill_keeps_every_acknowledged_write(tmp_path: Path, spawn, seed: int) -> None:
    rng = random.Random(1000 + seed)
    plan, states, rets = make_plan(rng, PLAN_LEN)
    k = kill_point(rng)
    folder = tmp_path / "db"
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(plan))

    child = spawn("write", str(folder), str(plan_path))
    assert child.read(STARTUP_TIMEOUT) == {"ready": True}
    acks = [child.read() for _ in range(k)]
    acks += child.kill_and_drain()
    acks = [a for a in acks if "i" in a]  # drop a possible {"done": true}
    assert child.proc.returncode == -signal.SIGKILL

    m = len(acks)
    assert [a["i"] for a in acks] == list(range(m)), "acks must be consecutive"
    for a in acks:
        assert a["kind"] == plan[a["i"]]["kind"]
        assert a["ret"] == rets[a["i"]], f"op {a['i']} {plan[a['i']]} returned {a['ret']}"

    acked = states[m]
    in_flight = touched_ids(plan[m]) if m < len(plan) else set()
    maybe = states[m + 1] if m < len(plan) else acked

    with pl.connect(folder, fsync="always") as db:
        check_recovery_report(db)
        if m > 0 and not segment_files(folder):
            assert db.recovery.replayed_records >= 1, "data came from nowhere but the WAL"
        got = db_state(db)
        for nid in sorted(set(got) | set(acked) | set(maybe)):
            actual = got.get(nid)
            if nid in in_flight:
                assert actual in (acked.get(nid), maybe.get(nid)), (
                    f"{nid}: {actual!r} is neither before nor after in-flight op {plan[m]}"
                )
            else:
                assert actual == acked.get(nid), (
                    f"{nid}: acknowledged {acked.get(nid)!r}, found {actual!r} "
                    f"(killed after {m} acks, seed {seed})"
                )
        # get() agrees with list()
        sample = sorted(got)[:50]
        for nid, node in zip(sample, db.get_many(sample), strict=True):
            assert node is not None
            assert node.id == nid
            assert node.data == got[nid]
            assert db.get(nid).data == got[nid]

        # The recovered database takes new writes ...
        expected = dict(got)
        db.put("after-crash", {"a": 1, "b": "new"})
        expected["after-crash"] = {"a": 1, "b": "new"}
        if got:
            victim = sorted(got)[len(got) // 2]
            db.put(victim, {"c": 424242})
            expected[victim] = {**expected[victim], "c": 424242}
            gone = sorted(got)[0]
            if gone != victim:
                assert db.delete(gone) is True
                del expected[gone]
        assert db_state(db) == expected

    # ... and they survive a clean reopen.
    with pl.connect(folder) as db:
        check_recovery_report(db)
        assert db.recovery.torn_bytes == 0
        assert db_state(db) == expected


# --------------------------------------------------------------------------- torn / garbled WAL


def write_then_kill(spawn, tmp_path: Path, blob: str) -> tuple[Path, dict[str, dict[str, Any]]]:
    """30 small fsynced writes and one big last one; SIGKILL after all are acknowledged."""
    rng = random.Random(7)
    plan = [
        {"kind": "put", "id": f"small-{i:03d}", "data": {"a": i, "b": rand_value(rng, "b")}}
        for i in range(30)
    ]
    plan.append({"kind": "put", "id": "big", "data": {"b": blob}})
    model: dict[str, dict[str, Any]] = {}
    for op in plan[:-1]:
        apply_model(model, op)
    folder = tmp_path / "db"
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(plan))
    child = spawn("write", str(folder), str(plan_path))
    assert child.read(STARTUP_TIMEOUT) == {"ready": True}
    for i in range(len(plan)):
        assert child.read()["i"] == i
    assert child.read() == {"done": True}
    child.kill_and_drain()
    return folder, model


def last_wal(folder: Path, blob: str) -> Path:
    wals = [p for p in wal_files(folder) if p.stat().st_size > 0]
    assert wals, f"no WAL (*.log) file under {folder}: {sorted(folder.rglob('*'))}"
    needle = blob.encode()[:200]
    holding = [p for p in wals if needle in p.read_bytes()]
    if holding:
        return holding[-1]
    return max(wals, key=lambda p: (p.stat().st_mtime_ns, p.name))


@pytest.mark.parametrize(
    ("damage", "amount"),
    [("truncate", 7), ("truncate", 2000), ("garble_tail", 16), ("garble_middle", 16)],
)
def test_damaged_wal_tail_is_cut_off_and_reported(
    tmp_path: Path, spawn, damage: str, amount: int
) -> None:
    rng = random.Random(damage + str(amount))
    blob = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(6000))
    folder, model = write_then_kill(spawn, tmp_path, blob)
    wal = last_wal(folder, blob)
    raw = bytearray(wal.read_bytes())
    size = len(raw)
    assert size > 6000, f"{wal} is only {size} bytes but holds a 6000-byte value"
    if damage == "truncate":
        with open(wal, "r+b") as f:
            f.truncate(size - amount)
    else:
        start = size - amount if damage == "garble_tail" else size - 3000
        for j in range(start, start + amount):
            raw[j] ^= 0x5A
        wal.write_bytes(bytes(raw))

    with pl.connect(folder, fsync="always") as db:
        check_recovery_report(db)
        assert db.recovery.torn_bytes > 0, f"{damage} of {wal.name} was not reported"
        assert db.recovery.torn_bytes <= size
        got = db_state(db)
        assert db.get("big") is None, "a torn record must not be applied"
        assert got == model, "records before the torn one must all be there"
        db.put("after-recovery", {"a": 99})
        db.put("small-000", {"b": "updated"})
        model["after-recovery"] = {"a": 99}
        model["small-000"] = {**model["small-000"], "b": "updated"}

    # The torn tail was cut off: new records after it survive and nothing is torn now.
    with pl.connect(folder) as db:
        check_recovery_report(db)
        assert db.recovery.torn_bytes == 0
        assert db_state(db) == model


# --------------------------------------------------------------------------- corrupt segment


def corrupt_a_segment(folder: Path, where: str) -> tuple[Path, bytes]:
    with pl.connect(folder) as db:
        db.put_many(
            [{"id": f"seg-{i:05d}", "a": i, "b": f"value {i}"} for i in range(2000)], type="row"
        )
        db.flush()
        db.put("later", {"a": 1})
        db.flush()
    segs = segment_files(folder)
    assert segs, f"no segment (*.arrow) file after flush(): {sorted(folder.rglob('*'))}"
    seg = max(segs, key=lambda p: p.stat().st_size)
    raw = bytearray(seg.read_bytes())
    pos = {"start": 0, "middle": len(raw) // 2, "end": len(raw) - 1}[where]
    raw[pos] ^= 0xFF
    seg.write_bytes(bytes(raw))
    return seg, bytes(raw)


@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_flipped_byte_in_segment_is_a_clear_error(tmp_path: Path, where: str) -> None:
    seg, damaged = corrupt_a_segment(tmp_path / "db", where)
    with pytest.raises(errors.CorruptDatabaseError) as info:
        pl.connect(tmp_path / "db").close()
    assert seg.name in str(info.value), f"message does not name {seg.name}: {info.value}"
    assert isinstance(info.value, errors.PluresDBError)
    assert seg.read_bytes() == damaged, "the corrupt segment was modified or removed"


def test_failed_open_releases_the_lock(tmp_path: Path, spawn) -> None:
    """A connect that raised must not keep the folder locked (same or other process)."""
    folder = tmp_path / "db"
    seg, damaged = corrupt_a_segment(folder, "middle")
    with pytest.raises(errors.CorruptDatabaseError):
        pl.connect(folder)
    other = spawn("try", str(folder))
    reply = other.read(STARTUP_TIMEOUT)
    assert other.proc.wait(timeout=LINE_TIMEOUT) == 0
    assert reply.get("error") == "CorruptDatabaseError", (
        f"another process opening after a failed open got {reply}"
    )
    # and again in this process: still the corruption, not a lock held by nobody
    with pytest.raises(errors.CorruptDatabaseError) as info:
        pl.connect(folder)
    assert seg.name in str(info.value)
    assert seg.read_bytes() == damaged


# --------------------------------------------------------------------------- lock


def test_second_process_gets_database_locked(tmp_path: Path, spawn) -> None:
    folder = tmp_path / "db"
    holder = spawn("hold", str(folder))
    assert holder.read(STARTUP_TIMEOUT) == {"ready": True}

    # This (parent) process is a second process.
    with pytest.raises(errors.DatabaseLockedError):
        pl.connect(folder)
    # So is a third one.
    other = spawn("try", str(folder))
    reply = other.read(STARTUP_TIMEOUT)
    assert reply.get("error") == "DatabaseLockedError", reply
    assert other.proc.wait(timeout=LINE_TIMEOUT) == 0

    # Releasing the lock (clean close) lets others in.
    assert holder.proc.stdin is not None
    holder.proc.stdin.close()
    assert holder.read() == {"closed": True}
    assert holder.proc.wait(timeout=LINE_TIMEOUT) == 0

    with pl.connect(folder) as db:
        assert db.get("held-by-child").data == {"v": 1}
        other = spawn("try", str(folder))
        reply = other.read(STARTUP_TIMEOUT)
        assert reply.get("error") == "DatabaseLockedError", reply
        assert other.proc.wait(timeout=LINE_TIMEOUT) == 0
    other = spawn("try", str(folder))
    assert other.read(STARTUP_TIMEOUT) == {"ok": True}
    assert other.proc.wait(timeout=LINE_TIMEOUT) == 0


def test_lock_of_a_killed_process_is_released(tmp_path: Path, spawn) -> None:
    folder = tmp_path / "db"
    holder = spawn("hold", str(folder))
    assert holder.read(STARTUP_TIMEOUT) == {"ready": True}
    with pytest.raises(errors.DatabaseLockedError):
        pl.connect(folder)
    holder.kill_and_drain()
    with pl.connect(folder) as db:
        assert db.get("held-by-child").data == {"v": 1}
