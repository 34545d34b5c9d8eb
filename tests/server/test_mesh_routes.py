"""Two `pluresdb serve` processes joined through the mesh REST routes converge."""

from __future__ import annotations

from pathlib import Path

import pytest

from pluresdb_lab import errors
from pluresdb_lab.client import RemoteDatabase
from tests.server.conftest import TOKEN, start_serve, stop, wait_for


def mesh_url(api: str) -> str:
    return api.replace("http://", "ws://").replace("/pluresdb/api/", "/pluresdb/mesh")


def test_two_servers_converge_through_the_mesh_routes(tmp_path: Path) -> None:
    secret = ("--mesh-secret", "shared-secret")
    first, url_a = start_serve(tmp_path / "a", tmp_path / "a.log", TOKEN, *secret)
    try:
        second, url_b = start_serve(tmp_path / "b", tmp_path / "b.log", TOKEN, *secret)
        try:
            with RemoteDatabase(url_a, TOKEN) as a, RemoteDatabase(url_b, TOKEN) as b:
                a.put_many([{"id": f"a{i}", "v": i} for i in range(50)], type="A")
                b.put("b0", {"v": 0}, type="B")
                assert a.mesh.identity.peer_id == a.peer_id
                a.mesh.connect(mesh_url(url_b))

                def linked() -> bool:
                    return any(p["state"] == "connected" for p in a.mesh.peers())

                wait_for(linked, "the mesh link to come up")
                a.put("late", {"v": 1})
                wait_for(lambda: b.count() == 52, "b to receive a's writes")
                wait_for(lambda: a.get("b0") is not None, "a to receive b's write")
                assert b.version_vector() == a.version_vector()
                a.mesh.sync()
                assert a.mesh.logs(limit=50)
                a.mesh.pause()
                assert a.mesh.paused
                a.mesh.resume()
                snapshot = a.mesh.snapshot()
                assert [s["id"] for s in a.mesh.snapshots()] == [snapshot["id"]]
                a.mesh.delete_snapshot(snapshot["id"])
                a.mesh.disconnect(b.peer_id)
                with pytest.raises(errors.MeshError):
                    a.mesh.connect("http://not-a-mesh-url")
        finally:
            stop(second)
    finally:
        stop(first)
