"""The `chipmix budget` report: chip-hours and runs bought per offer and tier, the spend per
vendor against the caps, and the tables."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chipmix.catalog.version import CatalogVersion
from chipmix.planning.budget.budget import BudgetLine, BudgetResult
from chipmix.report.html.page import Page, Table
from chipmix.report.html.style import base_figure, vendor_color, vendor_name
from chipmix.report.render import fmt_num, fmt_usd

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["budget_page", "purchases_figure"]


def _years(years: float) -> str:
    return f"{years:g} year" + ("" if years == 1 else "s")


def _label(line: BudgetLine) -> str:
    return f"{line.offer} ({line.tier})"


def purchases_figure(b: BudgetResult) -> go.Figure | None:
    """Per offer and tier: chip-hours bought (left) and runs of the model they train (right;
    PFLOP-days of dense bf16 compute when no model was given), coloured by vendor."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    lines = b.lines
    if not lines:
        return None
    with_runs = b.model is not None and all(line.runs is not None for line in lines)
    right = f"runs of {b.model}" if with_runs else "PFLOP-days (dense bf16)"
    fig = make_subplots(
        rows=1,
        cols=2,
        shared_yaxes=True,
        horizontal_spacing=0.04,
        subplot_titles=["chip-hours", right],
    )
    fig.update_layout(
        base_figure(
            f"What {fmt_usd(b.usd)} buys over {_years(b.years)}"
            if b.direction == "forward"
            else f"The least budget for {b.runs or 0:g} runs over {_years(b.years)}: "
            f"{fmt_usd(b.usd)}",
            height=max(300, 150 + 48 * len(lines)),
            margin={"l": 20, "r": 20, "t": 70, "b": 50},
        ).layout
    )
    labels = [_label(line) for line in lines]
    colors = [vendor_color(line.vendor) for line in lines]
    hover = [
        f"<b>{line.offer}</b> ({line.tier}), {line.chip} on {line.system}<br>"
        f"{fmt_usd(line.spend_usd)} ({line.share:.0%}) at ${line.usd_per_chip_hour:.2f}/chip-h<br>"
        f"{fmt_num(line.chip_hours)} chip-hours, {line.chips_held:,.0f} chips on average"
        + ("" if line.runs is None else f"<br>{line.runs:.2f} runs of {line.run_days:,.1f} days")
        for line in lines
    ]
    fig.add_trace(
        go.Bar(
            y=labels,
            x=[line.chip_hours for line in lines],
            orientation="h",
            marker={"color": colors},
            hovertext=hover,
            hoverinfo="text",
            showlegend=False,
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Bar(
            y=labels,
            x=[(line.runs or 0.0) if with_runs else line.pflop_days for line in lines],
            orientation="h",
            marker={"color": colors},
            hovertext=hover,
            hoverinfo="text",
            showlegend=False,
        ),
        row=1,
        col=2,
    )
    for vendor in sorted({line.vendor for line in lines}):  # a legend of the vendors
        fig.add_trace(
            go.Bar(x=[None], y=[None], name=vendor_name(vendor),
                   marker={"color": vendor_color(vendor)}, showlegend=True),
            row=1,
            col=1,
        )  # fmt: skip
    fig.update_yaxes(autorange="reversed", automargin=True, row=1, col=1)
    return fig


def spend_figure(b: BudgetResult) -> go.Figure | None:
    """Each vendor's share of the spend, with the caps (and the fixed mix) asked for."""
    import plotly.graph_objects as go

    vendors = sorted(set(b.vendor_spend) | set(b.vendor_caps))
    if len(vendors) < 2 and not b.vendor_caps:
        return None
    shares = b.vendor_shares
    fig = base_figure(
        "Spend per vendor",
        height=360,
        yaxis={"title": "share of the spend", "tickformat": ".0%", "rangemode": "tozero"},
    )
    fig.add_trace(
        go.Bar(
            x=[vendor_name(v) for v in vendors],
            y=[shares.get(v, 0.0) for v in vendors],
            marker={"color": [vendor_color(v) for v in vendors]},
            name="spend",
            hovertemplate="%{x}: %{y:.1%}<extra></extra>",
        )
    )
    caps = [v for v in vendors if v in b.vendor_caps]
    if caps:
        fig.add_trace(
            go.Scatter(
                x=[vendor_name(v) for v in caps],
                y=[b.vendor_caps[v] for v in caps],
                mode="markers",
                marker={"symbol": "line-ew", "size": 60,
                        "line": {"width": 3, "color": "#c44e52"}},
                name="cap",
                hovertemplate="%{x}: cap %{y:.0%}<extra></extra>",
            )
        )  # fmt: skip
    return fig


def _inputs(b: BudgetResult) -> list[tuple[str, str]]:
    rows = [
        ("direction", "what a budget buys" if b.direction == "forward" else "what a goal costs"),
        ("budget" if b.direction == "forward" else "budget needed", fmt_usd(b.usd)),
        ("years", f"{b.years:g}"),
    ]
    if b.model is not None:
        rows.append(
            (
                "runs of",
                f"{b.model}: {fmt_num(b.tokens_per_run or 0.0)} tokens on "
                f"{b.chips_per_run or 0:,} chips",
            )
        )
    if b.vendor_caps:
        caps = ", ".join(f"{vendor_name(v)} ≤ {c:.0%}" for v, c in b.vendor_caps.items())
        rows.append(("vendor caps", caps))
    if b.mix:
        rows.append(("mix", ", ".join(f"{k} {v:.0%}" for k, v in b.mix.items())))
    rows.append(("solver", f"{b.status}, {b.solve_s:.1f} s"))
    return rows


def budget_page(
    b: BudgetResult, catalog: CatalogVersion | None = None, command: str | None = None
) -> Page:
    """The report of a budget view (write it with `write_page`)."""
    what = f"{fmt_num(b.chip_hours)} chip-hours, {fmt_num(b.pflop_days)} PFLOP-days"
    if b.runs is not None:
        what += f", {b.runs:.2f} runs of {b.model}"
    page = Page(
        title=f"chipmix budget: {fmt_usd(b.usd)} over {_years(b.years)}",
        subtitle=what,
        command=command,
        inputs=_inputs(b),
        catalog=catalog,
        data=b.to_dict(),
    )
    page.section("Purchases")
    fig = purchases_figure(b)
    if fig is not None:
        page.figure(fig, "Only the offers and tiers the optimizer buys from are drawn.")
    else:
        page.note("Nothing bought.")
    fig = spend_figure(b)
    if fig is not None:
        page.figure(fig, "Red lines: the caps asked for.")
    page.section("Tables")
    heads = ["offer", "tier", "chip", "$/chip-h", "spend", "share", "chip-hours",
             "chips held", "PFLOP-days", "runs", "days per run"]  # fmt: skip
    page.table(
        Table(
            heads,
            [
                [
                    line.offer,
                    line.tier,
                    line.chip,
                    f"${line.usd_per_chip_hour:.2f}",
                    fmt_usd(line.spend_usd),
                    f"{line.share:.1%}",
                    fmt_num(line.chip_hours),
                    f"{line.chips_held:,.0f}",
                    fmt_num(line.pflop_days),
                    "—" if line.runs is None else f"{line.runs:.2f}",
                    "—" if line.run_days is None else f"{line.run_days:,.1f}",
                ]
                for line in b.lines
            ],
            title="Purchases per offer and tier",
            numeric=set(heads) - {"offer", "tier", "chip"},
        )
    )
    if b.skipped:
        page.table(
            Table(
                ["offer", "why not"],
                [[k, v] for k, v in sorted(b.skipped.items())],
                title="Offers left out",
                wrap=["why not"],
            )
        )
    return page
