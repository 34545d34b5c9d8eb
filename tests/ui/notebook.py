"""Notebooks driven through JupyterLab's own UI: write one, open it, run it, read its outputs.

Every wait has a bound; a cell that raised makes `run_all` fail with the traceback
shown in the page, so a broken notebook reads as its Python error, not as a timeout.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from playwright.sync_api import Locator, Page

from tests.ui.jupyterlab import JupyterLab

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
"""Without a kernelspec JupyterLab opens a kernel-selection dialog that blocks every click."""

OPEN_TIMEOUT_MS = 60_000
"""Page load, notebook render and kernel start together (about 8 s on 2 busy cores)."""

RUN_TIMEOUT_MS = 120_000
"""Default bound on running every cell."""

TRACEBACK = re.compile(r"Traceback \(most recent call last\)|Cell In\[\d+\], line \d+")
"""What IPython prints for an exception (the second form covers SyntaxError)."""

_FINISHED = """([panel, traceback]) => {
    const prompts = [...panel.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
        .map(p => p.textContent);
    if (prompts.some(p => p.includes('*'))) return false;
    if (prompts.every(p => /\\[\\d+\\]/.test(p))) return true;
    // A failed cell stops "Run All"; the cells after it keep an empty prompt.
    const re = new RegExp(traceback);
    return [...panel.querySelectorAll('[data-mime-type="application/vnd.jupyter.stderr"]')]
        .some(o => re.test(o.textContent));
}"""
"""True once no cell is queued or running and every cell ran or one of them failed."""


_KERNEL_READY = """([panel, kernel]) => {
    const name = panel.querySelector('.jp-KernelName');
    const status = panel.querySelector('.jp-Notebook-ExecutionIndicator');
    return name?.textContent.trim() === kernel && status?.dataset.status === 'idle';
}"""
"""True once the toolbar names the notebook's kernel (as the server's kernelspec
calls it) and the kernel is idle.

The status alone is not enough: it reads "idle" for a moment while the toolbar
still says "No Kernel", before the session starts.
"""


def write_notebook(folder: Path, name: str, cells: Sequence[str]) -> Path:
    """Write a notebook (nbformat 4.5) of code cells with python3 kernelspec metadata.

    Args:
        folder: Where to write it (the server's root folder).
        name: The file name, ending in ".ipynb".
        cells: The source of each code cell, in order.

    Returns:
        The notebook's path.
    """
    notebook = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": KERNELSPEC},
        "cells": [
            {
                "id": f"cell-{index}",
                "cell_type": "code",
                "metadata": {},
                "execution_count": None,
                "outputs": [],
                "source": source,
            }
            for index, source in enumerate(cells)
        ],
    }
    path = folder / name
    path.write_text(json.dumps(notebook, indent=1))
    return path


class Notebook:
    """A notebook open in JupyterLab, driven through its menus and keyboard.

    Attributes:
        page: The browser page showing JupyterLab.
        panel: The notebook's panel (toolbar and cells).
    """

    def __init__(self, page: Page, panel: Locator) -> None:
        """Wrap an open notebook panel."""
        self.page = page
        self.panel = panel

    def cell(self, index: int) -> Locator:
        """The cell at `index` (0-based)."""
        return self.panel.locator(".jp-Cell").nth(index)

    def output(self, index: int) -> Locator:
        """The output area of the cell at `index`."""
        return self.cell(index).locator(".jp-OutputArea")

    def run_all(self, timeout_ms: float = RUN_TIMEOUT_MS) -> None:
        """Run every cell of a notebook that never ran, through the Run menu; wait for all.

        Raises:
            AssertionError: A cell ran before (its old prompt could pass for a new one),
                or a cell raised (the message holds its traceback).
            playwright.sync_api.TimeoutError: The cells did not finish within `timeout_ms`.
        """
        ran = [p for p in self.panel.locator(".jp-InputPrompt").all_text_contents() if "[" in p]
        assert all(p.replace(" ", "") == "[]:" for p in ran), f"cells ran before: {ran}"
        self.page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
        self.page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
        self._wait_finished(timeout_ms)

    def run_cell(self, index: int, timeout_ms: float = RUN_TIMEOUT_MS) -> None:
        """Run one cell again (click into it, Ctrl+Enter) and wait until it finished.

        Raises:
            AssertionError: The cell raised.
            playwright.sync_api.TimeoutError: It did not finish within `timeout_ms`.
        """
        prompt = self.cell(index).locator(".jp-InputPrompt")
        before = prompt.text_content()
        self.cell(index).locator(".jp-InputArea-editor").click()
        self.page.keyboard.press("Control+Enter")
        self.page.wait_for_function(
            """([prompt, before]) => prompt.textContent !== before
                && /\\[\\d+\\]/.test(prompt.textContent)""",
            arg=[prompt.element_handle(), before],
            timeout=timeout_ms,
        )
        self._raise_on_traceback(self.cell(index))

    def printed_json(self, index: int, timeout_ms: float = 30_000) -> Any:
        """The JSON a cell printed on one line, once its output shows it.

        A cell's prompt can show its number before its printed output arrives (the
        reply and the output travel on different kernel channels), so this waits.
        """
        output = self.output(index)
        self.page.wait_for_function(
            "(area) => /\\{.*\\}/.test(area.textContent)",
            arg=output.element_handle(),
            timeout=timeout_ms,
        )
        found = re.search(r"\{.*\}", output.inner_text())
        assert found, f"cell {index} printed no JSON: {output.inner_text()!r}"
        return json.loads(found.group(0))

    def wait_output(self, selector: str, timeout_ms: float = 30_000) -> Locator:
        """Wait until an element matching `selector` shows inside some cell output.

        Returns:
            The first matching element.
        """
        found = self.panel.locator(".jp-OutputArea-output").locator(selector).first
        found.wait_for(timeout=timeout_ms)
        return found

    def _wait_finished(self, timeout_ms: float) -> None:
        self.page.wait_for_function(
            _FINISHED,
            arg=[self.panel.element_handle(), TRACEBACK.pattern],
            timeout=timeout_ms,
        )
        self._raise_on_traceback(self.panel)

    @staticmethod
    def _raise_on_traceback(scope: Locator) -> None:
        streams = scope.locator('[data-mime-type="application/vnd.jupyter.stderr"]')
        for text in streams.all_text_contents():
            if TRACEBACK.search(text):
                raise AssertionError(f"a notebook cell raised:\n{text}")


def open_notebook(page: Page, lab: JupyterLab, name: str, cells: Sequence[str]) -> Notebook:
    """Write a notebook into the server's root, open it in a fresh workspace, run all cells.

    A workspace of its own means JupyterLab restores nothing a previous test opened.

    Args:
        page: A browser page (it navigates to JupyterLab).
        lab: The running server.
        name: The notebook's file name, ending in ".ipynb".
        cells: The source of each code cell, all run (through the Run menu) once the
            kernel is idle.

    Returns:
        The open notebook.
    """
    write_notebook(lab.root, name, cells)
    workspace = f"test-{uuid.uuid4().hex[:12]}"
    page.goto(lab.page_url(f"lab/workspaces/{workspace}/tree/{name}"))
    panel = page.locator(".jp-NotebookPanel")
    panel.locator(".jp-Cell").nth(len(cells) - 1).wait_for(timeout=OPEN_TIMEOUT_MS)
    # "Run All" before the kernel connects leaves every cell unrun, silently.
    specs = lab.http.get("api/kernelspecs").json()["kernelspecs"]
    page.wait_for_function(
        _KERNEL_READY,
        arg=[panel.element_handle(), specs[KERNELSPEC["name"]]["spec"]["display_name"]],
        timeout=OPEN_TIMEOUT_MS,
    )
    notebook = Notebook(page, panel)
    notebook.run_all()
    return notebook
