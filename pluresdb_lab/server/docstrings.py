"""What a docstring says, for the OpenAPI document: the summary (its first paragraph)
and each argument's text (its Google-style `Args:` section)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any


def summary(documented: object) -> str | None:
    """The docstring's first paragraph on one line, or None without a docstring."""
    doc = inspect.getdoc(documented)
    return " ".join(doc.split("\n\n")[0].split()) if doc else None


def arguments(fn: Callable[..., Any]) -> dict[str, str]:
    """Argument name (`**params` as `params`) -> its text under `Args:`, on one line."""
    lines = (inspect.getdoc(fn) or "").splitlines()
    if "Args:" not in lines:
        return {}
    found: dict[str, str] = {}
    name, indent = "", None
    for line in lines[lines.index("Args:") + 1 :]:
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        indent = depth if indent is None else indent
        if depth < indent:  # the next section: Returns, Raises
            break
        if depth == indent:
            name, _, text = line.strip().partition(":")
            name = name.lstrip("*")
            found[name] = text.strip()
        else:
            found[name] += " " + line.strip()
    return found
