"""What a page said went wrong: its console errors and its uncaught exceptions.

Nothing is excused: JupyterLab 4.6 with anywidget and ipywidgets logs no console
error while it loads, opens and runs a notebook, or switches theme, so any error is
ours to explain.
"""

from __future__ import annotations

from playwright.sync_api import ConsoleMessage, Error, Page


class ConsoleLog:
    """Collects a page's console errors and page errors from the moment it is attached.

    Attributes:
        problems: Every error seen, as "console: <text>" or "page error: <message>".
    """

    def __init__(self, page: Page) -> None:
        """Start listening to `page`."""
        self.problems: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", self._page_error)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            where = message.location.get("url")
            self.problems.append(f"console: {message.text}" + (f" ({where})" if where else ""))

    def _page_error(self, error: Error) -> None:
        self.problems.append(f"page error: {error.message}\n{error.stack or ''}".rstrip())
