"""What can be bought: each allowed offer and tier with its effective price, its value per
chip-hour and its cap (the data π, v and cap of the LP in `chipmix.planning.budget.budget`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from chipmix.catalog.catalog import Catalog
from chipmix.catalog.offer import Offer, PriceTier
from chipmix.catalog.system import ResolvedSystem
from chipmix.errors import InfeasibleError
from chipmix.planning.portfolio.placements import SearchCache, reference_peak

__all__ = ["HOURS_PER_YEAR", "TERM_YEARS", "Option", "buy_options", "vendor_of"]

HOURS_PER_YEAR = 8766.0
"""365.25 days."""
TERM_YEARS: dict[PriceTier, float] = {"committed-1y": 1.0, "committed-3y": 3.0}
"""Commitment terms; other tiers are paid per hour (owned: assumed amortized per hour)."""


@dataclass(frozen=True, slots=True)
class Option:
    offer: Offer
    tier: PriceTier
    price: float
    value: float
    cap_chip_hours: float | None
    pflop_hours_per_chip_hour: float
    tokens_per_chip_hour: float | None
    run_days: float | None
    factors: tuple[float, float] | None = None
    """p10 and p90 of actual ÷ predicted throughput for the run's evidence class."""
    evidence: str = ""
    extrapolated: bool = False
    run_chips: int | None = None
    """Chips one run uses on this offer: the run size asked, within what the system holds."""
    served_tokens_per_chip_hour: float | None = None
    """Serving: output tokens one chip-hour serves at the SLO (None: a training option)."""
    replica: str = ""
    """Serving: the replica layout the serving search finds best at the SLO."""


def vendor_of(cat: Catalog, offer: Offer) -> str:
    return cat.chips[cat.systems[offer.system].chip].vendor


def buy_options(
    cat: Catalog,
    pool: list[Offer],
    tiers: tuple[PriceTier, ...],
    job: Any,
    chips: int,
    max_chips: int | None,
    hours: float,
    skipped: dict[str, str],
) -> list[Option]:
    cache = SearchCache.shared(cat)
    ref = reference_peak(cat)
    out = []
    for offer in sorted(pool, key=lambda o: o.id):
        system = cat.resolve(cat.systems[offer.system])
        priced = [(t, p) for t in tiers if (p := offer.usd_per_chip_hour(t)) is not None]
        if not priced:
            skipped[offer.id] = f"no price in {', '.join(tiers)}"
            continue
        peak = system.chip.peak_flops("bf16")
        tokens_per_chip_hour = run_days = None
        factors, evidence, extrapolated = None, "", False
        run_chips = None
        if job is not None:
            n = run_chips = _run_chips(cat, system, chips)
            found = cache.best(job, system, n)
            if isinstance(found, InfeasibleError):
                skipped[offer.id] = f"{job.model.name} on {n:,} chips: {found}"
                continue
            tokens_per_chip_hour = found.tokens_per_s * 3600.0 / n
            run_days = job.tokens / found.tokens_per_s / 86400.0
            if found.error is not None and found.evidence is not None:
                factors = (found.error.p10_factor, found.error.p90_factor)
                evidence, extrapolated = found.evidence.describe(), found.evidence.extrapolated
            if run_days > hours / 24.0:  # a run that cannot finish is not bought
                most = "" if n == chips else f", the most {system.id} holds"
                skipped[offer.id] = (
                    f"one run takes {run_days:,.0f} days on {n:,} chips{most}: longer than "
                    f"the {hours / HOURS_PER_YEAR:g}-year horizon"
                )
                continue
        for tier, price in priced:
            effective = price * _billed_fraction(tier, hours)
            value = tokens_per_chip_hour if tokens_per_chip_hour is not None else peak / ref
            out.append(
                Option(
                    offer=offer,
                    tier=tier,
                    price=effective,
                    value=value,
                    cap_chip_hours=None if max_chips is None else max_chips * hours,
                    pflop_hours_per_chip_hour=peak / 1e15,
                    tokens_per_chip_hour=tokens_per_chip_hour,
                    run_days=run_days,
                    factors=factors,
                    evidence=evidence,
                    extrapolated=extrapolated,
                    run_chips=run_chips,
                )
            )
    return out


def _run_chips(cat: Catalog, system: ResolvedSystem, chips: int) -> int:
    """The run's chip count on ``system``: ``chips`` in whole nodes, within the job limit
    (`Catalog.job_limit`), and in whole slices beyond one TPU slice (Multislice)."""
    node = system.system.chips_per_node
    n = min(chips, cat.job_limit(system) or chips)
    slice_ = system.system.max_chips
    if slice_ is not None and n > slice_:
        n = n // slice_ * slice_
    return max(node, n // node * node)


def _billed_fraction(tier: PriceTier, hours: float) -> float:
    """Billed hours ÷ hours used: commitments renew for the whole period, the last term
    billed whole."""
    term_years = TERM_YEARS.get(tier)
    if term_years is None:
        return 1.0
    term = term_years * HOURS_PER_YEAR
    return math.ceil(hours / term - 1e-9) * term / hours
