"""JupyterLab's light and dark themes, switched through its Settings menu, and screenshots.

The theme changes live, the way a user switches it, so a test sees whether the page
(and every widget in it) restyles without a reload. Screenshots land in
tests/ui/artifacts/ (ignored by git) as `<name>-<theme>.png`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from playwright.sync_api import Locator, Page

ARTIFACTS = Path(__file__).with_name("artifacts")
"""Where screenshots and, after a failure, the server log are saved."""

Theme = Literal["light", "dark"]

THEMES: dict[Theme, str] = {"light": "JupyterLab Light", "dark": "JupyterLab Dark"}
"""Our theme names -> the names JupyterLab shows in Settings > Theme."""


def artifact_name(name: str) -> str:
    """`name` (a test id such as "test_x[dark]") made safe as a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")


def set_theme(page: Page, theme: Theme, timeout_ms: float = 15_000) -> None:
    """Switch JupyterLab to `theme` through Settings > Theme, unless it is already on.

    JupyterLab saves the choice in the (per-session, temporary) user settings, so it
    carries over to pages opened later in the same test session.
    """
    label = THEMES[theme]
    current = page.locator(f'body[data-jp-theme-name="{label}"]')
    if current.count():
        return
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Settings$")).click()
    page.locator(".lm-Menu-item", has_text=re.compile(r"^Theme")).hover()
    page.locator(
        '.lm-Menu-item[data-command="apputils:change-theme"]'
        f':has(.lm-Menu-itemLabel:text-is("{label}"))'
    ).click()
    current.wait_for(state="attached", timeout=timeout_ms)
    # JupyterLab covers the page with its splash while the new theme loads: a
    # screenshot taken before it goes shows the splash over the panel.
    page.locator("#jupyterlab-splash").wait_for(state="detached", timeout=timeout_ms)


def screenshot(page: Page, name: str, theme: Theme, target: Locator | None = None) -> Path:
    """Save a screenshot of `target` (or the whole page) as artifacts/<name>-<theme>.png.

    Returns:
        The file written.
    """
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{artifact_name(name)}-{theme}.png"
    if target is None:
        page.screenshot(path=path)
    else:
        target.screenshot(path=path)
    return path


def screenshots_in_both_themes(page: Page, name: str, target: Locator | None = None) -> list[Path]:
    """Screenshot in the light theme, then in the dark one, then switch back to light.

    Returns:
        The two files written, light first.
    """
    paths = []
    order: tuple[Theme, ...] = ("light", "dark")
    for theme in order:
        set_theme(page, theme)
        paths.append(screenshot(page, name, theme, target))
    set_theme(page, "light")
    return paths
