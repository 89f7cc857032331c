"""A plan's objective: solving for it (lexicographic for min-makespan and max-tokens), its
value, and its cost."""

from __future__ import annotations

from chipmix.planning.portfolio.problem import Goal, Problem
from chipmix.planning.portfolio.scenario import Objective
from chipmix.planning.portfolio.solver import Solution, solve

__all__ = ["plan_cost", "primary_value", "solve_objective"]


# -- solving an objective ----------------------------------------------------------------------
def solve_objective(
    pb: Problem,
    objective: Objective,
    *,
    warm: list[tuple[int, int]] | None = None,
    time_limit_s: float | None = None,
) -> Solution:
    """Solve for ``objective``; min-makespan and max-tokens then find the cheapest plan that
    keeps the best value (a second solve, warm-started from the first)."""
    if objective == "min-cost":
        return solve(pb, "cost", warm=warm, time_limit_s=time_limit_s)
    goal: Goal = "makespan" if objective == "min-makespan" else "tokens"
    first = solve(pb, goal, warm=warm, time_limit_s=time_limit_s)
    if not first.ok:
        return first
    value = primary_value(pb, first.chosen, first.reserved_units, objective)
    hold = (
        {"makespan": value * (1 + 1e-7) + 1e-6}
        if goal == "makespan"
        else {"tokens": value * (1 - 1e-7)}
    )
    second = solve(pb, "cost", hold=hold, warm=first.chosen, time_limit_s=time_limit_s)
    if not second.ok:
        return first
    return Solution(
        **{
            **second.__dict__,
            "gap": max(first.gap, second.gap),
            "seconds": first.seconds + second.seconds,
            "status": "optimal" if first.status == second.status == "optimal" else "feasible",
        }
    )


def plan_cost(
    pb: Problem,
    chosen: list[tuple[int, int]],
    units: dict[int, int],
    replicas: dict[int, int] | None = None,
) -> float:
    """Per-use cost of the runs and serving replicas plus every reservation for its whole
    term, $."""
    per_use = sum(float(pb.usd[p]) for p, _ in chosen) + pb.serving_usd(replicas)
    return per_use + sum(pb.reservations[k][2] * u for k, u in units.items())


def primary_value(
    pb: Problem,
    chosen: list[tuple[int, int]],
    units: dict[int, int],
    objective: Objective,
    replicas: dict[int, int] | None = None,
) -> float:
    """The objective's value of a plan: $ (min-cost: runs, serving ``replicas`` and
    reservations), hours (min-makespan) or priority-weighted tokens (max-tokens)."""
    if objective == "min-cost":
        return plan_cost(pb, chosen, units, replicas)
    if objective == "min-makespan":
        return max((pb.span(p, s)[1] for p, s in chosen), default=0.0)
    return sum(float(pb.value[pb.job[p]]) for p, _ in chosen)
