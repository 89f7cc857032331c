"""One self-contained HTML page: inputs, catalog version, tables and plotly figures.

The page embeds plotly.js once, in its head, and a Content-Security-Policy that allows no
network request at all (scripts, styles and images only from the page itself), so a report
opened offline, mailed or archived shows the same as on the day it was written. The
result's data travel with it as JSON (``<script id="chipmix-data">``).
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chipmix.catalog.catalog import DATA_DIR
from chipmix.catalog.version import CatalogVersion

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["Page", "Table", "write_page"]

CSP = (
    "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; "
    "style-src 'unsafe-inline'; img-src data: blob:; font-src data:; connect-src 'none'"
)
"""No request leaves the page: everything it needs is inline."""

PLOT_CONFIG: dict[str, Any] = {
    "displaylogo": False,
    "responsive": True,
    "toImageButtonOptions": {"format": "png", "scale": 2},
}

STYLE = """
:root { --fg:#1d2330; --muted:#5b6472; --line:#d9dde3; --band:#f4f6f8; --accent:#2f5d9e; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; color: var(--fg); margin: 0; background: #fff; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
header h1 { font-size: 22px; margin: 0 0 4px; }
header .sub { color: var(--muted); margin: 0 0 14px; }
h2 { font-size: 17px; margin: 30px 0 8px; padding-top: 8px; border-top: 1px solid var(--line); }
h3 { font-size: 14px; margin: 18px 0 6px; }
p.note, figcaption, caption { color: var(--muted); font-size: 12.5px; }
.meta { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 14px; }
.meta table { width: 100%; }
code, .cmd { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-size: 12.5px; }
.cmd { display: block; background: var(--band); padding: 8px 10px; border-radius: 4px;
  white-space: pre-wrap; word-break: break-all; margin: 6px 0 12px; }
table { border-collapse: collapse; margin: 6px 0 4px; font-variant-numeric: tabular-nums; }
caption { caption-side: bottom; text-align: left; padding-top: 4px; }
th, td { padding: 3px 10px 3px 0; border-bottom: 1px solid var(--line); vertical-align: top;
  text-align: left; }
th { font-weight: 600; border-bottom: 2px solid var(--line); white-space: nowrap; }
td { white-space: nowrap; }
td.wrap { white-space: normal; min-width: 260px; }
td.num, th.num { text-align: right; }
tr.hl td { font-weight: 600; }
table.kv th { font-weight: 600; color: var(--muted); border-bottom: 1px solid var(--line); }
table.kv td { white-space: normal; }
.scroll { overflow-x: auto; }
figure { margin: 10px 0 18px; }
.plot { width: 100%; min-height: 420px; }
details { margin: 8px 0 14px; }
summary { cursor: pointer; color: var(--accent); }
footer { margin-top: 36px; color: var(--muted); font-size: 12px; }
"""


@dataclass
class Table:
    """A table of already formatted cells; ``numeric`` columns are right-aligned."""

    columns: Sequence[str]
    rows: Sequence[Sequence[str]]
    title: str = ""
    numeric: Iterable[str] = ()
    caption: str = ""
    highlight: Iterable[int] = ()
    """Row indexes shown in bold (the best, the cheapest …)."""
    wrap: Iterable[str] = ("reason", "why this many chips", "note")
    """Columns of prose, allowed to wrap (the others keep each cell on one line)."""

    def html(self) -> str:
        numeric, wrap = set(self.numeric), set(self.wrap)
        bold = set(self.highlight)
        cls = ["num" if c in numeric else "wrap" if c in wrap else "" for c in self.columns]
        head = "".join(
            f'<th class="{k}">{html.escape(c)}</th>' for c, k in zip(self.columns, cls, strict=True)
        )
        body = []
        for i, row in enumerate(self.rows):
            cells = "".join(
                f'<td class="{k}">{html.escape(v)}</td>' for v, k in zip(row, cls, strict=True)
            )
            body.append(f'<tr class="{"hl" if i in bold else ""}">{cells}</tr>')
        title = f"<h3>{html.escape(self.title)}</h3>" if self.title else ""
        caption = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        return (
            f'{title}<div class="scroll"><table>{caption}<thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>"
        )


def _kv(rows: Iterable[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="kv"><tbody>{body}</tbody></table>'


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _folder(folder: str) -> str:
    return "shipped catalog" if Path(folder) == DATA_DIR else folder


@dataclass
class Page:
    """A report page built top to bottom: sections of text, tables and figures."""

    title: str
    subtitle: str = ""
    command: str | None = None
    """The command line that made the report, shown verbatim."""
    inputs: list[tuple[str, str]] = field(default_factory=list)
    catalog: CatalogVersion | None = None
    data: Any = None
    """The result as JSON-ready data, embedded for machines."""
    _body: list[str] = field(default_factory=list, init=False, repr=False)
    _figures: int = field(default=0, init=False)

    def section(self, title: str, intro: str = "") -> None:
        self._body.append(f"<h2>{html.escape(title)}</h2>")
        if intro:
            self.note(intro)

    def note(self, text: str) -> None:
        self._body.append(f'<p class="note">{html.escape(text)}</p>')

    def code(self, text: str, summary: str = "") -> None:
        """A block of text shown as written (a scenario file); with ``summary``, folded
        under it until clicked."""
        block = f'<pre class="cmd">{html.escape(text)}</pre>'
        if summary:
            block = f"<details><summary>{html.escape(summary)}</summary>{block}</details>"
        self._body.append(block)

    def table(self, table: Table) -> None:
        self._body.append(table.html())

    def figure(self, fig: go.Figure, caption: str = "") -> None:
        """Add a plotly figure (drawn by the embedded plotly.js when the page opens)."""
        import plotly.io as pio

        self._figures += 1
        div = pio.to_html(
            fig,
            include_plotlyjs=False,
            full_html=False,
            config=PLOT_CONFIG,
            div_id=f"plot-{self._figures}",
            default_height=f"{fig.layout.height or 440}px",
        )
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self._body.append(f'<figure class="chipmix-figure">{div}{cap}</figure>')

    @property
    def num_figures(self) -> int:
        return self._figures

    def _meta(self) -> str:
        parts = []
        if self.inputs:
            parts.append(f"<div><h3>Inputs</h3>{_kv(self.inputs)}</div>")
        if self.catalog is not None:
            c = self.catalog
            rows = [
                ("fingerprint", c.fingerprint),
                ("chipmix", c.chipmix_version),
                ("newest source", c.newest_source),
                ("newest price", c.newest_price or "—"),
                ("contents", f"{c.num_chips} chips, {c.num_systems} systems, "
                             f"{c.num_offers} current offers, {c.num_files} files"),
                ("folders", "; ".join(_folder(f) for f in c.folders)),
            ]  # fmt: skip
            parts.append(f"<div><h3>Catalog</h3>{_kv(rows)}</div>")
        return f'<section class="meta">{"".join(parts)}</section>' if parts else ""

    def html(self) -> str:
        from plotly.offline import get_plotlyjs

        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        command = f'<code class="cmd">{html.escape(self.command)}</code>' if self.command else ""
        subtitle = f'<p class="sub">{html.escape(self.subtitle)}</p>' if self.subtitle else ""
        data = ""
        if self.data is not None:
            text = json.dumps(_clean(self.data), separators=(",", ":"))
            text = text.replace("</", "<\\/")  # never close the script element early
            data = f'<script type="application/json" id="chipmix-data">{text}</script>'
        return (
            "<!DOCTYPE html>\n"
            '<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<meta name="generator" content="chipmix">'
            f"<title>{html.escape(self.title)}</title><style>{STYLE}</style>"
            f'<script type="text/javascript">{get_plotlyjs()}</script>'
            "</head><body><main>"
            f"<header><h1>{html.escape(self.title)}</h1>{subtitle}{command}</header>"
            f"{self._meta()}{''.join(self._body)}"
            f"<footer>Made by chipmix on {now}. Plots drawn with plotly.js, embedded in "
            "this file: it opens offline.</footer>"
            f"{data}</main></body></html>\n"
        )


def write_page(page: Page, path: str | Path) -> Path:
    """Write the page as UTF-8; returns the path written."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page.html(), encoding="utf-8")
    return out
