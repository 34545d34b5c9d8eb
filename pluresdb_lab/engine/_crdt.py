"""Per-node CRDT state and the merge rules of DESIGN §4.

A node is a set of last-writer-wins registers (one per field, plus its type and
vector) ordered by `(hlc, origin peer)`. Deleting a node is a tombstone over every
field at the delete's clock; a later write resurrects the node with what it writes.

Each write carries its *dot* `(origin, ctr)` — ctr counts that origin's writes to the
node — and its *deps*, the node's version vector as the writer saw it. Writes to a
field that neither saw form a frontier (a multi-value register); the frontier's
largest clock is the value, the others are the recorded conflicts. The frontier is a
function of the set of writes, not of their arrival order, so every replica lists the
same conflicts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import msgpack

Clock = tuple[int, str]
"""(hlc, origin peer id): the total order of writes."""

Write = tuple[int, str, int]
"""(hlc, origin, ctr) of a field's winning write."""

Sibling = tuple[int, str, int, Any]
"""(hlc, origin, ctr, value) of a concurrent write that lost."""

Deps = dict[str, int]


@dataclass(slots=True)
class NodeState:
    """Everything a replica knows about one node."""

    id: str
    rev: int = 0
    version: int = 0
    time: float = 0.0
    type: str | None = None
    type_clock: Clock | None = None
    data: dict[str, Any] = field(default_factory=dict)  # None value = deleted field
    writes: dict[str, Write] = field(default_factory=dict)
    vector: bytes | None = None
    vector_clock: Clock | None = None
    put_clock: Clock | None = None
    delete_clock: Clock | None = None
    vv: Deps = field(default_factory=dict)
    deps: dict[tuple[str, int], Deps] = field(default_factory=dict)
    siblings: dict[str, list[Sibling]] = field(default_factory=dict)

    @property
    def exists(self) -> bool:
        return self.put_clock is not None and (
            self.delete_clock is None or self.put_clock > self.delete_clock
        )

    def visible_data(self) -> dict[str, Any]:
        return {k: v for k, v in self.data.items() if v is not None}

    def visible(self) -> tuple[bool, str | None, dict[str, Any], bytes | None]:
        """What a reader can see; two states with equal `visible()` look the same."""
        return (self.exists, self.type, self.visible_data(), self.vector)

    def clone(self) -> NodeState:
        """A copy that a write can change without touching this one."""
        return NodeState(
            self.id,
            self.rev,
            self.version,
            self.time,
            self.type,
            self.type_clock,
            dict(self.data),
            dict(self.writes),
            self.vector,
            self.vector_clock,
            self.put_clock,
            self.delete_clock,
            dict(self.vv),
            dict(self.deps),
            {k: list(v) for k, v in self.siblings.items()},
        )

    def next_dot(self, origin: str) -> tuple[int, Deps]:
        """ctr and deps for a new local write to this node."""
        return self.vv.get(origin, 0) + 1, dict(self.vv)


def _merge_vv(state: NodeState, origin: str, ctr: int, deps: Deps) -> None:
    vv = state.vv
    for peer, count in deps.items():
        if count > vv.get(peer, 0):
            vv[peer] = count
    if ctr > vv.get(origin, 0):
        vv[origin] = ctr


def apply_put(
    state: NodeState,
    *,
    origin: str,
    hlc: int,
    ctr: int,
    deps: Deps,
    patch: dict[str, Any],
    type_: tuple[str | None] | None = None,
    vector: tuple[bytes | None] | None = None,
) -> None:
    """Merge one write. `type_` / `vector` are 1-tuples when the write sets them."""
    clock = (hlc, origin)
    _merge_vv(state, origin, ctr, deps)
    if state.put_clock is None or clock > state.put_clock:
        state.put_clock = clock
    if type_ is not None and (state.type_clock is None or clock > state.type_clock):
        state.type, state.type_clock = type_[0], clock
    if state.delete_clock is not None and clock < state.delete_clock:
        return  # older than a delete: its field values are tombstoned already
    if vector is not None and (state.vector_clock is None or clock > state.vector_clock):
        state.vector, state.vector_clock = vector[0], clock
    for name, value in patch.items():
        _write_field(state, name, value, hlc, origin, ctr, deps)
    _forget_unused_deps(state)


def _write_field(
    state: NodeState, name: str, value: Any, hlc: int, origin: str, ctr: int, deps: Deps
) -> None:
    current = state.writes.get(name)
    if current is None:
        state.data[name] = value
        state.writes[name] = (hlc, origin, ctr)
        if deps:
            state.deps[(origin, ctr)] = dict(deps)
        return
    frontier: list[Sibling] = [(*current, state.data[name]), *state.siblings.get(name, ())]
    for _, f_origin, f_ctr, _ in frontier:
        if (f_origin, f_ctr) == (origin, ctr):
            return  # the same write again
        if state.deps.get((f_origin, f_ctr), {}).get(origin, 0) >= ctr:
            return  # a write in the frontier already saw this one
    survivors = [m for m in frontier if deps.get(m[1], 0) < m[2]]
    survivors.append((hlc, origin, ctr, value))
    winner = max(survivors, key=lambda m: (m[0], m[1]))
    state.data[name] = winner[3]
    state.writes[name] = (winner[0], winner[1], winner[2])
    losers = sorted((m for m in survivors if m is not winner), key=lambda m: (m[0], m[1]))
    if losers:
        state.siblings[name] = losers
    else:
        state.siblings.pop(name, None)
    if deps:
        state.deps[(origin, ctr)] = dict(deps)


def apply_delete(state: NodeState, *, origin: str, hlc: int, ctr: int, deps: Deps) -> None:
    """A node tombstone: hides every field and the vector written before it."""
    clock = (hlc, origin)
    _merge_vv(state, origin, ctr, deps)
    if state.delete_clock is not None and clock <= state.delete_clock:
        return
    state.delete_clock = clock
    for name, write in list(state.writes.items()):
        if (write[0], write[1]) < clock:
            del state.writes[name]
            state.data.pop(name, None)
            state.siblings.pop(name, None)
    for name, members in list(state.siblings.items()):
        kept = [m for m in members if (m[0], m[1]) > clock]
        if kept:
            state.siblings[name] = kept
        else:
            del state.siblings[name]
    if state.vector_clock is not None and state.vector_clock < clock:
        state.vector, state.vector_clock = None, None
    _forget_unused_deps(state)


def _forget_unused_deps(state: NodeState) -> None:
    if not state.deps:
        return
    used = {(w[1], w[2]) for w in state.writes.values()}
    for members in state.siblings.values():
        used.update((m[1], m[2]) for m in members)
    for dot in [d for d in state.deps if d not in used]:
        del state.deps[dot]


def conflict_id(node_id: str, name: str, winner: Write, loser: Sibling) -> str:
    key = msgpack.packb([node_id, name, list(winner), [loser[0], loser[1], loser[2]]])
    return hashlib.blake2b(key, digest_size=10).hexdigest()


# -- encoding of the CRDT metadata that rides along with every stored version ---------


def encode_meta(state: NodeState) -> bytes:
    return msgpack.packb(  # type: ignore[no-any-return]
        {
            "w": {k: list(v) for k, v in state.writes.items()},
            "tc": list(state.type_clock) if state.type_clock else None,
            "vc": list(state.vector_clock) if state.vector_clock else None,
            "pc": list(state.put_clock) if state.put_clock else None,
            "dc": list(state.delete_clock) if state.delete_clock else None,
            "vv": state.vv,
            "dp": [[o, c, d] for (o, c), d in state.deps.items()],
            "sb": {k: [list(m) for m in v] for k, v in state.siblings.items()},
        },
        use_bin_type=True,
    )


def _clock(value: list[Any] | None) -> Clock | None:
    return (int(value[0]), str(value[1])) if value else None


def decode_state(
    *,
    node_id: str,
    rev: int,
    version: int,
    time: float,
    type_: str | None,
    data: dict[str, Any],
    vector: bytes | None,
    hlc: int,
    origin: str,
    ctr: int,
    meta: bytes,
) -> NodeState:
    """Rebuild a state from a stored version. Empty meta marks a node created by one
    bulk write: every field, the type and the vector carry that write's clock."""
    state = NodeState(node_id, rev, version, time, type_, data=data, vector=vector)
    if not meta:
        clock = (hlc, origin)
        state.writes = dict.fromkeys(data, (hlc, origin, ctr))
        state.type_clock = clock if type_ is not None else None
        state.vector_clock = clock if vector is not None else None
        state.put_clock = clock
        state.vv = {origin: ctr}
        return state
    m = msgpack.unpackb(meta, raw=False, strict_map_key=False)
    state.writes = {k: (int(v[0]), str(v[1]), int(v[2])) for k, v in m["w"].items()}
    state.type_clock = _clock(m["tc"])
    state.vector_clock = _clock(m["vc"])
    state.put_clock = _clock(m["pc"])
    state.delete_clock = _clock(m["dc"])
    state.vv = {str(k): int(v) for k, v in m["vv"].items()}
    state.deps = {(str(o), int(c)): dict(d) for o, c, d in m["dp"]}
    state.siblings = {
        k: [(int(s[0]), str(s[1]), int(s[2]), s[3]) for s in v] for k, v in m["sb"].items()
    }
    return state
