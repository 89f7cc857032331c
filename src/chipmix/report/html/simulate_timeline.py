"""The `chipmix simulate` report's timeline: one sample run's spans, interruptions,
checkpoints, restarts and migrations, with a close-up of the first interruption."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from chipmix.report.html.style import base_figure
from chipmix.report.render import fmt_duration, fmt_num
from chipmix.sim.engine import TraceEvent, TraceSpan
from chipmix.sim.failures import CAUSES
from chipmix.sim.results import SimulationResult
from chipmix.sim.sample import SampleHistory

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["timeline_figure"]

SPAN_COLORS = {"training": "#55a868", "restart": "#c44e52", "waiting": "#b0b0b0"}
CAUSE_COLORS = {
    "accelerator": "#d62728",
    "hbm": "#ff7f0e",
    "host": "#8c564b",
    "network": "#1f77b4",
    "software": "#9467bd",
    "planned": "#7f7f7f",
    "spot_reclaim": "#e377c2",
}
MAX_CHECKPOINT_MARKS = 400
"""Checkpoints drawn in the close-up, at most (a long run writes tens of thousands)."""


def _lane(span: TraceSpan, runs: list[str]) -> str:
    return "no capacity" if span.run < 0 else runs[span.run]


def _span_hover(span: TraceSpan, scale: float, unit: str) -> str:
    text = (
        f"{span.kind}: {span.start_s / scale:,.2f} → {span.end_s / scale:,.2f} {unit} "
        f"({fmt_duration((span.end_s - span.start_s) / 3600)})"
    )
    if span.kind == "training" and span.num_checkpoints:
        text += f"<br>{span.num_checkpoints:,} checkpoints"
    return text


def _add_spans(
    fig: go.Figure,
    spans: list[TraceSpan],
    runs: list[str],
    scale: float,
    unit: str,
    row: int,
    legend: bool,
) -> None:
    import plotly.graph_objects as go

    for kind, color in SPAN_COLORS.items():
        mine = [s for s in spans if s.kind == kind]
        if not mine:
            continue
        fig.add_trace(
            go.Bar(
                base=[s.start_s / scale for s in mine],
                x=[(s.end_s - s.start_s) / scale for s in mine],
                y=[_lane(s, runs) for s in mine],
                orientation="h",
                name=kind,
                legendgroup=kind,
                showlegend=legend,
                marker={"color": color, "line": {"width": 0}},
                width=0.5,
                hovertext=[_span_hover(s, scale, unit) for s in mine],
                hoverinfo="text",
            ),
            row=row,
            col=1,
        )


def _add_interruptions(
    fig: go.Figure, events: list[TraceEvent], scale: float, unit: str, row: int, legend: bool
) -> None:
    import plotly.graph_objects as go

    hits = [e for e in events if e.kind == "interruption"]
    for cause in CAUSES:
        mine = [e for e in hits if e.detail == cause]
        if not mine:
            continue
        fig.add_trace(
            go.Scatter(
                x=[e.t_s / scale for e in mine],
                y=["interruptions"] * len(mine),
                mode="markers",
                name=cause.replace("_", " "),
                legendgroup=f"cause-{cause}",
                showlegend=legend,
                marker={"symbol": "x-thin", "size": 11,
                        "line": {"width": 2, "color": CAUSE_COLORS.get(cause, "#333")}},
                hovertext=[
                    f"{cause} at {e.t_s / scale:,.2f} {unit}"
                    + (f", lost {fmt_duration(e.lost_s / 3600)} of work" if e.lost_s else "")
                    for e in mine
                ],
                hoverinfo="text",
            ),
            row=row,
            col=1,
        )  # fmt: skip


def _close_up(h: SampleHistory) -> tuple[float, float, TraceEvent | None, str] | None:
    """A window (seconds) around the interruption that lost the most work, with its title;
    without any interruption, the run's first hours (its first checkpoints)."""
    hits = [e for e in h.trace.events if e.kind == "interruption"]
    cycle = next((s.checkpoint_every_s for s in h.trace.spans if s.kind == "training"), math.inf)
    if not hits:
        first = next((s for s in h.trace.spans if s.kind == "training"), None)
        if first is None or not math.isfinite(cycle):
            return None
        hi = min(first.end_s, first.start_s + max(6 * cycle, 3600.0))
        return first.start_s, hi, None, "close-up of the first hours (no interruption), hours"
    worst = max(hits, key=lambda e: (e.lost_s, -e.t_s))
    before = max(4 * cycle if math.isfinite(cycle) else 0.0, worst.lost_s * 1.5, 3600.0)
    after = next(
        (
            s.end_s - worst.t_s
            for s in h.trace.spans
            if s.start_s >= worst.t_s and s.kind != "training"
        ),
        0.0,
    )
    after = max(after + 2 * (cycle if math.isfinite(cycle) else 1800.0), 3600.0)
    title = "close-up of the interruption that lost the most work, hours"
    return max(worst.t_s - before, 0.0), worst.t_s + after, worst, title


def _checkpoints(spans: list[TraceSpan], lo: float, hi: float) -> list[float]:
    """Start times of the checkpoints begun within [lo, hi] (each training span writes its
    ``k``-th after ``first + k × every`` seconds)."""
    out: list[float] = []
    for s in spans:
        if s.kind != "training" or s.end_s < lo or s.start_s > hi or not s.num_checkpoints:
            continue
        first, every = s.checkpoint_after_s, s.checkpoint_every_s
        k0 = max(0, math.ceil((lo - s.start_s - first) / every))
        k = k0
        while k < s.num_checkpoints and len(out) < MAX_CHECKPOINT_MARKS:
            t = s.start_s + first + k * every
            if t > hi:
                break
            out.append(t)
            k += 1
    return out


def timeline_figure(r: SimulationResult, h: SampleHistory) -> go.Figure:
    """The sample run: spans per system lane and interruptions over the whole run (days);
    below, a close-up (hours) of the interruption that lost the most work, with the
    checkpoints, the work lost and the restart."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    runs = [f"{run.label}: {run.chips:,} × {run.estimate.system.id}" for run in h.timeline.runs]
    spans, events = h.trace.spans, h.trace.events
    zoom = _close_up(h)
    rows = 2 if zoom is not None else 1
    lanes = len({_lane(s, runs) for s in spans}) + 1
    fig = make_subplots(
        rows=rows,
        cols=1,
        vertical_spacing=0.22,
        row_heights=[0.5, 0.5][:rows],
        subplot_titles=["the whole run, days", zoom[3] if zoom else ""][:rows],
    )
    end = spans[-1].end_s if spans else 0.0
    done = (
        f"done on day {h.completion_days:,.1f}"
        if h.completion_days is not None
        else f"{fmt_num(h.tokens)} tokens in the window"
    )
    fig.update_layout(
        base_figure(
            f"A sample run (replica {h.replica}, the median; {h.label}): {done}",
            height=260 + 60 * lanes * rows,
            barmode="overlay",
            legend={"orientation": "h", "x": 0.0, "y": -0.12},
        ).layout
    )
    _add_spans(fig, spans, runs, 86400.0, "days", 1, True)
    _add_interruptions(fig, events, 86400.0, "days", 1, True)
    phases = [e for e in events if e.kind == "phase"]
    for k, e in enumerate(phases):
        fig.add_vline(
            x=e.t_s / 86400.0,
            line={"color": "#444", "dash": "dot", "width": 1.2},
            # Alternate sides so the labels of an outage's start and end do not overlap.
            annotation={"text": e.detail, "font": {"size": 10}},
            annotation_position="top left" if k % 2 == 0 else "top right",
            row=1,
            col=1,
        )
    fig.update_xaxes(range=[0, end / 86400.0 * 1.01], title_text="days", row=1, col=1)
    if zoom is not None:
        lo, hi, worst, _ = zoom
        close = [s for s in spans if s.end_s >= lo and s.start_s <= hi]
        _add_spans(fig, close, runs, 3600.0, "h", 2, False)
        _add_interruptions(fig, [e for e in events if lo <= e.t_s <= hi], 3600.0, "h", 2, False)
        if worst is not None and worst.lost_s > 0:
            lane = _lane(next(s for s in close if s.end_s >= worst.t_s), runs)
            fig.add_trace(
                go.Bar(
                    base=[(worst.t_s - worst.lost_s) / 3600.0],
                    x=[worst.lost_s / 3600.0],
                    y=[lane],
                    orientation="h",
                    width=0.5,
                    name="work lost",
                    marker={"color": "rgba(196,78,82,0.35)", "pattern": {"shape": "/"}},
                    hovertext=[f"work lost: {fmt_duration(worst.lost_s / 3600)}"],
                    hoverinfo="text",
                ),
                row=2,
                col=1,
            )
        marks = _checkpoints(close, lo, hi)
        if marks:
            fig.add_trace(
                go.Scatter(
                    x=[t / 3600.0 for t in marks],
                    y=["checkpoints"] * len(marks),
                    mode="markers",
                    name="checkpoint",
                    marker={"symbol": "line-ns-open", "size": 14, "color": "#333",
                            "line": {"width": 2}},
                    hovertemplate="checkpoint at %{x:.2f} h<extra></extra>",
                ),
                row=2,
                col=1,
            )  # fmt: skip
        fig.update_xaxes(range=[lo / 3600.0, hi / 3600.0], title_text="hours", row=2, col=1)
    return fig
