"""The Database users get from `connect`: the embedded engine plus the mesh that syncs it.

The engine imports nothing above it (DESIGN §1); this subclass is where the layers meet,
including the profiler's top talkers, which it reads from the mesh's link counters. With
`mesh` it completes `pluresdb_lab.DatabaseAPI`, which the engine's Database implements.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pluresdb_lab import engine

if TYPE_CHECKING:
    from pluresdb_lab.mesh import Mesh


class Database(engine.Database):
    """An embedded PluresDB database; open it with `pluresdb_lab.connect`."""

    _mesh: Mesh | None = None

    @property
    def mesh(self) -> Mesh:
        """Peer-to-peer sync of this database (made on first use; a server sets its own)."""
        if self._mesh is None:
            from pluresdb_lab.mesh import Mesh

            mesh = Mesh(self)
            self.mesh = mesh
            return mesh
        return self._mesh

    @mesh.setter
    def mesh(self, mesh: Mesh) -> None:
        if self._mesh is None:
            self.profiler.add_talkers(self._talkers)
        self._mesh = mesh

    def _talkers(self) -> list[engine.Talker]:
        """Each linked peer's byte and message counts (a peer may have several links)."""
        if self._mesh is None:
            return []
        return [
            engine.Talker(
                info["peer_id"],
                info["bytes_in"],
                info["bytes_out"],
                info["messages_in"],
                info["messages_out"],
            )
            for info in self._mesh.peers()
            if info["peer_id"] is not None
        ]

    def close(self) -> None:
        if self._mesh is not None:
            self._mesh.close()
        super().close()
