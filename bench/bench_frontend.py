"""Front-end benchmark: bundle size of every panel, and time to first panel paint.

Usage:
    python bench/bench_frontend.py [--repeat N] [--out bench/results/frontend.json]

1. Size of pluresdb_lab/static/widget.js (the one module that serves every panel), raw
   and gzipped, against what the original web app shipped for all of its tabs
   (692 kB, 212 kB gzipped).
2. Time from running a cell that displays a panel to the panel's first paint in
   JupyterLab (headless Chromium, the same harness as tests/ui): the panel's frame,
   then its first measured figures. The first panel of a page also loads the bundle.

Progress goes to stderr; the result table to stdout; everything as JSON to --out.
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the browser harness lives in tests/ui

from bench._common import Run, log  # noqa: E402
from tests.ui.conftest import CHROMIUM, CHROMIUM_ARGS, VIEWPORT  # noqa: E402
from tests.ui.jupyterlab import JupyterLab  # noqa: E402
from tests.ui.notebook import _KERNEL_READY, KERNELSPEC, Notebook, write_notebook  # noqa: E402

BUNDLE = ROOT / "pluresdb_lab" / "static" / "widget.js"
DEFAULT_OUT = ROOT / "bench" / "results" / "frontend.json"
ORIGINAL_KB, ORIGINAL_GZIP_KB = 692, 212

SETUP = """
import tempfile, threading, time
from pathlib import Path
import pluresdb_lab as pl
from pluresdb_lab.widgets import panel

home = Path(tempfile.mkdtemp())
hub = pl.connect(home / "hub", fsync="off")
peers = [pl.connect(home / f"peer{i}", fsync="off") for i in range(2)]
for db in (hub, *peers):
    db.mesh.configure(secret="bench-frontend", discovery=False)
url = hub.mesh.listen("127.0.0.1", 0)
for db in peers:
    db.mesh.connect(url, peer_id=hub.peer_id)
hub.put_many([{"id": f"n{i}", "value": i, "group": i % 10} for i in range(20_000)], type="row")
hub.create_index("numeric", type="row", fields=["value"])
for i in range(20):
    hub.query({"type": "row", "filter": {"field": "group", "op": "eq", "value": i % 10}})
deadline, pause = time.monotonic() + 60, threading.Event()
while not all(db.count() == hub.count() for db in peers):
    assert time.monotonic() < deadline, "peers did not catch up"
    pause.wait(0.05)
"""

# What each panel shows once its first request was answered.
FIRST_FIGURES = {
    "mesh": '[data-testid="own-peer-id"]',
    "storage": '[data-testid="storage-keys"]',
    "profiling": '[data-testid="slow-count"]',
}

# Records, in the page, when a panel frame and its first figures appear in a cell.
_WATCH = """([cell, figures]) => {
    window.__paint = { start: performance.now(), frame: null, figures: null };
    const seen = () => {
        const now = performance.now();
        if (window.__paint.frame === null && cell.querySelector('.pl-root')) {
            window.__paint.frame = now;
        }
        if (window.__paint.figures === null && cell.querySelector('.pl-root ' + figures)) {
            window.__paint.figures = now;
        }
    };
    new MutationObserver(seen).observe(cell, { subtree: true, childList: true });
}"""


def bundle_size() -> dict[str, Any]:
    raw = BUNDLE.read_bytes()
    packed = gzip.compress(raw, compresslevel=9)
    return {
        "bundle_bytes": len(raw),
        "bundle_gzip_bytes": len(packed),
        "vs_original": round(len(raw) / (ORIGINAL_KB * 1000), 3),
        "vs_original_gzip": round(len(packed) / (ORIGINAL_GZIP_KB * 1000), 3),
    }


def first_paint(repeat: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    names = list(FIRST_FIGURES)
    cells = [SETUP, *(f'panel(hub, "{name}")' for name in names)]
    home = Path(tempfile.mkdtemp(prefix="pluresdb-bench-frontend-"))
    lab = JupyterLab(home)
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    try:
        log(f"JupyterLab answered after {lab.start_seconds:.1f} s")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for round_ in range(repeat):
                page = browser.new_page(viewport=VIEWPORT)
                name = f"bench-{uuid.uuid4().hex[:8]}.ipynb"
                write_notebook(lab.root, name, cells)
                page.goto(lab.page_url(f"lab/workspaces/{name[:-6]}/tree/{name}"))
                panel = page.locator(".jp-NotebookPanel")
                panel.locator(".jp-Cell").nth(len(cells) - 1).wait_for(timeout=60_000)
                display = lab.http.get("api/kernelspecs").json()["kernelspecs"]
                page.wait_for_function(
                    _KERNEL_READY,
                    arg=[
                        panel.element_handle(),
                        display[KERNELSPEC["name"]]["spec"]["display_name"],
                    ],
                    timeout=60_000,
                )
                notebook = Notebook(page, panel)
                notebook.run_cell(0, timeout_ms=300_000)
                for index, panel_name in enumerate(names, start=1):
                    cell = notebook.cell(index)
                    cell.locator(".jp-InputArea-editor").click()
                    page.evaluate(_WATCH, [cell.element_handle(), FIRST_FIGURES[panel_name]])
                    page.keyboard.press("Control+Enter")
                    page.wait_for_function("() => window.__paint.figures !== null", timeout=60_000)
                    paint = page.evaluate("window.__paint")
                    samples[panel_name].append(
                        {
                            "frame_ms": paint["frame"] - paint["start"],
                            "figures_ms": paint["figures"] - paint["start"],
                            "first_of_page": index == 1,
                        }
                    )
                    log(f"round {round_ + 1} {panel_name}: {samples[panel_name][-1]}")
                page.close()
                lab.shutdown_kernels()
            browser.close()
    finally:
        lab.stop()
    return {
        name: {
            "frame_ms_median": round(statistics.median(s["frame_ms"] for s in rows), 1),
            "figures_ms_median": round(statistics.median(s["figures_ms"] for s in rows), 1),
            "figures_ms_max": round(max(s["figures_ms"] for s in rows), 1),
            "loads_bundle": rows[0]["first_of_page"],
            "samples": rows,
        }
        for name, rows in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    run = Run(repeat=args.repeat)
    res: dict[str, Any] = {}
    res["size"] = run.attempt("bundle size", bundle_size)
    res["paint"] = run.attempt("first paint", lambda: first_paint(args.repeat))
    run.finish(res)
    table = []
    if res["size"]:
        size = res["size"]
        table.append(
            {
                "what": "bundle (all panels)",
                "ours": f"{size['bundle_bytes'] / 1000:.1f} kB / "
                f"{size['bundle_gzip_bytes'] / 1000:.1f} kB gz",
                "original app": f"{ORIGINAL_KB} kB / {ORIGINAL_GZIP_KB} kB gz",
                "ratio": f"{size['vs_original']:.2f} / {size['vs_original_gzip']:.2f}",
            }
        )
    for name, paint in (res["paint"] or {}).items():
        table.append(
            {
                "what": f"first paint: {name}",
                "ours": f"frame {paint['frame_ms_median']:.0f} ms, "
                f"figures {paint['figures_ms_median']:.0f} ms (max {paint['figures_ms_max']:.0f})",
                "original app": "",
                "ratio": "loads the bundle" if paint["loads_bundle"] else "",
            }
        )
    for row in table:
        print("  ".join(f"{v}" for v in row.values()))
    run.save(args.out, res, table)


if __name__ == "__main__":
    main()
