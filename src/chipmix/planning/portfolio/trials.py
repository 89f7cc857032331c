"""The trials of a plan's sensitivity analysis: its problem with one constraint relaxed.

A trial is ``(constraint, subject, now, relaxed, problem)``: the kind of constraint
(``vendor-cap``, ``cloud-cap``, ``capacity``, ``budget``, ``power``, ``min-vendors``,
``deadline``), what it applies to, its value now and relaxed as the user reads them, and
the plan's problem with it relaxed. Removals come first (``relaxed`` is `REMOVED`: a share
cap at 100 %, a capacity, the budget or the power cap lifted, the vendor minimum one, a
deadline at the horizon's end), then one-step relaxations of the constraints the plan
meets exactly (`sensitivity` solves them and reports the gains).
"""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np

from chipmix.planning.portfolio.objective import plan_cost
from chipmix.planning.portfolio.problem import Problem
from chipmix.planning.portfolio.solver import Solution

__all__ = ["REMOVED", "Trial", "trials"]

Trial = tuple[str, str, str, str, Problem]
"""(constraint, subject, its value now, its value relaxed, the problem relaxed)."""


def trials(pb: Problem, base: Solution, runs: list[tuple[int, int]]) -> list[Trial]:
    """Every trial for the plan ``base`` (its ``runs`` compacted): the removals, then the
    one-step relaxations of the constraints it meets exactly."""
    removed = _removals(pb, base, runs)
    steps = _steps(pb, base, runs)
    return removed + steps


REMOVED = "removed"
"""The ``relaxed`` value of a constraint taken out altogether."""


def _removals(pb: Problem, base: Solution, runs: list[tuple[int, int]]) -> list[Trial]:
    """Each constraint of the scenario taken out, one at a time."""
    sc = pb.scenario
    out: list[Trial] = []
    for caps, names, kind, key in (
        (pb.vendor_caps, pb.vendors, "vendor-cap", "vendor_caps"),
        (pb.cloud_caps, pb.clouds, "cloud-cap", "cloud_caps"),
    ):
        for v, kappa in caps.items():
            if kappa < 1.0:
                changed = {k: c for k, c in caps.items() if k != v}
                out.append((kind, names[v], f"{kappa:.0%}", REMOVED, pb.changed(**{key: changed})))
    if pb.min_vendors is not None and pb.min_vendors > 1:
        out.append(("min-vendors", "", str(pb.min_vendors), REMOVED, pb.changed(min_vendors=None)))
    if pb.power_cap_mw is not None:
        out.append(
            ("power", "", f"{pb.power_cap_mw:,.0f} MW", REMOVED, pb.changed(power_cap_mw=None))
        )
    if pb.budget_usd is not None and sc.objective != "min-cost":
        out.append(("budget", "", f"${pb.budget_usd:,.0f}", REMOVED, pb.changed(budget_usd=None)))
    for o in _full_offers(pb, runs, base.reserved_units, base.replicas):
        cap = pb.cap.copy()
        now = float(np.nanmax(np.where(np.isfinite(cap[o]), cap[o], np.nan)))
        cap[o] = np.inf
        out.append(("capacity", sc.offers[o].id, f"{now:,.0f} chips", REMOVED, pb.changed(cap=cap)))
    for _, j in _deadline_candidates(pb, runs):
        deadline = pb.deadline_h.copy()
        if deadline[j] >= sc.horizon_h - 1e-6:
            continue
        deadline[j] = sc.horizon_h
        due = sc.jobs[j].deadline or sc.end
        out.append(
            ("deadline", sc.jobs[j].name, str(due), REMOVED, pb.changed(deadline_h=deadline))
        )
    return out


def _steps(pb: Problem, base: Solution, runs: list[tuple[int, int]]) -> list[Trial]:
    """Each tight constraint relaxed by one step."""
    sc = pb.scenario
    opts = sc.solver
    out: list[Trial] = []
    for caps, names, kind in (
        (pb.vendor_caps, pb.vendors, "vendor-cap"),
        (pb.cloud_caps, pb.clouds, "cloud-cap"),
    ):
        for v, kappa in caps.items():
            # tried even when the share is below its cap: a job too big to fit under the cap
            # is kept off the vendor entirely
            if kappa < 1.0:
                new = min(1.0, kappa + opts.cap_step)
                changed = dict(caps) | {v: new}
                key = "vendor_caps" if kind == "vendor-cap" else "cloud_caps"
                out.append(
                    (kind, names[v], f"{kappa:.0%}", f"{new:.0%}", pb.changed(**{key: changed}))
                )
    if pb.min_vendors is not None and pb.min_vendors > 1:
        m = pb.min_vendors
        out.append(("min-vendors", "", str(m), str(m - 1), pb.changed(min_vendors=m - 1)))
    step = opts.capacity_step
    if pb.power_cap_mw is not None:
        peak = _peak_power(pb, runs, base.replicas)
        if peak >= pb.power_cap_mw * (1 - 1e-3):
            new = pb.power_cap_mw * (1 + step)
            out.append(
                (
                    "power",
                    "",
                    f"{pb.power_cap_mw:,.0f} MW",
                    f"{new:,.0f} MW",
                    pb.changed(power_cap_mw=new),
                )
            )
    spent = plan_cost(pb, base.chosen, base.reserved_units, base.replicas)
    if (
        pb.budget_usd is not None
        and sc.objective != "min-cost"
        and spent >= pb.budget_usd * (1 - 1e-3)
    ):
        new = pb.budget_usd * (1 + step)
        out.append(
            (
                "budget",
                "",
                f"${pb.budget_usd:,.0f}",
                f"${new:,.0f}",
                pb.changed(budget_usd=new),
            )
        )
    for o in _full_offers(pb, runs, base.reserved_units, base.replicas):
        cap = pb.cap.copy()
        now = float(np.nanmax(np.where(np.isfinite(cap[o]), cap[o], np.nan)))
        cap[o] = np.ceil(cap[o] * (1 + step))
        out.append(
            (
                "capacity",
                sc.offers[o].id,
                f"{now:,.0f} chips",
                f"{math.ceil(now * (1 + step)):,} chips",
                pb.changed(cap=cap),
            )
        )
    out.extend(_deadline_trials(pb, runs))
    return out


def _peak_power(pb: Problem, runs: list[tuple[int, int]], replicas: dict[int, int]) -> float:
    """The most power of the running chips in any period, MW: runs and serving replicas."""
    power: dict[int, float] = {}
    for p, s in runs:
        for t in range(s, s + pb.span(p, s)[2]):
            power[t] = power.get(t, 0.0) + float(pb.power_mw[p])
    z = pb.serving
    if z is not None:
        for i, n in replicas.items():
            t = int(z.period[i])
            power[t] = power.get(t, 0.0) + n * float(z.power_mw[i])
    return max(power.values(), default=0.0)


def _full_offers(
    pb: Problem, runs: list[tuple[int, int]], units: dict[int, int], replicas: dict[int, int]
) -> list[int]:
    """Offers whose cap is reached in some period: per-use runs and serving replicas, and
    the reserved chips (which serve or train in their term)."""
    used: dict[tuple[int, int], float] = {}
    for p, s in runs:
        for t in range(s, s + pb.span(p, s)[2]):
            key = (int(pb.offer[p]), t)
            if int(pb.tier_key[p]) < 0:
                used[key] = used.get(key, 0.0) + float(pb.chips[p])
    z = pb.serving
    if z is not None:
        for i, n in replicas.items():
            if int(z.tier_key[i]) < 0:
                key = (int(z.offer[i]), int(z.period[i]))
                used[key] = used.get(key, 0.0) + n * float(z.chips[i])
    for k, u in units.items():
        o, _, _, term_h = pb.reservations[k]
        held = float(u * pb.scenario.offers[o].chips_per_unit)
        last = pb.num_periods if not math.isfinite(term_h) else math.ceil(term_h / pb.period_h)
        for t in range(min(last, pb.num_periods)):
            used[(o, t)] = used.get((o, t), 0.0) + held
    full = set()
    for (o, t), total in used.items():
        cap = float(pb.cap[o, min(t, pb.cap.shape[1] - 1)])
        if math.isfinite(cap) and total >= cap - 1e-6:
            full.add(o)
    return sorted(full)


def _deadline_trials(pb: Problem, runs: list[tuple[int, int]]) -> list[Trial]:
    """Jobs whose deadline may bind: they run close to it, or on a dearer placement than
    their cheapest; the most expensive detours first."""
    sc = pb.scenario
    step_h = sc.solver.deadline_step_days * 24.0
    out = []
    for _, j in _deadline_candidates(pb, runs):
        pj = sc.jobs[j]
        deadline = pb.deadline_h.copy()
        deadline[j] += step_h
        due = pj.deadline or sc.end
        later = due + timedelta(days=sc.solver.deadline_step_days)
        out.append(("deadline", pj.name, str(due), str(later), pb.changed(deadline_h=deadline)))
    return out


def _deadline_candidates(pb: Problem, runs: list[tuple[int, int]]) -> list[tuple[float, int]]:
    """(detour $, job) of the jobs whose deadline may bind, the dearest detours first."""
    scored = []
    for p, s in runs:
        j = int(pb.job[p])
        end = pb.span(p, s)[1]
        close = pb.deadline_h[j] - end < pb.period_h
        detour = float(pb.usd_used[p]) - float(pb.usd_used[pb.job == j].min())
        if close or detour > 1e-6:
            scored.append((detour, j))
    return sorted(scored, reverse=True)
