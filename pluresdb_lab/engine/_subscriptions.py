"""Subscriptions: change callbacks (`subscribe`) and op listeners (`on_op`), and the
notifying of both after each applied write.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable

import pyarrow as pa

from pluresdb_lab._checks import check_callback
from pluresdb_lab._values import Change, Subscription
from pluresdb_lab.engine._apply import Core
from pluresdb_lab.engine._ops import Op, batch_to_bytes
from pluresdb_lab.engine._validate import check_id
from pluresdb_lab.errors import InvalidDataError

log = logging.getLogger("pluresdb_lab")


class SubscriptionsMixin(Core):
    """Who is told about changes and ops, and telling them."""

    def subscribe(
        self, callback: Callable[[Change], None], *, id: str | None = None, type: str | None = None
    ) -> Subscription:
        """Call `callback(change)` after every change (local or replicated) that matches."""
        check_callback(callback, "subscribe")
        if id is not None:
            check_id(id)
        if type is not None and not isinstance(type, str):
            raise InvalidDataError(f"the type filter is a string or None, got {type!r}")
        sub = Subscription(callback, id, type, self._unsubscribe)
        with self._lock:
            self._open()
            self._subscriptions.append(sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subscriptions:
                self._subscriptions.remove(sub)

    def on_op(self, callback: Callable[[Op], None]) -> Subscription:
        """Call `callback(op)` with every op once applied, local or from a peer, in
        the order applied (what a replication link streams). The callback runs while
        the database lock is held: it must be quick and must not call back in."""
        check_callback(callback, "on_op")
        sub = Subscription(callback, None, None, self._drop_op_listener)  # type: ignore[arg-type]
        with self._lock:
            self._open()
            self._op_listeners.append(sub)
        return sub

    def _drop_op_listener(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._op_listeners:
                self._op_listeners.remove(sub)

    def _announce(self, op: Op, batch: pa.Table | None = None) -> None:
        if not self._op_listeners:
            return
        public = {k: v for k, v in op.items() if k != "_t"}
        if public["k"] == "batch" and not public.get("r") and batch is not None:
            public["r"] = batch_to_bytes(
                batch.select(["id", "type", "data", "vector", "ctr", "deps"])
            )
        for sub in tuple(self._op_listeners):
            try:
                sub.callback(public)  # type: ignore[arg-type]
            except Exception:
                log.exception("an op listener raised; it stays registered")

    def _notify(self, changes: builtins.list[Change]) -> None:
        for change in changes:
            for sub in tuple(self._subscriptions):
                if sub.active and sub.wants(change):
                    try:
                        sub.callback(change)
                    except Exception:
                        log.exception("a change subscriber raised; it stays subscribed")
