"""Solving the portfolio MILP with HiGHS: constraint groups added lazily, warm starts,
and the solution read back (the model itself: `chipmix.planning.portfolio.formulation`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from chipmix.planning.portfolio.formulation import Model, build_model, value_scale
from chipmix.planning.portfolio.occupancy import repair_vendors
from chipmix.planning.portfolio.problem import F64, I64, USD, Goal, Problem

__all__ = [
    "LAZY_GROUPS",
    "Solution",
    "highspy_module",
    "new_highs",
    "solve",
    "solve_model",
    "violated",
    "without",
]


# -- solving ---------------------------------------------------------------------------------
def highspy_module() -> Any:
    """HiGHS's Python module, imported on first use (it is slow to import)."""
    import importlib

    return importlib.import_module("highspy")


_scheduler_threads: list[int] = []
"""The thread count HiGHS's process-wide task scheduler was last started with (0: its
default), once a solve has started it."""


def new_highs(highspy: Any, threads: int = 0) -> Any:
    """A ``Highs`` instance that prints nothing and runs on ``threads`` threads (0: HiGHS's
    default).

    HiGHS starts one task scheduler per process, sized by the first solve's ``threads``; a
    later solve asking for a different count stops without a status ("Not Set"). So the
    scheduler is reset (``Highs.resetGlobalScheduler``) when the count changes.

    The C library prints its banner from the constructor, before any option can be set
    (``Highs()`` takes none), straight to file descriptor 1: a command's stdout, which must
    carry only its answer. So fd 1 points at the null device while it is built, and the
    output is switched off before it is handed out."""
    import os

    saved = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        h = highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(null)
    h.setOptionValue("output_flag", False)
    if threads:
        h.setOptionValue("threads", threads)
    if _scheduler_threads and _scheduler_threads[-1] != threads:
        highspy.Highs.resetGlobalScheduler(True)
    _scheduler_threads[:] = [threads]
    return h


@dataclass(frozen=True)
class Solution:
    """What HiGHS returned for one model."""

    status: str
    """``optimal``, ``feasible`` (stopped at the time limit with a plan), ``infeasible``,
    ``no-solution`` (time limit, nothing found) or HiGHS's own word."""
    objective: float
    gap: float
    seconds: float
    chosen: list[tuple[int, int]]
    """(placement, start period) of every run."""
    reserved_units: dict[int, int]
    """Units per reservation index."""
    slack: dict[str, list[tuple[tuple[Any, ...], float]]]
    """Per elastic group: (key, amount) of every non-zero slack."""
    late_h: dict[int, float]
    """Per placement chosen past its deadline (elastic deadlines): hours late."""
    num_cols: int
    num_rows: int
    nonzeros: int
    goal: Goal
    bound: float = math.nan
    """HiGHS's dual bound, in the objective's units (a lower bound on a min-cost plan)."""
    replicas: dict[int, int] = field(default_factory=dict)
    """Serving replicas per column of `Problem.serving` (only the non-zero ones)."""
    joined: frozenset[str] = frozenset()
    """The lazy constraint groups (`LAZY_GROUPS`) the model needed; the scenario's other
    groups were left out and the plan keeps them unasked."""

    @property
    def ok(self) -> bool:
        return self.status in ("optimal", "feasible")


LAZY_GROUPS = ("budget", "vendor-caps", "cloud-caps", "vendors", "power")
"""Constraint groups first left out, and added only when a plan breaks them."""


def solve(
    pb: Problem,
    goal: Goal = "cost",
    *,
    elastic: frozenset[str] = frozenset(),
    hold: dict[str, float] | None = None,
    warm: list[tuple[int, int]] | None = None,
    time_limit_s: float | None = None,
) -> Solution:
    """Solve the MILP for ``goal`` with HiGHS, adding constraint groups lazily.

    The groups (5)–(8) are left out at first; a group joins the model only when the plan
    found breaks it, and the model is solved again. The model without them is a
    relaxation, so a plan that breaks none of them is optimal for the whole model (within
    the same gap), and a relaxation with no plan proves the whole model has none. Most
    plans satisfy most caps unasked, and the binaries of the vendor minimum and the
    integer reservations make the whole model much slower to prove optimal. The vendor
    minimum joins last, from the plan repaired by `repair_vendors` (HiGHS's own heuristics
    find poor plans for it: its relaxation is weak): when that plan breaks nothing and
    costs within the gap of the relaxation's dual bound, it is the answer (the bound holds
    for the whole model); otherwise it warm-starts the whole model."""
    if goal == "violation":
        return _solve_once(pb, goal, elastic, hold, warm, time_limit_s)
    present = {g for g in LAZY_GROUPS if _has(pb, g)}
    leave_out = set(present)
    seconds = 0.0
    while True:
        sol = _solve_once(without(pb, leave_out), goal, elastic, hold, warm, time_limit_s)
        seconds += sol.seconds
        joined = frozenset(present - leave_out)
        if not sol.ok:
            return replace(sol, seconds=seconds, joined=joined)
        broken = violated(pb, sol.chosen, sol.reserved_units, sol.replicas) & leave_out
        if not broken:
            return replace(sol, seconds=seconds, joined=joined)
        if broken != {"vendors"}:
            leave_out -= broken - {"vendors"}  # the vendor minimum last, from a repaired plan
            continue
        leave_out.discard("vendors")
        if warm is None:
            warm = repair_vendors(pb, sol.chosen, sol.reserved_units, sol.replicas)
            certified = _certify(pb, goal, sol, warm, seconds)
            if certified is not None:
                return replace(certified, joined=frozenset(present - leave_out))


def _certify(
    pb: Problem, goal: Goal, relaxed: Solution, plan: list[tuple[int, int]] | None, seconds: float
) -> Solution | None:
    """The repaired ``plan`` as the answer when it breaks nothing and costs within the gap
    of the relaxation's dual bound (a lower bound on every plan of the whole model)."""
    if goal != "cost" or plan is None or not math.isfinite(relaxed.bound):
        return None
    units = relaxed.reserved_units
    if violated(pb, plan, units, relaxed.replicas):
        return None
    cost = float(sum(pb.usd[p] for p, _ in plan)) + pb.serving_usd(relaxed.replicas)
    cost += sum(pb.reservations[k][2] * u for k, u in units.items())
    gap = (cost - relaxed.bound) / max(abs(cost), 1e-9)
    if gap > pb.scenario.solver.gap:
        return None
    return replace(
        relaxed,
        status="optimal",
        objective=cost,
        gap=max(gap, 0.0),
        chosen=sorted(plan),
        seconds=seconds,
    )


def _has(pb: Problem, group: str) -> bool:
    return {
        "budget": pb.budget_usd is not None,
        "vendor-caps": bool(pb.vendor_caps),
        "cloud-caps": bool(pb.cloud_caps),
        "vendors": pb.min_vendors is not None and pb.min_vendors > 1,
        "power": pb.power_cap_mw is not None,
    }[group]


def without(pb: Problem, groups: set[str]) -> Problem:
    """``pb`` without the lazy constraint ``groups`` (`LAZY_GROUPS`)."""
    changes: dict[str, Any] = {}
    if "budget" in groups:
        changes["budget_usd"] = None
    if "vendor-caps" in groups:
        changes["vendor_caps"] = {}
    if "cloud-caps" in groups:
        changes["cloud_caps"] = {}
    if "vendors" in groups:
        changes["min_vendors"] = None
    if "power" in groups:
        changes["power_cap_mw"] = None
    return replace(pb, **changes) if changes else pb


def violated(
    pb: Problem,
    chosen: list[tuple[int, int]],
    units: dict[int, int],
    replicas: dict[int, int] | None = None,
) -> set[str]:
    """The lazy groups a plan (runs, reservations, serving replicas) breaks."""
    out = set()
    z, replicas = pb.serving, replicas or {}
    if pb.budget_usd is not None:
        cost = float(sum(pb.usd[p] for p, _ in chosen)) + pb.serving_usd(replicas)
        cost += sum(pb.reservations[k][2] * u for k, u in units.items())
        if cost > pb.budget_usd * (1 + 1e-9):
            out.add("budget")
    for group, caps, by in (
        ("vendor-caps", pb.vendor_caps, "vendor"),
        ("cloud-caps", pb.cloud_caps, "cloud"),
    ):
        if caps:
            spend, compute = pb.shares(chosen, by, replicas)
            amount = compute if pb.cap_basis == "compute" else spend
            total = float(amount.sum())
            slack = 1e-6 * max(total, 1.0)
            if any(amount[v] > kappa * total + slack for v, kappa in caps.items()):
                out.add(group)
    used = {int(pb.vendor[p]) for p, _ in chosen}
    vendors_used = len(used | ({int(z.vendor[i]) for i in replicas} if z is not None else set()))
    if pb.min_vendors is not None and vendors_used < pb.min_vendors:
        out.add("vendors")
    if pb.power_cap_mw is not None:
        power: dict[int, float] = {}
        for p, s in chosen:
            for t in range(s, s + pb.span(p, s)[2]):
                power[t] = power.get(t, 0.0) + float(pb.power_mw[p])
        if z is not None:
            for i, n in replicas.items():
                t = int(z.period[i])
                power[t] = power.get(t, 0.0) + n * float(z.power_mw[i])
        if max(power.values(), default=0.0) > pb.power_cap_mw + 1e-6:
            out.add("power")
    return out


def _solve_once(
    pb: Problem,
    goal: Goal,
    elastic: frozenset[str],
    hold: dict[str, float] | None,
    warm: list[tuple[int, int]] | None,
    time_limit_s: float | None,
) -> Solution:
    """Build the model for ``goal`` and solve it with HiGHS (imported here, not at start-up)."""
    started = time.perf_counter()
    model = build_model(pb, goal, elastic, hold or {})
    return solve_model(pb, model, goal, warm=warm, time_limit_s=time_limit_s, started=started)


def solve_model(
    pb: Problem,
    model: Model,
    goal: Goal,
    *,
    warm: list[tuple[int, int]] | None = None,
    time_limit_s: float | None = None,
    started: float | None = None,
) -> Solution:
    """Solve a built (and possibly edited: costs, bounds) model with HiGHS.

    A warm-started solve with HiGHS's light presolve can end "optimal" with an objective
    value below the true optimum and hand back the start itself, whose cost is above it
    (HiGHS 1.16; on the example's sensitivity re-solves it hid a $95,152 gain). So a warm
    start with the light presolve runs with the presolve off, which finds every cold optimum
    of the example's trials as fast; and whatever the presolve, the plan handed back is
    checked against the value reported, and on a mismatch the model is solved again cold."""
    highspy = highspy_module()
    started = time.perf_counter() if started is None else started
    presolve = pb.scenario.solver.presolve
    csc = model.matrix.csc(model.num_cols)
    first = "off" if warm and presolve == "light" else presolve
    word, values, info = _run(highspy, pb, model, csc, first, warm, time_limit_s)
    if warm and _misreported(model, word, values, info):
        word, values, info = _run(highspy, pb, model, csc, presolve, None, time_limit_s)
    elapsed = time.perf_counter() - started
    return _read(pb, model, word, values, info, elapsed, goal, len(csc[2]))


def _misreported(model: Model, word: str, values: F64, info: Any) -> bool:
    """Whether HiGHS's objective value is not the cost of the solution it handed back."""
    if word not in ("optimal", "feasible"):
        return False
    reported = float(info.objective_function_value)
    cost = float(np.dot(model.cost, values))
    return abs(cost - reported) > 1e-9 * max(abs(reported), 1.0)


def _run(
    highspy: Any,
    pb: Problem,
    model: Model,
    csc: tuple[I64, I64, F64],
    presolve: str,
    warm: list[tuple[int, int]] | None,
    time_limit_s: float | None,
) -> tuple[str, F64, Any]:
    """One HiGHS run: its status word, the solution's column values and HiGHS's info."""
    opts = pb.scenario.solver
    h = new_highs(highspy, opts.threads)
    h.setOptionValue("mip_rel_gap", opts.gap)
    h.setOptionValue("time_limit", float(time_limit_s or opts.time_limit_s))
    h.setOptionValue("random_seed", 0)
    h.setOptionValue("presolve", "off" if presolve == "off" else "on")
    h.setOptionValue("presolve_mode", 2 if presolve == "light" else 0)
    lp = highspy.HighsLp()
    lp.num_col_ = model.num_cols
    lp.num_row_ = len(model.matrix.lower)
    lp.col_cost_ = model.cost
    lp.col_lower_ = model.lower
    lp.col_upper_ = np.where(np.isinf(model.upper), highspy.kHighsInf, model.upper)
    lp.row_lower_ = np.where(
        np.isinf(model.matrix.lower), -highspy.kHighsInf, np.array(model.matrix.lower)
    )
    lp.row_upper_ = np.where(
        np.isinf(model.matrix.upper), highspy.kHighsInf, np.array(model.matrix.upper)
    )
    start, index, value = csc
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = start
    lp.a_matrix_.index_ = index
    lp.a_matrix_.value_ = value
    lp.integrality_ = [
        highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous
        for i in model.integer
    ]
    h.passModel(lp)
    if warm:
        _warm_start(h, highspy, model, pb, warm)
    h.run()
    status = h.getModelStatus()
    info = h.getInfo()
    has_solution = info.primal_solution_status == highspy.SolutionStatus.kSolutionStatusFeasible
    if status == highspy.HighsModelStatus.kOptimal:
        word = "optimal"
    elif status == highspy.HighsModelStatus.kInfeasible:
        word = "infeasible"
    elif has_solution:
        word = "feasible"
    elif status == highspy.HighsModelStatus.kTimeLimit:
        word = "no-solution"
    else:
        word = h.modelStatusToString(status).lower()
    values = np.array(h.getSolution().col_value) if has_solution else np.zeros(model.num_cols)
    return word, values, info


def _warm_start(
    h: Any, highspy: Any, model: Model, pb: Problem, warm: list[tuple[int, int]]
) -> None:
    """Offer a known plan as a start: its runs, reservations sized to cover them, the
    vendors it uses, its makespan."""
    pairs = zip(model.cols.p.tolist(), model.cols.s.tolist(), strict=True)
    where = {ps: i for i, ps in enumerate(pairs)}
    values = np.zeros(model.num_cols)
    for p, s in warm:
        i = where.get((p, s))
        if i is None:
            return  # not a column of this model: no warm start
        values[i] = 1.0
    for k, (o, _, _, _) in enumerate(pb.reservations):
        units = pb.scenario.offers[o].chips_per_unit
        need = _peak_use(pb, model, values, k)
        values[model.r0 + k] = math.ceil(need / units - 1e-9)
    used = {int(pb.vendor[p]) for p, _ in warm}
    for v in range(model.m_col - model.y0):
        values[model.y0 + v] = 1.0 if v in used else 0.0
    values[model.m_col] = max((pb.span(p, s)[1] for p, s in warm), default=0.0)
    sol = highspy.HighsSolution()
    sol.col_value = list(values)
    sol.value_valid = True
    h.setSolution(sol)


def _peak_use(pb: Problem, model: Model, values: F64, k: int) -> float:
    cols = model.cols
    on = np.flatnonzero((values[: len(cols.p)] > 0.5) & (pb.tier_key[cols.p] == k))
    usage: dict[int, float] = {}
    for i in on:
        for t in range(int(cols.s[i]), int(cols.s[i] + cols.length[i])):
            usage[t] = usage.get(t, 0.0) + float(pb.chips[cols.p[i]])
    return max(usage.values(), default=0.0)


def _read(
    pb: Problem,
    model: Model,
    word: str,
    values: F64,
    info: Any,
    seconds: float,
    goal: Goal,
    nonzeros: int,
) -> Solution:
    cols = model.cols
    nx = len(cols.p)
    on = np.flatnonzero(values[:nx] > 0.5)
    chosen = [(int(cols.p[i]), int(cols.s[i])) for i in on]
    units = {
        k: round(values[model.r0 + k])
        for k in range(len(pb.reservations))
        if values[model.r0 + k] > 0.5
    }
    slack: dict[str, list[tuple[tuple[Any, ...], float]]] = {}
    for sl in model.slacks:
        amount = float(values[sl.col])
        if amount > 1e-6:
            slack.setdefault(sl.group, []).append((sl.key, amount))
    late = {int(cols.p[i]): float(cols.late_h[i]) for i in on if cols.late_h[i] > 1e-6}
    nz = 0 if pb.serving is None else len(pb.serving)
    replicas = {i: round(values[model.z0 + i]) for i in range(nz) if values[model.z0 + i] > 0.5}
    found = word in ("optimal", "feasible")
    objective = float(info.objective_function_value) if found else math.nan
    bound = float(info.mip_dual_bound) if found else math.nan
    if goal == "cost":
        objective /= USD
        bound /= USD
    elif goal == "tokens":
        objective *= -value_scale(pb)
        bound *= -value_scale(pb)
    gap = float(info.mip_gap) if word in ("optimal", "feasible") else math.nan
    return Solution(
        status=word,
        objective=objective,
        gap=0.0 if word == "optimal" and not math.isfinite(gap) else gap,
        seconds=seconds,
        chosen=chosen,
        reserved_units=units,
        slack=slack,
        late_h=late,
        num_cols=model.num_cols,
        num_rows=len(model.matrix.lower),
        nonzeros=nonzeros,
        goal=goal,
        bound=bound,
        replicas=replicas,
    )
