"""SIGKILL at random moments under mixed load (issue #11).

A writer process runs a seeded plan against ``pl.connect(folder, fsync="always")`` with
automatic compaction on and ``MEMTABLE_ROWS`` lowered, so flushes and compactions are
frequent: puts (new nodes, updates, field deletes, resurrections), small and bulk
``put_many`` (a bulk one creates >= 1024 nodes and updates existing ones in the same
call), deletes (plain, and of nodes with edges: cascading), link/unlink, ``compact()``
and ``compact(level=0)``, full and incremental backups, ``import_file`` of CSV and
NDJSON files written beforehand (small, and bulk with updates) and history restores.
It prints one JSON line per call after the call returned (the acknowledgement).

The parent SIGKILLs it after some acknowledgement plus a random delay, so kills land
inside long calls too, reopens the folder and checks:

- opening never fails;
- the database holds exactly the state after the acknowledged calls, or exactly the
  state after the one call that was in flight: never a part of it (put_many, import,
  cascading delete are all or nothing);
- ``history`` of every node equals the model's (versions 1..n, the last one current);
- the version vector claims no op that is not stored: a fresh database that applies
  ``ops_since({})`` ends with the same nodes and the same version vector;
- every complete backup verifies, an acknowledged one is complete, and the newest
  acknowledged one restores to the state at the moment it was taken;
- the recovered database takes writes that survive a clean reopen.

``make test`` runs N_TRIALS seeds; ``make soak`` sets PLURESDB_SOAK_TRIALS to thousands.
A failure names its seed and plan position; PLURESDB_CRASH_SEED=<seed> runs that seed
alone (the plan and the kill point are the seed's; the exact moment depends on timing).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import random
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import pluresdb_lab as pl
from pluresdb_lab.engine._database import edge_id  # plans need edge ids ahead of the run
from tests.engine.crashkit import (
    STARTUP_TIMEOUT,
    Spawner,
    check_recovery_report,
    db_state,
)

N_TRIALS = int(os.environ.get("PLURESDB_SOAK_TRIALS", "30"))
ONLY_SEED = os.environ.get("PLURESDB_CRASH_SEED")
SEEDS = [int(ONLY_SEED)] if ONLY_SEED else list(range(N_TRIALS))
PLAN_LEN = 220
BULK = 1024  # the engine's BULK_ROWS: this many new ids make their own segment
EDGE = "_edge"
INT_FIELDS = ("a", "c")
STR_FIELDS = ("b", "d")
FIELDS = INT_FIELDS + STR_FIELDS
LABELS = ("knows", "cites", "likes")
HEAVY = {"put_many", "import", "compact", "backup"}

CHILD_SCRIPT = r"""
import json
import os
import sys
import time

import pluresdb_lab as pl
import pluresdb_lab.engine._store as store


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


folder, plan_path, backups, imports = sys.argv[1:5]
with open(plan_path) as f:
    spec = json.load(f)
store.MEMTABLE_ROWS = spec["memtable_rows"]  # frequent flushes and auto compactions
db = pl.connect(folder, fsync="always")
emit({"ready": True})
for i, op in enumerate(spec["plan"]):
    kind = op["kind"]
    extra = {}
    started = time.perf_counter()
    if kind == "put":
        ret = dict(db.put(op["id"], op["data"]).data)
    elif kind == "put_many":
        ret = db.put_many(op["records"])
    elif kind == "delete":
        ret = db.delete(op["id"])
    elif kind == "link":
        ret = dict(db.link(op["src"], op["dst"], op["label"], op["data"]).data)
    elif kind == "unlink":
        ret = db.unlink(op["src"], op["dst"], op["label"])
    elif kind == "restore":
        ret = dict(db.restore(op["id"], op["version"]).data)
    elif kind == "compact":
        db.compact(level=op["level"])
        ret = None
    elif kind == "backup":
        b = db.backup(backups, incremental=op["incremental"])
        ret = {"nodes": b.nodes}
        extra = {"path": str(b.path)}
    elif kind == "import":
        ret = db.import_file(os.path.join(imports, op["file"]), id_field="id")
    else:
        raise SystemExit("bad op " + kind)
    ms = round((time.perf_counter() - started) * 1000, 2)
    emit({"i": i, "kind": kind, "ret": ret, "ms": ms, **extra})
emit({"done": True})
sys.stdin.read()  # keep the database open until killed
"""


# --------------------------------------------------------------------------- the model


@dataclass
class Rec:
    """One node as the model sees it; `versions` are (deleted, data) of versions 1..n."""

    type: str | None
    data: dict[str, Any] = field(default_factory=dict)
    exists: bool = False
    versions: list[tuple[bool, dict[str, Any]]] = field(default_factory=list)


class Model:
    """What the database must hold after a prefix of the plan, and what each call returns."""

    def __init__(self) -> None:
        self.nodes: dict[str, Rec] = {}
        self.adjacent: dict[str, dict[str, None]] = {}  # node -> its live edges (ordered)

    def visible(self) -> dict[str, dict[str, Any]]:
        return {nid: dict(r.data) for nid, r in self.nodes.items() if r.exists}

    def history(self, nid: str) -> list[tuple[int, bool, dict[str, Any]]]:
        return [(v, d, data) for v, (d, data) in enumerate(self.nodes[nid].versions, 1)]

    def types(self) -> dict[str | None, int]:
        counts: dict[str | None, int] = {}
        for rec in self.nodes.values():
            if rec.exists:
                counts[rec.type] = counts.get(rec.type, 0) + 1
        return counts

    def edges_of(self, nid: str) -> list[str]:
        return sorted(self.adjacent.get(nid, ()))

    def _write(self, nid: str, type_: str | None, data: dict[str, Any], exists: bool) -> None:
        rec = self.nodes.setdefault(nid, Rec(type_))
        if rec.type == EDGE:
            if rec.exists:
                for end in (rec.data["from"], rec.data["to"]):
                    self.adjacent[end].pop(nid, None)
            if exists:
                for end in (data["from"], data["to"]):
                    self.adjacent.setdefault(end, {})[nid] = None
        # a version is made only when what readers see changes
        if not rec.versions or (rec.exists, rec.data) != (exists, data):
            rec.versions.append((not exists, dict(data)))
        rec.exists, rec.data = exists, dict(data)

    def _patch(self, nid: str, patch: dict[str, Any], type_: str | None = None) -> dict[str, Any]:
        rec = self.nodes.get(nid)
        base = dict(rec.data) if rec is not None and rec.exists else {}  # a deleted node restarts
        for k, v in patch.items():
            if v is None:
                base.pop(k, None)
            else:
                base[k] = v
        self._write(nid, type_, base, True)
        return base

    def _delete(self, nid: str) -> bool:
        rec = self.nodes.get(nid)
        if rec is None or not rec.exists:
            return False
        if rec.type != EDGE:
            for eid in self.edges_of(nid):
                self._write(eid, EDGE, {}, False)
        self._write(nid, rec.type, {}, False)
        return True

    def apply(self, op: dict[str, Any]) -> Any:
        """Apply one plan op; returns what the call returns (as the child prints it)."""
        kind = op["kind"]
        if kind == "put":
            return self._patch(op["id"], op["data"])
        if kind in ("put_many", "import"):
            for record in op["records"]:
                self._patch(record["id"], {k: v for k, v in record.items() if k != "id"})
            return len(op["records"])
        if kind == "delete":
            return self._delete(op["id"])
        if kind == "link":
            ends = {"from": op["src"], "to": op["dst"], "label": op["label"]}
            return self._patch(op["eid"], {**ends, **op["data"]}, EDGE)
        if kind == "unlink":
            return self._delete(op["eid"])
        if kind == "restore":
            deleted, data = self.nodes[op["id"]].versions[op["version"] - 1]
            if deleted:
                self._delete(op["id"])
                return {}
            self._write(op["id"], None, data, True)
            return dict(data)
        if kind == "compact":
            return None
        if kind == "backup":
            return {"nodes": sum(1 for r in self.nodes.values() if r.exists)}
        raise AssertionError(f"unknown op {kind}")


def replay(plan: list[dict[str, Any]], n: int) -> Model:
    model = Model()
    for op in plan[:n]:
        model.apply(op)
    return model


# --------------------------------------------------------------------------- plans


def rand_int(rng: random.Random) -> int:
    return rng.randint(-(10**9), 10**9)


def rand_str(rng: random.Random) -> str:
    # letters and digits after "s-": CSV and NDJSON read them back as strings, never
    # as numbers, booleans or nulls ("NA", "null", "")
    return "s-" + format(rng.getrandbits(rng.choice((8, 24, 48))), "x")


def rand_value(rng: random.Random, f: str) -> Any:
    return rand_int(rng) if f in INT_FIELDS else rand_str(rng)


def new_fields(rng: random.Random) -> dict[str, Any]:
    return {f: rand_value(rng, f) for f in sorted(rng.sample(FIELDS, rng.randint(1, 4)))}


class Planner:
    """Builds a plan with a model of its own, so every op is valid where it is placed."""

    def __init__(self, rng: random.Random, imports: Path) -> None:
        self.rng = rng
        self.imports = imports
        self.model = Model()
        self.plan: list[dict[str, Any]] = []
        self.next_id = 0
        self.backups = 0

    def fresh(self) -> str:
        self.next_id += 1
        return f"n{self.next_id:06d}"

    def plain(self, *, live: bool = True) -> list[str]:
        return [nid for nid, r in self.model.nodes.items() if r.type is None and r.exists == live]

    def update_patch(self, nid: str, p_delete: float = 0.25) -> dict[str, Any]:
        """A merge-patch for a live node, with field deletes, never leaving it empty."""
        current = self.model.nodes[nid].data
        patch: dict[str, Any] = {}
        for f in sorted(self.rng.sample(FIELDS, self.rng.randint(1, 4))):
            patch[f] = None if self.rng.random() < p_delete else rand_value(self.rng, f)
        if not {k: v for k, v in {**current, **patch}.items() if v is not None}:
            patch["a"] = rand_int(self.rng)
        return patch

    def add(self, op: dict[str, Any]) -> None:
        self.model.apply(op)
        self.plan.append(op)

    # ---- one generator per kind; None when it does not apply here

    def put_new(self) -> dict[str, Any]:
        return {"kind": "put", "id": self.fresh(), "data": new_fields(self.rng)}

    def put_update(self) -> dict[str, Any] | None:
        live = self.plain()
        if not live:
            return None
        nid = self.rng.choice(live)
        return {"kind": "put", "id": nid, "data": self.update_patch(nid)}

    def put_resurrect(self) -> dict[str, Any] | None:
        dead = self.plain(live=False)
        if not dead:
            return None
        return {"kind": "put", "id": self.rng.choice(dead), "data": new_fields(self.rng)}

    def records(self, n_new: int, n_update: int) -> list[dict[str, Any]]:
        live = self.plain()
        updates = self.rng.sample(live, min(n_update, len(live)))
        recs = [{"id": nid, **self.update_patch(nid)} for nid in updates]
        recs += [{"id": self.fresh(), **new_fields(self.rng)} for _ in range(n_new)]
        self.rng.shuffle(recs)
        return recs

    def put_many_small(self) -> dict[str, Any]:
        return {
            "kind": "put_many",
            "records": self.records(self.rng.randint(0, 5), self.rng.randint(1, 4)),
        }

    def put_many_bulk(self) -> dict[str, Any]:
        # new ids past the bulk threshold plus updates of existing ids, in ONE call
        n_new = BULK + self.rng.randint(0, 200)
        return {"kind": "put_many", "records": self.records(n_new, self.rng.randint(5, 300))}

    def delete(self, *, with_edges: bool) -> dict[str, Any] | None:
        live = self.plain()
        if with_edges:
            degree = {nid: len(self.model.edges_of(nid)) for nid in live}
            live = sorted((n for n in live if degree[n]), key=lambda n: -degree[n])[:5]
        if not live:
            return None
        nid = self.rng.choice(live)
        return {"kind": "delete", "id": nid, "edges": len(self.model.edges_of(nid))}

    def link_burst(self) -> list[dict[str, Any]]:
        """Links from one node to several (a hub, whose delete then cascades widely)."""
        live = self.plain()
        if len(live) < 2:
            return []
        src = self.rng.choice(live)
        label = self.rng.choice(LABELS)
        n = self.rng.choice((1, 1, 2, 8, 20))
        ops = []
        for dst in self.rng.sample([x for x in live if x != src], min(n, len(live) - 1)):
            src_, dst_ = (src, dst) if self.rng.random() < 0.8 else (dst, src)
            data = {"w": rand_int(self.rng)} if self.rng.random() < 0.5 else {}
            ops.append(
                {
                    "kind": "link",
                    "src": src_,
                    "dst": dst_,
                    "label": label,
                    "data": data,
                    "eid": edge_id(src_, dst_, label),
                }
            )
        return ops

    def unlink(self) -> dict[str, Any] | None:
        edges = [eid for eid, r in self.model.nodes.items() if r.type == EDGE and r.exists]
        if not edges:
            return None
        eid = self.rng.choice(edges)
        d = self.model.nodes[eid].data
        return {"kind": "unlink", "src": d["from"], "dst": d["to"], "label": d["label"], "eid": eid}

    def restore(self) -> dict[str, Any] | None:
        ids = [
            nid for nid, r in self.model.nodes.items() if r.type is None and len(r.versions) >= 2
        ]
        if not ids:
            return None
        nid = self.rng.choice(ids)
        rec = self.model.nodes[nid]
        choices = [
            v
            for v, (deleted, _) in enumerate(rec.versions[:-1], 1)
            if rec.exists or not deleted  # restoring a deleted node to "deleted": no-op
        ]
        if not choices:
            return None
        return {"kind": "restore", "id": nid, "version": self.rng.choice(choices)}

    def import_file(self, *, bulk: bool) -> dict[str, Any]:
        fmt = self.rng.choice(("csv", "ndjson"))
        n_new = BULK + self.rng.randint(0, 100) if bulk else self.rng.randint(1, 15)
        n_update = min(
            len(self.plain()), self.rng.randint(5, 200) if bulk else self.rng.randint(0, 5)
        )
        # a file has every field in every row: missing (None) deletes it from an existing
        # node and is left out of a new one; each column needs one value for its type
        rows = [self.import_row(nid) for nid in self.rng.sample(self.plain(), n_update)]
        rows += [self.import_row(self.fresh()) for _ in range(n_new)]
        rows.append({"id": self.fresh(), **{f: rand_value(self.rng, f) for f in FIELDS}})
        self.rng.shuffle(rows)
        name = f"import-{len(self.plan):04d}.{fmt}"
        path = self.imports / name
        if fmt == "csv":
            with open(path, "w", newline="", encoding="utf-8") as f:
                writer = csv.writer(f)
                writer.writerow(["id", *FIELDS])
                for row in rows:
                    writer.writerow(
                        [row["id"], *("" if row[k] is None else row[k] for k in FIELDS)]
                    )
        else:
            with open(path, "w", encoding="utf-8") as f:
                for row in rows:
                    # a missing key and an explicit null both read as null
                    if self.rng.random() < 0.5:
                        row = {k: v for k, v in row.items() if v is not None}
                    f.write(json.dumps(row) + "\n")
        return {"kind": "import", "file": name, "records": rows}

    def import_row(self, nid: str) -> dict[str, Any]:
        """A file row for `nid`: per field keep (repeat), change or delete; never empty."""
        rec = self.model.nodes.get(nid)
        current = rec.data if rec is not None and rec.exists else {}
        row: dict[str, Any] = {"id": nid}
        for f in FIELDS:
            r = self.rng.random()
            if r < 0.4 and f in current:
                row[f] = current[f]
            elif r < 0.75:
                row[f] = rand_value(self.rng, f)
            else:
                row[f] = None
        if all(row[f] is None for f in FIELDS):
            row["c"] = rand_int(self.rng)
        return row

    def build(self, n_ops: int) -> list[dict[str, Any]]:
        rng = self.rng
        while len(self.plan) < n_ops:
            r = rng.random()
            ops: list[dict[str, Any] | None]
            if r < 0.16:
                ops = [self.put_new()]
            elif r < 0.34:
                ops = [self.put_update()]
            elif r < 0.37:
                ops = [self.put_resurrect()]
            elif r < 0.45:
                ops = [self.put_many_small()]
            elif r < 0.49:
                ops = [self.put_many_bulk()]
            elif r < 0.54:
                ops = [self.delete(with_edges=False)]
            elif r < 0.59:
                ops = [self.delete(with_edges=True)]
            elif r < 0.70:
                ops = list(self.link_burst())
            elif r < 0.73:
                ops = [self.unlink()]
            elif r < 0.78:
                ops = [self.restore()]
            elif r < 0.84:
                ops = [{"kind": "compact", "level": 0}]
            elif r < 0.86:
                ops = [{"kind": "compact", "level": None}]
            elif r < 0.89:
                ops = [{"kind": "backup", "incremental": self.backups > 0 and rng.random() < 0.5}]
                self.backups += 1
            elif r < 0.92:
                ops = [self.import_file(bulk=False)]
            elif r < 0.95:
                ops = [self.import_file(bulk=True)]
            else:
                ops = [self.put_new()]
            for op in ops:
                if op is not None:
                    self.add(op)
        return self.plan


def kill_point(rng: random.Random, plan: list[dict[str, Any]]) -> tuple[int, float]:
    """(acks to wait for, seconds to wait after them): half the time just before a long
    call, with a delay about as long as such a call takes (compaction, backup, bulk
    writes and imports take milliseconds; a cascading delete a fraction of one), so the
    kill lands inside it."""
    r = rng.random()
    if r < 0.05:
        return 0, rng.uniform(0, 0.3)  # while the first calls run
    long_calls = [i for i, op in enumerate(plan) if op["kind"] in HEAVY or op.get("edges", 0) >= 3]
    if r < 0.55 and long_calls:
        i = rng.choice(long_calls)
        return i, rng.uniform(0, 0.003 if plan[i]["kind"] == "delete" else 0.03)
    return rng.randint(1, len(plan)), rng.choice((0.0, rng.uniform(0, 0.01)))


def describe(op: dict[str, Any]) -> str:
    """An op, with long record lists cut short."""
    shown = {k: v for k, v in op.items() if k != "records"}
    if "records" in op:
        shown["records"] = f"<{len(op['records'])} records>"
    return json.dumps(shown)[:300]


def diff(got: dict[str, Any], want: dict[str, Any], limit: int = 6) -> str:
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    changed = sorted(k for k in set(got) & set(want) if got[k] != want[k])
    parts = [f"{len(missing)} missing {missing[:limit]}", f"{len(extra)} extra {extra[:limit]}"]
    parts += [f"{k}: want {want[k]} got {got[k]}" for k in changed[:limit]]
    return f"{len(changed)} changed; " + "; ".join(parts)


# --------------------------------------------------------------------------- the trials


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawner]:
    spawner = Spawner(CHILD_SCRIPT, tmp_path)
    yield spawner
    spawner.close()


@contextlib.contextmanager
def replayable(where: str) -> Iterator[None]:
    """Whatever fails inside also says which seed and plan position, and how to replay."""
    try:
        yield
    except (Exception, pytest.fail.Exception) as exc:
        pytest.fail(f"{type(exc).__name__}: {exc}\n{where}")


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed{s}")
def test_sigkill_under_mixed_load(tmp_path: Path, spawn: Spawner, seed: int) -> None:
    rng = random.Random(f"crash-mixed-{seed}")
    imports = tmp_path / "imports"
    imports.mkdir()
    plan = Planner(rng, imports).build(PLAN_LEN)
    memtable_rows = rng.choice((16, 64, 256))
    target, delay = kill_point(rng, plan)
    folder, backups = tmp_path / "db", tmp_path / "backups"
    spec_path = tmp_path / "plan.json"
    spec_path.write_text(json.dumps({"memtable_rows": memtable_rows, "plan": plan}))

    child = spawn(str(folder), str(spec_path), str(backups), str(imports))
    assert child.read(STARTUP_TIMEOUT) == {"ready": True}
    acks: list[dict[str, Any]] = []
    while len(acks) < target:
        line = child.read()
        if "done" in line:
            break
        acks.append(line)
    if delay:
        time.sleep(delay)  # the experiment: where the kill lands, not synchronisation
    acks += child.kill_and_drain()
    acks = [a for a in acks if "i" in a]  # drop a possible {"done": true}
    assert child.proc.returncode == -signal.SIGKILL, child.stderr_text()

    m = len(acks)
    in_flight = describe(plan[m]) if m < len(plan) else "none (plan done)"
    recent = [(a["i"], a["kind"], a["ms"]) for a in acks[-6:]]
    where = (
        f"seed {seed}: killed after {m} acks (target {target}, +{delay * 1000:.1f} ms, "
        f"memtable_rows {memtable_rows}); in flight: plan[{m}] {in_flight}; last acks "
        f"(i, kind, ms): {recent}. Replay: PLURESDB_CRASH_SEED={seed} "
        ".venv/bin/python -m pytest -q tests/engine/test_crash_mixed.py"
    )
    with replayable(where):
        check_recovered(plan, acks, folder, backups, tmp_path)


def check_recovered(
    plan: list[dict[str, Any]],
    acks: list[dict[str, Any]],
    folder: Path,
    backups: Path,
    tmp_path: Path,
) -> None:
    m = len(acks)
    assert [a["i"] for a in acks] == list(range(m)), "acknowledgements must be consecutive"
    acked = Model()
    for a in acks:
        want = acked.apply(plan[a["i"]])
        assert a["ret"] == want, f"plan[{a['i']}] returned {a['ret']}, not {want}"
    after = replay(plan, m + 1)  # the in-flight call wholly applied
    before_state, after_state = acked.visible(), after.visible()

    try:
        db = pl.connect(folder, fsync="always")
    except Exception as exc:
        raise AssertionError(f"reopening after the kill raised {exc!r}") from exc
    with db:
        check_recovery_report(db)
        got = db_state(db)
        if got == before_state:
            model = acked
        elif got == after_state:
            model = after
        else:
            raise AssertionError(
                "the reopened database is neither the acknowledged state nor that plus the "
                f"in-flight call.\n  vs acknowledged: {diff(got, before_state)}\n  vs with "
                f"the in-flight call: {diff(got, after_state)}"
            )
        assert db.types() == model.types()

        for nid in sorted(model.nodes):
            history = db.history(nid)
            numbers = [v.version for v in history]
            assert numbers == list(range(1, len(numbers) + 1)), f"{nid}: versions {numbers}"
            last = history[-1]
            current = (last.deleted, None if last.deleted else last.data)
            assert current == (nid not in got, got.get(nid)), (
                f"{nid}: last version {last} is not the current node {got.get(nid)}"
            )
            seen = [(v.version, v.deleted, v.data) for v in history]
            assert seen == model.history(nid), f"{nid}: history {seen}"

        # the version vector claims only ops that are stored: a replica built from
        # ops_since({}) holds the same nodes and reaches the same version vector
        vv = db.version_vector()
        with pl.connect(":memory:") as replica:
            replica.apply_ops(db.ops_since({}))
            assert replica.version_vector() == vv, (
                f"version vector {vv} claims ops that ops_since does not hold (a replica "
                f"reached {replica.version_vector()})"
            )
            copied = db_state(replica)
            assert copied == got, f"replica: {diff(copied, got)}"

        check_backups(db, plan, acks, backups, tmp_path)

        db.put("after-crash", {"a": 1, "b": "new"})
        expected = {**got, "after-crash": {"a": 1, "b": "new"}}
        assert db_state(db) == expected

    with pl.connect(folder) as db:
        assert db.recovery.torn_bytes == 0
        again = db_state(db)
        assert again == expected, f"clean reopen: {diff(again, expected)}"


def check_backups(
    db: Any, plan: list[dict[str, Any]], acks: list[dict[str, Any]], backups: Path, tmp_path: Path
) -> None:
    """Every complete backup verifies (acknowledged ones are complete); the newest
    acknowledged one restores to the state of the moment it was taken."""
    acked = {Path(a["path"]): a["i"] for a in acks if a["kind"] == "backup"}
    complete = {b.path for b in db.backups(backups) if b.status == "complete"}
    for path in sorted(acked):
        assert path in complete, f"acknowledged backup {path.name} is not complete"
    for path in sorted(complete):
        result = pl.verify_backup(path)
        assert result.ok, f"backup {path.name} fails verification: {result.problems}"
    if not acked:
        return
    newest = max(acked, key=acked.__getitem__)
    into = pl.restore_backup(newest, tmp_path / "restored")
    want = replay(plan, acked[newest] + 1).visible()
    with pl.connect(into) as restored:
        got = db_state(restored)
    assert got == want, f"backup {newest.name} of plan[{acked[newest]}]: {diff(got, want)}"
