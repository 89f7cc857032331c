"""Sensitivity re-solves skipped because one solve of their joint relaxation bounds them
(issue 16, `planning/portfolio/implied.py`): the joint problem is as loose as each trial,
a group is skipped only when the joint solve's dual bound holds every trial within the
noise, and the binding constraints reported are the same as with every re-solve run."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from chipmix.catalog import load_catalog
from chipmix.planning.portfolio.implied import loosest, proven_small
from chipmix.planning.portfolio.objective import primary_value, solve_objective
from chipmix.planning.portfolio.occupancy import compact
from chipmix.planning.portfolio.placements import SearchCache, candidates
from chipmix.planning.portfolio.problem import Problem
from chipmix.planning.portfolio.scenario_file import load_scenario, parse_scenario
from chipmix.planning.portfolio.sensitivity import binding_constraints
from chipmix.planning.portfolio.solver import Solution
from three_jobs import three_jobs

CAT = load_catalog()
EXAMPLE = Path(__file__).parent.parent / "examples" / "frontier-lab-2026.yaml"
UNASKED = {"vendor_caps": {"nvidia": 0.9}, "min_vendors": 2, "power_cap_mw": 50.0}
"""Caps, a vendor minimum and a power cap the plan keeps without being asked."""


def _planned(constraints: dict[str, Any]) -> tuple[Problem, Solution]:
    sc = parse_scenario(three_jobs(constraints), catalog=CAT)
    pb = Problem.of(sc, candidates(sc, SearchCache.shared(CAT)))
    return pb, solve_objective(pb, sc.objective)


def _noise(pb: Problem, base: Solution) -> float:
    value = primary_value(pb, base.chosen, base.reserved_units, "min-cost")
    return max(base.gap, 1e-6) * 2 * abs(value) + 1e-6


def test_the_joint_problem_is_as_loose_as_each_trial() -> None:
    pb, _ = _planned(UNASKED)
    cap = pb.cap.copy()
    cap[0] = cap[0] * 2
    deadline = pb.deadline_h.copy()
    deadline[1] += 168.0
    trials = [
        pb.changed(vendor_caps=dict.fromkeys(pb.vendor_caps, 1.0), cap=cap),
        pb.changed(deadline_h=deadline, min_vendors=None),
        pb.changed(power_cap_mw=60.0),
        pb.changed(power_cap_mw=None, vendor_caps={}),
    ]
    joint = loosest(pb, trials)
    assert joint is not None
    assert np.array_equal(joint.cap, cap)
    assert np.array_equal(joint.deadline_h, deadline)
    assert joint.vendor_caps == {}  # removed in one trial
    assert joint.min_vendors is None
    assert joint.power_cap_mw is None
    assert joint.budget_usd is None
    alone = loosest(pb, trials[2:3])
    assert alone is not None
    assert alone.power_cap_mw == 60.0
    assert np.array_equal(alone.cap, pb.cap)
    assert (alone.vendor_caps, alone.min_vendors) == (pb.vendor_caps, pb.min_vendors)
    # a trial that changes anything else (here the Pareto front's end bound): no joint problem
    assert loosest(pb, [*trials, replace(pb, max_end_h=500.0)]) is None


def test_a_group_that_cannot_save_is_skipped_with_one_solve() -> None:
    pb, base = _planned(UNASKED)
    noise = _noise(pb, base)
    group = [
        (3, pb.changed(vendor_caps=dict.fromkeys(pb.vendor_caps, 1.0))),
        (7, pb.changed(power_cap_mw=55.0)),
        (8, pb.changed(min_vendors=1)),
    ]
    proven, solves = proven_small(pb, base, group, noise, 20.0)
    assert (proven, solves) == ({3, 7, 8}, 1)
    value = primary_value(pb, base.chosen, base.reserved_units, "min-cost")
    for _, trial in group:  # each one solved alone: within the noise indeed
        sol = solve_objective(trial, "min-cost")
        assert value - primary_value(trial, sol.chosen, sol.reserved_units, "min-cost") <= noise


def test_a_group_that_may_save_is_left_to_its_own_solves() -> None:
    pb, base = _planned({})
    deadline = pb.deadline_h.copy()
    deadline[1] += 7 * 24.0  # job b a week later: its plan gets cheaper
    cap = pb.cap.copy()
    cap[2] = np.ceil(cap[2] * 1.1)
    group = [(0, pb.changed(deadline_h=deadline)), (1, pb.changed(cap=cap))]
    proven, solves = proven_small(pb, base, group, _noise(pb, base), 20.0)
    assert proven == set()
    assert solves <= 1
    assert proven_small(pb, base, group[:1], _noise(pb, base), 20.0) == (set(), 0)


def test_the_example_skips_its_steps_with_one_joint_solve() -> None:
    sc = load_scenario(EXAMPLE, catalog=CAT)
    pb = Problem.of(sc, candidates(sc, SearchCache.shared(CAT)))
    base = solve_objective(pb, sc.objective)
    runs = compact(pb, base.chosen, base.reserved_units, base.replicas)
    skipped, solved = binding_constraints(pb, base, runs)
    every, all_solved = binding_constraints(pb, base, runs, skip_implied=False)
    assert [b.message for b in skipped] == [b.message for b in every]
    assert [b.gain for b in skipped] == [b.gain for b in every]
    assert solved < all_solved


def test_a_step_that_saves_is_left_out_of_the_group() -> None:
    pb, base = _planned(UNASKED)
    deadline = pb.deadline_h.copy()
    deadline[1] += 7 * 24.0  # job b a week later: its linear relaxation is cheaper
    group = [
        (3, pb.changed(vendor_caps=dict.fromkeys(pb.vendor_caps, 1.0))),
        (5, pb.changed(deadline_h=deadline)),
        (7, pb.changed(power_cap_mw=55.0)),
    ]
    assert proven_small(pb, base, group, _noise(pb, base), 20.0) == ({3, 7}, 1)
