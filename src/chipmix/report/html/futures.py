"""The `chipmix plan --futures N --report` page: the cost–reliability frontier of the
deterministic, robust and single-vendor plans, each plan's expected spend per vendor, and
the tables."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chipmix.catalog.version import CatalogVersion
from chipmix.planning.futures.results import FuturesResult
from chipmix.report.html.page import Page, Table
from chipmix.report.html.style import base_figure, vendor_color, vendor_name
from chipmix.report.render import fmt_usd

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["exposure_figure", "frontier_figure", "futures_page"]

_MARKERS = {"deterministic": "square", "robust": "star", "single-vendor": "diamond"}


def frontier_figure(r: FuturesResult) -> go.Figure:
    """P(every deadline met) against expected cost: every first stage evaluated, the
    frontier over the mix ones as a line."""
    import plotly.graph_objects as go

    fig = base_figure(
        f"Cost against reliability over {r.futures} futures",
        xaxis_title="expected cost ($)",
        yaxis_title="P(every deadline met)",
    )
    for s in r.stages:
        color = vendor_color(s.group) if s.group != "mix" else "#333333"
        fig.add_trace(
            go.Scatter(
                x=[s.cost_mean_usd],
                y=[s.p_all_met],
                mode="markers+text",
                text=[s.name],
                textposition="top center",
                marker={"size": 13, "color": color, "symbol": _MARKERS.get(s.role, "circle")},
                name=f"{s.name} ({s.role})",
                hovertext=[
                    f"<b>{s.name}</b> ({s.role})<br>P(on time) {s.p_all_met:.1%}<br>"
                    f"E[cost] {fmt_usd(s.cost_mean_usd)}, p90 {fmt_usd(s.cost_p90_usd)}"
                ],
                hoverinfo="text",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=[p.cost_mean_usd for p in r.frontier],
            y=[p.p_all_met for p in r.frontier],
            mode="lines",
            line={"dash": "dot", "color": "#888888"},
            name="frontier (mix)",
        )
    )
    fig.update_yaxes(range=[-0.05, 1.05], tickformat=".0%")
    return fig


def exposure_figure(r: FuturesResult) -> go.Figure:
    """Expected spend per vendor of each plan shown (stacked), the p90 on hover."""
    import plotly.graph_objects as go

    shown = [s for s in r.stages if s.role != "candidate"]
    vendors = sorted({v for s in shown for v in s.vendor_spend_usd})
    fig = base_figure("Vendor exposure: expected spend per vendor", barmode="stack")
    for v in vendors:
        fig.add_trace(
            go.Bar(
                x=[s.name for s in shown],
                y=[s.vendor_spend_usd[v] for s in shown],
                name=vendor_name(v),
                marker={"color": vendor_color(v)},
                hovertext=[
                    f"{vendor_name(v)}: {fmt_usd(s.vendor_spend_usd[v])} expected, "
                    f"p90 {fmt_usd(s.vendor_spend_p90_usd[v])}"
                    for s in shown
                ],
                hoverinfo="text",
            )
        )
    fig.update_yaxes(title_text="expected spend ($)")
    return fig


def futures_page(
    r: FuturesResult,
    *,
    scenario_file: str = "",
    catalog: CatalogVersion | None = None,
    command: str | None = None,
) -> Page:
    det, rob = r.stage(r.deterministic), r.stage(r.robust)
    page = Page(
        title=f"chipmix plan --futures: {r.scenario}",
        subtitle=(
            f"robust {rob.p_all_met:.1%} on time at {fmt_usd(rob.cost_mean_usd)} expected; "
            f"deterministic {det.p_all_met:.1%} at {fmt_usd(det.cost_mean_usd)}"
        ),
        command=command,
        inputs=[
            ("scenario", r.scenario + (f" ({scenario_file})" if scenario_file else "")),
            ("futures", f"{r.futures} (seed {r.seed})"),
            ("target", f"P(every deadline met) ≥ {r.target:.0%}"),
            ("miss penalty", fmt_usd(r.penalty_usd)),
            ("solves", f"{r.solves} recourse MILPs, {r.wall_s:.1f} s ({r.mode})"),
        ],
        catalog=catalog,
        data=r.to_dict(),
    )
    page.section("Cost and reliability")
    page.figure(
        frontier_figure(r),
        "Square: the deterministic plan; star: the robust one; diamonds: single-vendor "
        "plans; dotted: the cheapest mix plan for each reliability.",
    )
    page.figure(exposure_figure(r), "Hover a bar for the p90 of that vendor's spend.")
    page.section("Tables")
    page.table(
        Table(
            ["plan", "role", "P(on time)", "E[cost]", "p90 cost", "reserved", "regret"],
            [
                [
                    s.name,
                    s.role,
                    f"{s.p_all_met:.1%}",
                    fmt_usd(s.cost_mean_usd),
                    fmt_usd(s.cost_p90_usd),
                    fmt_usd(s.reserved_usd),
                    fmt_usd(s.regret_mean_usd),
                ]
                for s in r.stages
            ],
            numeric=["P(on time)", "E[cost]", "p90 cost", "reserved", "regret"],
        )
    )
    page.table(
        Table(
            ["kind", "applies to", "distribution", "source"],
            [[u.kind, u.subject, u.distribution, u.source] for u in r.sources],
            title="Uncertainty sources",
            wrap=["source"],
        )
    )
    for note in r.notes:
        page.note(note)
    return page
