"""Sensitivity re-solves whose answer is implied by one solve of their joint relaxation.

Every trial of the sensitivity analysis (`sensitivity`) relaxes the plan's problem: a cap or
a deadline later, a share cap or the power cap higher, the vendor minimum lower. Several
trials relaxed *at once* (`loosest`) give a problem whose plans include every plan of each
of them, so its optimum is at most each one's: a min-cost trial cannot save more than the
plan's cost less the joint solve's dual bound (a lower bound on every plan of every trial).
When that is within the noise every gain is held to, none of the trials would be reported,
and none is solved; when it is not, each is solved as before.

This is a proof, not an estimate: a trial is skipped only when the joint solve's dual bound
shows its gain cannot pass the noise. Which trials are grouped only decides how many solves
it takes: one for the group, which saves the others when it holds and is spent when it
does not. The sensitivity analysis offers the one-step relaxations whose removal saved
more than the noise (less a deadline step that the removal's own plan meets: it saves as
much), and the group keeps those whose linear relaxation gains nothing either.
"""

from __future__ import annotations

import math
from dataclasses import fields, replace
from typing import Any

import numpy as np

from chipmix.planning.portfolio.formulation import build_model
from chipmix.planning.portfolio.objective import primary_value, solve_objective
from chipmix.planning.portfolio.problem import Problem
from chipmix.planning.portfolio.solver import LAZY_GROUPS, Solution, solve_model, without

__all__ = ["loosest", "proven_small"]

RELAXED_FIELDS = (
    "cap",
    "deadline_h",
    "vendor_caps",
    "cloud_caps",
    "min_vendors",
    "power_cap_mw",
    "budget_usd",
)
"""The fields of `Problem` a sensitivity trial changes (each only looser)."""


def loosest(pb: Problem, relaxations: list[Problem]) -> Problem | None:
    """One problem as loose as each of ``relaxations`` (each ``pb`` with some of
    `RELAXED_FIELDS` loosened) in every constraint: caps and deadlines their latest, share
    caps their highest (a cap absent from one: removed), the vendor minimum its lowest, the
    power cap and the budget their highest (None in one: removed). None when one of them
    differs from ``pb`` in anything else."""
    for q in relaxations:
        for f in fields(Problem):
            if f.name not in RELAXED_FIELDS and getattr(q, f.name) is not getattr(pb, f.name):
                return None
    changes: dict[str, Any] = {
        "cap": np.maximum.reduce([q.cap for q in relaxations]),
        "deadline_h": np.maximum.reduce([q.deadline_h for q in relaxations]),
        "min_vendors": _least([q.min_vendors for q in relaxations]),
        "power_cap_mw": _most([q.power_cap_mw for q in relaxations]),
        "budget_usd": _most([q.budget_usd for q in relaxations]),
    }
    for name in ("vendor_caps", "cloud_caps"):
        caps: list[dict[int, float]] = [getattr(q, name) for q in relaxations]
        changes[name] = {
            k: max(c[k] for c in caps) for k in getattr(pb, name) if all(k in c for c in caps)
        }
    return replace(pb, **changes)


def _most(values: list[float | None]) -> float | None:
    """The loosest of upper limits (None: no limit)."""
    return None if any(v is None for v in values) else max(v for v in values if v is not None)


def _least(values: list[int | None]) -> int | None:
    """The loosest of lower limits (None: no limit)."""
    return None if any(v is None for v in values) else min(v for v in values if v is not None)


def proven_small(
    pb: Problem,
    base: Solution,
    group: list[tuple[int, Problem]],
    noise: float,
    time_limit_s: float,
) -> tuple[set[int], int]:
    """The keys of the min-cost trials of ``group`` (key, relaxed problem) that cannot save
    more than ``noise`` against ``base``, proven by one solve of a joint relaxation; and
    the number of MILP solves spent.

    The joint problem takes the trials whose linear relaxation costs what the plan's own
    does (they gain nothing there; one LP of a few milliseconds each), and is solved when
    there are two of them or more: a trial whose relaxation costs less likely saves
    something, and would spend the joint solve for nothing."""
    if len(group) < 2:
        return set(), 0
    plain = _relaxation(pb)
    flat = [(k, q) for k, q in group if _relaxation(q) >= plain - 1e-9 * max(abs(plain), 1.0)]
    joint = loosest(pb, [q for _, q in flat]) if len(flat) >= 2 else None
    if joint is None:
        return set(), 0
    value = primary_value(pb, base.chosen, base.reserved_units, "min-cost", base.replicas)
    sol = solve_objective(joint, "min-cost", warm=base.chosen, time_limit_s=time_limit_s)
    # HiGHS's dual bound, not the cost of the plan it returns: warm-started with presolve
    # on, HiGHS may hand back the start itself beside a lower objective (a plan it found
    # but did not return), so that plan's cost is no bound on what the joint problem saves
    if sol.ok and math.isfinite(sol.bound) and value - sol.bound <= noise:
        return {key for key, _ in flat}, 1
    return set(), 1


def _relaxation(pb: Problem) -> float:
    """The cost ($) of the linear relaxation of ``pb`` without its lazy groups (NaN when
    HiGHS finds none)."""
    model = build_model(without(pb, set(LAZY_GROUPS)), "cost", frozenset(), {})
    model.integer[:] = False
    sol = solve_model(pb, model, "cost")
    return sol.objective if sol.ok else math.nan
