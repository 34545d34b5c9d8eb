"""The Storage & Indexes panel in JupyterLab: a notebook shows the storage of a database
with two connected peers; the page shows its measured node count, segments and index
entries, "Compact now" reduces the segment count shown, and a backup appears in the list
(and in the kernel's own listing)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.ui.jupyterlab import JupyterLab
from tests.ui.notebook import open_notebook
from tests.ui.screens import screenshots_in_both_themes

pytestmark = pytest.mark.ui

SETUP = """
import json, tempfile, threading, time
from pathlib import Path
import pluresdb_lab as pl
from pluresdb_lab.widgets import StorageIndexes

home = Path(tempfile.mkdtemp())
hub = pl.connect(home / "hub", fsync="off", auto_compact=False)
left, right = (pl.connect(home / name, fsync="off") for name in ("left", "right"))
for db in (hub, left, right):
    db.mesh.configure(secret="ui-storage", discovery=False)
url = hub.mesh.listen("127.0.0.1", 0)
left.mesh.connect(url, peer_id=hub.peer_id)
right.mesh.connect(url, peer_id=hub.peer_id)
left.put_many([{"id": f"left{i}", "note": f"from the left {i}"} for i in range(150)], type="note")
right.put_many([{"id": f"right{i}", "note": f"from the right {i}"} for i in range(50)], type="note")

def wait(condition, what, timeout=60):
    deadline, pause = time.monotonic() + timeout, threading.Event()
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        pause.wait(0.05)

wait(lambda: hub.count() == 200, "the peers' notes to reach the hub")
for round in range(3):  # three versions of each item, one L0 segment per round
    hub.put_many(
        [{"id": f"item{i}", "price": i * 2.5, "round": round} for i in range(1000)], type="item"
    )
    hub.flush()
index = hub.create_index("numeric", type="item", fields=["price"])
stats = hub.storage_stats()
print(json.dumps({"nodes": stats.nodes, "keys": stats.keys, "segments": stats.segments,
                  "entries": index["entries"]}))
"""

SHOW = """
panel = StorageIndexes(hub, backup_dir=home / "backups")
panel
"""

READ_BACK = """
print(json.dumps({"segments": hub.storage_stats().segments,
                  "backups": [[b.id, b.kind, b.status] for b in hub.backups(home / "backups")]}))
"""


def test_storage_panel_shows_measurements_compacts_and_backs_up(
    page: Page, lab: JupyterLab
) -> None:
    notebook = open_notebook(page, lab, "storage_panel.ipynb", [SETUP, SHOW, READ_BACK])
    facts = notebook.printed_json(0)
    assert facts == {"nodes": 1200, "keys": 3, "segments": 3, "entries": 1000}
    panel = notebook.wait_output('[data-panel="storage"]', timeout_ms=60_000)

    # The measured figures: nodes (the hub's own and the peers'), keys, segments.
    expect(panel.locator('[data-testid="storage-nodes"]')).to_have_text("1,200")
    expect(panel.locator('[data-testid="storage-keys"]')).to_have_text("3")
    expect(panel.locator('[data-testid="storage-segments"]')).to_have_text("3")
    expect(panel.locator('[data-testid="storage-total"]')).to_have_text(
        re.compile(r"^[1-9][\d.]* (B|KiB|MiB)$")
    )
    level = panel.locator('[data-testid="levels-table"] tbody tr')
    expect(level).to_have_count(1)
    expect(level.locator('td[data-col="rows"]')).to_have_text("3,200")

    # The index with its entries, as the kernel reported them.
    index = panel.locator('[data-testid="indexes-table"] tbody tr')
    expect(index).to_have_count(1)
    expect(index.locator('td[data-col="name"]')).to_have_text("numeric_item_price")
    expect(index.locator('td[data-col="entries"]')).to_have_text("1,000")
    expect(index.locator('td[data-col="memory_bytes"]')).to_have_text(
        re.compile(r"^[1-9][\d.]* (B|KiB)$")
    )

    # The backup folder the notebook chose, empty so far.
    expect(panel.locator('[data-testid="backup-dir"]')).to_have_text(re.compile(r"/backups$"))
    backups = panel.locator('[data-testid="backups-table"] tbody tr')
    expect(backups).to_have_text("No backups in this folder.")
    screenshots_in_both_themes(page, "storage-panel", panel)

    # Compact now: the segment count shown drops to one.
    panel.locator('[data-testid="compact-now"]').click()
    expect(panel.locator('[data-testid="compact-note"]')).to_contain_text(
        "Compaction done: 3 → 1 segments", timeout=60_000
    )
    expect(panel.locator('[data-testid="storage-segments"]')).to_have_text("1")
    expect(level.locator('td[data-col="level"]')).to_have_text("L1")

    # A full backup appears in the list, complete, and the kernel lists the same one.
    panel.locator('[data-testid="backup-full"]').click()
    expect(backups).to_have_count(1, timeout=60_000)
    expect(backups.locator('td[data-col="status"]')).to_have_text("complete")
    expect(backups.locator('td[data-col="kind"]')).to_have_text("full")
    expect(backups.locator('td[data-col="nodes"]')).to_have_text("1,200")
    shown_id = backups.locator('td[data-col="id"]').inner_text()
    expect(panel.locator('[role="alert"]')).to_have_count(0)

    notebook.run_cell(2)
    expect(notebook.output(2)).to_contain_text('"segments": 1')
    assert notebook.printed_json(2)["backups"] == [[shown_id, "full", "complete"]]
    screenshots_in_both_themes(page, "storage-panel-after", panel)
