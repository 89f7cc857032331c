"""The `chipmix compare` report: time against cost with the Pareto front, $ per million
tokens by price tier, and the ranking."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chipmix.catalog.offer import PRICE_TIERS, PriceTier
from chipmix.catalog.version import CatalogVersion
from chipmix.planning.comparison.pareto import pareto_front
from chipmix.planning.comparison.result import Comparison, ComparisonRow
from chipmix.report.html.page import Page, Table
from chipmix.report.html.style import (
    TIER_COLORS,
    base_figure,
    log_axis,
    vendor_color,
    vendor_name,
)
from chipmix.report.render import fmt_num, fmt_usd

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["compare_page"]


def _show_system(c: Comparison) -> bool:
    return any(not r.system.system.reference for r in c.rows)


def _label(r: ComparisonRow, show_system: bool) -> str:
    return r.system.id if show_system else r.system.chip.id


def _sizing(c: Comparison) -> str:
    if c.sizing == "chips":
        return f"{int(c.target):,} chips on each system" + (
            " (the default)" if c.sizing_is_default else ""
        )
    if c.sizing == "deadline":
        return f"fewest chips (whole nodes) that train within {c.target:g} days"
    return f"fastest plan within ${c.target:,.0f}"


def _inputs(c: Comparison) -> list[tuple[str, str]]:
    job = c.job
    return [
        ("model", f"{job.model.display_name or job.model.name} ({job.model.name})"),
        ("job", f"{job.mode}, {job.precision}, stack {job.stack or 'default'}"),
        ("shape", f"seq {job.seq_len:,}, global batch {job.global_batch:,} sequences"),
        ("tokens", f"{fmt_num(c.tokens)} ({fmt_num(c.tokens / job.tokens_per_step)} steps)"),
        ("sizing", _sizing(c)),
        ("price tier", c.price_tier),
        ("systems", f"{len(c.rows)} asked, {len(c.feasible)} with a plan"),
    ]


def _hover(r: ComparisonRow) -> str:
    e = r.estimate
    assert e is not None
    assert e.run is not None
    per_m = r.usd_per_million_tokens
    return (
        f"<b>{r.system.id}</b> ({r.system.chip.name})<br>"
        f"{e.chips:,} chips, {e.layout}<br>"
        f"{e.run.time_to_train_h / 24:,.1f} days, {fmt_usd(r.cost_usd)}"
        + ("" if per_m is None else f", ${per_m:.2f}/M tokens")
        + f"<br>MFU {e.mfu:.0%}, {fmt_num(e.tokens_per_s)} tokens/s"
    )


def time_cost_figure(c: Comparison) -> go.Figure | None:
    """Days against cost in the comparison's tier, one colour per vendor, the front drawn."""
    import plotly.graph_objects as go

    show_system = _show_system(c)
    priced = [r for r in c.feasible if r.cost_usd is not None and r.time_to_train_h]
    if not priced:
        return None
    days = [(r.time_to_train_h or 0.0) / 24 for r in priced]
    cost = [r.cost_usd or 0.0 for r in priced]
    fig = base_figure(
        f"Time against cost ({c.price_tier}): each system's best plan",
        height=480,
        xaxis={"title": "days to train", "type": log_axis(days, 8)},
        yaxis={"title": f"cost, US$ ({c.price_tier})", "type": log_axis(cost, 8)},
    )
    front = [priced[i] for i in pareto_front(list(zip(days, cost, strict=True)))]
    fig.add_trace(
        go.Scatter(
            x=[(r.time_to_train_h or 0.0) / 24 for r in front],
            y=[r.cost_usd for r in front],
            mode="lines",
            line={"color": "#333", "dash": "dash", "width": 1.5, "shape": "hv"},
            name="Pareto front",
            hoverinfo="skip",
        )
    )
    for vendor in sorted({r.system.chip.vendor for r in priced}):
        rows = [r for r in priced if r.system.chip.vendor == vendor]
        fig.add_trace(
            go.Scatter(
                x=[(r.time_to_train_h or 0.0) / 24 for r in rows],
                y=[r.cost_usd for r in rows],
                mode="markers+text",
                name=vendor_name(vendor),
                text=[_label(r, show_system) for r in rows],
                textposition="top center",
                textfont={"size": 11},
                marker={
                    "color": vendor_color(vendor),
                    "size": [14 if r in front else 10 for r in rows],
                    "symbol": ["diamond" if r in front else "circle" for r in rows],
                    "line": {"color": "#222", "width": [1.5 if r in front else 0 for r in rows]},
                },
                hovertext=[_hover(r) for r in rows],
                hoverinfo="text",
            )
        )
    return fig


def per_million_figure(c: Comparison) -> go.Figure | None:
    """$ per million tokens of each system's plan in every price tier the catalog has."""
    import plotly.graph_objects as go

    show_system = _show_system(c)
    rows = [r for r in c.feasible if r.estimate is not None and r.estimate.run is not None]
    rows = [r for r in rows if r.estimate and r.estimate.run and r.estimate.run.cost_usd]
    if not rows:
        return None
    fig = base_figure(
        "US$ per million tokens, by price tier",
        height=460,
        barmode="group",
        xaxis={"title": "", "tickangle": -35},
        yaxis={"title": "US$ per million tokens"},
    )
    labels = [_label(r, show_system) for r in rows]
    for tier in PRICE_TIERS:
        values: list[float | None] = []
        for r in rows:
            run = r.estimate.run if r.estimate else None
            cost = _tier_cost(r, tier)
            values.append(None if cost is None or run is None else cost / run.tokens * 1e6)
        if all(v is None for v in values):
            continue
        fig.add_trace(
            go.Bar(
                x=labels,
                y=values,
                name=tier,
                marker={"color": TIER_COLORS.get(tier, "#999")},
                hovertemplate="%{x}: $%{y:.2f}/M tokens<extra>" + tier + "</extra>",
            )
        )
    return fig


def _ranking(c: Comparison, show_system: bool) -> Table:
    heads = ["#", "chip", "vendor"] + (["system"] if show_system else [])
    heads += ["chips", "layout", "tokens/s", "MFU", "days", "cost", "$/M tokens", "price as of"]
    heads += ["MWh", ""]
    rows, bold = [], []
    for i, r in enumerate(c.feasible):
        e = r.estimate
        assert e is not None
        assert e.run is not None
        per_m = r.usd_per_million_tokens
        flags = r.system.chip.flags
        chip = r.system.chip.id + (f" ({', '.join(flags)})" if flags else "")
        cells = [str(r.rank), chip, vendor_name(r.system.chip.vendor)]
        date = e.run.offer_date_by_tier.get(c.price_tier)
        flag = e.run.price_flag_by_tier.get(c.price_tier, "")
        cells += [r.system.id] if show_system else []
        cells += [
            f"{e.chips:,}",
            str(e.layout),
            fmt_num(e.tokens_per_s),
            f"{e.mfu:.0%}",
            f"{e.run.time_to_train_h / 24:,.1f}",
            fmt_usd(r.cost_usd),
            "—" if per_m is None else f"${per_m:.2f}",
            "—" if date is None else f"{date} {flag}".strip(),
            f"{e.run.energy_mwh:,.0f}" + ("*" if e.run.power_is_estimated else ""),
            " ".join(m for m, on in (("fastest", r.fastest), ("cheapest", r.cheapest)) if on),
        ]
        rows.append(cells)
        if r.fastest or r.cheapest:
            bold.append(i)
    notes = [f"ranked by {c.price_tier} cost; — no {c.price_tier} price in the catalog"]
    notes.append(
        "price as of: the priced offer's date; estimated: no public list price (the offer "
        "says how); unverified: a third-party price; MWh: IT energy, before PUE"
    )
    if any(r.estimate and r.estimate.run and r.estimate.run.power_is_estimated for r in c.feasible):
        notes.append("* energy from an assumed power per chip")
    if c.sizing != "chips":
        notes.append("the chip counts' reasons are in the table below")
    return Table(
        heads,
        rows,
        title="Ranking",
        numeric={"#", "chips", "tokens/s", "MFU", "days", "cost", "$/M tokens", "MWh"},
        caption="; ".join(notes),
        highlight=bold,
    )


def _tiers(c: Comparison, show_system: bool) -> Table:
    tiers = [t for t in PRICE_TIERS if any(_tier_cost(r, t) is not None for r in c.feasible)]
    heads = ["#", "system" if show_system else "chip", *tiers]
    if c.sizing != "chips":
        heads.append("why this many chips")
    rows = []
    for r in c.feasible:
        cells = [str(r.rank), _label(r, show_system)]
        cells += [fmt_usd(_tier_cost(r, t)) for t in tiers]
        if c.sizing != "chips":
            cells.append(r.note)
        rows.append(cells)
    return Table(heads, rows, title="Cost in every price tier", numeric={"#", *tiers})


def _tier_cost(r: ComparisonRow, tier: PriceTier) -> float | None:
    run = r.estimate.run if r.estimate else None
    return None if run is None else run.cost_usd.get(tier)


def compare_page(
    c: Comparison, catalog: CatalogVersion | None = None, command: str | None = None
) -> Page:
    """The report of a comparison (write it with `write_page`)."""
    show_system = _show_system(c)
    job = c.job
    name = job.model.display_name or job.model.name
    page = Page(
        title=f"chipmix compare: {name} on {fmt_num(c.tokens)} tokens",
        subtitle=f"{_sizing(c)}; ranked by {c.price_tier} cost",
        command=command,
        inputs=_inputs(c),
        catalog=catalog,
        data=c.to_dict(),
    )
    cheapest, fastest = c.cheapest, c.fastest
    summary = []
    if cheapest is not None:
        summary.append(
            f"Cheapest: {_label(cheapest, show_system)} at {fmt_usd(cheapest.cost_usd)}."
        )
    if fastest is not None and fastest.time_to_train_h is not None:
        summary.append(
            f"Fastest: {_label(fastest, show_system)} in {fastest.time_to_train_h / 24:,.1f} days."
        )
    page.section("Time and cost", " ".join(summary))
    fig = time_cost_figure(c)
    unpriced = [_label(r, show_system) for r in c.feasible if r.cost_usd is None]
    if fig is not None:
        caption = (
            "Each point is a system's best plan; the dashed line joins the plans no other "
            "plan beats on both time and cost (diamonds). Hover for the layout."
        )
        if unpriced:
            caption += f" Not drawn, no {c.price_tier} price: {', '.join(unpriced)}."
        page.figure(fig, caption)
    else:
        page.note(f"No system has a {c.price_tier} price in the catalog: nothing to draw.")
    fig = per_million_figure(c)
    if fig is not None:
        page.figure(fig, "Each bar prices the same plan (same chips, same time) in one tier.")
    page.section("Plans")
    page.table(_ranking(c, show_system))
    if c.feasible:
        page.table(_tiers(c, show_system))
    if c.infeasible:
        page.table(
            Table(
                ["system" if show_system else "chip", "reason"],
                [[_label(r, show_system), r.reason or ""] for r in c.infeasible],
                title="Systems that cannot do this job",
            )
        )
    return page
