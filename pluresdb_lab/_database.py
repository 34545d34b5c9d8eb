"""The Database users get from `connect`: the embedded engine plus the mesh that syncs it.

The engine imports nothing above it (DESIGN §1); this subclass is where the layers meet.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from pluresdb_lab import engine

if TYPE_CHECKING:
    from pluresdb_lab.mesh import Mesh


class Database(engine.Database):
    """An embedded PluresDB database; open it with `pluresdb_lab.connect`."""

    @functools.cached_property
    def mesh(self) -> Mesh:
        """Peer-to-peer sync of this database (started on first use)."""
        from pluresdb_lab.mesh import Mesh

        return Mesh(self)

    def close(self) -> None:
        mesh = self.__dict__.get("mesh")
        if mesh is not None:
            mesh.close()
        super().close()
