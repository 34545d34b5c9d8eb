"""The index registry of one database: definitions (persisted in `indexes.json` in the
database folder), the live index objects, and saving/loading vector indexes.

A vector index is saved at close together with the version vector it reflects; at
open it is reused only if the database's version vector is exactly that one (nothing
was written since, including by crash recovery), otherwise it is rebuilt on first use.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from pluresdb_lab._values import Change
from pluresdb_lab.engine._index_base import Host, Index
from pluresdb_lab.engine._index_sorted import CompositeIndex, NumericIndex
from pluresdb_lab.engine._index_text import TextIndex
from pluresdb_lab.engine._index_vector import SAVED_FILES, VectorIndex
from pluresdb_lab.errors import CorruptDatabaseError, IndexNotFoundError, InvalidQueryError

KINDS: dict[str, type[Index]] = {
    "vector": VectorIndex,
    "text": TextIndex,
    "numeric": NumericIndex,
    "composite": CompositeIndex,
}
DEFINITIONS = "indexes.json"
SAVED = "indexes"
SAVED_SUFFIXES = ("json", *SAVED_FILES)
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


class Registry:
    """Every index of a database, by name."""

    def __init__(self, folder: Path | None, version_vector: dict[str, int]) -> None:
        self.folder = folder
        self.indexes: dict[str, Index] = {}
        if folder is None or not (folder / DEFINITIONS).exists():
            return
        try:
            definitions = json.loads((folder / DEFINITIONS).read_text())
        except (OSError, ValueError) as exc:
            raise CorruptDatabaseError(
                f"{folder / DEFINITIONS} cannot be read ({exc}); restore it from a backup "
                "or delete it (the indexes are then gone, the data is not)"
            ) from None
        for definition in definitions:
            index = make_index(definition)
            if isinstance(index, VectorIndex):
                index.load(folder / SAVED, version_vector)
            self.indexes[index.name] = index

    def create(self, definition: dict[str, Any]) -> Index:
        index = make_index(definition)
        if index.name in self.indexes:
            raise InvalidQueryError(f"an index named {index.name!r} exists; drop it first")
        self.indexes[index.name] = index
        self._save_definitions()
        return index

    def drop(self, name: str) -> None:
        self.get(name)
        del self.indexes[name]
        self._save_definitions()
        if self.folder is not None:
            for suffix in SAVED_SUFFIXES:
                (self.folder / SAVED / f"{name}.{suffix}").unlink(missing_ok=True)

    def get(self, name: str) -> Index:
        if name not in self.indexes:
            raise IndexNotFoundError(
                f"there is no index {name!r}; db.indexes() lists {sorted(self.indexes)}"
            )
        return self.indexes[name]

    def find(self, kind: str, type_name: str | None) -> Index:
        """The index of `kind` for `type_name` (the typed one first, then an untyped one)."""
        matches = [i for i in self.indexes.values() if i.kind == kind and i.type == type_name]
        matches += [i for i in self.indexes.values() if i.kind == kind and i.type is None]
        if not matches:
            raise IndexNotFoundError(
                f"there is no {kind} index for type {type_name!r}; create one with "
                f"db.create_index({kind!r}, type=..., ...)"
            )
        return matches[0]

    def on_change(self, change: Change) -> None:
        for index in self.indexes.values():
            index.on_change(change)

    def save(self, host: Host, version_vector: dict[str, int]) -> None:
        """Save built vector indexes, brought up to date and stamped with that state."""
        if self.folder is None:
            return
        for index in self.indexes.values():
            if isinstance(index, VectorIndex) and index.built:
                index.ready(host)
                index.save(self.folder / SAVED, version_vector)

    def _save_definitions(self) -> None:
        if self.folder is None:
            return
        target = self.folder / DEFINITIONS
        temporary = target.with_suffix(".tmp")
        with temporary.open("w") as out:
            json.dump([i.definition() for i in self.indexes.values()], out, indent=1)
            out.flush()
            os.fsync(out.fileno())
        temporary.replace(target)


def make_index(definition: dict[str, Any]) -> Index:
    kind = definition.get("kind")
    if kind not in KINDS:
        raise InvalidQueryError(f"unknown index kind {kind!r}; use one of {list(KINDS)}")
    type_name = definition.get("type")
    if type_name is not None and not isinstance(type_name, str):
        raise InvalidQueryError(f"type is a type name or None, got {type_name!r}")
    fields = definition.get("fields") or []
    if isinstance(fields, str):
        fields = [fields]
    if not isinstance(fields, list) or not all(isinstance(f, str) and f for f in fields):
        raise InvalidQueryError(f"fields is a list of field names, got {fields!r}")
    name = definition.get("name") or "_".join([kind, type_name or "all", *fields])
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidQueryError(
            f"an index name is 1-100 letters, digits, '_', '.' or '-', got {name!r}"
        )
    params = dict(definition.get("params") or {})
    return KINDS[kind](name, type_name, list(fields), params)
