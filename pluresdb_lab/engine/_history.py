"""History: every version of a node, restoring one, the database as of a moment
(time travel), and the conflicts last-writer-wins resolved, with resolving them.
"""

from __future__ import annotations

import builtins
import json
from datetime import datetime
from typing import Any

import pyarrow.compute as pc

from pluresdb_lab._api import SnapshotAPI
from pluresdb_lab._checks import epoch_seconds
from pluresdb_lab._values import (
    Conflict,
    ConflictSide,
    CrdtState,
    FieldChange,
    FieldClock,
    Node,
    Version,
    WriteInfo,
    to_datetime,
)
from pluresdb_lab.engine._apply import Core
from pluresdb_lab.engine._clock import hlc_seconds
from pluresdb_lab.engine._crdt import NodeState, conflict_id
from pluresdb_lab.engine._instrument import measured
from pluresdb_lab.engine._snapshot import Snapshot
from pluresdb_lab.engine._validate import check_id
from pluresdb_lab.errors import InvalidDataError, NotFoundError


class HistoryMixin(Core):
    """Versions, restore, as_of, conflicts and resolve_conflict."""

    @measured("history", about="id")
    def history(self, id: str) -> builtins.list[Version]:
        """Every visible version of node `id`, oldest first."""
        check_id(id)
        with self._lock:
            self._open()
            rows = self._store.versions(id)
        if not rows:
            raise NotFoundError(f"there is no node {id!r} and never was")
        return [
            Version(
                r["version"],
                to_datetime(r["written"]),
                r["origin"],
                r["type"],
                {k: v for k, v in json.loads(r["data"]).items() if v is not None},
                r["deleted"],
            )
            for r in rows
            if r["changed"]
        ]

    @measured("restore", about="id")
    def restore(self, id: str, version: int) -> Node:
        """Make version `version` of node `id` current again (as a new version)."""
        old = self._version(id, version)
        if old.deleted:
            self.delete(id)
            node = self.get(id)
            return node if node is not None else Node(id, old.type, {}, None, None, 0)
        current = self.get(id)
        patch: dict[str, Any] = dict.fromkeys(current.data if current else (), None)
        patch.update(old.data)
        return self._put(id, patch, type_name=old.type, internal=True)

    @measured("diff", about="id")
    def diff(self, id: str, a: int, b: int) -> builtins.list[FieldChange]:
        """How the data of node `id` differs from version `a` to version `b`."""
        old, new = (self._version(id, number) for number in (a, b))
        changes = []
        for field in sorted(old.data.keys() | new.data.keys()):
            if field not in old.data:
                changes.append(FieldChange(field, "added", None, new.data[field]))
            elif field not in new.data:
                changes.append(FieldChange(field, "removed", old.data[field], None))
            elif old.data[field] != new.data[field]:
                changes.append(FieldChange(field, "changed", old.data[field], new.data[field]))
        return changes

    def _version(self, id: str, version: int) -> Version:
        """Version `version` of node `id`, or a specific error."""
        if not isinstance(version, int) or isinstance(version, bool):
            raise InvalidDataError(f"a version is an integer (1, 2, ...), got {version!r:.60}")
        versions = {v.version: v for v in self.history(id)}
        if version not in versions:
            raise NotFoundError(
                f"node {id!r} has no version {version}; it has versions "
                f"{min(versions)}..{max(versions)}"
            )
        return versions[version]

    @measured("crdt_state", about="id")
    def crdt_state(self, id: str) -> CrdtState:
        """The merge state of node `id`: fields with their winning writes, and its
        version vector."""
        check_id(id)
        with self._lock:
            self._open()
            state = self._store.state(id)
        if state is None:
            raise NotFoundError(f"there is no node {id!r}")
        fields = [
            FieldClock(
                name,
                state.data[name],
                state.data[name] is None,
                hlc,
                to_datetime(hlc_seconds(hlc)),
                origin,
                len(state.siblings.get(name, ())),
            )
            for name, (hlc, origin, _ctr) in sorted(state.writes.items())
            if name in state.data
        ]
        return CrdtState(id, state.exists, state.type, fields, dict(state.vv))

    @measured("as_of", about="when")
    def as_of(self, when: datetime | float | int) -> SnapshotAPI:
        """A read-only view of the database as it was at `when`."""
        seconds = epoch_seconds(when)
        with self._lock:
            self._open()
            rows = self._store.all_rows()
        return Snapshot(rows, seconds, self._sql)

    # -- conflicts ---------------------------------------------------------------------

    @measured("conflicts", about="id")
    def conflicts(self, id: str | None = None) -> builtins.list[Conflict]:
        """Concurrent writes that last-writer-wins resolved, with both sides."""
        with self._lock:
            self._open()
            if id is not None:
                ids = [check_id(id)]
            else:
                if self._conflicted is None:
                    current = self._store.current()
                    mask = pc.and_(
                        current.column("conflicted"), pc.invert(current.column("deleted"))
                    )
                    self._conflicted = set(current.filter(mask).column("id").to_pylist())
                ids = sorted(self._conflicted)
            found: list[Conflict] = []
            for node_id in ids:
                state = self._store.state(node_id)
                if state is not None and state.exists:
                    found.extend(_conflicts_of(state))
        return found

    @measured("resolve_conflict", about="conflict_id")
    def resolve_conflict(self, conflict_id: str, choose: ConflictSide = "winner") -> Node:
        """Settle a conflict by writing the chosen side's value ("winner" or "loser")."""
        if choose not in ("winner", "loser"):
            raise InvalidDataError(f"choose is 'winner' or 'loser', got {choose!r}")
        match = [c for c in self.conflicts() if c.id == conflict_id]
        if not match:
            raise NotFoundError(f"there is no open conflict {conflict_id!r}")
        conflict = match[0]
        side = conflict.winner if choose == "winner" else conflict.loser
        state = self._store.state(conflict.node_id)
        internal = state is not None and (state.type or "").startswith("_")
        return self._put(
            conflict.node_id, {conflict.field: side.value}, type_name=None, internal=internal
        )


def _conflicts_of(state: NodeState) -> list[Conflict]:
    found = []
    for name, losers in sorted(state.siblings.items()):
        winner = state.writes[name]
        won = WriteInfo(state.data.get(name), winner[1], winner[0])
        for loser in losers:
            found.append(
                Conflict(
                    conflict_id(state.id, name, winner, loser),
                    state.id,
                    name,
                    won,
                    WriteInfo(loser[3], loser[1], loser[0]),
                )
            )
    return found
