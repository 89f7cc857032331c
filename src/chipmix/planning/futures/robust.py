"""The robust plan: first-stage reservations chosen over sampled futures (SAA, chance-constrained).

Formulation (sample-average approximation of a two-stage stochastic MILP)
-------------------------------------------------------------------------

Sets
    Ω            N sampled futures ω, each of weight 1/N (`sample`)
    J, P_j, T    jobs, their placements, periods (as in `chipmix.planning.portfolio.formulation`)
    K            reservation keys: (offer o, reserved tier k) pairs some placement uses
    S^ω_p        start periods of p in ω: the window with ω's run time d_p·τ^ω_p, no start
                 before the vendor's delivery δ^ω_o, no run across an outage of o

Variables
    r_k ∈ ℤ≥0                   first stage: units reserved of key k (whole term paid, F_k each)
    x^ω_{p,s} ∈ {0,1}           second stage: p runs from period s in ω (migration: any offer)
    m^ω_j ∈ [0,1]               job j missed in ω
    z^ω ∈ {0,1}                 every deadline met in ω

Objective
    min  Σ_k F_k r_k + (1/N) Σ_ω [ Σ_{p,s} c_p π^ω_{o_p} τ^ω_p x^ω_{p,s} + M Σ_j m^ω_j ]
         (c_p the per-use cost, π^ω the price factor of its offer family, M the miss penalty)

Constraints, for every ω
    (1) assignment   Σ_{p∈P_j, s∈S^ω_p} x^ω_{p,s} + m^ω_j = 1                  ∀ j
    (2) capacity     Σ_{per-use p on o} a_{p,s,t} n_p x^ω_{p,s}
                        ≤ φ^ω_o (cap_{o,t} − Σ_k u_o r_{o,k})                  ∀ o, t
                     (φ^ω_o the delivered fraction: reserved chips are delivered)
    (3) reservation  Σ_{p on (o,k)} a_{p,s,t} n_p x^ω_{p,s} ≤ u_o r_{o,k}      ∀ o, k, t
    (4) windows      in S^ω_p (deadlines hard; a late job is a missed one)
    (5) power        Σ a_{p,s,t} w_p x^ω_{p,s} ≤ W                              ∀ t
and across them
    (6) reliability  z^ω ≤ 1 − m^ω_j ∀ j, ω;  (1/N) Σ_ω z^ω ≥ α'
                     α' = max(α, P_det): the target, and never less reliable than the
                     deterministic plan (when no r reaches α', the most reliable r)

The policies (budget, share caps, vendor minimum) shape the deterministic plan; the
recovery in a future ignores them (`recourse`).

How it is solved
----------------
The extensive form holds N copies of the plan MILP (N = 200: ~200 × 900 columns) joined by
r. Given r the copies are independent, so it is solved by candidate first stages: R holds
the deterministic plan's r, no reservation at all, and per key the median, p75 and maximum
of the wait-and-see first stages r*(ω) (each the best r for one future alone, solved with r
free) of the first `WAIT_AND_SEE` futures — or, when the grid 0 … max r*(ω) per key holds at
most `GRID_LIMIT` points, the whole grid. Every r ∈ R is evaluated in every future by the
recourse MILP (HiGHS; the Ray tasks), and the r chosen is the cheapest in expectation
subject to (6). The answer is exact over R (over the grid, exact within it).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np

from chipmix.planning.futures.recourse import FirstStage, Outcome

__all__ = ["GRID_LIMIT", "WAIT_AND_SEE", "choose", "propose", "summarize"]

WAIT_AND_SEE = 8
"""Futures solved with the reservations free, to propose first stages."""
GRID_LIMIT = 16
"""Largest grid of reservation vectors evaluated whole."""


def propose(
    deterministic: dict[int, int],
    wait_and_see: Sequence[Outcome],
    keys: int,
    label: Callable[[dict[int, int]], str] | None = None,
) -> list[FirstStage]:
    """The candidate first stages R (deterministic first, then no reservation); ``label``
    names a grid point's reservations."""
    label = label or _label
    out = [FirstStage("deterministic", dict(deterministic)), FirstStage("no-reservation", {})]
    if keys == 0 or not wait_and_see:
        return _unique(out)
    best = np.array([[o.units.get(k, 0) for k in range(keys)] for o in wait_and_see])
    top = np.maximum(best.max(axis=0), [deterministic.get(k, 0) for k in range(keys)])
    steps = [_steps(int(t)) for t in top]
    if np.prod([len(s) for s in steps]) <= GRID_LIMIT:
        for combo in itertools.product(*steps):
            units = {k: u for k, u in enumerate(combo) if u}
            out.append(FirstStage("reserve " + label(units), units))
        return _unique(out)
    for name, q in (("median", 50), ("p75", 75), ("max", 100)):
        level = np.percentile(best, q, axis=0, method="higher").astype(int)
        units = {k: int(u) for k, u in enumerate(level) if u}
        out.append(FirstStage(f"wait-and-see {name}", units))
    return _unique(out)


def _steps(top: int) -> list[int]:
    return list(range(top + 1))


def _label(units: dict[int, int]) -> str:
    return ",".join(f"k{k}={u}" for k, u in sorted(units.items())) or "none"


def _unique(stages: list[FirstStage]) -> list[FirstStage]:
    seen: set[tuple[object, ...]] = set()
    out = []
    for st in stages:
        if st.key() not in seen:
            seen.add(st.key())
            out.append(st)
    return out


def summarize(outcomes: Sequence[Outcome]) -> tuple[float, float]:
    """(P(every deadline met), expected cost $) of one first stage over the futures."""
    met = float(np.mean([o.all_met for o in outcomes])) if outcomes else 0.0
    cost = float(np.mean([o.cost_usd for o in outcomes])) if outcomes else float("nan")
    return met, cost


def choose(by_stage: dict[str, list[Outcome]], target: float, baseline: str) -> str:
    """The first stage of (6): the least expected cost with P(all met) ≥ max(target,
    P(baseline)); if none reaches it, the most reliable (then the cheapest)."""
    stats = {name: summarize(outs) for name, outs in by_stage.items()}
    need = max(target, stats[baseline][0]) - 1e-12
    ok = [name for name, (p, _) in stats.items() if p >= need]
    if ok:
        return min(ok, key=lambda n: (stats[n][1], n))
    return min(stats, key=lambda n: (-stats[n][0], stats[n][1], n))
