"""OpenAPI 3.0 schemas of Python types, as the server writes them (`_wire.dumps`).

Value types (dataclasses, TypedDicts) become named components, their fields from their
type hints, so a field added to a value type shows in the API document by itself.
The encoding follows `_wire`: datetimes as ISO 8601 text, paths as text, bytes as
base64, numpy arrays as lists of numbers, a dataclass as an object of all its fields.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Iterable, Mapping, Sequence, Set
from datetime import datetime
from pathlib import Path, PurePath
from typing import Any, Literal, is_typeddict

import numpy as np

from pluresdb_lab._hints import arms, without_none
from pluresdb_lab.server import docstrings

Schema = dict[str, Any]

_SCALARS: dict[object, Schema] = {
    bool: {"type": "boolean"},
    int: {"type": "integer"},
    float: {"type": "number"},
    str: {"type": "string"},
    bytes: {"type": "string", "format": "byte"},
    datetime: {"type": "string", "format": "date-time"},
}
_TEXT_PATHS = (Path, PurePath, os.PathLike)
_ARRAYS = (list, tuple, Sequence, Iterable, Set, set, frozenset)
_OBJECTS = (dict, Mapping)


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    """`schema` or null (OpenAPI 3.0 ignores keys beside `$ref`, hence the `allOf`)."""
    if "$ref" in schema:
        return {"allOf": [schema], "nullable": True}
    return {**schema, "nullable": True}


def obj(required: Iterable[str] = (), **properties: Schema) -> Schema:
    """An object with these properties (OpenAPI 3.0 wants `required` absent, not empty)."""
    schema: Schema = {"type": "object", "properties": properties}
    if names := list(required):
        schema["required"] = names
    return schema


def is_server_path(hint: object) -> bool:
    """Whether a parameter names a file: `str | os.PathLike[str]` or a Path."""
    return any(typing.get_origin(arm) is os.PathLike or arm in _TEXT_PATHS for arm in arms(hint))


class Schemas:
    """Schemas of type hints; `components` collects every value type met on the way."""

    def __init__(self) -> None:
        self.components: dict[str, Schema] = {}
        self._named: dict[str, type] = {}

    def of(self, hint: object) -> Schema:
        """The schema of a value of type `hint` on the wire; TypeError for types it cannot
        write (a new one belongs in `_wire` first, then here)."""
        present = arms(without_none(hint))
        if len(present) < len(arms(hint)):
            return nullable(self.of(without_none(hint)))
        if len(present) > 1:
            choices: list[Schema] = []
            for schema in map(self.of, present):
                if schema not in choices:  # Sequence[float] | ndarray: one array of numbers
                    choices.append(schema)
            return choices[0] if len(choices) == 1 else {"anyOf": choices}
        return self._single(hint)

    def _single(self, hint: object) -> Schema:
        if hint is Any:
            return {}
        if hint in _SCALARS:
            return dict(_SCALARS[hint])
        origin = typing.get_origin(hint) or hint
        args = typing.get_args(hint)
        if origin is Literal:
            kinds = {type(value) for value in args}
            return {**self._single(kinds.pop() if len(kinds) == 1 else Any), "enum": list(args)}
        if origin in _TEXT_PATHS:
            return {"type": "string"}
        if origin is np.ndarray:
            return {"type": "array", "items": {"type": "number"}}
        if isinstance(origin, type) and (dataclasses.is_dataclass(origin) or is_typeddict(origin)):
            return self.record(origin)
        if origin in _OBJECTS:
            values = self.of(args[1]) if args else {}
            return {"type": "object", "additionalProperties": values or True}
        if origin in _ARRAYS:
            items = [arg for arg in args if arg is not Ellipsis]
            return {"type": "array", "items": self.of(items[0]) if len(set(items)) == 1 else {}}
        raise TypeError(f"no OpenAPI schema for {hint!r}")

    def record(self, cls: type) -> Schema:
        """A `$ref` to the component of a dataclass or TypedDict (made on first use)."""
        name = cls.__name__
        if self._named.setdefault(name, cls) is not cls:
            raise TypeError(f"two value types are called {name}: {self._named[name]} and {cls}")
        if name not in self.components:
            self.components[name] = {}  # a value type that contains itself refers back here
            hints = typing.get_type_hints(cls)
            if is_typeddict(cls):
                keys: frozenset[str] = cls.__required_keys__  # type: ignore[attr-defined]
                required = [key for key in hints if key in keys]
            else:  # the wire writes every field of a dataclass, and only those
                required = [f.name for f in dataclasses.fields(cls)]
                hints = {key: hints[key] for key in required}
            schema = obj(required, **{key: self.of(hint) for key, hint in hints.items()})
            text = docstrings.summary(cls)
            if text and not text.startswith(f"{name}("):  # not the signature dataclass made up
                schema["description"] = text
            self.components[name] = schema
        return ref(name)
