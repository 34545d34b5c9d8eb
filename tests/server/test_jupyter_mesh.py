"""Two real `jupyter server` processes whose extensions sync over the mesh endpoint.

Server B is configured (`PluresDBApp.mesh_peers`) to keep a link to server A's
`{base_url}pluresdb/mesh`; both hold the same `mesh_secret`. Writes made through each
server's REST API reach the other, and both end in the same state.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server.conftest import JupyterServer, wait_for

SECRET = "two-servers-mesh-secret"
WRITES = 40


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[JupyterServer, JupyterServer]]:
    a = JupyterServer(tmp_path / "a", tmp_path / "a" / "db", {"mesh_secret": SECRET})
    try:
        b = JupyterServer(
            tmp_path / "b",
            tmp_path / "b" / "db",
            {"mesh_secret": SECRET, "mesh_peers": [a.mesh_url]},
        )
        try:
            yield a, b
        finally:
            b.close()
    finally:
        a.close()


def call(server: JupyterServer, method: str, route: str, **kwargs: Any) -> Any:
    response = server.http.request(method, server.api + route, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


def state(server: JupyterServer) -> dict[str, Any]:
    """Every node with its data, and the version vector."""
    nodes = call(server, "GET", "nodes", params={"limit": "10000"})["nodes"]
    return {
        "nodes": {n["id"]: (n["type"], n["data"]) for n in nodes},
        "vv": call(server, "GET", "version-vector")["version_vector"],
    }


def test_writes_on_either_server_converge(servers: tuple[JupyterServer, JupyterServer]) -> None:
    a, b = servers
    a_id = call(a, "GET", "mesh")["peer_id"]

    def b_linked_to_a() -> bool:
        peers = call(b, "GET", "mesh")["peers"]
        return any(p["peer_id"] == a_id and p["state"] == "connected" for p in peers)

    wait_for(b_linked_to_a, "server B's mesh link to server A")
    for i in range(WRITES):
        call(a, "PUT", f"node/a{i}", json={"data": {"i": i, "by": "a"}, "type": "FromA"})
        call(b, "PUT", f"node/b{i}", json={"data": {"i": i, "by": "b"}, "type": "FromB"})
    records = [{"id": f"bulk{i}", "n": i} for i in range(200)]
    assert call(b, "POST", "nodes", json=records, params={"type": "Bulk"}) == {"written": 200}
    # both sides write one node: the later write wins on both servers
    call(a, "PUT", "node/shared", json={"data": {"side": "a", "only_a": 1}})
    call(b, "PUT", "node/shared", json={"data": {"side": "b"}})
    call(a, "DELETE", "node/a0")

    expected = 2 * WRITES + 200 + 1 - 1

    def converged() -> dict[str, Any] | None:
        on_a, on_b = state(a), state(b)
        if len(on_a["nodes"]) == expected and on_a == on_b:
            return on_a
        return None

    final = wait_for(converged, "both servers to hold the same nodes and version vector")
    nodes = final["nodes"]
    assert "a0" not in nodes
    assert nodes["a1"] == ("FromA", {"i": 1, "by": "a"})
    assert nodes[f"b{WRITES - 1}"] == ("FromB", {"i": WRITES - 1, "by": "b"})
    assert nodes["bulk199"] == ("Bulk", {"n": 199})
    assert nodes["shared"][1]["side"] in ("a", "b")
    assert nodes["shared"][1]["only_a"] == 1
    assert set(final["vv"]) == {a_id, call(b, "GET", "mesh")["peer_id"]}
