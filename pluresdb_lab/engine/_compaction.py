"""Compaction runs: one at a time, on demand or in the background when a level fills.

The merge itself runs outside the database lock (see `Store.plan_compaction`), so the
automatic policy never blocks readers or writers for longer than a plan or a swap.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from pluresdb_lab._values import CompactionReport, Progress
from pluresdb_lab.engine._store import Store, report
from pluresdb_lab.errors import OperationCancelled

log = logging.getLogger("pluresdb_lab")


class Compactor:
    """Serialises compactions of one store and runs the automatic policy."""

    def __init__(
        self,
        store: Store,
        lock: threading.RLock,
        *,
        auto: bool,
    ) -> None:
        self._store = store
        self._lock = lock
        self._one_at_a_time = threading.Lock()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        if auto:
            self._thread = threading.Thread(
                target=self._background, name="pluresdb-compactor", daemon=True
            )
            self._thread.start()

    def nudge(self) -> None:
        """A flush happened: the background policy should look at the levels."""
        self._wake.set()

    def run(self, level: int | None, progress: Progress | None = None) -> CompactionReport:
        """Merge `level` into the next level, or everything into one segment (None)."""
        started = time.perf_counter()
        with self._one_at_a_time:
            with self._lock:
                before = list(self._store.segments)
                plan = self._store.plan_compaction(level)
            if plan is None:
                report(progress, 1, 1)
                return self._report(level, before, before, started)
            output = None
            try:
                output = self._store.merge(plan, progress)
            except OperationCancelled:
                self._store.abandon(output)
                raise
            with self._lock:
                self._store.install(plan, output)
                after = list(self._store.segments)
            if progress is not None:
                rows = sum(s.rows for s in plan.inputs)
                progress(rows, rows)  # done: too late to cancel
        return self._report(level, before, after, started)

    @staticmethod
    def _report(
        level: int | None, before: list[Any], after: list[Any], started: float
    ) -> CompactionReport:
        return CompactionReport(
            level,
            len(before),
            len(after),
            sum(s.size for s in before),
            sum(s.size for s in after),
            sum(s.rows for s in before),
            sum(s.rows for s in after),
            time.perf_counter() - started,
        )

    def _background(self) -> None:
        while not self._closing.is_set():
            self._wake.wait()
            self._wake.clear()
            while not self._closing.is_set():
                with self._lock:
                    full = self._store.full_levels()
                if not full:
                    break
                try:
                    self.run(full[0])
                except Exception:  # keep the policy alive; the error is logged
                    log.exception("background compaction of level %s failed", full[0])
                    break

    def close(self) -> None:
        """Stop the policy; waits for a compaction in progress to finish."""
        self._closing.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
