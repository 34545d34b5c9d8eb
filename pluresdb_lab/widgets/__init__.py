"""PluresDB Lab panels: anywidgets over a Database, embedded or remote alike.

``MeshPanel(db)``, ``StorageIndexes(db)`` and ``Profiling(db)`` display in a notebook;
``db.panel("mesh")`` is the same as ``MeshPanel(db)``.
"""

from __future__ import annotations

from typing import Any

from pluresdb_lab._api import DatabaseAPI
from pluresdb_lab.errors import NotFoundError
from pluresdb_lab.widgets._panel import Panel, Progress, request
from pluresdb_lab.widgets.mesh import MeshPanel
from pluresdb_lab.widgets.profiling import Profiling
from pluresdb_lab.widgets.storage import StorageIndexes

# Every panel, by the name in its `panel` trait (the view picks its component by that
# name from extension/src/panels/index.js; tests/widgets/test_registry.py checks they agree).
PANELS: dict[str, type[Panel]] = {
    cls.panel.default_value: cls for cls in (MeshPanel, StorageIndexes, Profiling)
}

__all__ = [
    "PANELS",
    "MeshPanel",
    "Panel",
    "Profiling",
    "Progress",
    "StorageIndexes",
    "panel",
    "request",
]


def panel(db: DatabaseAPI, name: str, **options: Any) -> Panel:
    """The panel called `name` over `db` (what `db.panel(name)` returns)."""
    try:
        cls = PANELS[name]
    except KeyError:
        raise NotFoundError(
            f"no panel named {name!r}; panels: {', '.join(sorted(PANELS))}"
        ) from None
    return cls(db, **options)
