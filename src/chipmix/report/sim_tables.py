"""Terminal tables for `chipmix simulate`."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from chipmix.report.render import fmt_duration, fmt_num, fmt_usd
from chipmix.sim.failures import CAUSES
from chipmix.sim.plan_runs import PlanSimulation
from chipmix.sim.results import SimulationResult

__all__ = ["plan_simulation_tables", "simulation_tables"]


def _days(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f} days"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.1%}"


def _spread(s: dict[str, Any], key: str, fmt: Any) -> str:
    mean, lo, hi = s.get(f"{key}_mean"), s.get(f"{key}_p10"), s.get(f"{key}_p90")
    if mean is None and s.get(f"{key}_p50") is None:
        return "—"
    return f"{fmt(mean) if mean is not None else '—'} (p10 {fmt(lo)}, p90 {fmt(hi)})"


def _interval(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return fmt_duration(seconds / 3600.0)


def simulation_tables(r: SimulationResult) -> list[Table]:
    s = r.summary
    run = r.primary
    e = run.estimate
    ck = run.checkpoint
    pol = r.policy
    table = Table(title="chipmix simulate", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("model", f"{e.job.model.display_name or e.job.model.name} ({e.job.mode})")
    table.add_row("system", f"{run.chips} × {e.system.chip.name} on {e.system.id}")
    table.add_row("layout", f"{e.layout}, {fmt_num(run.tokens_per_s)} tokens/s failure-free")
    if r.tokens is not None:
        ideal = r.tokens / run.tokens_per_s / 86400
        table.add_row("run", f"{fmt_num(r.tokens)} tokens ({ideal:.1f} days failure-free)")
    else:
        table.add_row("run", f"a window of {r.duration_days:g} days")
    table.add_row("replicas", f"{r.replicas:,} (seed {r.seed})")
    table.add_row(
        "checkpoint",
        f"{ck.size_bytes / 1e12:.2f} TB, {'async' if ck.asynchronous else 'sync'}, blocks "
        f"{ck.blocking_s:.1f} s, load {ck.load_s:.1f} s, every {_interval(pol.interval_s)} "
        f"({pol.chosen_by})",
    )
    young, daly = _interval(pol.young_interval_s), _interval(pol.daly_interval_s)
    best = f", simulated best {_interval(pol.sweep.best_interval_s)}" if pol.sweep else ""
    table.add_row("optimal interval", f"Young {young}, Daly {daly}{best}")
    table.add_row("MTBF (work lost)", fmt_duration(pol.mtbf_lossy_h))
    by_cause = s["interruptions_by_cause_mean"]
    causes = ", ".join(f"{c} {by_cause[c]:.1f}" for c in CAUSES if by_cause[c] > 0)
    table.add_row(
        "interruptions",
        f"{s['interruptions_mean']:.1f} mean, {s['unplanned_interruptions_mean']:.1f} unplanned"
        f" ({causes or 'none'})",
    )
    table.add_row("ETTR", _spread(s, "ettr", _pct))
    table.add_row(
        "time lost",
        f"lost work {s['lost_work_hours_mean']:.1f} h, checkpoints "
        f"{s['checkpoint_hours_mean']:.1f} h, restarts {s['restart_hours_mean']:.1f} h, "
        f"waiting {s['waiting_hours_mean']:.1f} h",
    )
    table.add_row("goodput", _spread(s, "goodput_tokens_per_s", fmt_num) + " tokens/s")
    if r.tokens is not None:
        table.add_row("completion", _spread(s, "completion_days", _days))
    else:
        table.add_row("tokens trained", fmt_num(s["tokens_mean"]))
    cost = _spread(s, "cost_usd", fmt_usd)
    wasted = s.get("wasted_cost_usd_mean")
    table.add_row("cost", cost + (f", of which wasted {fmt_usd(wasted)}" if wasted else ""))
    if r.deadline_days is not None:
        table.add_row(f"P(done ≤ {r.deadline_days:g} days)", _pct(s.get("deadline_probability")))
    if s["unfinished_fraction"] > 0:
        table.add_row("unfinished", _pct(s["unfinished_fraction"]), style="red")
    tables = [table]
    if r.without_migration is not None:
        tables.append(_migration_table(r))
    if r.scenario is not None:
        tables.append(_phase_table(r))
    if pol.sweep is not None:
        tables.append(_sweep_table(r))
    return tables


def _migration_table(r: SimulationResult) -> Table:
    table = Table(title="outage: with and without migration", title_justify="left")
    for col in ("variant", "completion p50", "p90", "ETTR", "waiting h", "cost", "deadline"):
        table.add_column(col, justify="left" if col == "variant" else "right")
    for outcome in (r.outcome, r.without_migration):
        if outcome is None:
            continue
        s = outcome.summary()
        table.add_row(
            outcome.label,
            _days(s["completion_days_p50"]),
            _days(s["completion_days_p90"]),
            _pct(s["ettr_mean"]),
            f"{s['waiting_hours_mean']:.0f}",
            fmt_usd(s["cost_usd_mean"]),
            _pct(s.get("deadline_probability")),
        )
    return table


def _phase_table(r: SimulationResult) -> Table:
    table = Table(title="phases (as planned)", title_justify="left")
    for col in ("from day", "to day", "phase", "entry downtime"):
        table.add_column(col, justify="left" if col == "phase" else "right")
    phases = r.outcome.timeline.phases
    for p in phases:
        open_end = p is phases[-1] and r.tokens is not None  # the give-up horizon
        table.add_row(
            f"{p.start_s / 86400:.1f}",
            "end" if open_end else f"{p.end_s / 86400:.1f}",
            p.label,
            fmt_duration(p.entry_down_s / 3600) + (" (sudden)" if p.entry_sudden else ""),
        )
    return table


def _sweep_table(r: SimulationResult) -> Table:
    sweep = r.policy.sweep
    assert sweep is not None
    table = Table(title="checkpoint interval sweep (same seed)", title_justify="left")
    for col in ("interval", "ETTR mean", "completion mean", ""):
        table.add_column(col, justify="right")
    best = max(range(len(sweep.ettr_mean)), key=lambda i: sweep.ettr_mean[i])
    for i, (tau, ettr, days) in enumerate(
        zip(sweep.intervals_s, sweep.ettr_mean, sweep.completion_days_mean, strict=True)
    ):
        table.add_row(
            _interval(tau),
            f"{ettr:.4f}",
            _days(days) if r.tokens is not None else "—",
            " ".join(
                mark
                for mark, hit in (
                    ("best", i == best),
                    ("Daly", abs(tau / r.policy.daly_interval_s - 1) < 1e-9),
                )
                if hit
            ),
        )
    return table


def plan_simulation_tables(p: PlanSimulation) -> list[Table]:
    """One row per planned job: where it runs, how long the plan gives it, how long it takes
    under failures (days from its planned start), and its chance of meeting the deadline."""
    table = Table(
        title=f"plan {p.scenario!r} under failures ({p.replicas:,} replicas, seed {p.seed}); "
        "days from each job's planned start",
        title_justify="left",
    )
    cols = ("job", "where", "plan", "p50", "p90", "due", "ETTR", "on time", "cost")
    for col in cols:
        table.add_column(col, justify="left" if col in ("job", "where") else "right")

    def days(x: float | None) -> str:
        return "—" if x is None else f"{x:.1f}"

    for j in p.jobs:
        d = j.to_dict()
        table.add_row(
            d["job"],
            f"{d['chips']} × {d['system']}",
            days(d["planned_days"]),
            days(d["completion_days_p50"]),
            days(d["completion_days_p90"]),
            days(d["deadline_days"]),
            _pct(d["ettr_mean"]),
            _pct(d["deadline_probability"]),
            fmt_usd(d["cost_usd_mean"]),
        )
    summary = Table(show_header=False, title_justify="left")
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row("P(every job on time)", _pct(p.all_deadlines_probability))
    summary.add_row("cost", f"{fmt_usd(p.cost_usd_mean)} (planned {fmt_usd(p.plan.cost_usd)})")
    if p.not_simulated:
        summary.add_row(
            "not simulated",
            "serving lines, held as planned at their planned cost: " + "; ".join(p.not_simulated),
        )
    return [table, summary]
