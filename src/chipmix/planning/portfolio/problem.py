"""The scenario as arrays (`Problem`) and the start options of every placement (`Columns`).

One entry per placement, per offer, per period: what the MILP (`formulation`), the
solver (`solver`) and the plan editor (`occupancy`) all read. The sets and symbols are
those of the formulation in `chipmix.planning.portfolio.formulation`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from chipmix.catalog.offer import PriceTier
from chipmix.planning.portfolio.placements import Candidates
from chipmix.planning.portfolio.scenario import Scenario
from chipmix.planning.portfolio.serving import ServingColumns, serving_columns

__all__ = [
    "ELASTIC_GROUPS",
    "F64",
    "I64",
    "USD",
    "Columns",
    "Goal",
    "Problem",
    "cap_row",
    "distinct",
    "ramp",
    "start_columns",
]

Goal = Literal["cost", "makespan", "tokens", "violation"]
ELASTIC_GROUPS = (
    "capacity",
    "deadlines",
    "budget",
    "vendor-caps",
    "cloud-caps",
    "vendors",
    "power",
    "serving",
)
"""The constraint groups the elastic form can relax."""
USD = 1e-6
"""The model counts money in millions of dollars (keeps its coefficients near 1)."""

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


@dataclass(frozen=True)
class Problem:
    """The scenario as arrays: one entry per placement, per offer, per period."""

    scenario: Scenario
    candidates: Candidates
    period_h: float
    num_periods: int
    # per placement p
    job: I64
    offer: I64
    chips: F64
    duration_h: F64
    usd: F64
    """Per-use cost ($); 0 for reserved tiers (the reservation is paid instead)."""
    usd_used: F64
    """chip-hours × $/chip-hour for every tier (a reserved run's share of its reservation)."""
    compute: F64
    power_mw: F64
    reserved: NDArray[np.bool_]
    tier_key: I64
    """Index into `reservations` for reserved placements, -1 otherwise."""
    vendor: I64
    cloud: I64
    # per job
    release_h: F64
    """Hours from the horizon's start to the job's release."""
    deadline_h: F64
    required: NDArray[np.bool_]
    value: F64
    """priority × tokens: what max-tokens maximizes."""
    # per offer and period
    cap: F64
    """cap[o, t] in chips (inf: no cap) for the periods of the horizon; past it (elastic
    deadlines), the last period's."""
    reservations: list[tuple[int, str, float, float]] = field(default_factory=list)
    """(offer, tier, $ per unit for the term, term hours) of every reserved tier in use."""
    vendors: list[str] = field(default_factory=list)
    clouds: list[str] = field(default_factory=list)
    # constraint data (changed by the sensitivity analysis)
    budget_usd: float | None = None
    vendor_caps: dict[int, float] = field(default_factory=dict)
    cloud_caps: dict[int, float] = field(default_factory=dict)
    cap_basis: str = "spend"
    min_vendors: int | None = None
    power_cap_mw: float | None = None
    max_end_h: float | None = None
    """Every run ends by then (the Pareto front's ε-constraint)."""
    serving: ServingColumns | None = None
    """The replica columns of the scenario's serving demand (None: no serving)."""

    @staticmethod
    def of(scenario: Scenario, candidates: Candidates, cap: F64 | None = None) -> Problem:
        """The arrays of ``scenario``'s ``candidates``; ``cap``: the offers' caps when known
        (`Problem.cap` of a scenario with the same offers and horizon)."""
        ps = candidates.placements
        offers = scenario.offers
        vendors = sorted({o.vendor for o in offers})
        clouds = sorted({o.cloud for o in offers})
        reservations: list[tuple[int, str, float, float]] = []
        key_of: dict[tuple[int, str], int] = {}
        uses: list[tuple[bool, int, PriceTier]] = [(p.reserved, p.offer, p.tier) for p in ps]
        uses += [(g.reserved, g.offer, g.tier) for g in candidates.serving]
        for reserved, offer_index, tier in uses:
            if reserved and (offer_index, tier) not in key_of:
                offer = offers[offer_index]
                term_h = offer.term_days.get(tier, math.inf) * 24.0
                billed = term_h if math.isfinite(term_h) else scenario.horizon_h
                per_unit = offer.chips_per_unit * offer.usd_per_chip_hour[tier] * billed
                key_of[(offer_index, tier)] = len(reservations)
                reservations.append((offer_index, tier, per_unit, term_h))
        jobs = scenario.jobs
        periods = scenario.num_periods
        c = scenario.constraints
        cap = _caps(scenario) if cap is None else cap
        serving = None
        if candidates.serving:
            terms = {ot: (k, reservations[k][3]) for ot, k in key_of.items()}
            serving = serving_columns(scenario, candidates.serving, terms, vendors, clouds, cap)
        return Problem(
            scenario=scenario,
            candidates=candidates,
            period_h=scenario.period_h,
            num_periods=periods,
            job=np.array([p.job for p in ps], dtype=np.int64),
            offer=np.array([p.offer for p in ps], dtype=np.int64),
            chips=np.array([p.chips for p in ps], dtype=np.float64),
            duration_h=np.array([p.duration_h for p in ps], dtype=np.float64),
            usd=np.array([0.0 if p.reserved else p.usd for p in ps], dtype=np.float64),
            usd_used=np.array([p.usd for p in ps], dtype=np.float64),
            compute=np.array([p.h100_hours for p in ps], dtype=np.float64),
            power_mw=np.array([p.power_mw for p in ps], dtype=np.float64),
            reserved=np.array([p.reserved for p in ps], dtype=np.bool_),
            tier_key=np.array([key_of.get((p.offer, p.tier), -1) for p in ps], dtype=np.int64),
            vendor=np.array([vendors.index(offers[p.offer].vendor) for p in ps], dtype=np.int64),
            cloud=np.array([clouds.index(offers[p.offer].cloud) for p in ps], dtype=np.int64),
            release_h=np.array([scenario.release_h(j) for j in jobs], dtype=np.float64),
            deadline_h=np.array([scenario.deadline_h(j) for j in jobs], dtype=np.float64),
            required=np.array([j.required for j in jobs], dtype=np.bool_),
            value=np.array([j.priority * j.tokens for j in jobs], dtype=np.float64),
            cap=cap,
            reservations=reservations,
            vendors=vendors,
            clouds=clouds,
            budget_usd=c.budget_usd,
            vendor_caps={vendors.index(v): k for v, k in c.vendor_caps.items() if v in vendors},
            cloud_caps={clouds.index(v): k for v, k in c.cloud_caps.items() if v in clouds},
            cap_basis=c.cap_basis,
            min_vendors=c.min_vendors,
            power_cap_mw=c.power_cap_mw,
            serving=serving,
        )

    def shares(
        self, chosen: list[tuple[int, int]], by: str, replicas: dict[int, int] | None = None
    ) -> tuple[F64, F64]:
        """Spend on the work ($, ĉ_p) and compute (H100-eq chip-hours) per vendor
        (``by="vendor"``, indexed like `vendors`) or per cloud (like `clouds`), serving
        replicas included."""
        owner = self.vendor if by == "vendor" else self.cloud
        size = len(self.vendors) if by == "vendor" else len(self.clouds)
        spend = np.zeros(size)
        compute = np.zeros(size)
        for p, _ in chosen:
            spend[owner[p]] += self.usd_used[p]
            compute[owner[p]] += self.compute[p]
        z = self.serving
        if z is not None and replicas:
            serve_owner = z.vendor if by == "vendor" else z.cloud
            for i, n in replicas.items():
                spend[serve_owner[i]] += n * z.usd_used[i]
                compute[serve_owner[i]] += n * z.compute[i]
        return spend, compute

    def serving_usd(self, replicas: dict[int, int] | None) -> float:
        """Per-use cost of the serving replicas, $."""
        z = self.serving
        if z is None or not replicas:
            return 0.0
        return float(sum(n * z.usd[i] for i, n in replicas.items()))

    def changed(self, **changes: Any) -> Problem:
        return replace(self, **changes)

    @property
    def num_placements(self) -> int:
        return len(self.job)

    @property
    def release_period(self) -> I64:
        """The period each job's release falls in (its first possible start period)."""
        return np.floor(self.release_h / self.period_h + 1e-9).astype(np.int64)

    def span(self, p: int, s: int) -> tuple[float, float, int]:
        """(start h, end h, periods held) of placement p started in period s: it starts at
        the period's start or at the job's release, whichever is later."""
        start = max(s * self.period_h, float(self.release_h[self.job[p]]))
        end = start + float(self.duration_h[p])
        return start, end, max(1, math.ceil(end / self.period_h - 1e-9) - s)


def _caps(scenario: Scenario) -> F64:
    """cap[o, t] for every period of the horizon."""
    periods = scenario.num_periods
    out = np.full((len(scenario.offers), periods), np.inf)
    for o, offer in enumerate(scenario.offers):
        for t in range(periods):
            first = scenario.day_at(t * scenario.period_h)
            last = scenario.day_at(min((t + 1) * scenario.period_h, scenario.horizon_h) - 1e-6)
            cap = offer.chips_between(first, last)
            out[o, t] = np.inf if cap is None else float(cap)
    return out


def cap_row(pb: Problem, o: int, periods: int) -> F64:
    """cap[o, 0 … periods−1], the last period's cap repeated past the horizon."""
    row: F64 = pb.cap[o]
    if periods <= len(row):
        return row[:periods]
    return np.concatenate([row, np.full(periods - len(row), row[-1])])


# -- columns ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Columns:
    """The x_{p,s} columns: placement, start period, periods held, lateness."""

    p: I64
    s: I64
    length: I64
    late_h: F64
    end_h: F64


def start_columns(pb: Problem, elastic: frozenset[str]) -> Columns:
    n = pb.num_placements
    T = pb.num_periods
    whole = np.maximum(1, np.ceil(pb.duration_h / pb.period_h - 1e-9)).astype(np.int64)
    s_lo = pb.release_period[pb.job]
    horizon = T + (int(whole.max()) + 1 if "deadlines" in elastic and n else 0)
    s_hi = np.full(n, horizon, dtype=np.int64) - whole
    deadline = pb.deadline_h[pb.job]
    if "deadlines" not in elastic:  # (4) windows
        s_hi = np.minimum(s_hi, np.floor((deadline - pb.duration_h) / pb.period_h + 1e-9))
    if pb.max_end_h is not None:
        s_hi = np.minimum(s_hi, np.floor((pb.max_end_h - pb.duration_h) / pb.period_h + 1e-9))
    for key, (_, _, _, term_h) in enumerate(pb.reservations):
        if math.isfinite(term_h):
            sel = pb.tier_key == key
            s_hi[sel] = np.minimum(
                s_hi[sel], np.floor((term_h - pb.duration_h[sel]) / pb.period_h + 1e-9)
            )
    s_hi = s_hi.astype(np.int64)
    counts = np.maximum(0, s_hi - s_lo + 1)
    p = np.repeat(np.arange(n, dtype=np.int64), counts)
    s = s_lo[p] + ramp(counts)
    start_h = np.maximum(s * pb.period_h, pb.release_h[pb.job[p]])
    end_h = start_h + pb.duration_h[p]
    length = np.maximum(1, np.ceil(end_h / pb.period_h - 1e-9).astype(np.int64) - s)
    keep = s + length <= horizon
    if "deadlines" not in elastic:
        keep &= end_h <= deadline[p] + 1e-6
    if pb.max_end_h is not None:
        keep &= end_h <= pb.max_end_h + 1e-6
    for key, (_, _, _, term_h) in enumerate(pb.reservations):
        if math.isfinite(term_h):
            keep &= (pb.tier_key[p] != key) | (end_h <= term_h + 1e-6)
    if "capacity" not in elastic:  # drop starts that could never fit the cap
        keep &= _fits_caps(pb, p, s, length)
    if pb.power_cap_mw is not None and "power" not in elastic:
        keep &= pb.power_mw[p] <= pb.power_cap_mw + 1e-9
    p, s, length, end_h = p[keep], s[keep], length[keep], end_h[keep]
    late_h = np.maximum(0.0, end_h - deadline[p])
    return Columns(p=p, s=s, length=length, late_h=late_h, end_h=end_h)


def distinct(*arrays: I64) -> I64:
    """The distinct values of the arrays, ascending (as ``np.union1d``, whose ``np.unique``
    imports ``numpy.ma`` on first use: ~6 ms of a plan's start)."""
    a = np.sort(np.concatenate([np.asarray(x, dtype=np.int64).ravel() for x in arrays]))
    if len(a) < 2:
        return a
    keep = np.empty(len(a), dtype=np.bool_)
    keep[0] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    return a[keep]


def ramp(counts: I64) -> I64:
    """0, 1, …, c−1 for each count c, concatenated."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.cumsum(counts) - counts
    return np.arange(total, dtype=np.int64) - np.repeat(starts, counts)


def _fits_caps(pb: Problem, p: I64, s: I64, length: I64) -> NDArray[np.bool_]:
    """n_p ≤ cap_{o,t} in every period the run holds."""
    ok = np.ones(len(p), dtype=np.bool_)
    o = pb.offer[p]
    n = pb.chips[p]
    if not len(p):
        return ok
    periods = int((s + length).max())
    capped = np.asarray(np.isfinite(pb.cap).any(axis=1), dtype=np.bool_)
    sizes = n.astype(np.int64)
    pair = o * (int(sizes.max()) + 1) + sizes  # (offer, chips), ordered as the pairs
    for key in distinct(pair[capped[o]]).tolist():
        sel = np.flatnonzero(pair == key)
        row = cap_row(pb, int(o[sel[0]]), periods)
        bad = np.concatenate([[0], np.cumsum(row < n[sel[0]])])
        ok[sel] = bad[s[sel] + length[sel]] - bad[s[sel]] == 0
    return ok
