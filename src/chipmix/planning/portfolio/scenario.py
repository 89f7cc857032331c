"""Planning scenarios: the YAML file a user writes, validated, and the resolved `Scenario`.

A scenario names the jobs to run, the offers to rent them from and the constraints; the
file format, with an example, is documented in `chipmix.planning.portfolio.schema`; it is
read by `chipmix.planning.portfolio.scenario_file` and resolved against the catalog by
`chipmix.planning.portfolio.resolve`.

Dates are days: a job may start at 00:00 of its ``start`` and must finish by the end of its
``deadline`` day. Every error names the file, the line and the key; unknown names (offers,
systems, chips, models, vendors, stacks) raise `UnknownNameError` with a "did you mean".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from chipmix.catalog.offer import PriceTier
from chipmix.catalog.system import ResolvedSystem
from chipmix.errors import UnknownNameError
from chipmix.planning.futures.sources import FuturesSpec
from chipmix.planning.portfolio.schema import (
    OBJECTIVES,
    CapBasis,
    Objective,
    SolverOptions,
)
from chipmix.workload.job import Job

if TYPE_CHECKING:  # the serving model is imported when a scenario serves (`resolve`)
    from chipmix.serve.job import ServeJob

__all__ = [
    "DEFAULT_TERM_DAYS",
    "HOURS_PER_DAY",
    "OBJECTIVES",
    "PER_USE_TIERS",
    "RESERVED_TIERS",
    "CapBasis",
    "Constraints",
    "Objective",
    "PlanJob",
    "PlanOffer",
    "PlanServing",
    "Scenario",
    "SolverOptions",
]

PER_USE_TIERS: tuple[PriceTier, ...] = ("on-demand", "spot")
"""Tiers paid per chip-hour used."""
RESERVED_TIERS: tuple[PriceTier, ...] = ("committed-1y", "committed-3y", "owned")
"""Tiers paid per chip reserved, for every hour of the term, used or not."""
DEFAULT_TERM_DAYS: dict[PriceTier, float] = {"committed-1y": 365.0, "committed-3y": 3 * 365.0}
"""Commitment terms; ``owned`` hardware is paid over the whole horizon."""
HOURS_PER_DAY = 24.0


# -- the resolved scenario ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PlanOffer:
    """One pool of chips the plan may rent: a catalog or user offer with its options."""

    id: str
    system: ResolvedSystem
    cloud: str
    region: str
    chips_per_unit: int
    usd_per_chip_hour: dict[PriceTier, float]
    """Per chosen tier, after the discount."""
    list_usd_per_chip_hour: dict[PriceTier, float]
    """Per chosen tier, as listed."""
    max_chips: int | None
    capacity: tuple[tuple[date, int], ...] = ()
    """Cap schedule (day, chips), ascending; overrides ``max_chips`` from its first day."""
    available_from: date | None = None
    available_to: date | None = None
    term_days: dict[PriceTier, float] = field(default_factory=dict)
    source: str = ""
    inline: bool = False
    price_flags: dict[PriceTier, str] = field(default_factory=dict)
    """Per tier, ``estimated`` or ``unverified`` where the catalog price is not a listed one."""

    @property
    def vendor(self) -> str:
        return self.system.chip.vendor

    @property
    def chip(self) -> str:
        return self.system.chip.id

    @property
    def tiers(self) -> tuple[PriceTier, ...]:
        return tuple(self.usd_per_chip_hour)

    def chips_on(self, day: date) -> int | None:
        """Chips the offer holds on ``day`` (None: no cap)."""
        if self.available_from is not None and day < self.available_from:
            return 0
        if self.available_to is not None and day > self.available_to:
            return 0
        held = self.max_chips
        for since, chips in self.capacity:
            if day >= since:
                held = chips
        return held

    def chips_between(self, first: date, last: date) -> int | None:
        """The smallest cap on any day of [first, last] (None: no cap)."""
        days = {first, last}
        for since, _ in self.capacity:
            if first <= since <= last:
                days.add(since)
        for edge in (self.available_from, self.available_to):
            if edge is not None:
                for d in (edge - timedelta(days=1), edge, edge + timedelta(days=1)):
                    if first <= d <= last:
                        days.add(d)
        caps = [c for d in days if (c := self.chips_on(d)) is not None]
        return min(caps) if caps else None


@dataclass(frozen=True, slots=True)
class PlanJob:
    """One job of the scenario, with its window and the offers it may use."""

    name: str
    job: Job
    """The model and shape, ``tokens`` set."""
    release: date
    deadline: date | None
    priority: float
    required: bool
    offers: tuple[str, ...]
    """Scenario offer ids the job may run on."""
    chip_counts: tuple[int, ...] | None = None

    @property
    def tokens(self) -> float:
        assert self.job.tokens is not None
        return self.job.tokens


@dataclass(frozen=True, slots=True)
class PlanServing:
    """One serving demand of the scenario: output tokens a day over time, under p99
    latency targets, on the offers it may use."""

    name: str
    job: ServeJob
    demand: tuple[tuple[date, float], ...]
    """(from day, output tokens a day) steps, ascending; none before the first."""
    start: date
    end: date
    """Served from ``start`` to the end of ``end`` (inclusive)."""
    ttft_p99_ms: float | None
    tpot_p99_ms: float | None
    offers: tuple[str, ...]
    search_chips: int = 64

    def tokens_per_day(self, first: date, last: date) -> float:
        """The most output tokens a day asked on any served day of [first, last]."""
        lo, hi = max(first, self.start), min(last, self.end)
        if lo > hi:
            return 0.0
        most = 0.0
        for i, (since, value) in enumerate(self.demand):
            until = self.demand[i + 1][0] - timedelta(days=1) if i + 1 < len(self.demand) else hi
            if since <= hi and until >= lo:
                most = max(most, value)
        return most

    def tokens_between(self, first: date, last: date) -> float:
        """Output tokens asked over the served days of [first, last] (whole days)."""
        lo, hi = max(first, self.start), min(last, self.end)
        total = 0.0
        for i, (since, value) in enumerate(self.demand):
            until = self.demand[i + 1][0] - timedelta(days=1) if i + 1 < len(self.demand) else hi
            a, b = max(lo, since), min(hi, until)
            if a <= b:
                total += value * ((b - a).days + 1)
        return total

    def slo(self) -> str:
        parts = [f"p99 TTFT ≤ {self.ttft_p99_ms:g} ms"] if self.ttft_p99_ms else []
        parts += [f"p99 TPOT ≤ {self.tpot_p99_ms:g} ms"] if self.tpot_p99_ms else []
        return ", ".join(parts) or "no latency target"


@dataclass(frozen=True, slots=True)
class Constraints:
    """The scenario's constraints (None / empty: not constrained)."""

    budget_usd: float | None = None
    vendor_caps: dict[str, float] = field(default_factory=dict)
    cloud_caps: dict[str, float] = field(default_factory=dict)
    cap_basis: CapBasis = "spend"
    min_vendors: int | None = None
    power_cap_mw: float | None = None


@dataclass(frozen=True, slots=True)
class Scenario:
    """A validated scenario, every name resolved against the catalog."""

    name: str
    start: date
    end: date
    """Last day of the horizon (inclusive)."""
    objective: Objective
    offers: tuple[PlanOffer, ...]
    jobs: tuple[PlanJob, ...]
    constraints: Constraints
    solver: SolverOptions
    description: str = ""
    origin: str = "<scenario>"
    futures: FuturesSpec | None = None
    """The scenario's uncertainty sources (None: the model's own error only)."""
    serving: tuple[PlanServing, ...] = ()
    """Serving demand planned beside the jobs (`chipmix.planning.portfolio.serving`)."""

    # -- time: hours from the start of the horizon ---------------------------------------
    @property
    def horizon_h(self) -> float:
        return ((self.end - self.start).days + 1) * HOURS_PER_DAY

    @property
    def period_h(self) -> float:
        return self.solver.period_days * HOURS_PER_DAY

    @property
    def num_periods(self) -> int:
        return max(1, math.ceil(self.horizon_h / self.period_h - 1e-9))

    def hour_of(self, day: date) -> float:
        """Hours from the start of the horizon to 00:00 of ``day``."""
        return (day - self.start).days * HOURS_PER_DAY

    def release_h(self, job: PlanJob) -> float:
        return self.hour_of(job.release)

    def deadline_h(self, job: PlanJob) -> float:
        """The end of the job's deadline day, or of the horizon."""
        day = job.deadline if job.deadline is not None else self.end
        return self.hour_of(day) + HOURS_PER_DAY

    def day_at(self, hours: float) -> date:
        return self.start + timedelta(hours=hours)

    def offer(self, offer_id: str) -> PlanOffer:
        for o in self.offers:
            if o.id == offer_id:
                return o
        raise UnknownNameError("offer", offer_id, [o.id for o in self.offers])

    @property
    def vendors(self) -> list[str]:
        return sorted({o.vendor for o in self.offers})

    def with_constraints(self, **changes: Any) -> Scenario:
        return replace(self, constraints=replace(self.constraints, **changes))
