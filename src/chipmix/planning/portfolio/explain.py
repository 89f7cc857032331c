"""Why a scenario has no plan: which constraints conflict, and by how much.

Two checks. Before the MILP, a job with no candidate placement cannot run at all: no
allowed offer fits a layout, or even the most chips it holds finish too late
(`unplaceable`). After an infeasible MILP, the elastic form of the MILP (`formulation`) is
solved once per constraint group with only that group allowed to give (the others hard): each
group whose relaxation alone restores a plan is one way out, stated with the least
violation it needs — "in 2026-03 the runs need 41k H100-equivalents on offers that hold
30k", "job J finishes 9 days after its deadline", "$120M over the budget", "NVIDIA needs
71% of the spend, above its 60% cap". When no single group suffices, all groups give at
once and the least combined violation (each relative to its own limit) is reported.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from chipmix.planning.portfolio.placements import Candidates
from chipmix.planning.portfolio.problem import Problem
from chipmix.planning.portfolio.results import Conflict, PlanInfeasibleError
from chipmix.planning.portfolio.scenario import Scenario
from chipmix.planning.portfolio.solver import Solution, solve

__all__ = ["active_groups", "explain_infeasible", "unplaceable"]

EXPLAIN_TIME_LIMIT_S = 20.0
"""Per elastic solve."""


def unplaceable(sc: Scenario, cands: Candidates) -> list[tuple[int, Conflict]]:
    """Jobs without a single candidate placement, each with the reasons per system."""
    placed = {p.job for p in cands.placements}
    out = []
    for j, pj in enumerate(sc.jobs):
        if j in placed:
            continue
        window = f"{pj.release} → {pj.deadline or sc.end}"
        reasons = cands.reasons.get(j) or ["no allowed offer has chips in its window"]
        out.append(
            (
                j,
                Conflict(
                    "placements",
                    f"job {pj.name!r} cannot run within its window ({window}): "
                    + "; ".join(reasons),
                ),
            )
        )
    return out


def active_groups(pb: Problem) -> list[str]:
    """The constraint groups this problem has."""
    groups = []
    if np.isfinite(pb.cap).any() or pb.reservations:
        groups.append("capacity")
    groups.append("deadlines")
    if pb.budget_usd is not None:
        groups.append("budget")
    if pb.vendor_caps:
        groups.append("vendor-caps")
    if pb.cloud_caps:
        groups.append("cloud-caps")
    if pb.min_vendors is not None and pb.min_vendors > 1:
        groups.append("vendors")
    if pb.power_cap_mw is not None:
        groups.append("power")
    if pb.serving is not None:
        groups.append("serving")
    return groups


def explain_infeasible(pb: Problem) -> PlanInfeasibleError:
    """The conflicts of an infeasible problem, as an exception to raise."""
    limit = min(pb.scenario.solver.time_limit_s, EXPLAIN_TIME_LIMIT_S)
    groups = active_groups(pb)
    alone: list[Conflict] = []
    for g in groups:
        sol = solve(pb, "violation", elastic=frozenset({g}), time_limit_s=limit)
        if sol.ok:
            alone.extend(_describe(pb, sol, only=g, alone=True))
    name = pb.scenario.name
    if alone:
        return PlanInfeasibleError(
            name, alone, "the constraints conflict; relaxing any one of these alone gives a plan"
        )
    sol = solve(pb, "violation", elastic=frozenset(groups), time_limit_s=limit)
    if not sol.ok:
        return PlanInfeasibleError(
            name,
            [Conflict("unknown", f"even the elastic model found no plan ({sol.status})")],
            "no plan, and the explanation could not be computed",
        )
    return PlanInfeasibleError(
        name,
        _describe(pb, sol, only=None, alone=False),
        "no single constraint group can give enough; the least combined relaxation is",
    )


def _describe(pb: Problem, sol: Solution, *, only: str | None, alone: bool) -> list[Conflict]:
    out: list[Conflict] = []
    groups = [only] if only is not None else list(sol.slack) + (["deadlines"] * bool(sol.late_h))
    for g in dict.fromkeys(groups):
        if g == "capacity":
            out.extend(_capacity(pb, sol, alone))
        elif g == "deadlines":
            out.extend(_deadlines(pb, sol, alone))
        elif g == "budget":
            over = sum(a for _, a in sol.slack.get("budget", [])) * 1e6
            assert pb.budget_usd is not None
            out.append(
                Conflict(
                    g,
                    f"budget: ${over:,.0f} over the ${pb.budget_usd:,.0f} budget "
                    f"(+{over / pb.budget_usd:.1%})",
                    over,
                    alone,
                )
            )
        elif g in ("vendor-caps", "cloud-caps"):
            out.extend(_shares(pb, sol, g, alone))
        elif g == "vendors":
            short = sum(a for _, a in sol.slack.get("vendors", []))
            out.append(
                Conflict(
                    g,
                    f"vendors: only {pb.min_vendors - round(short) if pb.min_vendors else 0} "
                    f"vendors can take a job; min_vendors is {pb.min_vendors}",
                    short,
                    alone,
                )
            )
        elif g == "serving":
            out.extend(_serving(pb, sol, alone))
        elif g == "power":
            worst = max(sol.slack.get("power", []), key=lambda ka: ka[1], default=None)
            if worst is not None and pb.power_cap_mw is not None:
                t, over = int(worst[0][0]), worst[1]
                out.append(
                    Conflict(
                        g,
                        f"power: in {_month(pb, t)} the runs draw {pb.power_cap_mw + over:,.1f} MW,"
                        f" above the {pb.power_cap_mw:,.1f} MW cap (+{over:,.1f} MW)",
                        over,
                        alone,
                    )
                )
    return out


def _serving(pb: Problem, sol: Solution, alone: bool) -> list[Conflict]:
    """The serving entry least served, and in which period."""
    worst = max(sol.slack.get("serving", []), key=lambda ka: ka[1], default=None)
    if worst is None or pb.serving is None:
        return []
    (e, t), short = worst
    entry = pb.scenario.serving[int(e)]
    asked = float(pb.serving.demand[int(e), int(t)])
    return [
        Conflict(
            "serving",
            f"serving: {entry.name} gets {1 - short:.0%} of its {asked:,.3g} tokens a day in "
            f"{_month(pb, int(t))} ({entry.slo()}): the allowed offers cannot hold enough "
            "replicas beside the jobs",
            short,
            alone,
        )
    ]


def _month(pb: Problem, t: int) -> str:
    return pb.scenario.day_at(t * pb.period_h).strftime("%Y-%m")


def _ratios(pb: Problem) -> dict[int, float]:
    """H100-equivalents per chip of each offer with a placement."""
    out: dict[int, float] = {}
    for pl in pb.candidates.placements:
        if pl.chip_hours > 0:
            out.setdefault(pl.offer, pl.h100_hours / pl.chip_hours)
    return out


def _capacity(pb: Problem, sol: Solution, alone: bool) -> list[Conflict]:
    slack = sol.slack.get("capacity", [])
    if not slack:
        return []
    ratio = _ratios(pb)
    by_month: dict[str, dict[int, tuple[float, float]]] = defaultdict(dict)
    for (o, t), over in slack:
        month = _month(pb, int(t))
        cap = float(pb.cap[o, min(int(t), pb.cap.shape[1] - 1)])
        known = by_month[month].get(o)
        if known is None or over > known[1]:
            by_month[month][o] = (cap, over)

    def shortfall(month: str) -> float:
        return sum(over * ratio.get(o, 1.0) for o, (_, over) in by_month[month].items())

    worst = max(by_month, key=shortfall)
    offers = by_month[worst]
    need = sum((cap + over) * ratio.get(o, 1.0) for o, (cap, over) in offers.items())
    hold = sum(cap * ratio.get(o, 1.0) for o, (cap, _) in offers.items())
    detail = "; ".join(
        f"{pb.scenario.offers[o].id}: {cap + over:,.0f} chips on a cap of {cap:,.0f}"
        for o, (cap, over) in sorted(offers.items(), key=lambda kv: -kv[1][1])
    )
    months = sorted(by_month)
    span = months[0] if len(months) == 1 else f"{months[0]} … {months[-1]}"
    lead = "with the deadlines as given, " if alone else ""
    return [
        Conflict(
            "capacity",
            f"capacity: {lead}in {worst} the runs need {_k(need)} H100-equivalents on offers "
            f"that hold {_k(hold)} ({detail}); short in {span}",
            need - hold,
            alone,
        )
    ]


def _k(x: float) -> str:
    return f"{x / 1000:,.1f}k" if x >= 1000 else f"{x:,.0f}"


def _deadlines(pb: Problem, sol: Solution, alone: bool) -> list[Conflict]:
    out = []
    sc = pb.scenario
    for p, late in sorted(sol.late_h.items(), key=lambda kv: -kv[1]):
        pj = sc.jobs[int(pb.job[p])]
        due = pj.deadline or sc.end
        out.append(
            Conflict(
                "deadlines",
                f"deadline: job {pj.name!r} finishes {late / 24:,.1f} days after its deadline "
                f"{due} (on {sc.offers[int(pb.offer[p])].id})",
                late,
                alone,
            )
        )
    return out


def _shares(pb: Problem, sol: Solution, group: str, alone: bool) -> list[Conflict]:
    names = pb.vendors if group == "vendor-caps" else pb.clouds
    caps = pb.vendor_caps if group == "vendor-caps" else pb.cloud_caps
    spend, compute = pb.shares(
        sol.chosen, "vendor" if group == "vendor-caps" else "cloud", sol.replicas
    )
    amount = compute if pb.cap_basis == "compute" else spend
    total = float(amount.sum()) or 1.0
    out = []
    for key, _ in sol.slack.get(group, []):
        v = names.index(key[0])
        share = float(amount[v]) / total
        kappa = caps[v]
        out.append(
            Conflict(
                group,
                f"{group[:-1]}: {key[0]} needs {share:.0%} of the {pb.cap_basis}, above its "
                f"{kappa:.0%} cap (+{(share - kappa) * 100:.0f} points)",
                share - kappa,
                alone,
            )
        )
    return out
