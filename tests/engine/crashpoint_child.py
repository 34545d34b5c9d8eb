"""The writer of test_crash_points: sets a scenario up in a folder, then runs the
scenario's one call with the N-th file-system call it makes replaced by SIGKILL.

Usage: python crashpoint_child.py SCENARIO FOLDER N. Prints "calls K" when the call
finished without reaching call N (K is how many it made); otherwise the process dies
by SIGKILL at exactly that point. The counted calls are the `os` functions through
which the engine writes, syncs, renames, truncates and deletes files.
"""

from __future__ import annotations

import csv
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pluresdb_lab as pl

COUNTED = ("write", "fsync", "replace", "rename", "unlink", "ftruncate")
BULK = 1100  # new ids: over the engine's bulk threshold (1024), so they form a segment
EXISTING = [f"old-{i}" for i in range(10)]


def arm(at: int) -> Callable[[], int]:
    """Make the at-th counted call kill this process; returns a reader of the count."""
    made = 0

    def wrap(real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            nonlocal made
            made += 1
            if made == at:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)

        return call

    for name in COUNTED:
        setattr(os, name, wrap(getattr(os, name)))
    return lambda: made


def bulk_records() -> list[dict[str, Any]]:
    fresh = [{"id": f"new-{i}", "v": i} for i in range(BULK)]
    return fresh + [{"id": node_id, "v": -1, "updated": True} for node_id in EXISTING]


def setup(scenario: str, db: Any, folder: Path) -> Callable[[], object]:
    """Writes made (and acknowledged) before the crash window; returns the action."""
    db.put_many([{"id": node_id, "v": 0} for node_id in EXISTING])
    if scenario == "bulk-with-updates":
        return lambda: db.put_many(bulk_records())
    if scenario == "import-with-updates":
        source = folder.parent / f"{folder.name}.csv"
        with open(source, "w", newline="") as f:
            writer = csv.DictWriter(f, ["id", "v", "updated"])
            writer.writeheader()
            writer.writerows(bulk_records())
        return lambda: db.import_file(source, id_field="id")
    if scenario == "cascading-delete":
        db.put("hub", {"v": 1})
        db.link("hub", "old-1", "knows")
        db.link("old-2", "hub", "knows")
        return lambda: db.delete("hub")
    if scenario == "compaction":
        # Two flushed segments, then writes that only the WAL holds: compaction must
        # not let the manifest claim them.
        db.put("a", {"v": 1})
        db.put_many([{"id": f"fill-{i}", "v": i} for i in range(BULK)])
        db.put("b", {"v": 1})
        db.put_many([{"id": f"more-{i}", "v": i} for i in range(BULK)])
        db.put("c", {"v": 1})
        db.put("a", {"v": 2})
        return lambda: db.compact(level=0)
    raise SystemExit(f"unknown scenario {scenario}")


def main() -> None:
    scenario, folder, at = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    db = pl.connect(folder, fsync="always", auto_compact=False)
    action = setup(scenario, db, folder)
    made = arm(at)
    action()
    print(f"calls {made()}", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # no close: the next open is a recovery


if __name__ == "__main__":
    main()
