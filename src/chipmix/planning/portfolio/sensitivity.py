"""What binds a plan and what it trades: marginal values, single-vendor plans, Pareto front.

Marginal values are measured, not read off duals (a MILP's duals mean little). Each
constraint is first *removed* — a share cap raised to 100 %, the vendor minimum to one,
the power cap, the budget or an offer's capacity lifted, a deadline moved to the horizon's
end — and the scenario re-solved, warm-started from the plan (still feasible: it only
relaxes); the gain is the cost of that constraint, so the one that drives the plan's cost
is named first even when a small step would not move it. Each tight constraint is then
also relaxed by one step — a share cap by ``cap_step`` points, a deadline by
``deadline_step_days``, a capacity, the budget or the power cap by ``capacity_step``
(relative), the vendor minimum by one. The gain is the objective's improvement: dollars
saved, hours sooner, tokens gained; every percentage is of the plan's own objective value
(one basis). Candidates are checked removals first, up to ``max_sensitivity_solves``;
gains within the MIP gap are not reported.

A re-solve whose answer is implied is skipped (min-cost plans without serving demand; what
is reported does not change). Removing or relaxing a lazy group the plan's model never
needed (`Solution.joined`: the plan keeps it unasked, and is optimal within its gap without
it) cannot save more than that gap. Relaxing a constraint by one step cannot save more than
removing it did, plus the removal's own gap (the step's plans are among the removal's), so
a step is skipped when that sum is within the noise every gain is held to.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta

import numpy as np

from chipmix.planning.portfolio.implied import proven_small
from chipmix.planning.portfolio.objective import plan_cost, primary_value, solve_objective
from chipmix.planning.portfolio.occupancy import compact
from chipmix.planning.portfolio.placements import Candidates
from chipmix.planning.portfolio.problem import Problem
from chipmix.planning.portfolio.results import Baseline, Binding, ParetoPoint
from chipmix.planning.portfolio.solver import Solution, solve
from chipmix.planning.portfolio.trials import REMOVED, Trial, trials

__all__ = ["binding_constraints", "pareto_front", "single_vendor_plans"]

SENSITIVITY_TIME_LIMIT_S = 20.0
"""Per re-solve."""


def _limit(pb: Problem) -> float:
    return min(pb.scenario.solver.time_limit_s, SENSITIVITY_TIME_LIMIT_S)


# -- binding constraints -----------------------------------------------------------------------
def binding_constraints(
    pb: Problem, base: Solution, runs: list[tuple[int, int]], *, skip_implied: bool = True
) -> tuple[list[Binding], int]:
    """The tight constraints whose one-step relaxation improves the objective, with the
    gain; and the number of re-solves spent (``skip_implied``: none whose answer is
    implied)."""
    sc = pb.scenario
    objective = sc.objective
    value = primary_value(pb, base.chosen, base.reserved_units, objective, base.replicas)
    tried = trials(pb, base, runs)[: sc.solver.max_sensitivity_solves]
    out = []
    least_noise = max(base.gap, 1e-6) * 2 * abs(value) + 1e-6
    most_saved: dict[tuple[str, str], float] = {}
    """Per removed constraint: the most a smaller relaxation of it could save (min-cost)."""
    removed_plan: dict[tuple[str, str], list[tuple[int, int]]] = {}
    solves = 0
    # min-cost only; the gains below leave serving out, the MILP does not
    implied_ok = skip_implied and objective == "min-cost" and not sc.serving

    def implied(constraint: str, subject: str) -> bool:
        """It cannot save more than the noise (by the rules in the docstring)."""
        group = LAZY_GROUP.get(constraint)
        return implied_ok and (
            (group is not None and group not in base.joined)
            or most_saved.get((constraint, subject), math.inf) <= least_noise
        )

    proven: set[int] | None = None  # steps whose joint relaxation saves within the noise
    for i, (constraint, subject, now, relaxed, changed) in enumerate(tried):
        if implied(constraint, subject):
            continue
        if implied_ok and relaxed != REMOVED and proven is None:  # the first step: every
            steps = [  # removal is solved, so `implied` is final for the steps
                (k, t[4])
                for k, t in enumerate(tried[i:], start=i)
                if t[3] != REMOVED and not implied(t[0], t[1]) and not _meets(t, removed_plan)
            ]
            proven, n = proven_small(pb, base, steps, least_noise, _limit(pb))
            solves += n
        if proven is not None and i in proven:
            continue
        solves += 1
        sol = solve_objective(changed, objective, warm=base.chosen, time_limit_s=_limit(pb))
        if not sol.ok:
            continue
        new = primary_value(changed, sol.chosen, sol.reserved_units, objective, sol.replicas)
        gain = new - value if objective == "max-tokens" else value - new
        if relaxed == REMOVED:
            most_saved[(constraint, subject)] = gain + max(sol.gap, 0.0) * abs(new)
            removed_plan[(constraint, subject)] = sol.chosen
        noise = max(base.gap, sol.gap, 1e-6) * 2 * abs(value) + 1e-6
        if gain <= noise:
            continue
        out.append(_binding(objective, constraint, subject, now, relaxed, gain, value))
    out.sort(key=lambda b: -b.gain)
    return out, solves


def _meets(trial: Trial, plans: dict[tuple[str, str], list[tuple[int, int]]]) -> bool:
    """Whether the plan found without a deadline meets this step's later deadline (then the
    step saves as much as the removal did: no use proving that it saves nothing)."""
    constraint, subject, _, _, changed = trial
    plan = plans.get((constraint, subject))
    if constraint != "deadline" or plan is None:
        return False
    j = next(i for i, job in enumerate(changed.scenario.jobs) if job.name == subject)
    ends = [changed.span(p, s)[1] for p, s in plan if int(changed.job[p]) == j]
    return all(end <= changed.deadline_h[j] + 1e-6 for end in ends)


LAZY_GROUP = {
    "vendor-cap": "vendor-caps",
    "cloud-cap": "cloud-caps",
    "min-vendors": "vendors",
    "power": "power",
    "budget": "budget",
}
"""The lazy constraint group (`solver.LAZY_GROUPS`) each kind of constraint belongs to."""


def _binding(
    objective: str,
    constraint: str,
    subject: str,
    now: str,
    relaxed: str,
    gain: float,
    value: float,
) -> Binding:
    fraction = gain / abs(value) if value else None
    basis = {"min-cost": "cost", "min-makespan": "makespan"}.get(objective, "tokens")
    of_plan = "" if fraction is None else f" ({fraction:.1%} of the plan's {basis})"
    if objective == "min-cost":
        unit, said = "usd", f"saves ${gain:,.0f}{of_plan}"
    elif objective == "min-makespan":
        unit, said = "hours", f"finishes {gain / 24:,.1f} days sooner{of_plan}"
    else:
        unit, said = "tokens", f"trains {gain:,.3g} more (priority-weighted) tokens{of_plan}"
    if relaxed == REMOVED:
        gone = {
            "vendor-cap": f"without the {subject} cap ({now})",
            "cloud-cap": f"without the {subject} cap ({now})",
            "deadline": f"with job {subject}'s deadline ({now}) moved to the horizon's end",
            "capacity": f"without {subject}'s capacity limit ({now})",
            "budget": f"without the budget ({now})",
            "power": f"without the power cap ({now})",
            "min-vendors": f"without the minimum of {now} vendors",
        }[constraint]
        return Binding(
            constraint, subject, now, relaxed, gain, unit, f"{gone} the plan {said}", fraction
        )
    what = {
        "vendor-cap": f"raising the {subject} cap from {now} to {relaxed}",
        "cloud-cap": f"raising the {subject} cap from {now} to {relaxed}",
        "deadline": f"moving job {subject}'s deadline from {now} to {relaxed}",
        "capacity": f"raising {subject}'s capacity from {now} to {relaxed}",
        "budget": f"raising the budget from {now} to {relaxed}",
        "power": f"raising the power cap from {now} to {relaxed}",
        "min-vendors": f"requiring {relaxed} vendors instead of {now}",
    }[constraint]
    return Binding(constraint, subject, now, relaxed, gain, unit, f"{what} {said}", fraction)


# -- single-vendor plans -----------------------------------------------------------------------
def single_vendor_plans(pb: Problem) -> list[Baseline]:
    """The cheapest plan on each vendor's offers alone (min-cost scenarios only)."""
    sc = pb.scenario
    if sc.objective != "min-cost":
        return []
    free = sc.with_constraints(vendor_caps={}, cloud_caps={}, min_vendors=None, budget_usd=None)
    out = []
    for vendor in pb.vendors:
        mine = [p for p in pb.candidates.placements if sc.offers[p.offer].vendor == vendor]
        covered = {p.job for p in mine}
        missing = [j.name for i, j in enumerate(sc.jobs) if j.required and i not in covered]
        if missing:
            out.append(
                Baseline(
                    vendor,
                    None,
                    "cannot run",
                    f"no {vendor} offer runs {', '.join(missing)} within the window",
                )
            )
            continue
        served = [o for o in pb.candidates.serving if sc.offers[o.offer].vendor == vendor]
        unserved = {j.name for e, j in enumerate(sc.serving)} - {
            sc.serving[o.serving].name for o in served
        }
        if unserved:
            out.append(
                Baseline(
                    vendor,
                    None,
                    "cannot run",
                    f"no {vendor} offer serves {', '.join(sorted(unserved))}",
                )
            )
            continue
        sub = Problem.of(free, Candidates(placements=mine, serving=served), cap=pb.cap)
        sol = solve(sub, "cost", time_limit_s=_limit(pb))
        if sol.ok:
            out.append(
                Baseline(
                    vendor, plan_cost(sub, sol.chosen, sol.reserved_units, sol.replicas), sol.status
                )
            )
        else:
            reason = (
                "its offers cannot hold every job by its deadline"
                if sol.status == "infeasible"
                else f"no plan within {_limit(pb):g} s"
            )
            out.append(Baseline(vendor, None, sol.status, reason))
    return out


# -- Pareto front -------------------------------------------------------------------------------
def pareto_front(
    pb: Problem, base: Solution, runs: list[tuple[int, int]]
) -> tuple[list[ParetoPoint], int]:
    """Cost vs makespan: the cheapest plan for each makespan bound, dominated points dropped;
    and the number of solves spent."""
    sc = pb.scenario
    origin = datetime(sc.start.year, sc.start.month, sc.start.day)

    def makespan(chosen: list[tuple[int, int]]) -> float:
        return max((pb.span(p, s)[1] for p, s in chosen), default=0.0)

    cheapest = solve_objective(pb, "min-cost", warm=base.chosen, time_limit_s=_limit(pb))
    fastest = solve_objective(pb, "min-makespan", warm=base.chosen, time_limit_s=_limit(pb))
    solves = 2
    points: list[tuple[float, float, str]] = []
    for sol in (cheapest, fastest):
        if sol.ok:
            chosen = compact(pb, sol.chosen, sol.reserved_units, sol.replicas)
            points.append(
                (
                    makespan(chosen),
                    plan_cost(pb, chosen, sol.reserved_units, sol.replicas),
                    sol.status,
                )
            )
    if len(points) == 2 and points[1][0] < points[0][0] - pb.period_h / 2:
        low, high = points[1][0], points[0][0]
        for bound in np.linspace(low, high, sc.solver.pareto_points)[1:-1]:
            sol = solve(
                replace(pb, max_end_h=float(bound)),
                "cost",
                warm=fastest.chosen,
                time_limit_s=_limit(pb),
            )
            solves += 1
            if sol.ok:
                chosen = compact(pb, sol.chosen, sol.reserved_units, sol.replicas)
                points.append(
                    (
                        makespan(chosen),
                        plan_cost(pb, chosen, sol.reserved_units, sol.replicas),
                        sol.status,
                    )
                )
    front: list[ParetoPoint] = []
    best = math.inf
    for m, cost, status in sorted(points):
        if cost < best - 1e-6:
            best = cost
            front.append(ParetoPoint(m, origin + timedelta(hours=m), cost, status))
    return front, solves
