"""The type hints of the API's signatures as objects, for what is derived from them: the
OpenAPI document (`server.operations`) and the remote client's calls (`_derive`)."""

from __future__ import annotations

import collections.abc
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Union


def hints(fn: Callable[..., Any], known: Mapping[str, object]) -> dict[str, Any]:
    """The type hints of `fn`, one by one, with `known` names that its module imports only
    for type checking. A hint naming another of those stays a ForwardRef (a type the
    caller leaves alone), so one unresolvable hint does not hide the others."""
    found = {}
    for name, annotation in fn.__annotations__.items():
        holder = types.SimpleNamespace(__annotations__={name: annotation})
        try:
            found[name] = typing.get_type_hints(holder, fn.__globals__, dict(known))[name]
        except NameError:
            found[name] = typing.ForwardRef(annotation)
    return found


def arms(hint: object) -> tuple[object, ...]:
    """The alternatives of a union, or the one type."""
    if typing.get_origin(hint) in (Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def without_none(hint: object) -> object:
    """`hint` with None taken out of it."""
    return Union[tuple(arm for arm in arms(hint) if arm is not type(None))]  # noqa: UP007


def is_callback(hint: object) -> bool:
    """Whether a parameter takes a function (`progress`), which cannot travel."""
    return any(typing.get_origin(arm) is collections.abc.Callable for arm in arms(hint))
