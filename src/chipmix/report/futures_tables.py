"""The `chipmix plan --futures N` tables: plans side by side, the frontier, vendor exposure,
per-job reliability and the uncertainty sources."""

from __future__ import annotations

from rich import box
from rich.table import Table

from chipmix.planning.futures.results import FuturesResult
from chipmix.report.render import fmt_usd

__all__ = ["futures_tables"]


def _table(title: str) -> Table:
    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)


def _usd(x: float | None) -> str:
    if x is None:
        return "—"
    return f"${x / 1e9:,.3g}B" if abs(x) >= 1e9 else fmt_usd(x)


def futures_tables(r: FuturesResult) -> list[Table]:
    det, rob = r.stage(r.deterministic), r.stage(r.robust)
    head = _table(
        f"{r.scenario}: {r.futures} futures (seed {r.seed}), target P(all deadlines met) "
        f"≥ {r.target:.0%} — {r.solves} recourse solves, {r.wall_s:.1f} s ({r.mode}, "
        f"{r.workers} worker{'s' if r.workers > 1 else ''})"
    )
    for col in ("plan", "P(on time)", "E[cost]", "p10", "p90", "reserved", "regret", "moved"):
        head.add_column(col, justify="left" if col == "plan" else "right")
    for s in r.stages:
        label = s.name + ("" if s.role == "candidate" else f" [{s.role}]")
        style = "bold" if s.role in ("deterministic", "robust") else None
        head.add_row(
            label,
            f"{s.p_all_met:.1%}",
            _usd(s.cost_mean_usd),
            _usd(s.cost_p10_usd),
            _usd(s.cost_p90_usd),
            _usd(s.reserved_usd),
            _usd(s.regret_mean_usd),
            f"{s.migrations:.1f}",
            style=style,
        )
    worth = (
        "no single vendor is as reliable"
        if r.diversification_usd is None
        else f"the cheapest single vendor as reliable costs {_usd(r.diversification_usd)} "
        "more in expectation"
    )
    head.caption = (
        f"robust: {rob.name} ({rob.p_all_met:.1%}, {_usd(rob.cost_mean_usd)}) vs deterministic "
        f"({det.p_all_met:.1%}, {_usd(det.cost_mean_usd)}); {worth}. regret: cost above the "
        "cheapest mix plan as punctual in the same future; moved: jobs per future on another "
        "offer than planned."
        + (
            ""
            if r.p_as_planned is None
            else f" P(on time) of the deterministic plan held as planned (no recourse): "
            f"{r.p_as_planned:.1%}."
        )
    )
    tables = [head]
    front = _table("cost–reliability frontier (mix first stages)")
    for col in ("P(all met) ≥", "cheapest plan", "E[cost]"):
        front.add_column(col, justify="left" if col == "cheapest plan" else "right")
    for p in r.frontier:
        front.add_row(f"{p.target:.1%}", p.stage, _usd(p.cost_mean_usd))
    tables.append(front)
    shown = [s for s in r.stages if s.role != "candidate"]
    vendors = sorted({v for s in shown for v in s.vendor_spend_usd})
    expo = _table("vendor exposure: expected spend (p90)")
    expo.add_column("plan")
    for v in vendors:
        expo.add_column(v, justify="right")
    for s in shown:
        expo.add_row(
            s.name,
            *(
                f"{_usd(s.vendor_spend_usd[v])} ({_usd(s.vendor_spend_p90_usd[v])})"
                for v in vendors
            ),
        )
    tables.append(expo)
    jobs = _table("P(deadline met) per job")
    jobs.add_column("job")
    for s in shown:
        jobs.add_column(s.name, justify="right")
    for job in det.p_met:
        jobs.add_row(job, *(f"{s.p_met[job]:.1%}" for s in shown))
    if det.p_met:  # a serving-only scenario has no deadlines
        tables.append(jobs)
    src = _table("uncertainty sources")
    for col in ("kind", "applies to", "distribution", "source"):
        src.add_column(col, overflow="fold")
    for u in r.sources:
        src.add_row(u.kind, u.subject, u.distribution, u.source)
    tables.append(src)
    if r.notes:
        notes = _table("notes")
        notes.add_column("note", overflow="fold")
        for n in r.notes:
            notes.add_row(n)
        tables.append(notes)
    return tables
