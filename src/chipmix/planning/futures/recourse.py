"""The second stage: in one sampled future, the cheapest recovery of a first-stage plan.

Given the first stage (reserved units per offer and tier, and optionally one vendor the
plan is limited to) and a future (`sample.Future`), the recourse is the portfolio MILP of
`chipmix.planning.portfolio.formulation` on the future's problem, with

- the reservations fixed at the first stage's units (paid in full, whatever happens);
- every job free to move to any allowed placement (migration) and to top up on per-use
  tiers (on-demand, spot) at the future's prices and delivered capacity;
- deadlines hard, with the future's run times, delivery dates and outages: a job that
  cannot finish in time anywhere is missed, at a penalty of ``M`` (`penalty_usd`, by
  default ten times the deterministic plan's cost, so meeting deadlines comes first and
  cost second); a missed job is charged its cheapest placement at the future's prices
  (it runs late), so the cost distribution does not improve by missing;
- the plan's policies (budget, share caps, vendor minimum) left out: they shape the first
  stage, not the recovery; capacity, power and reservations hold;
- serving demand (a scenario's ``serving:``) held in every period as asked, its replicas
  on the future's capacity, per-use replicas at the future's prices (reserved ones at their
  contracted price, as runs) and a replica's output tokens ÷ its chip's performance factor
  (a performance source's run-time factor), and only for the share of its period its offer
  is delivered and not out (a replica down for part of a period counts for the tokens it
  serves over the period, not for its worst day); demand no offer can hold is left
  unserved at ``M`` per period.

The second stage sees its whole future at once (two-stage, not multi-stage: it overstates
how well a plan can react to news that arrives mid-run); a run is not split mid-way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

from chipmix.planning.futures.sample import Future
from chipmix.planning.portfolio.formulation import Model, build_model
from chipmix.planning.portfolio.problem import F64, USD, Problem
from chipmix.planning.portfolio.scenario import SolverOptions
from chipmix.planning.portfolio.serving import ServingColumns
from chipmix.planning.portfolio.solver import solve_model

__all__ = ["FirstStage", "Outcome", "future_problem", "recourse"]


@dataclass(frozen=True)
class FirstStage:
    """What is decided before the future is known: reserved units, and the vendor a
    single-vendor plan is held to."""

    name: str
    units: dict[int, int] = field(default_factory=dict)
    """Units per reservation key of the problem (`Problem.reservations`)."""
    vendor: str | None = None
    free: bool = False
    """Reservations left free (a wait-and-see solve: the best first stage for this future
    alone, used to propose candidates)."""

    def key(self) -> tuple[object, ...]:
        return (tuple(sorted(self.units.items())), self.vendor, self.free)


@dataclass(frozen=True)
class Outcome:
    """One first stage in one future."""

    future: int
    stage: str
    status: str
    cost_usd: float
    """Reservations (whole term) plus per-use runs at the future's prices; no penalty."""
    met: tuple[bool, ...]
    """Per job: finished by its deadline."""
    late_h: tuple[float, ...]
    offers: tuple[int, ...]
    """Per job: the offer it ran on (−1: unplaced)."""
    vendor_usd: tuple[float, ...]
    """Spend per vendor of the problem (`Problem.vendors`), runs and reservations."""
    units: dict[int, int]
    seconds: float
    unserved: float = 0.0
    """Serving demand left unserved: periods' shares of their demand, summed (charged at the
    cheapest replica that could serve it, like a missed job's run)."""

    @property
    def all_met(self) -> bool:
        return all(self.met)


def reserved_chips(pb: Problem, units: dict[int, int]) -> F64:
    """Chips reserved per offer and period (the first stage's guaranteed capacity)."""
    out = np.zeros_like(pb.cap)
    for k, u in units.items():
        o, _, _, term_h = pb.reservations[k]
        last = pb.num_periods if not math.isfinite(term_h) else math.ceil(term_h / pb.period_h)
        out[o, : min(last, pb.num_periods)] += u * pb.scenario.offers[o].chips_per_unit
    return out


def future_problem(pb: Problem, fut: Future, units: dict[int, int]) -> Problem:
    """The plan problem as it is in ``fut``, with ``units`` reserved."""
    price = np.where(pb.reserved, 1.0, fut.price_factor[pb.offer])
    reserved = np.minimum(reserved_chips(pb, units), pb.cap)
    finite = np.isfinite(pb.cap)
    phi = fut.capacity[:, None]
    cap = np.where(finite, reserved + phi * np.where(finite, pb.cap - reserved, 0.0), np.inf)
    return pb.changed(
        serving=_future_serving(pb, fut),
        duration_h=pb.duration_h * fut.time_factor,
        usd=pb.usd * fut.time_factor * price,
        usd_used=pb.usd_used * fut.time_factor * price,
        compute=pb.compute * fut.time_factor,
        cap=cap,
        budget_usd=None,
        vendor_caps={},
        cloud_caps={},
        min_vendors=None,
        max_end_h=None,
    )


def _future_serving(pb: Problem, fut: Future) -> ServingColumns | None:
    """The serving replicas as they are in ``fut``: per-use ones at its prices, each serving
    its output tokens ÷ its chip's run-time factor (whole replicas, so the bound on how many
    a period needs is recounted)."""
    z = pb.serving
    if z is None:
        return None
    price = np.where(z.tier_key < 0, fut.price_factor[z.offer], 1.0)
    per_day = _nominal_rate(pb, fut) * _uptime(pb, fut)
    down = per_day <= 0.0
    with np.errstate(divide="ignore"):
        upper = np.where(down, 0.0, np.ceil(z.demand[z.entry, z.period] / per_day - 1e-9))
    return replace(
        z, usd=z.usd * price, usd_used=z.usd_used * price, tokens_per_day=per_day, upper=upper
    )


def _nominal_rate(pb: Problem, fut: Future) -> F64:
    """Output tokens a day of each replica column in ``fut`` were its offer up."""
    z = pb.serving
    assert z is not None
    offers = pb.scenario.offers
    slow = np.array([fut.perf.get(offers[o].chip, 1.0) for o in z.offer.tolist()], dtype=float)
    rate: F64 = z.tokens_per_day / slow.reshape(z.tokens_per_day.shape)
    return rate


def _uptime(pb: Problem, fut: Future) -> F64:
    """Per replica column: the share of its period its offer is delivered and not out in
    ``fut`` (1 when nothing happens to the offer, 0 when it is down the whole period)."""
    z = pb.serving
    assert z is not None
    start = z.period * pb.period_h
    end = start + z.hours[z.period]
    up_from = np.maximum(start, fut.delay_h[z.offer])
    up = np.clip(end - up_from, 0.0, None)
    for o, begin, hours in fut.outages:
        lost = np.clip(np.minimum(end, begin + hours) - np.maximum(up_from, begin), 0.0, None)
        up = np.where(z.offer == o, up - lost, up)
    share: F64 = np.clip(up / np.maximum(end - start, 1e-9), 0.0, 1.0)
    return share


def _banned(fpb: Problem, model: Model, fut: Future, vendor: int | None) -> NDArray[np.bool_]:
    """Columns the future rules out: before a delivery, across an outage, other vendors."""
    cols = model.cols
    start_h = np.maximum(cols.s * fpb.period_h, fpb.release_h[fpb.job[cols.p]])
    offer = fpb.offer[cols.p]
    ban: NDArray[np.bool_] = start_h < fut.delay_h[offer] - 1e-9
    for o, begin, hours in fut.outages:
        ban |= (offer == o) & (start_h < begin + hours) & (cols.end_h > begin)
    if vendor is not None:
        ban |= fpb.vendor[cols.p] != vendor
    return ban


def recourse(
    pb: Problem,
    fut: Future,
    stage: FirstStage,
    penalty_usd: float,
    time_limit_s: float | None = None,
) -> Outcome:
    """Solve the second stage of ``stage`` in ``fut`` with HiGHS."""
    fpb = future_problem(pb, fut, {} if stage.free else stage.units)
    fpb = fpb.changed(scenario=replace(fpb.scenario, solver=_recourse_options(fpb)))
    serves = fpb.serving is not None
    model = build_model(fpb, "cost", frozenset({"serving"} if serves else ()), {})
    for sl in model.slacks:  # unserved demand: a period's whole demand costs M
        model.cost[sl.col] = penalty_usd * USD
    cols = model.cols
    nx = len(cols.p)
    vendor = None if stage.vendor is None else pb.vendors.index(stage.vendor)
    model.upper[:nx] = np.where(_banned(fpb, model, fut, vendor), 0.0, model.upper[:nx])
    z = fpb.serving
    if z is not None and vendor is not None:
        other = np.flatnonzero(z.vendor != vendor)
        model.upper[model.z0 + other] = 0.0
    nr = len(pb.reservations)
    for k in range(nr):
        col = model.r0 + k
        if stage.free:
            if vendor is not None and _vendor(pb, k) != vendor:
                model.upper[col] = 0.0
            continue
        model.lower[col] = model.upper[col] = float(stage.units.get(k, 0))
    _unplaced_columns(model, len(pb.required), penalty_usd * USD)
    sol = solve_model(fpb, model, "cost", time_limit_s=time_limit_s)
    out = _outcome(
        pb, fpb, fut, stage, sol.status, sol.chosen, sol.reserved_units, sol.seconds, sol.replicas
    )
    short = sol.slack.get("serving", [])
    if not short or fpb.serving is None:
        return out
    z, usd = fpb.serving, list(out.vendor_usd)
    # Charged at the cheapest replica for that period's demand, at its rate when up (served
    # late, as a missed run is charged its cheapest placement).
    rate = np.where(z.tokens_per_day > 0, z.tokens_per_day, _nominal_rate(pb, fut))
    for (e, t), share in short:
        here = np.flatnonzero((z.entry == e) & (z.period == t))
        if len(here):
            i = here[np.argmin(z.usd_used[here] / rate[here])]
            asked = float(z.demand[e, t])
            usd[z.vendor[i]] += share * asked / float(rate[i]) * float(z.usd_used[i])
    unserved = float(sum(share for _, share in short))
    return replace(out, cost_usd=float(sum(usd)), vendor_usd=tuple(usd), unserved=unserved)


RECOURSE_GAP = 1e-3
"""Relative MIP gap of a recourse solve (0.1 %: far below the futures' spread)."""


def _recourse_options(pb: Problem) -> SolverOptions:
    opts = pb.scenario.solver
    return opts.model_copy(update={"gap": max(opts.gap, RECOURSE_GAP)})


def _vendor(pb: Problem, k: int) -> int:
    """The vendor of reservation ``k``'s offer."""
    return pb.vendors.index(pb.scenario.offers[pb.reservations[k][0]].vendor)


def _unplaced_columns(model: Model, jobs: int, cost: float) -> None:
    """One column per job: left unplaced, at ``cost`` ($M) — always a way out."""
    first = model.num_cols
    for j in range(jobs):  # the assignment rows are the model's first rows, one per job
        model.matrix.entries(j, [first + j], 1.0)
    model.num_cols += jobs
    model.cost = np.concatenate([model.cost, np.full(jobs, cost)])
    model.lower = np.concatenate([model.lower, np.zeros(jobs)])
    model.upper = np.concatenate([model.upper, np.ones(jobs)])
    model.integer = np.concatenate([model.integer, np.zeros(jobs, dtype=np.bool_)])


def _outcome(
    pb: Problem,
    fpb: Problem,
    fut: Future,
    stage: FirstStage,
    status: str,
    chosen: list[tuple[int, int]],
    units: dict[int, int],
    seconds: float,
    replicas: dict[int, int] | None = None,
) -> Outcome:
    jobs = len(pb.required)
    late = [math.inf] * jobs
    offers = [-1] * jobs
    vendor_usd = np.zeros(len(pb.vendors))
    if status not in ("optimal", "feasible"):
        chosen = []
    for p, s in chosen:
        j = int(pb.job[p])
        _, end_h, _ = fpb.span(p, s)
        late[j] = max(0.0, end_h - float(fpb.deadline_h[j]))
        offers[j] = int(pb.offer[p])
        vendor_usd[pb.vendor[p]] += float(fpb.usd[p])
    vendor = None if stage.vendor is None else pb.vendors.index(stage.vendor)
    for j in range(jobs):
        if offers[j] < 0:  # missed: it runs late on its cheapest placement
            mine = pb.job == j
            if vendor is not None:
                mine &= pb.vendor == vendor
            idx = np.flatnonzero(mine)
            if len(idx):
                p = int(idx[np.argmin(fpb.usd_used[idx])])
                vendor_usd[pb.vendor[p]] += float(fpb.usd_used[p])
    if not stage.free:
        units = stage.units
    for k, u in units.items():
        vendor_usd[_vendor(pb, k)] += pb.reservations[k][2] * u
    z = fpb.serving
    if z is not None and status in ("optimal", "feasible"):
        for i, n in (replicas or {}).items():
            vendor_usd[z.vendor[i]] += n * float(z.usd[i])
    return Outcome(
        future=fut.index,
        stage=stage.name,
        status=status,
        cost_usd=float(vendor_usd.sum()),
        met=tuple(x <= 1e-6 for x in late),
        late_h=tuple(late),
        offers=tuple(offers),
        vendor_usd=tuple(float(v) for v in vendor_usd),
        units=dict(units),
        seconds=seconds,
    )
