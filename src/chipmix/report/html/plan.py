"""The `chipmix plan` report: the allocation over time stacked by vendor and offer, each
vendor's spend and compute share against the caps, the cost-against-makespan front when
it was computed, and the plan's tables."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from chipmix.catalog.version import CatalogVersion
from chipmix.planning.portfolio.results import PlanResult, Share
from chipmix.report.html.page import Page, Table
from chipmix.report.html.style import base_figure, vendor_color, vendor_name
from chipmix.report.render import fmt_num, fmt_usd

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["allocation_figure", "pareto_figure", "plan_page", "shares_figure"]


def _shade(hex_color: str, k: int) -> str:
    """The ``k``-th offer of a vendor: its colour, lighter with each further offer."""
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    mix = min(0.18 * k, 0.7)
    r, g, b = (round(c + (255 - c) * mix) for c in (r, g, b))
    return f"#{r:02x}{g:02x}{b:02x}"


def allocation_figure(p: PlanResult) -> go.Figure | None:
    """Top: each job's run as a bar from start to end, coloured by vendor. Bottom: chips in
    use over time, stacked by offer (shades of the vendor's colour)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    allocs = sorted(p.allocations, key=lambda a: (a.start, a.job))
    if not allocs:
        return None
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        row_heights=[0.4, 0.6],
        subplot_titles=["runs", "chips in use, by offer"],
    )
    fig.update_layout(
        base_figure(
            f"Allocation over time: {len(allocs)} runs from {p.horizon_start} to {p.horizon_end}",
            height=300 + 28 * len(allocs) + 260,
            barmode="overlay",
            legend={"orientation": "v", "x": 1.01, "y": 1.0},
        ).layout
    )
    shown: set[str] = set()
    for a in allocs:
        color = vendor_color(a.vendor)
        fig.add_trace(
            go.Bar(
                base=[a.start],
                x=[(a.end - a.start).total_seconds() * 1000.0],  # ms on a date axis
                y=[a.job],
                orientation="h",
                width=0.6,
                marker={"color": color},
                name=vendor_name(a.vendor),
                legendgroup=f"vendor-{a.vendor}",
                showlegend=a.vendor not in shown,
                hovertext=[
                    f"<b>{a.job}</b>: {a.chips:,} × {a.chip} on {a.offer} ({a.tier})<br>"
                    f"{a.start:%Y-%m-%d %H:%M} → {a.end:%Y-%m-%d %H:%M}, "
                    f"{a.duration_h / 24:,.1f} days, {fmt_usd(a.cost_usd)}<br>{a.layout}"
                ],
                hoverinfo="text",
            ),
            row=1,
            col=1,
        )
        shown.add(a.vendor)
        if a.deadline is not None:
            deadline = datetime.combine(a.deadline, datetime.max.time())
            fig.add_trace(
                go.Scatter(
                    x=[deadline],
                    y=[a.job],
                    mode="markers",
                    marker={"symbol": "line-ns", "size": 18,
                            "line": {"width": 2.5, "color": "#c44e52"}},
                    name="deadline",
                    legendgroup="deadline",
                    showlegend="deadline" not in shown,
                    hovertext=[f"{a.job}: deadline {a.deadline}"],
                    hoverinfo="text",
                ),
                row=1,
                col=1,
            )  # fmt: skip
            shown.add("deadline")
    # Chips in use: a step function per offer over every start and end.
    times = sorted({t for a in allocs for t in (a.start, a.end)})
    offers: dict[str, str] = {}
    for a in allocs:
        offers.setdefault(a.offer, a.vendor)
    rank: dict[str, int] = {}
    for offer, vendor in sorted(offers.items(), key=lambda kv: (kv[1], kv[0])):
        k = sum(1 for o in rank if offers[o] == vendor)
        rank[offer] = k
        chips = [
            sum(a.chips for a in allocs if a.offer == offer and a.start <= t < a.end) for t in times
        ]
        fig.add_trace(
            go.Scatter(
                x=times,
                y=chips,
                mode="lines",
                line={"shape": "hv", "width": 0.5, "color": _shade(vendor_color(vendor), k)},
                stackgroup="chips",
                name=offer,
                legendgroup=f"offer-{offer}",
                hovertemplate="%{y:,} chips<extra>" + offer + "</extra>",
            ),
            row=2,
            col=1,
        )
    fig.update_yaxes(autorange="reversed", row=1, col=1)
    fig.update_yaxes(title_text="chips", row=2, col=1)
    fig.update_xaxes(type="date", row=1, col=1)
    fig.update_xaxes(type="date", row=2, col=1)
    return fig


def shares_figure(p: PlanResult) -> go.Figure | None:
    """Each vendor's share of the spend and of the compute (H100-equivalent hours), with
    the scenario's cap on the share it constrains."""
    import plotly.graph_objects as go

    if not p.vendors:
        return None
    names = [vendor_name(v.name) for v in p.vendors]
    fig = base_figure(
        f"Shares per vendor (caps apply to the {p.cap_basis} share)",
        height=400,
        barmode="group",
        yaxis={"title": "share of the plan", "tickformat": ".0%", "rangemode": "tozero"},
    )
    fig.add_trace(
        go.Bar(
            x=names,
            y=[v.spend_share for v in p.vendors],
            name="spend",
            marker={"color": [vendor_color(v.name) for v in p.vendors]},
            hovertemplate="%{x}: %{y:.1%} of the spend<extra></extra>",
            offsetgroup="spend",
        )
    )
    fig.add_trace(
        go.Bar(
            x=names,
            y=[v.compute_share for v in p.vendors],
            name="compute",
            marker={
                "color": [vendor_color(v.name) for v in p.vendors],
                "pattern": {"shape": "/", "fgcolor": "#fff"},
            },
            hovertemplate="%{x}: %{y:.1%} of the compute<extra></extra>",
            offsetgroup="compute",
        )
    )
    capped = [v for v in p.vendors if v.cap is not None]
    if capped:
        fig.add_trace(
            go.Scatter(
                x=[vendor_name(v.name) for v in capped],
                y=[v.cap for v in capped],
                mode="markers",
                marker={"symbol": "line-ew", "size": 60,
                        "line": {"width": 3, "color": "#c44e52"}},
                name=f"cap ({p.cap_basis})",
                hovertemplate="%{x}: cap %{y:.0%}<extra></extra>",
            )
        )  # fmt: skip
    return fig


def pareto_figure(p: PlanResult) -> go.Figure | None:
    """The cheapest plan for each finishing date, the chosen plan marked."""
    import plotly.graph_objects as go

    points = [q for q in p.pareto or [] if q.cost_usd is not None]
    if not points:
        return None
    points.sort(key=lambda q: q.makespan_h)
    fig = base_figure(
        "Cost against completion: the cheapest plan for each finishing date",
        height=420,
        xaxis={"title": "every job done after, days"},
        yaxis={"title": "cost, US$"},
    )
    fig.add_trace(
        go.Scatter(
            x=[q.makespan_h / 24 for q in points],
            y=[q.cost_usd for q in points],
            mode="lines+markers",
            line={"shape": "hv", "color": "#4c72b0"},
            name="Pareto front",
            hovertext=[
                f"done {q.completion:%Y-%m-%d} ({q.makespan_h / 24:,.1f} days): "
                f"{fmt_usd(q.cost_usd)} ({q.status})"
                for q in points
            ],
            hoverinfo="text",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[p.makespan_h / 24],
            y=[p.cost_usd],
            mode="markers",
            marker={"symbol": "star", "size": 18, "color": "#f2c200", "line": {"width": 1}},
            name="this plan",
            hovertext=[f"this plan: {p.makespan_h / 24:,.1f} days, {fmt_usd(p.cost_usd)}"],
            hoverinfo="text",
        )
    )
    return fig


def _allocations_table(p: PlanResult) -> Table:
    heads = ["job", "model", "tokens", "offer", "tier", "chips", "layout", "start", "end",
             "days", "cost", "deadline", "slack days"]  # fmt: skip
    rows = [
        [
            a.job,
            f"{a.model} ({a.mode})",
            fmt_num(a.tokens),
            a.offer,
            a.tier,
            f"{a.chips:,}",
            str(a.layout),
            f"{a.start:%Y-%m-%d %H:%M}",
            f"{a.end:%Y-%m-%d %H:%M}",
            f"{a.duration_h / 24:,.1f}",
            fmt_usd(a.cost_usd),
            "—" if a.deadline is None else str(a.deadline),
            "—" if a.slack_h is None else f"{a.slack_h / 24:,.1f}",
        ]
        for a in sorted(p.allocations, key=lambda a: (a.start, a.job))
    ]
    return Table(
        heads,
        rows,
        title="Runs",
        numeric={"tokens", "chips", "days", "cost", "slack days"},
    )


def _serving_tables(p: PlanResult) -> list[Table]:
    """Each serving entry's totals, and its replicas per offer and tier."""
    if not p.serving_entries:
        return []

    def per_m(x: float | None) -> str:
        return "—" if x is None else f"${x:,.3f}"

    entries = Table(
        ["serving", "model", "SLO", "peak tokens/day", "output tokens", "peak chips", "cost",
         "$/M output tokens"],
        [[e.serving, e.model, e.slo, fmt_num(e.peak_tokens_per_day), fmt_num(e.output_tokens),
          f"{e.peak_chips:,}", fmt_usd(e.cost_usd), per_m(e.usd_per_million_tokens)]
         for e in p.serving_entries],
        title="Serving",
        numeric={"peak tokens/day", "output tokens", "peak chips", "cost", "$/M output tokens"},
    )  # fmt: skip
    lines = Table(
        ["serving", "offer", "tier", "replica", "tokens/s/chip", "peak chips", "chip-hours",
         "cost", "$/M output tokens", f"chips per {p.period_days:g}-day period"],
        [[s.serving, s.offer, s.tier, f"{s.replica_chips} chips: {s.layout}",
          f"{s.tokens_per_s_per_chip:,.0f}", f"{s.peak_chips:,}", fmt_num(s.chip_hours),
          fmt_usd(s.cost_usd), per_m(s.usd_per_million_tokens),
          " ".join(str(c) for c in s.chips)] for s in p.serving],
        title="Serving replicas by offer and tier",
        numeric={"tokens/s/chip", "peak chips", "chip-hours", "cost", "$/M output tokens"},
        wrap=[f"chips per {p.period_days:g}-day period"],
    )  # fmt: skip
    return [entries, lines]


def _shares_table(title: str, shares: list[Share], basis: str) -> Table:
    rows = [
        [
            s.name,
            fmt_usd(s.spend_usd),
            f"{s.spend_share:.1%}",
            fmt_num(s.h100_hours),
            f"{s.compute_share:.1%}",
            "—" if s.cap is None else f"{s.cap:.0%} of {basis}",
        ]
        for s in shares
    ]
    return Table(
        ["name", "spend", "spend share", "H100-eq hours", "compute share", "cap"],
        rows,
        title=title,
        numeric={"spend", "spend share", "H100-eq hours", "compute share"},
    )


def _inputs(p: PlanResult, scenario_file: str) -> list[tuple[str, str]]:
    jobs = sorted({a.job for a in p.allocations} | set(p.unplaced))
    rows = [
        ("scenario", p.scenario + (f" ({scenario_file})" if scenario_file else "")),
        ("objective", p.objective),
        ("horizon", f"{p.horizon_start} → {p.horizon_end}"),
        ("jobs", f"{len(jobs)}: {', '.join(jobs)}"),
        ("caps apply to", p.cap_basis),
        ("solver", f"{p.stats.status}, gap {p.stats.gap:.2%}, {p.stats.total_s:.1f} s"),
    ]
    return rows


def plan_page(
    p: PlanResult,
    *,
    scenario_text: str = "",
    scenario_file: str = "",
    catalog: CatalogVersion | None = None,
    command: str | None = None,
) -> Page:
    """The report of a portfolio plan (write it with `write_page`). ``scenario_text``: the
    scenario file as written, shown verbatim among the inputs."""
    best = p.best_single_vendor
    subtitle = (
        f"{fmt_usd(p.cost_usd)}, every job done by {p.completion:%Y-%m-%d} "
        f"({p.makespan_h / 24:,.1f} days), {fmt_num(p.tokens)} tokens"
    )
    if best is not None and best.cost_usd is not None:
        subtitle += f"; best single vendor ({vendor_name(best.vendor)}) {fmt_usd(best.cost_usd)}"
    page = Page(
        title=f"chipmix plan: {p.scenario}",
        subtitle=subtitle,
        command=command,
        inputs=_inputs(p, scenario_file),
        catalog=catalog,
        data=p.to_dict(),
    )
    page.section("Allocation")
    if scenario_text:
        lines = scenario_text.count("\n") + 1
        page.code(scenario_text, f"The scenario file ({lines} lines)")
    fig = allocation_figure(p)
    if fig is not None:
        page.figure(fig, "Hover a bar for its offer, tier, chips, layout and cost.")
    fig = shares_figure(p)
    if fig is not None:
        page.figure(
            fig,
            "Plain bars: share of the spend; hatched: share of the compute in H100-equivalent "
            "chip-hours (dense bf16 peak ratio). Red lines: the scenario's caps.",
        )
    fig = pareto_figure(p)
    if fig is not None:
        page.figure(fig, "Each point is re-solved with every job due by that date.")
    page.section("Tables")
    page.table(_allocations_table(p))
    if p.unplaced:
        page.note(f"Optional jobs left out: {', '.join(p.unplaced)}.")
    for table in _serving_tables(p):
        page.table(table)
    if p.reservations:
        page.table(
            Table(
                ["offer", "tier", "chips", "term days", "cost", "beyond horizon", "utilization"],
                [
                    [
                        r.offer,
                        r.tier,
                        f"{r.chips:,}",
                        f"{r.term_days:g}",
                        fmt_usd(r.cost_usd),
                        fmt_usd(r.beyond_horizon_usd),
                        f"{r.utilization:.0%}",
                    ]
                    for r in p.reservations
                ],
                title="Reservations (paid for the whole term)",
                numeric={"chips", "term days", "cost", "beyond horizon", "utilization"},
            )
        )
    page.table(_shares_table("Vendors", list(p.vendors), p.cap_basis))
    page.table(_shares_table("Clouds", list(p.clouds), p.cap_basis))
    if p.binding:
        page.table(
            Table(
                ["constraint", "subject", "now", "relaxed", "gain", "what it means"],
                [
                    [
                        b.constraint,
                        b.subject or "—",
                        b.now,
                        b.relaxed,
                        f"{b.gain:,.4g} {b.gain_unit}",
                        b.message,
                    ]
                    for b in p.binding
                ],
                title="What holds the plan back",
                numeric={"gain"},
                wrap=["what it means"],
            )
        )
    if p.baselines:
        page.table(
            Table(
                ["vendor alone", "cost", "status", "reason"],
                [
                    [vendor_name(b.vendor), fmt_usd(b.cost_usd), b.status, b.reason or ""]
                    for b in p.baselines
                ],
                title="Single-vendor plans (no caps, no budget)",
                numeric={"cost"},
            )
        )
    if p.notes:
        page.table(Table(["note"], [[n] for n in p.notes], wrap=["note"]))
    return page
