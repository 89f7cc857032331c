"""Serving reports: throughput against latency per chip, $ per million tokens by tier."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chipmix.catalog.offer import PRICE_TIERS
from chipmix.catalog.version import CatalogVersion
from chipmix.report.html.page import Page, Table
from chipmix.report.html.style import TIER_COLORS, base_figure, vendor_color
from chipmix.report.render import fmt_num
from chipmix.serve.results import ServeComparison, ServeEstimate, ServeSearchResult

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["serve_compare_page", "serve_estimate_page"]


def _inputs(e: ServeEstimate) -> list[tuple[str, str]]:
    job = e.job
    return [
        ("model", f"{job.model.display_name or job.model.name} ({job.model.name})"),
        ("request", f"{job.input_len:,} input / {job.output_len:,} output tokens"),
        ("precision", f"weights {job.precision}, KV cache {job.kv_precision}"),
    ]


def curves_figure(estimates: list[ServeEstimate]) -> go.Figure:
    """Output tokens/s per chip against p99 time per output token, one line per chip
    (its best layout, every batch that fits)."""
    import plotly.graph_objects as go

    fig = base_figure("Throughput against latency", xaxis_title="p99 time per output token (ms)",
                      yaxis_title="output tokens/s per chip")  # fmt: skip
    for e in estimates:
        pts = e.curve
        fig.add_trace(go.Scatter(
            x=[p.tpot_p99_ms for p in pts], y=[p.tokens_per_s_per_chip for p in pts],
            mode="lines+markers", name=e.system.chip.id,
            line={"color": vendor_color(e.system.chip.vendor)},
            text=[f"batch {p.batch}, TTFT p99 {p.ttft_p99_ms:,.0f} ms" for p in pts],
            hovertemplate="%{text}<br>%{x:.1f} ms/token, %{y:,.0f} tokens/s/chip",
        ))  # fmt: skip
    return fig


def per_million_figure(c: ServeComparison) -> go.Figure | None:
    """$ per million output tokens by price tier, one group per chip."""
    import plotly.graph_objects as go

    rows = [r for r in c.feasible if r.estimate and r.estimate.usd_per_chip_hour]
    if not rows:
        return None
    fig = base_figure("$ per million output tokens", yaxis_title="$ / M output tokens",
                      barmode="group")  # fmt: skip
    for tier in PRICE_TIERS:
        xs, ys = [], []
        for r in rows:
            assert r.estimate is not None
            value = r.estimate.usd_per_million_tokens.get(tier)
            if value is not None:
                xs.append(r.system.chip.id)
                ys.append(value)
        if xs:
            fig.add_trace(go.Bar(x=xs, y=ys, name=tier, marker_color=TIER_COLORS.get(tier)))
    return fig


def _estimate_table(estimates: list[ServeEstimate]) -> Table:
    rows = [[str(e.layout), str(e.chips), fmt_num(e.tokens_per_s_per_chip),
             f"{e.ttft_p99_ms:,.0f}", f"{e.tpot_p99_ms:,.1f}", f"{e.memory_gib_per_chip:,.1f}"]
            for e in estimates]  # fmt: skip
    cols = ["layout", "chips", "tokens/s/chip", "TTFT p99 ms", "TPOT p99 ms", "GiB/chip"]
    return Table(cols, rows, numeric=set(cols[1:]), highlight=[0])


def serve_estimate_page(
    result: ServeEstimate | ServeSearchResult,
    catalog: CatalogVersion | None = None,
    command: str | None = None,
) -> Page:
    """The report of `serve estimate` (one estimate) or `serve search` (the best ones)."""
    top = result.top if isinstance(result, ServeSearchResult) else [result]
    best = top[0]
    page = Page(
        title=f"chipmix serve: {best.job.model.name} on {best.system.id}",
        subtitle=f"{best.layout} on {best.chips:,} chips",
        command=command, inputs=_inputs(best), catalog=catalog, data=result.to_dict(),
    )  # fmt: skip
    page.section("Throughput and latency")
    page.figure(curves_figure([best]), "The best layout at every batch that fits in memory.")
    page.table(_estimate_table(top))
    return page


def serve_compare_page(
    c: ServeComparison, catalog: CatalogVersion | None = None, command: str | None = None
) -> Page:
    """The report of `serve compare`."""
    first = c.feasible[0].estimate if c.feasible else None
    page = Page(
        title="chipmix serve compare"
        + (f": {first.job.model.name}" if first is not None else ""),
        subtitle=f"ranked by {c.price_tier} $ per million output tokens",
        command=command, inputs=_inputs(first) if first else [], catalog=catalog,
        data=c.to_dict(),
    )  # fmt: skip
    estimates = [r.estimate for r in c.feasible if r.estimate is not None]
    page.section("Throughput against latency, per chip")
    if estimates:
        page.figure(curves_figure(estimates), "Each chip's best layout at every batch that fits.")
    fig = per_million_figure(c)
    page.section("Cost")
    if fig is not None:
        page.figure(fig, "Each bar prices the same serving plan in one tier.")
    rows = [[r.system.chip.id, r.system.chip.vendor, str(e.layout),
             fmt_num(e.tokens_per_s_per_chip),
             *(f"{e.usd_per_million_tokens[t]:,.2f}" if t in e.usd_per_million_tokens else "—"
               for t in PRICE_TIERS)]
            for r in c.feasible if (e := r.estimate) is not None]  # fmt: skip
    cols = ["chip", "vendor", "layout", "tokens/s/chip", *(f"$/M {t}" for t in PRICE_TIERS)]
    page.table(Table(cols, rows, numeric=set(cols[3:]), highlight=[0]))
    if c.infeasible:
        page.table(Table(["chip", "reason"], [[r.system.chip.id, r.reason or ""]
                                              for r in c.infeasible],
                         title="Chips that cannot serve it"))  # fmt: skip
    return page
