"""The `chipmix search` report: tokens/s against memory per chip for the layouts tried,
the best marked, and the step-time breakdown of the top layouts."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from chipmix.catalog.version import CatalogVersion
from chipmix.common.units import GIB
from chipmix.perf.layout import RECOMPUTE
from chipmix.perf.step import StepResult
from chipmix.report.html.page import Page, Table
from chipmix.report.html.style import base_figure
from chipmix.report.render import fmt_num
from chipmix.results import Estimate, SearchResult

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["breakdown_figure", "layouts_figure", "search_page"]

GRID = (90, 60)
"""Bins across memory and tokens/s of the density map of every layout tried: the page
stays light however many layouts the search evaluated (often tens of thousands)."""
ENVELOPE_BINS = 80
"""Memory bins in which the fastest layout of each recompute mode is drawn as a point."""

RECOMPUTE_COLORS = {"none": "#4c72b0", "selective": "#dd8452", "full": "#55a868"}

BREAKDOWN_COLORS = {
    "matmul": "#4c72b0",
    "attention": "#64b5cd",
    "memory_bound": "#8172b2",
    "recompute": "#937860",
    "tp_comm": "#dd8452",
    "cp_comm": "#da8bc3",
    "ep_comm": "#ccb974",
    "pp_comm": "#c44e52",
    "pipeline_bubble": "#e5ae38",
    "dp_comm": "#55a868",
    "optimizer": "#8c8c8c",
    "overhead": "#bdbdbd",
}


def _envelope(
    mem: NDArray[np.float64], tps: NDArray[np.float64], group: NDArray[np.int64], code: int
) -> NDArray[np.intp]:
    """Per memory bin, the fastest layout of recompute mode ``code`` (indexes into the
    arrays, which are ranked best first)."""
    lo, hi = float(mem.min()), float(mem.max())
    span = hi - lo if hi > lo else 1.0
    bins = np.minimum(((mem - lo) / span * ENVELOPE_BINS).astype(np.int64), ENVELOPE_BINS - 1)
    mine = np.flatnonzero(group == code)
    _, first = np.unique(bins[mine], return_index=True)  # first = fastest: ranked input
    return np.sort(mine[first]).astype(np.intp)


def layouts_figure(s: SearchResult, top: int) -> go.Figure | None:
    """Every feasible layout's tokens/s against its memory per chip: their density, the
    fastest per memory level and recompute mode as points, the top ones ringed, the best
    starred, the chip's memory as a line."""
    import plotly.graph_objects as go

    r: StepResult | None = s.layouts
    if r is None or len(r.batch) == 0:
        return None
    mem = np.asarray(r.memory.total / GIB, dtype=np.float64)
    tps = np.asarray(r.tokens_per_s, dtype=np.float64)
    group = np.asarray(r.batch.recompute, dtype=np.int64)
    capacity = r.memory_capacity_bytes / GIB
    fig = base_figure(
        f"{s.feasible:,} layouts that fit, of {s.tried:,} tried",
        height=540,
        xaxis={"title": "memory per chip, GiB"},
        yaxis={"title": "tokens/s (all chips)"},
        legend={"orientation": "h", "x": 0.0, "y": -0.16},
    )
    counts, xedges, yedges = np.histogram2d(mem, tps, bins=GRID)
    z = np.where(counts > 0, np.log10(np.maximum(counts, 1)) + 0.1, np.nan).T
    ticks = [t for t in (1, 10, 100, 1000, 10000, 100000) if t <= max(counts.max(), 1)]
    fig.add_trace(
        go.Heatmap(
            x=(xedges[:-1] + xedges[1:]) / 2,
            y=(yedges[:-1] + yedges[1:]) / 2,
            z=z,
            customdata=counts.T,
            colorscale=[[0, "#e8edf4"], [0.5, "#9fb3cf"], [1, "#34507a"]],
            colorbar={
                "title": {"text": "layouts"},
                "tickvals": [np.log10(t) + 0.1 for t in ticks],
                "ticktext": [f"{t:,}" for t in ticks],
                "len": 0.6,
                "y": 0.7,
            },
            hovertemplate="%{customdata:,.0f} layouts near %{x:.1f} GiB, %{y:.3s} tokens/s"
            "<extra></extra>",
            name="all layouts",
            showlegend=True,
        )
    )
    for code, mode in enumerate(RECOMPUTE):
        idx = _envelope(mem, tps, group, code)
        if len(idx) == 0:
            continue
        fig.add_trace(
            go.Scatter(
                x=mem[idx],
                y=tps[idx],
                mode="markers",
                name=f"fastest at its memory, recompute {mode}",
                marker={"color": RECOMPUTE_COLORS[mode], "size": 6, "opacity": 0.9},
                hovertext=[
                    f"{r.batch.layout(int(i))}<br>{fmt_num(float(tps[i]))} tokens/s, "
                    f"MFU {float(r.mfu[i]):.1%}, {float(mem[i]):.1f} GiB"
                    for i in idx
                ],
                hoverinfo="text",
            )
        )
    n = min(top, len(tps))
    fig.add_trace(
        go.Scatter(
            x=mem[:n],
            y=tps[:n],
            mode="markers",
            name=f"top {n}",
            marker={"size": 13, "color": "rgba(0,0,0,0)", "line": {"color": "#111", "width": 2}},
            hovertext=[f"#{i + 1}: {r.batch.layout(i)}" for i in range(n)],
            hoverinfo="text",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=mem[:1],
            y=tps[:1],
            mode="markers",
            name="best",
            marker={
                "symbol": "star",
                "size": 20,
                "color": "#f2c200",
                "line": {"color": "#111", "width": 1.5},
            },
            hovertext=[f"best: {r.batch.layout(0)}"],
            hoverinfo="text",
        )
    )
    fig.add_vline(
        x=capacity,
        line={"color": "#c44e52", "dash": "dot", "width": 1.5},
        annotation={"text": f"{capacity:.0f} GiB per chip"},
        annotation_position="top left",
    )
    return fig


def breakdown_figure(top: list[Estimate]) -> go.Figure | None:
    """The step time of each top layout split into its named parts."""
    import plotly.graph_objects as go

    if not top:
        return None
    labels = [f"#{i + 1} {e.layout}" for i, e in enumerate(top)]
    parts = [k for k in top[0].breakdown if any(e.breakdown.get(k, 0.0) > 0 for e in top)]
    fig = base_figure(
        "Step-time breakdown of the top layouts",
        height=max(260, 120 + 46 * len(top)),
        barmode="stack",
        xaxis={"title": "seconds per step"},
        yaxis={"autorange": "reversed", "automargin": True},
        margin={"l": 20, "r": 20, "t": 60, "b": 50},
    )
    for k in parts:
        fig.add_trace(
            go.Bar(
                y=labels,
                x=[e.breakdown.get(k, 0.0) for e in top],
                name=k.replace("_", " "),
                orientation="h",
                marker={"color": BREAKDOWN_COLORS.get(k, "#999")},
                hovertemplate="%{x:.3f} s<extra>" + k.replace("_", " ") + "</extra>",
            )
        )
    return fig


def _inputs(s: SearchResult) -> list[tuple[str, str]]:
    e = s.best
    job = e.job
    rows = [
        ("model", f"{job.model.display_name or job.model.name} ({job.model.name})"),
        ("job", f"{job.mode}, {job.precision}, stack {job.stack or 'default'}"),
        (
            "shape",
            f"seq {job.seq_len:,}, global batch {job.global_batch:,} sequences "
            f"({fmt_num(job.tokens_per_step)} tokens/step)",
        ),
        ("system", f"{e.system.id} ({e.system.chip.name})"),
        ("chips", f"{e.chips:,}"),
    ]
    if job.tokens:
        rows.append(("tokens", fmt_num(job.tokens)))
    return rows


def _top_table(s: SearchResult) -> Table:
    heads = ["#", "layout", "step s", "tokens/s", "per chip", "MFU", "GiB/chip"]
    priced = any(e.run is not None for e in s.top)
    if priced:
        heads += ["days", "cost"]
    rows = []
    for i, e in enumerate(s.top):
        cells = [
            str(i + 1),
            str(e.layout),
            f"{e.step_time_s:.3f}",
            fmt_num(e.tokens_per_s),
            fmt_num(e.tokens_per_s_per_chip),
            f"{e.mfu:.1%}",
            f"{e.memory_gib_per_chip:.1f} / {e.memory_capacity_gib:.0f}",
        ]
        if priced:
            run = e.run
            cells += [
                "—" if run is None else f"{run.time_to_train_h / 24:,.1f}",
                "—" if e.cost_usd is None else f"${fmt_num(e.cost_usd)}",
            ]
        rows.append(cells)
    return Table(
        heads,
        rows,
        title="Top layouts",
        numeric={"#", "step s", "tokens/s", "per chip", "MFU", "GiB/chip", "days", "cost"},
        highlight=[0],
    )


def search_page(
    s: SearchResult,
    catalog: CatalogVersion | None = None,
    command: str | None = None,
) -> Page:
    """The report of a layout search (write it with `write_page`)."""
    e = s.best
    name = e.job.model.display_name or e.job.model.name
    page = Page(
        title=f"chipmix search: {name} on {e.chips:,} × {e.system.chip.id}",
        subtitle=f"best layout {e.layout}: {fmt_num(e.tokens_per_s)} tokens/s, MFU {e.mfu:.1%}",
        command=command,
        inputs=_inputs(s),
        catalog=catalog,
        data=s.to_dict(),
    )
    page.section("Layouts")
    fig = layouts_figure(s, len(s.top))
    if fig is not None:
        page.figure(
            fig,
            "The shading counts the layouts that pass the rules and fit in memory; the "
            "points are the fastest layout at each memory level, per recompute mode (hover "
            "for the layout). Ringed: the top layouts of the table; starred: the best.",
        )
    fig = breakdown_figure(s.top)
    if fig is not None:
        page.figure(fig, "Seconds per optimizer step by cause; the parts add up to the step.")
    page.section("Tables")
    page.table(_top_table(s))
    rejected = sorted(s.rejected.items(), key=lambda kv: -kv[1])
    page.table(
        Table(
            ["reason", "layouts"],
            [[k, f"{v:,}"] for k, v in rejected] + [["feasible", f"{s.feasible:,}"]],
            title="What the search ruled out",
            numeric={"layouts"},
            caption=f"{s.tried:,} layouts tried; each rejected one counts under the first "
            "rule it breaks (memory last).",
        )
    )
    return page
