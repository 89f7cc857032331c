"""The `chipmix validate` report: predicted against published (log–log) with ±10 % bands,
per vendor; the error by chip and by stack; the scorecard's tables."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from chipmix.catalog.version import CatalogVersion
from chipmix.report.html.page import Page, Table
from chipmix.report.html.style import base_figure, pct, vendor_color, vendor_name
from chipmix.validate.score import CaseScore, Scorecard

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["BAND", "error_figure", "parity_figure", "validate_page"]

BAND = 0.10
"""The shaded tolerance around a perfect prediction (±10 %)."""

METRICS = {"tokens_per_s": "tokens/s", "step_time_s": "step time, s"}


def _vendor(vendors: Mapping[str, str], chip: str) -> str:
    return vendors.get(chip, "other")


def _hover(r: CaseScore, vendors: Mapping[str, str]) -> str:
    return (
        f"<b>{r.id}</b><br>{r.chip} ({vendor_name(_vendor(vendors, r.chip))}), {r.stack}<br>"
        f"published {r.published:,.4g}, predicted {r.predicted or 0:,.4g} ({pct(r.error)})<br>"
        f"{r.layout or ''}"
    )


def parity_figure(card: Scorecard, vendors: Mapping[str, str]) -> go.Figure | None:
    """Predicted against published on log–log axes, one panel per metric, one colour per
    vendor; the diagonal and the ±10 % band drawn."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows = card.predicted
    metrics = [m for m in METRICS if any(r.metric == m for r in rows)]
    metrics += sorted({r.metric for r in rows} - set(metrics))
    if not rows:
        return None
    counts = [sum(r.metric == m for r in rows) for m in metrics]
    widths = [max(c, max(counts) / 3) for c in counts]
    fig = make_subplots(
        rows=1,
        cols=len(metrics),
        column_widths=[w / sum(widths) for w in widths],
        subplot_titles=[
            f"{METRICS.get(m, m)} ({c} rows)" for m, c in zip(metrics, counts, strict=True)
        ],
        horizontal_spacing=0.08,
    )
    base = base_figure(
        "Predicted against published" + (" (leave one source out)" if card.cross_validated else ""),
        height=520,
    )
    fig.update_layout(base.layout)
    shown: set[str] = set()
    for col, metric in enumerate(metrics, start=1):
        mine = [r for r in rows if r.metric == metric]
        values = [v for r in mine for v in (r.published, r.predicted or 0.0) if v > 0]
        lo, hi = min(values) / 1.6, max(values) * 1.6
        fig.add_trace(
            go.Scatter(
                x=[lo, hi, hi, lo],
                y=[lo * (1 - BAND), hi * (1 - BAND), hi * (1 + BAND), lo * (1 + BAND)],
                fill="toself",
                fillcolor="rgba(120,120,120,0.13)",
                line={"width": 0},
                name=f"±{BAND:.0%}",
                legendgroup="band",
                showlegend=col == 1,
                hoverinfo="skip",
            ),
            row=1,
            col=col,
        )
        fig.add_trace(
            go.Scatter(
                x=[lo, hi],
                y=[lo, hi],
                mode="lines",
                line={"color": "#555", "width": 1, "dash": "dash"},
                name="predicted = published",
                legendgroup="diagonal",
                showlegend=col == 1,
                hoverinfo="skip",
            ),
            row=1,
            col=col,
        )
        _vendor_markers(
            fig, mine, vendors, shown, col, size=9,
            x=lambda r: r.published, y=lambda r: r.predicted or 0.0,
        )  # fmt: skip
        fig.update_xaxes(
            type="log", title_text="published", range=_log_range(lo, hi), row=1, col=col
        )
        fig.update_yaxes(
            type="log", title_text="predicted", range=_log_range(lo, hi), row=1, col=col
        )
    return fig


def _log_range(lo: float, hi: float) -> list[float]:
    import math

    return [math.log10(lo), math.log10(hi)]


def _jitter(key: str, width: float = 0.28) -> float:
    """A fixed offset in [-width, width] from the row's id: the same page every time."""
    h = 0
    for ch in key:
        h = (h * 131 + ord(ch)) % 1_000_003
    return (h / 1_000_003 * 2 - 1) * width


def error_figure(card: Scorecard, vendors: Mapping[str, str]) -> go.Figure | None:
    """Signed error per chip (left) and per stack (right): a box per group and every row
    as a point coloured by vendor, on the ±10 % band."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows = [r for r in card.predicted if r.error is not None]
    if not rows:
        return None
    chips = sorted({r.chip for r in rows}, key=lambda c: (_vendor(vendors, c), c))
    stacks = sorted({r.stack for r in rows})
    fig = make_subplots(
        rows=1,
        cols=2,
        shared_yaxes=True,
        column_widths=[
            len(chips) / (len(chips) + len(stacks)),
            len(stacks) / (len(chips) + len(stacks)),
        ],
        subplot_titles=["by chip", "by stack"],
        horizontal_spacing=0.04,
    )
    fig.update_layout(
        base_figure(
            "Prediction error by chip and by stack"
            + (" (leave one source out)" if card.cross_validated else ""),
            height=480,
        ).layout
    )
    shown: set[str] = set()
    groups: list[tuple[int, list[str], Callable[[CaseScore], str]]] = [
        (1, chips, lambda r: r.chip),
        (2, stacks, lambda r: r.stack),
    ]
    for col, names, key in groups:
        pos = {n: i for i, n in enumerate(names)}
        fig.add_hrect(
            y0=-BAND * 100,
            y1=BAND * 100,
            fillcolor="rgba(120,120,120,0.13)",
            line_width=0,
            row=1,
            col=col,
        )
        fig.add_hline(y=0, line={"color": "#555", "width": 1, "dash": "dash"}, row=1, col=col)
        for name in names:
            errs = [(r.error or 0.0) * 100 for r in rows if key(r) == name]
            fig.add_trace(
                go.Box(
                    x=[pos[name]] * len(errs),
                    y=errs,
                    boxpoints=False,
                    fillcolor="rgba(0,0,0,0)",
                    line={"color": "#999", "width": 1},
                    showlegend=False,
                    hoverinfo="skip",
                    width=0.6,
                ),
                row=1,
                col=col,
            )
        xs = {r.id: pos[key(r)] + _jitter(r.id) for r in rows}

        def slot(r: CaseScore, xs: dict[str, float] = xs) -> float:
            return xs[r.id]

        _vendor_markers(
            fig, rows, vendors, shown, col, size=8,
            x=slot, y=lambda r: (r.error or 0.0) * 100,
        )  # fmt: skip
        fig.update_xaxes(
            tickvals=list(range(len(names))),
            ticktext=names,
            tickangle=-40,
            range=[-0.6, len(names) - 0.4],
            showgrid=False,
            row=1,
            col=col,
        )
    fig.update_yaxes(
        title_text="error, % (predicted / published − 1)", ticksuffix="%", row=1, col=1
    )
    return fig


def _summary_table(card: Scorecard) -> Table:
    s = card.summary()
    rows = []

    def add(name: str, st: Mapping[str, Any]) -> None:
        if not st.get("count"):
            return
        rows.append(
            [
                name,
                str(st["count"]),
                f"{st['median_abs_error']:.1%}",
                f"{st['p90_abs_error']:.1%}",
                pct(st["mean_signed_error"]),
            ]
        )

    add("all rows", s)
    for key, label in (("per_chip", "chip"), ("per_stack", "stack")):
        for name, st in s[key].items():
            add(f"{label} {name}", st)
    return Table(
        ["", "rows", "median |error|", "p90 |error|", "mean error"],
        rows,
        title="Summary",
        numeric={"rows", "median |error|", "p90 |error|", "mean error"},
        highlight=[0],
        caption=f"{s['unpredicted']} rows could not be predicted (below).",
    )


def _rows_table(card: Scorecard, vendors: Mapping[str, str], in_sample: Scorecard | None) -> Table:
    other = {r.id: r.error for r in in_sample.rows} if in_sample else {}
    heads = ["id", "chip", "vendor", "stack", "metric", "published", "predicted", "error"]
    if in_sample:
        heads.append("in-sample error")
    heads.append("layout")
    rows = []
    for r in card.predicted:
        cells = [
            r.id,
            r.chip,
            vendor_name(_vendor(vendors, r.chip)),
            r.stack,
            METRICS.get(r.metric, r.metric),
            f"{r.published:,.4g}",
            f"{r.predicted or 0:,.4g}",
            pct(r.error),
        ]
        if in_sample:
            cells.append(pct(other.get(r.id)))
        cells.append(str(r.layout or ""))
        rows.append(cells)
    return Table(
        heads,
        rows,
        title="Every row",
        numeric={"published", "predicted", "error", "in-sample error"},
    )


def validate_page(
    card: Scorecard,
    vendors: Mapping[str, str],
    *,
    in_sample: Scorecard | None = None,
    cases: str = "",
    catalog: CatalogVersion | None = None,
    command: str | None = None,
) -> Page:
    """The report of a scorecard (write it with `write_page`). ``vendors`` maps chip ids to
    vendors; ``in_sample`` adds its errors beside a cross-validated ``card``'s."""
    s = card.summary()
    kind = "leave one source out" if card.cross_validated else "in-sample"
    median = s.get("median_abs_error")
    page = Page(
        title=f"chipmix validate: {s['count']} published runs ({kind})",
        subtitle=(
            f"median |error| {median:.1%}, p90 {s['p90_abs_error']:.1%}"
            if median is not None
            else "no row could be predicted"
        ),
        command=command,
        inputs=[
            ("cases", cases or "shipped published_training.csv"),
            ("rows", f"{len(card.rows)} ({s['count']} predicted, {s['unpredicted']} not)"),
            ("scoring", kind),
            ("chips", ", ".join(sorted({r.chip for r in card.rows}))),
            *(("note", n) for n in card.notes),
        ],
        catalog=catalog,
        data=card.to_dict(),
    )
    page.section("Predicted against published")
    fig = parity_figure(card, vendors)
    if fig is not None:
        page.figure(
            fig,
            f"Each point is a published run; on the dashed line the prediction is exact, in "
            f"the band it is within ±{BAND:.0%}. Hover for the run and its layout.",
        )
    fig = error_figure(card, vendors)
    if fig is not None:
        page.figure(fig, "Signed error of each row; boxes show the spread of each group.")
    if fig is None:
        page.note("No row could be predicted: nothing to draw.")
    page.section("Tables")
    page.table(_summary_table(card))
    page.table(_rows_table(card, vendors, in_sample))
    if card.unpredicted:
        page.table(
            Table(
                ["id", "chip", "reason"],
                [[r.id, r.chip, r.reason or ""] for r in card.unpredicted],
                title="Rows not predicted",
            )
        )
    return page


def _vendor_markers(
    fig: Any,
    rows: Sequence[CaseScore],
    vendors: Mapping[str, str],
    shown: set[str],
    col: int,
    *,
    size: int,
    x: Callable[[CaseScore], float],
    y: Callable[[CaseScore], float],
) -> None:
    """One marker trace per vendor in subplot ``col``, each vendor in the legend once."""
    import plotly.graph_objects as go

    for vendor in sorted({_vendor(vendors, r.chip) for r in rows}):
        points = [r for r in rows if _vendor(vendors, r.chip) == vendor]
        fig.add_trace(
            go.Scatter(
                x=[x(r) for r in points],
                y=[y(r) for r in points],
                mode="markers",
                name=vendor_name(vendor),
                legendgroup=vendor,
                showlegend=vendor not in shown,
                marker={"color": vendor_color(vendor), "size": size, "line": {"width": 0.5}},
                hovertext=[_hover(r, vendors) for r in points],
                hoverinfo="text",
            ),
            row=1,
            col=col,
        )
        shown.add(vendor)
