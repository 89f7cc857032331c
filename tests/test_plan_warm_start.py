"""Warm-started MILP solves find what cold ones find (issue 16): HiGHS 1.16 with its light
presolve, started from the plan, could end "optimal" with an objective value it handed back
no plan for, returning the start itself, and a sensitivity gain went unreported.
`solver.solve_model` runs warm starts without the light presolve and checks the plan handed
back against the value reported."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from chipmix.catalog import load_catalog
from chipmix.planning.portfolio.objective import plan_cost, solve_objective
from chipmix.planning.portfolio.occupancy import compact
from chipmix.planning.portfolio.placements import SearchCache, candidates
from chipmix.planning.portfolio.planner import plan
from chipmix.planning.portfolio.problem import Problem
from chipmix.planning.portfolio.scenario_file import load_scenario
from chipmix.planning.portfolio.solver import _misreported
from chipmix.planning.portfolio.trials import REMOVED, trials

CAT = load_catalog()
EXAMPLE = Path(__file__).parent.parent / "examples" / "frontier-lab-2026.yaml"


def test_a_value_reported_without_its_plan_is_caught() -> None:
    model: Any = SimpleNamespace(cost=np.array([2.0, 3.0]))
    handed_back = np.array([1.0, 1.0])  # costs 5

    def reported(value: float) -> Any:
        return SimpleNamespace(objective_function_value=value)

    assert _misreported(model, "optimal", handed_back, reported(4.2))
    assert not _misreported(model, "optimal", handed_back, reported(5.0))
    assert not _misreported(model, "infeasible", handed_back, reported(0.0))


def test_every_warm_started_trial_of_the_example_costs_what_a_cold_solve_does() -> None:
    sc = load_scenario(EXAMPLE, catalog=CAT)
    pb = Problem.of(sc, candidates(sc, SearchCache.shared(CAT)))
    base = solve_objective(pb, sc.objective)
    runs = compact(pb, base.chosen, base.reserved_units, base.replicas)
    removals = [t for t in trials(pb, base, runs) if t[3] == REMOVED]
    assert len(removals) >= 4
    for constraint, subject, _, _, changed in removals:
        warm = solve_objective(changed, "min-cost", warm=base.chosen)
        cold = solve_objective(changed, "min-cost")
        warm_cost = plan_cost(changed, warm.chosen, warm.reserved_units, warm.replicas)
        cold_cost = plan_cost(changed, cold.chosen, cold.reserved_units, cold.replicas)
        slack = sc.solver.gap * cold_cost
        assert warm_cost <= cold_cost + slack, (constraint, subject, warm_cost - cold_cost)
        assert abs(warm.objective - warm_cost) <= 1e-6 * warm_cost  # the plan's own value


def test_the_example_reports_the_mi300x_capacity_it_would_use() -> None:
    """The gain a warm start with the light presolve hid (a cold solve finds it)."""
    result = plan(EXAMPLE, catalog=CAT, single_vendor=False)
    capacity = [b for b in result.binding if b.constraint == "capacity"]
    assert any(
        b.subject == "azure-nd-mi300x-v5-2026-04" and b.relaxed == "removed" and b.gain > 9e4
        for b in capacity
    ), [b.message for b in capacity]
