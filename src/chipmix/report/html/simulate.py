"""The `chipmix simulate` report: the distributions of completion time (or tokens trained)
and ETTR over the replicas, one sample run's timeline with its interruptions, checkpoints,
restarts and migrations, the checkpoint-interval sweep, and the summary tables."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from chipmix.catalog.version import CatalogVersion
from chipmix.report.html.page import Page, Table
from chipmix.report.html.simulate_timeline import timeline_figure
from chipmix.report.html.style import base_figure
from chipmix.report.render import fmt_duration, fmt_num, fmt_usd
from chipmix.sim.failures import CAUSES
from chipmix.sim.montecarlo import Outcome
from chipmix.sim.results import SimulationResult
from chipmix.sim.sample import SampleHistory

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["distribution_figure", "simulate_page", "sweep_figure", "timeline_figure"]

VARIANT_COLORS = ("#4c72b0", "#c44e52", "#55a868")


def _interval(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "never"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return fmt_duration(seconds / 3600.0)


def _outcomes(r: SimulationResult) -> list[Outcome]:
    return [o for o in (r.outcome, r.without_migration) if o is not None]


def distribution_figure(r: SimulationResult) -> go.Figure:
    """Histograms over the replicas: completion days (or tokens trained in a window) on the
    left, ETTR on the right; one colour per variant (with and without migration)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    window = r.tokens is None
    left = "tokens trained" if window else "completion time, days"
    fig = make_subplots(rows=1, cols=2, subplot_titles=[left, "ETTR (productive / wall time)"])
    fig.update_layout(
        base_figure(
            f"Over {r.replicas:,} simulated runs (seed {r.seed})",
            height=430,
            barmode="overlay",
            legend={"orientation": "h", "x": 0.0, "y": -0.18},
        ).layout
    )
    for k, o in enumerate(_outcomes(r)):
        color = VARIANT_COLORS[k % len(VARIANT_COLORS)]
        a = o.arrays
        values = a.tokens if window else o.completion_days[np.isfinite(o.completion_days)]
        fig.add_trace(
            go.Histogram(
                x=values,
                nbinsx=40,
                name=o.label,
                legendgroup=o.label,
                marker={"color": color},
                opacity=0.6,
                hovertemplate="%{x}: %{y} runs<extra>" + o.label + "</extra>",
            ),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Histogram(
                x=a.ettr,
                nbinsx=40,
                name=o.label,
                legendgroup=o.label,
                showlegend=False,
                marker={"color": color},
                opacity=0.6,
                hovertemplate="ETTR %{x}: %{y} runs<extra>" + o.label + "</extra>",
            ),
            row=1,
            col=2,
        )
    s = r.summary
    if not window:
        ideal = (r.tokens or 0.0) / r.primary.tokens_per_s / 86400
        marks = [("failure-free", ideal, "#333"), ("p50", s.get("completion_days_p50"), "#4c72b0")]
        if r.deadline_days is not None:
            marks.append(("deadline", r.deadline_days, "#c44e52"))
        for name, x, color in marks:
            if x is None:
                continue
            fig.add_vline(
                x=x,
                line={"color": color, "dash": "dash", "width": 1.3},
                annotation={"text": name, "font": {"color": color, "size": 10}},
                annotation_position="top right",
                row=1,
                col=1,
            )
    fig.update_yaxes(title_text="runs", row=1, col=1)
    fig.update_xaxes(tickformat=".1%", row=1, col=2)
    return fig


def sweep_figure(r: SimulationResult) -> go.Figure | None:
    """Mean ETTR against the checkpoint interval, with Young's, Daly's and the simulated
    optimum and the interval used."""
    import plotly.graph_objects as go

    pol = r.policy
    sweep = pol.sweep
    if sweep is None:
        return None
    fig = base_figure(
        "Checkpoint interval: mean ETTR over the same replicas",
        height=400,
        xaxis={"title": "compute between checkpoints, minutes", "type": "log"},
        yaxis={"title": "mean ETTR", "tickformat": ".2%"},
    )
    fig.add_trace(
        go.Scatter(
            x=[t / 60 for t in sweep.intervals_s],
            y=sweep.ettr_mean,
            mode="lines+markers",
            name="simulated",
            line={"color": "#4c72b0"},
        )
    )
    lo, hi = min(sweep.ettr_mean), max(sweep.ettr_mean)
    pad = (hi - lo) * 0.05 or 1e-4
    for name, x, color, dash in (
        ("Young", pol.young_interval_s, "#8c8c8c", "dot"),
        ("Daly", pol.daly_interval_s, "#55a868", "dash"),
        ("simulated best", sweep.best_interval_s, "#c44e52", "dash"),
        ("used", pol.interval_s, "#333", "solid"),
    ):
        if math.isfinite(x):
            # Lines as traces, not shapes: plotly places shape annotations wrongly on log axes.
            fig.add_trace(
                go.Scatter(
                    x=[x / 60, x / 60],
                    y=[lo - pad, hi + pad],
                    mode="lines",
                    name=f"{name}: {_interval(x)}",
                    line={"color": color, "dash": dash, "width": 1.3},
                    hoverinfo="name",
                )
            )
    return fig


def _spread(s: dict[str, Any], key: str, fmt: Any) -> list[str]:
    return [fmt(s.get(f"{key}_{q}")) for q in ("p10", "p50", "p90", "mean")]


def _days(x: float | None) -> str:
    return "—" if x is None else f"{x:,.1f}"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.2%}"


def _summary_table(r: SimulationResult) -> Table:
    rows = []
    for o in _outcomes(r):
        s = o.summary()
        if r.tokens is not None:
            rows.append([o.label, "completion, days", *_spread(s, "completion_days", _days)])
        else:
            rows.append([o.label, "tokens trained", "", "", "", fmt_num(s["tokens_mean"])])
        rows.append([o.label, "ETTR", *_spread(s, "ettr", _pct)])
        rows.append([o.label, "goodput, tokens/s", *_spread(s, "goodput_tokens_per_s", _num)])
        rows.append([o.label, "cost", *_spread(s, "cost_usd", fmt_usd)])
        rows.append([o.label, "interruptions", "", "", "", f"{s['interruptions_mean']:.1f}"])
        if s.get("deadline_probability") is not None:
            p = s["deadline_probability"]
            rows.append([o.label, f"P(done ≤ {r.deadline_days:g} days)", "", "", "", _pct(p)])
    return Table(
        ["variant", "", "p10", "p50", "p90", "mean"],
        rows,
        title="Outcome over the replicas",
        numeric={"p10", "p50", "p90", "mean"},
    )


def _num(x: float | None) -> str:
    return "—" if x is None else fmt_num(x)


def _lost_table(r: SimulationResult) -> Table:
    heads = ["variant", "lost work h", "checkpoints h", "restarts h", "waiting h", "wasted $"]
    heads += [c.replace("_", " ") for c in CAUSES]
    rows = []
    for o in _outcomes(r):
        s = o.summary()
        by = s["interruptions_by_cause_mean"]
        rows.append(
            [
                o.label,
                f"{s['lost_work_hours_mean']:.1f}",
                f"{s['checkpoint_hours_mean']:.1f}",
                f"{s['restart_hours_mean']:.1f}",
                f"{s['waiting_hours_mean']:.1f}",
                fmt_usd(s.get("wasted_cost_usd_mean")),
                *(f"{by.get(c, 0.0):.1f}" for c in CAUSES),
            ]
        )
    return Table(
        heads,
        rows,
        title="Where the time went (means per run) and interruptions by cause",
        numeric=set(heads) - {"variant"},
    )


def _runs_table(r: SimulationResult) -> Table:
    rows = []
    for run in r.outcome.timeline.runs:
        e = run.estimate
        rows.append(
            [
                run.label,
                e.system.id,
                f"{run.chips:,}",
                str(e.layout),
                fmt_num(run.tokens_per_s),
                "—" if run.usd_per_chip_hour is None else f"${run.usd_per_chip_hour:.2f}",
                f"{run.rates.total_per_hour * 24:.2f}",
                _interval(run.interval_s),
                str(run.restart.hot_spare_nodes),
            ]
        )
    heads = ["run", "system", "chips", "layout", "tokens/s", "$/chip-h", "interruptions/day",
             "checkpoint every", "hot spares"]  # fmt: skip
    return Table(
        heads,
        rows,
        title="Systems in the run",
        numeric={"chips", "tokens/s", "$/chip-h", "interruptions/day", "hot spares"},
    )


def _phases_table(r: SimulationResult) -> Table:
    phases = r.outcome.timeline.phases
    rows = []
    for p in phases:
        open_end = p is phases[-1] and r.tokens is not None
        rows.append(
            [
                f"{p.start_s / 86400:.1f}",
                "end" if open_end else f"{p.end_s / 86400:.1f}",
                p.label,
                fmt_duration(p.entry_down_s / 3600) + (" (sudden)" if p.entry_sudden else ""),
            ]
        )
    return Table(
        ["from day", "to day", "phase", "entry downtime"],
        rows,
        title="Phases (as planned)",
        numeric={"from day", "to day"},
    )


def _inputs(r: SimulationResult) -> list[tuple[str, str]]:
    run = r.primary
    e = run.estimate
    job = e.job
    ck = run.checkpoint
    pol = r.policy
    rows = [
        ("model", f"{job.model.display_name or job.model.name} ({job.mode}, {job.precision})"),
        ("system", f"{run.chips:,} × {e.system.chip.name} on {e.system.id}"),
        ("layout", f"{e.layout}; {fmt_num(run.tokens_per_s)} tokens/s failure-free"),
    ]
    if r.tokens is not None:
        ideal = r.tokens / run.tokens_per_s / 86400
        rows.append(("run", f"{fmt_num(r.tokens)} tokens ({ideal:,.1f} days failure-free)"))
    else:
        rows.append(("run", f"a window of {r.duration_days:g} days"))
    rows += [
        ("replicas", f"{r.replicas:,} (seed {r.seed})"),
        (
            "checkpoint",
            f"{ck.size_bytes / 1e12:.2f} TB, {'async' if ck.asynchronous else 'sync'}, blocks "
            f"{ck.blocking_s:.1f} s, every {_interval(pol.interval_s)} ({pol.chosen_by}; "
            f"Young {_interval(pol.young_interval_s)}, Daly {_interval(pol.daly_interval_s)})",
        ),
        ("price tier", run.price_tier),
    ]
    if r.deadline_days is not None:
        rows.append(("deadline", f"{r.deadline_days:g} days"))
    scen = r.scenario
    if scen is not None:
        outages = ", ".join(
            f"{o.name or 'outage'} day {o.start_day:g}+{o.duration_days:g} "
            f"({o.capacity_lost:.0%} lost)"
            for o in scen.outages
        )
        move = f"; migrate to {scen.migration.system}" if scen.migration else ""
        rows.append(("scenario", f"{scen.name or 'unnamed'}: {outages or 'no outage'}{move}"))
    return rows


def simulate_page(
    r: SimulationResult,
    history: SampleHistory | None = None,
    catalog: CatalogVersion | None = None,
    command: str | None = None,
) -> Page:
    """The report of a simulation (write it with `write_page`). ``history``: the sample run
    to draw (default: `chipmix.sim.sample.sample_history` of the median replica)."""
    from chipmix.sim.sample import sample_history

    h = history if history is not None else sample_history(r)
    s = r.summary
    e = r.primary.estimate
    name = e.job.model.display_name or e.job.model.name
    if r.tokens is not None:
        head = f"median completion {_days(s.get('completion_days_p50'))} days"
    else:
        head = f"{fmt_num(s['tokens_mean'])} tokens in {r.duration_days:g} days on average"
    page = Page(
        title=f"chipmix simulate: {name} on {r.primary.chips:,} × {e.system.chip.id}",
        subtitle=f"{head}, mean ETTR {_pct(s.get('ettr_mean'))}, "
        f"{s['interruptions_mean']:.1f} interruptions per run",
        command=command,
        inputs=_inputs(r),
        catalog=catalog,
        data=r.to_dict(),
    )
    page.section("Distributions")
    page.figure(
        distribution_figure(r),
        "Each replica is one possible history of the run under the same failure rates, "
        "maintenance, reclaims and outages.",
    )
    page.section("A sample run")
    page.figure(
        timeline_figure(r, h),
        "Green: training; red: down (detecting, getting nodes, relaunching, loading the "
        "checkpoint); grey: waiting for capacity; crosses: interruptions by cause; dotted "
        "lines: outages and migrations. The close-up marks each checkpoint and the work lost.",
    )
    fig = sweep_figure(r)
    if fig is not None:
        page.figure(fig, "The same seeded replicas at every interval (common random numbers).")
    page.section("Tables")
    page.table(_summary_table(r))
    page.table(_lost_table(r))
    page.table(_runs_table(r))
    if r.scenario is not None:
        page.table(_phases_table(r))
    if r.assumptions:
        page.table(Table(["assumption"], [[a] for a in r.assumptions], wrap=["assumption"]))
    return page
