"""The Mesh panel in JupyterLab: a notebook shows the mesh of a database linked to two
peers; the page shows their real ids, states and byte counts, and its buttons connect a
third peer, sync, take a snapshot and disconnect a peer, as the kernel confirms."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.ui.jupyterlab import JupyterLab
from tests.ui.notebook import open_notebook
from tests.ui.screens import screenshots_in_both_themes

pytestmark = pytest.mark.ui

# Heartbeats an hour apart: no frame moves unless the test makes it, so the byte counts
# the page shows can be compared with the kernel's to the byte.
SETUP = """
import json, tempfile, threading, time
from pathlib import Path
import pluresdb_lab as pl
from pluresdb_lab.widgets import MeshPanel

home = Path(tempfile.mkdtemp())
hub, left, right, late = (
    pl.connect(home / name, fsync="off") for name in ("hub", "left", "right", "late")
)
for db in (hub, left, right, late):
    db.mesh.configure(secret="ui-mesh", heartbeat_s=3600)
for i in range(200):  # one op per put, so the links count 200 and 50 ops
    left.put(f"left{i}", {"text": "w" * 100}, type="note")
for i in range(50):
    right.put(f"right{i}", {"n": i}, type="note")
urls = {db.peer_id: db.mesh.listen("127.0.0.1", 0) for db in (left, right, late)}
hub.mesh.connect(urls[left.peer_id], peer_id=left.peer_id)
hub.mesh.connect(urls[right.peer_id], peer_id=right.peer_id)

def wait(condition, what, timeout=60):
    deadline, pause = time.monotonic() + timeout, threading.Event()
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        pause.wait(0.05)

def received():
    return {p["peer_id"]: p["ops_received"] for p in hub.mesh.peers()}

wait(lambda: received() == {left.peer_id: 200, right.peer_id: 50}, "the hub to catch up")
print(json.dumps({
    "hub": hub.peer_id, "left": left.peer_id, "right": right.peer_id, "late": late.peer_id,
    "late_url": urls[late.peer_id],
}))
"""

SHOW = """
panel = MeshPanel(hub, refresh_s=1)
panel
"""

READ_BACK = """
print(json.dumps({
    "links": {p["peer_id"]: [p["state"], p["bytes_in"], p["bytes_out"]] for p in hub.mesh.peers()},
    "snapshots": [s["ops"] for s in hub.mesh.snapshots()],
}))
"""


def peer_row(panel: Locator, peer_id: str) -> Locator:
    return panel.locator(f'[data-testid="peer-row"][data-peer-id="{peer_id}"]')


def test_mesh_panel_shows_the_peers_and_its_buttons_work(page: Page, lab: JupyterLab) -> None:
    notebook = open_notebook(page, lab, "mesh_panel.ipynb", [SETUP, SHOW, READ_BACK])
    ids = notebook.printed_json(0)
    kernel = notebook.printed_json(2)
    panel = notebook.wait_output('[data-panel="mesh"]', timeout_ms=60_000)

    # This peer and its two links, as the kernel's mesh reports them.
    expect(panel.locator('[data-testid="own-peer-id"]')).to_have_text(ids["hub"])
    expect(panel.locator('[data-testid="peer-row"]')).to_have_count(2)
    for name in ("left", "right"):
        row = peer_row(panel, ids[name])
        state, bytes_in, bytes_out = kernel["links"][ids[name]]
        assert state == "connected"
        expect(row.locator('[data-testid="peer-state"]')).to_have_attribute(
            "data-state", "connected"
        )
        expect(row.locator('[data-testid="bytes-in"]')).to_have_attribute(
            "title", f"{bytes_in} bytes in"
        )
        expect(row.locator('[data-testid="bytes-out"]')).to_have_attribute(
            "title", f"{bytes_out} bytes out"
        )
        expect(row.locator('[data-testid="bytes-in"]')).to_have_text(
            re.compile(r"^[1-9][\d.]* (B|KiB|MiB)$")
        )
    expect(panel.locator(".pl-chart canvas")).to_have_count(4)  # two sparklines per link
    screenshots_in_both_themes(page, "mesh-panel", panel)

    # A row expands into the link's counters: left's 200 notes came over this link.
    peer_row(panel, ids["left"]).locator('[data-testid="peer-expand"]').click()
    details = panel.locator('[data-testid="peer-details"]')
    expect(details.locator('[data-testid="detail-ops"]')).to_have_text(re.compile(r"^200 / "))
    expect(details.locator('[data-testid="detail-sync"]')).to_contain_text("received 200 of 200")
    screenshots_in_both_themes(page, "mesh-panel-details", panel)

    # Connect: the late peer's URL and id, typed into the form.
    panel.locator('[data-testid="connect-url"]').fill(ids["late_url"])
    panel.locator('[data-testid="connect-peer-id"]').fill(ids["late"])
    panel.locator('[data-testid="connect"]').click()
    late = peer_row(panel, ids["late"])
    expect(late.locator('[data-testid="peer-state"]')).to_have_attribute(
        "data-state", "connected", timeout=30_000
    )

    # Sync now: a round answered by all three links.
    panel.locator('[data-testid="sync-now"]').click()
    expect(panel.locator('[data-testid="sync-result"]')).to_contain_text(
        "Round answered by 3 links", timeout=60_000
    )

    # Snapshot: the new one is listed with every op the hub holds.
    panel.locator('[data-testid="snapshot-create"]').click()
    snapshot_ops = panel.locator('[data-testid="snapshot-table"] td[data-col="ops"]')
    expect(snapshot_ops).to_have_text(["250"])

    # Disconnect: right's link goes down, in the page and in the kernel.
    right = peer_row(panel, ids["right"])
    right.locator('[data-testid="disconnect"]').click()
    expect(right.locator('[data-testid="peer-state"]')).to_have_attribute(
        "data-state", "disconnected"
    )
    notebook.run_cell(2)
    after = notebook.printed_json(2)
    assert after["links"][ids["right"]][0] == "disconnected"
    assert after["links"][ids["late"]][0] == "connected"
    assert after["snapshots"] == [250]

    # The log shows what just happened, coloured by level; the filter narrows it.
    log = panel.locator('[data-testid="log-row"]')
    expect(log.filter(has_text="disconnected; no reconnect until connect()")).to_have_count(1)
    expect(log.first).to_have_attribute("data-level", re.compile(r"^(info|warning|error)$"))
    panel.locator('[data-testid="log-level"]').select_option("error")
    expect(panel.locator('[data-testid="log-row"][data-level="info"]')).to_have_count(0)
    expect(panel.locator('[role="alert"]')).to_have_count(0)
    screenshots_in_both_themes(page, "mesh-panel-after", panel)
