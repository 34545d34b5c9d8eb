"""Smoke tests of the browser harness: JupyterLab loads clean, and an anywidget round-trips.

If these fail, no panel test can pass: they check the server, its extensions, the
browser, notebook execution through the UI, and anywidget's front end in this lab;
the last two check that the harness notices console errors and failing cells.
"""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.ui.console import ConsoleLog
from tests.ui.jupyterlab import JupyterLab
from tests.ui.notebook import OPEN_TIMEOUT_MS, open_notebook
from tests.ui.screens import screenshots_in_both_themes

pytestmark = pytest.mark.ui

CLICKER = '''
import anywidget
import traitlets


class Clicker(anywidget.AnyWidget):
    _esm = """
    function render({ model, el }) {
      const button = document.createElement("button");
      button.className = "smoke-clicker";
      const show = () => { button.textContent = `clicked ${model.get("count")}`; };
      button.addEventListener("click", () => {
        model.set("count", model.get("count") + 1);
        model.save_changes();
      });
      model.on("change:count", show);
      show();
      el.appendChild(button);
      return () => model.off("change:count", show);
    }
    export default { render };
    """
    count = traitlets.Int(0).tag(sync=True)


clicker = Clicker()
clicker
'''
"""A widget whose button increments a synced trait, defined inline (no bundle needed)."""

READ_BACK = 'print(f"count={clicker.count}")'


def test_jupyterlab_loads_with_its_extensions(
    page: Page, lab: JupyterLab, console: ConsoleLog
) -> None:
    page.goto(lab.page_url("lab/workspaces/smoke-empty"))
    page.locator(".jp-Launcher").wait_for(timeout=OPEN_TIMEOUT_MS)
    config = json.loads(page.locator("#jupyter-config-data").text_content() or "{}")
    front_ends = {extension["name"] for extension in config["federated_extensions"]}
    assert {"anywidget", "@jupyter-widgets/jupyterlab-manager"} <= front_ends
    assert lab.http.get("pluresdb/api/").status_code == 200
    assert console.problems == []


def test_anywidget_click_reaches_the_kernel(
    page: Page, lab: JupyterLab, request: pytest.FixtureRequest
) -> None:
    notebook = open_notebook(page, lab, "smoke_clicker.ipynb", [CLICKER.strip(), READ_BACK])
    button = notebook.wait_output("button.smoke-clicker", timeout_ms=60_000)
    expect(button).to_have_text("clicked 0")
    read_back = notebook.output(1)
    expect(read_back).to_have_text(re.compile(r"^\s*count=0\s*$"))

    button.click()
    expect(button).to_have_text("clicked 1")
    notebook.run_cell(1)
    expect(read_back).to_have_text(re.compile(r"^\s*count=1\s*$"))

    light, dark = screenshots_in_both_themes(page, request.node.name)
    assert light.stat().st_size > 0
    assert dark.stat().st_size > 0


def test_console_log_records_console_errors_and_page_errors(browser: Browser) -> None:
    context = browser.new_context()
    try:
        blank = context.new_page()
        log = ConsoleLog(blank)
        with blank.expect_console_message(lambda message: message.type == "error"):
            blank.evaluate("() => console.error('reported by the test')")
        with blank.expect_event("pageerror"):
            blank.evaluate("() => setTimeout(() => { throw new Error('thrown by the test'); })")
    finally:
        context.close()
    assert log.problems[0] == "console: reported by the test"
    assert log.problems[1].startswith("page error: thrown by the test")
    assert len(log.problems) == 2


def test_a_cell_that_raises_fails_run_all(page: Page, lab: JupyterLab) -> None:
    with pytest.raises(AssertionError, match=r"cell raised:[\s\S]*ZeroDivisionError"):
        open_notebook(page, lab, "smoke_raises.ipynb", ["ok = 1", "ok / 0", "print('unreached')"])
