"""Values read back from their JSON wire form by type hint: the inverse of `_wire.dumps`,
for the replies of the client's derived calls (`_derive`).

A type with its own encoder in `_wire` is read by its own decoder there (a node's vector
is float32; type counts travel as a list, since JSON has no null key); any other
dataclass field by field from its type hints; datetimes from ISO 8601, paths from text;
what JSON holds as it is (numbers, strings, lists and objects of them, TypedDicts,
types named only for type checking) is left as it is.
"""

from __future__ import annotations

import builtins
import dataclasses
import typing
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pluresdb_lab import _wire
from pluresdb_lab._hints import arms, without_none
from pluresdb_lab._values import Backup, Change, Conflict, Node, Version

Decoder = Callable[[Any], Any]

OWN: dict[object, Decoder] = {
    Node: _wire.node_from_json,
    Version: _wire.version_from_json,
    Change: _wire.change_from_json,
    Conflict: _wire.conflict_from_json,
    Backup: _wire.backup_from_json,
    dict[str | None, int]: _wire.types_from_json,
}
AS_IS = (str, int, float, bool, type(None), Any)
FROM_TEXT: dict[object, Decoder] = {datetime: datetime.fromisoformat, Path: Path}


def decoder(hint: object) -> Decoder | None:
    """How to read a value of type `hint` from JSON: None when JSON holds it as it is.

    Raises:
        TypeError: for a type JSON does not carry (a table, a union of several types):
            a call returning one is written by hand.
    """
    if hint in OWN:
        return OWN[hint]
    if hint in FROM_TEXT:
        return FROM_TEXT[hint]
    if hint in AS_IS or isinstance(hint, typing.ForwardRef) or typing.is_typeddict(hint):
        return None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return None
    if len(arms(hint)) > 1:
        return _optional(hint)
    if origin is builtins.list:
        return _each(decoder(args[0]))
    if origin is dict:
        return _values(decoder(args[1]))
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _record(hint)
    raise TypeError(f"no JSON wire form of {hint!r}")


def _optional(hint: object) -> Decoder | None:
    present = without_none(hint)
    if len(arms(present)) > 1:
        raise TypeError(f"no JSON wire form of the union {hint!r}")
    read = decoder(present)
    if read is None:
        return None
    return lambda value: None if value is None else read(value)


def _each(read: Decoder | None) -> Decoder | None:
    if read is None:
        return None
    return lambda values: [read(value) for value in values]


def _values(read: Decoder | None) -> Decoder | None:
    if read is None:
        return None
    return lambda values: {key: read(value) for key, value in values.items()}


def _record(cls: type) -> Decoder:
    """A dataclass from the object of its fields (one left out keeps its default)."""
    hints = typing.get_type_hints(cls)
    fields = [(f.name, decoder(hints[f.name])) for f in dataclasses.fields(cls)]

    def record(body: dict[str, Any]) -> Any:
        return cls(
            **{
                name: body[name] if read is None else read(body[name])
                for name, read in fields
                if name in body
            }
        )

    return record
