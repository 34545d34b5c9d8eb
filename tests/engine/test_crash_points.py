"""Crash at every point of a call: all-or-nothing and no acknowledged write lost.

For each scenario, crashpoint_child.py makes acknowledged writes, then runs one call
(a put_many that creates many nodes and updates others, the same as an import, a
cascading delete, a compaction) and SIGKILLs itself at its 1st, 2nd, ... file-system
call, until the call completes before the kill. After each kill the folder is
reopened: it must open, hold every write acknowledged before the call, hold the call's
effects wholly or not at all, and its version vector must claim no op it cannot send
(a fresh replica fed `ops_since({})` ends equal).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import pluresdb_lab as pl

CHILD = Path(__file__).with_name("crashpoint_child.py")
MAX_POINTS = 200  # far above what any scenario makes; reaching it is a failure
BULK = 1100
EXISTING = [f"old-{i}" for i in range(10)]


def run_child(scenario: str, folder: Path, at: int) -> int | None:
    """Run the scenario killed at call `at`; the call count when it finished first."""
    done = subprocess.run(
        [sys.executable, str(CHILD), scenario, str(folder), str(at)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == -9, f"child failed at point {at}:\n{done.stderr[-3000:]}"
    if done.stdout.startswith("calls "):
        return int(done.stdout.split()[1])
    return None


def nodes(db: Any) -> dict[str, dict[str, Any]]:
    return {n.id: dict(n.data) for n in db.list(limit=1_000_000)}


def check_replayable(db: Any) -> None:
    """Every op the version vector counts can be sent to a fresh replica."""
    replica = pl.connect(":memory:")
    try:
        replica.apply_ops(db.ops_since({}))
        assert replica.version_vector() == db.version_vector()
        assert nodes(replica) == nodes(db)
    finally:
        replica.close()


def bulk_outcome(found: dict[str, dict[str, Any]]) -> str:
    new = [f"new-{i}" for i in range(BULK)]
    if all(found[node_id] == {"v": 0} for node_id in EXISTING) and not any(
        node_id in found for node_id in new
    ):
        return "before"
    assert all(found[node_id] == {"v": -1, "updated": True} for node_id in EXISTING), (
        "the updates of the call are partly or wholly missing"
    )
    assert all(found.get(f"new-{i}") == {"v": i} for i in range(BULK)), (
        "the new nodes of the call are partly or wholly missing"
    )
    return "after"


def delete_outcome(db: Any, found: dict[str, dict[str, Any]]) -> str:
    edges = db.neighbors("hub", direction="both") if "hub" in found else []
    if "hub" in found:
        assert {n.id for n in edges} == {"old-1", "old-2"}, "an edge went without its node"
        return "before"
    assert not db.neighbors("old-1", direction="both"), "an edge outlived its node"
    assert not db.neighbors("old-2", direction="both"), "an edge outlived its node"
    return "after"


def compaction_outcome(found: dict[str, dict[str, Any]]) -> str:
    for node_id, data in {"a": {"v": 2}, "b": {"v": 1}, "c": {"v": 1}}.items():
        assert found.get(node_id) == data, f"acknowledged write to {node_id!r} lost"
    assert sum(node_id.startswith(("fill-", "more-")) for node_id in found) == 2 * BULK
    return "same"


@pytest.mark.parametrize(
    "scenario", ["bulk-with-updates", "import-with-updates", "cascading-delete", "compaction"]
)
def test_a_crash_at_any_point_keeps_the_call_whole(tmp_path: Path, scenario: str) -> None:
    outcomes: list[str] = []
    for at in range(1, MAX_POINTS):
        folder = tmp_path / f"db-{at}"
        finished = run_child(scenario, folder, at)
        with pl.connect(folder) as db:
            found = nodes(db)
            assert all(found[node_id]["v"] in (0, -1) for node_id in EXISTING), (
                f"killed at call {at}: a write acknowledged before the call is lost"
            )
            if scenario == "cascading-delete":
                outcomes.append(delete_outcome(db, found))
            elif scenario == "compaction":
                outcomes.append(compaction_outcome(found))
            else:
                outcomes.append(bulk_outcome(found))
            check_replayable(db)
        if finished is not None:
            assert outcomes[-1] in ("after", "same"), "the completed call left nothing"
            assert finished >= 2, "the call made too few file-system calls to test"
            break
    else:
        pytest.fail(f"{scenario} did not finish within {MAX_POINTS} crash points")
