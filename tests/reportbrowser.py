"""Open HTML reports in headless Chromium (Debian's, driven by Playwright) and tell what a
reader would see: console errors, network requests, plots drawn; optionally a screenshot.

Used by the end-to-end test (tests/test_report_browser.py) and by scripts/screenshots.
Playwright's own browser download is never used: the browser is the system's Chromium
(scripts/check installs Debian's package), found by `find_chromium`.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_ENV = "CHIPMIX_CHROMIUM"
NETWORK = re.compile(r"^(https?|wss?|ftp)://")
CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

# Every plotly plot of the page: its size, its traces and the drawn marks inside them.
PLOTS_JS = """
() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(el => {
  const svg = el.querySelector('svg.main-svg');
  const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  const traces = el.querySelectorAll('g.trace');
  let marks = 0;
  for (const t of traces) {
    for (const m of t.querySelectorAll('path, image, rect')) {
      const r = m.getBoundingClientRect();
      const d = m.getAttribute('d');
      if (r.width > 0 && r.height > 0 && (m.tagName !== 'path' || (d && d !== 'M0,0Z'))) {
        marks += 1;
      }
    }
  }
  return {id: el.id, width: box.width, height: box.height, traces: traces.length, marks};
})
"""


def find_chromium() -> str | None:
    """The Chromium to drive: $CHIPMIX_CHROMIUM, else the first found on the system."""
    env = os.environ.get(CHROMIUM_ENV)
    if env:
        return env if Path(env).exists() or shutil.which(env) else None
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class Opened:
    """What the browser saw on one report."""

    path: Path
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    """Requests for anything but the report file itself (there should be none)."""
    plots: list[dict[str, Any]] = field(default_factory=list)
    """Per plot: id, width, height, traces, marks (drawn SVG elements)."""

    @property
    def empty_plots(self) -> list[str]:
        return [
            str(p["id"])
            for p in self.plots
            if p["width"] <= 0 or p["height"] <= 0 or p["traces"] == 0 or p["marks"] == 0
        ]


@contextmanager
def browser() -> Iterator[Any]:
    """A headless Chromium context with a fresh profile; raises if none is installed."""
    from playwright.sync_api import sync_playwright

    exe = find_chromium()
    if exe is None:
        raise RuntimeError("no Chromium found (install Debian's chromium, or set CHIPMIX_CHROMIUM)")
    with tempfile.TemporaryDirectory(prefix="chipmix-chromium-") as profile, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile,
            executable_path=exe,
            headless=True,
            args=FLAGS,
            viewport={"width": 1280, "height": 900},
            device_scale_factor=1,
        )
        try:
            yield context
        finally:
            context.close()


def open_reports(
    paths: Sequence[Path],
    screenshots: Path | None = None,
    max_height: int = 2600,
) -> list[Opened]:
    """Open each report, wait for its plots, and report what happened; with
    ``screenshots``, save ``<stem>.png`` there (the top ``max_height`` pixels)."""
    out = []
    with browser() as context:
        for path in paths:
            url = path.resolve().as_uri()
            seen = Opened(path)
            page = context.new_page()

            def on_console(msg: Any, seen: Opened = seen) -> None:
                if msg.type == "error":
                    seen.console_errors.append(msg.text)

            def on_request(req: Any, seen: Opened = seen, url: str = url) -> None:
                if req.url != url:
                    seen.requests.append(req.url)

            page.on("console", on_console)
            page.on("pageerror", lambda exc, seen=seen: seen.console_errors.append(str(exc)))
            page.on("request", on_request)
            page.route(NETWORK, lambda route: route.abort())  # nothing leaves the machine
            page.goto(url, wait_until="load")
            page.wait_for_function(
                "() => Array.from(document.querySelectorAll('.js-plotly-plot'))"
                ".every(el => el.querySelector('svg.main-svg'))",
                timeout=30_000,
            )
            page.wait_for_timeout(300)  # let plotly finish its second layout pass
            seen.plots = page.evaluate(PLOTS_JS)
            if screenshots is not None:
                screenshots.mkdir(parents=True, exist_ok=True)
                height = page.evaluate("() => document.documentElement.scrollHeight")
                page.screenshot(
                    path=str(screenshots / f"{path.stem}.png"),
                    full_page=True,
                    clip={"x": 0, "y": 0, "width": 1280, "height": min(height, max_height)},
                )
            page.close()
            out.append(seen)
    return out
