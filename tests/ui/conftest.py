"""Fixtures for the browser tests: one JupyterLab and one headless Chromium per session.

Each test gets a fresh browser context (`page`) whose console errors and page errors
fail the test at teardown. After a failure the test's last screen is saved as
`artifacts/<test>-failure.png`, and at the end of a session with failures the server
log as `artifacts/jupyterlab-server.log`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect, sync_playwright

from tests.ui.console import ConsoleLog
from tests.ui.jupyterlab import JupyterLab
from tests.ui.screens import ARTIFACTS, artifact_name

CHROMIUM = Path("/usr/bin/chromium")
"""Debian's Chromium (`make browser` installs it); Playwright never downloads a browser."""

CHROMIUM_ARGS = [
    # Containers and root users have no usable sandbox; the pages are our own.
    "--no-sandbox",
    "--disable-gpu",
    # No traffic of the browser's own: the tests only talk to 127.0.0.1.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]

VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
DEFAULT_TIMEOUT_MS = 30_000
"""Bound on every Playwright action and wait that names no timeout of its own."""

EXPECT_TIMEOUT_MS = 15_000
"""Bound on `expect(...)` assertions naming none: Playwright's 5 s is tight on 2 busy cores."""
expect.set_options(timeout=EXPECT_TIMEOUT_MS)

REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()
CONSOLE = pytest.StashKey[ConsoleLog]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the test item, so fixtures know whether it failed."""
    report = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    return report


def _save_server_log(log: Path) -> None:
    if log.exists():
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copyfile(log, ARTIFACTS / "jupyterlab-server.log")


@pytest.fixture(scope="session")
def lab(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[JupyterLab]:
    """A `jupyter lab` server for the whole session; kernels shut down and server stopped after."""
    home = tmp_path_factory.mktemp("jupyterlab")
    try:
        server = JupyterLab(home)
    except AssertionError:
        _save_server_log(home / "server.log")
        raise
    try:
        yield server
    finally:
        server.stop()
        if request.session.testsfailed:
            _save_server_log(server.log)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Headless Chromium for the whole session."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium package")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser, lab: JupyterLab, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page in a fresh browser context; fails the test if the page logged errors.

    At teardown the context closes, every kernel the test started is shut down, and
    any console error or uncaught page error fails the test.
    """
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    opened = context.new_page()
    log = ConsoleLog(opened)
    request.node.stash[CONSOLE] = log
    try:
        yield opened
        call = request.node.stash.get(REPORTS, {}).get("call")
        if call is not None and call.failed:
            ARTIFACTS.mkdir(exist_ok=True)
            opened.screenshot(path=ARTIFACTS / f"{artifact_name(request.node.name)}-failure.png")
    finally:
        context.close()
        lab.shutdown_kernels()
    if log.problems:
        pytest.fail("the page logged errors:\n" + "\n".join(log.problems), pytrace=False)


@pytest.fixture
def console(page: Page, request: pytest.FixtureRequest) -> ConsoleLog:
    """The console errors and page errors of `page` so far, for assertions mid-test."""
    log: ConsoleLog = request.node.stash[CONSOLE]
    return log
