"""The Profiling panel in JupyterLab: a notebook profiles a database with two connected
peers; the page shows the measured slow queries, large node, top talkers and trends,
and applying the index suggestion creates the index in the kernel's database."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.ui.jupyterlab import JupyterLab
from tests.ui.notebook import open_notebook
from tests.ui.screens import screenshots_in_both_themes

pytestmark = pytest.mark.ui

SETUP = """
import json, tempfile, threading, time
from pathlib import Path
import pluresdb_lab as pl
from pluresdb_lab.widgets import Profiling

home = Path(tempfile.mkdtemp())
hub, left, right = (pl.connect(home / name, fsync="off") for name in ("hub", "left", "right"))
for db in (hub, left, right):
    db.mesh.configure(secret="ui-profiling", discovery=False)
url = hub.mesh.listen("127.0.0.1", 0)
left.mesh.connect(url, peer_id=hub.peer_id)
right.mesh.connect(url, peer_id=hub.peer_id)

hub.put_many(
    [{"id": f"ap{i}", "code": f"A{i}", "elevation": (i * 37) % 4000} for i in range(3000)],
    type="airport",
)
hub.put("doc:big", {"text": "x" * 40000}, type="doc")
hub.get("doc:big")
left.put_many([{"id": f"left{i}", "text": "w" * 100} for i in range(200)], type="note")
right.put("right0", {"n": 1}, type="note")

def wait(condition, what, timeout=60):
    deadline, pause = time.monotonic() + timeout, threading.Event()
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        pause.wait(0.05)

wait(lambda: hub.count() == 3000 + 1 + 200 + 1, "the peers' notes to reach the hub")
hub.profiler.slow_threshold_ms = 0  # every query counts as slow
query = {"type": "airport", "filter": {"field": "elevation", "op": "gt", "value": 2000}}
for _ in range(3):
    hub.query(query)
print(json.dumps({"peers": [left.peer_id, right.peer_id]}))
"""

SHOW = """
panel = Profiling(hub)
panel
"""

READ_BACK = 'print(json.dumps({i["name"]: i["entries"] for i in hub.indexes()}))'


def tab(panel: Locator, label: str) -> None:
    panel.get_by_role("tab", name=label).click()


def test_profiling_panel_shows_measurements_and_applies_a_suggestion(
    page: Page, lab: JupyterLab
) -> None:
    notebook = open_notebook(page, lab, "profiling_panel.ipynb", [SETUP, SHOW, READ_BACK])
    facts = notebook.printed_json(0)
    assert notebook.printed_json(2) == {}  # no index yet
    panel = notebook.wait_output('[data-panel="profiling"]', timeout_ms=60_000)

    # Slow operations: the three queries, at the threshold the kernel set.
    slow = panel.locator('[data-testid="slow-ops"]')
    expect(slow).to_be_visible()
    expect(panel.locator('[data-testid="threshold-input"]')).to_have_value("0")
    queries = slow.locator("tbody tr", has=page.locator('td[data-col="op"]', has_text="query"))
    expect(queries).to_have_count(3)
    expect(queries.first.locator('td[data-col="detail"]')).to_contain_text('"elevation"')
    screenshots_in_both_themes(page, "profiling-slow", panel)

    # Large nodes: the 40 000-character document leads, read once and written once.
    tab(panel, "Large nodes")
    first = panel.locator('[data-testid="large-nodes"] tbody tr').first
    expect(first.locator('td[data-col="id"]')).to_have_text("doc:big")
    expect(first.locator('td[data-col="bytes"]')).to_have_text("39.1 KiB")
    expect(first.locator('td[data-col="reads"]')).to_have_text("1")
    expect(first.locator('td[data-col="writes"]')).to_have_text("1")

    # Top talkers: the two connected peers, each having sent and received bytes.
    tab(panel, "Top talkers")
    talkers = panel.locator('[data-testid="top-talkers"] tbody tr')
    expect(talkers).to_have_count(2)
    peers = panel.locator('[data-testid="top-talkers"] td[data-col="peer_id"]')
    assert sorted(peers.all_inner_texts()) == sorted(facts["peers"])  # type: ignore[arg-type]
    for cell in panel.locator('[data-testid="top-talkers"] td[data-col="bytes_in"]').all():
        expect(cell).to_have_text(re.compile(r"^[1-9][\d.]* (B|KiB|MiB)$"))
    screenshots_in_both_themes(page, "profiling-talkers", panel)

    # Trends: the operations counted, drawn as charts.
    tab(panel, "Trends")
    expect(panel.locator('[data-testid="trend-ops"]')).to_have_text(re.compile(r"^[1-9][\d,]*$"))
    expect(panel.locator(".pl-chart canvas")).to_have_count(2)
    screenshots_in_both_themes(page, "profiling-trends", panel)

    # Suggestions: apply the index the slow queries call for.
    tab(panel, "Suggestions")
    row = panel.locator('[data-testid="suggestion-row"][data-id="index:airport.elevation"]')
    expect(row.locator('[data-testid="suggestion-reason"]')).to_contain_text("3 slow queries")
    screenshots_in_both_themes(page, "profiling-suggestions", panel)
    row.locator('[data-testid="suggestion-apply"]').click()
    applied = panel.locator('[data-testid="applied-row"]')
    expect(applied).to_contain_text(
        "created numeric index numeric_airport_elevation on airport.elevation: 3,000 entries",
        timeout=60_000,
    )
    expect(row).to_have_count(0)
    expect(panel.locator('[role="alert"]')).to_have_count(0)

    notebook.run_cell(2)
    expect(notebook.output(2)).to_contain_text('{"numeric_airport_elevation": 3000}')
    screenshots_in_both_themes(page, "profiling-applied", panel)
