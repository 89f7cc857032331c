"""Serving demand in the portfolio plan: each entry's options (offer × tier: the replica the
serving model's layout search finds best at the entry's latency targets) and their integer
replica columns per period.

An option serves ``X = output tokens/s per replica × 86 400`` output tokens a day per replica
(the search's best layout, offline throughput at the batch that meets the p99 targets: what
``chipmix serve search`` reports); a period that asks D tokens a day holds replicas
``z_{g,t}`` with ``Σ_g X_g z_{g,t} ≥ D_t``, so one option alone needs ``⌈D / X⌉`` replicas
of ``replica_chips`` chips each (``ServeEstimate.chips_for``). Replicas hold their chips for
the whole period, on the offers' caps beside the training runs (a chip that serves in a
period does not train in it), are paid per chip-hour held (per-use tiers) or fill the
reservation (reserved tiers), and count toward the budget, the share caps, the vendor
minimum and the power cap (`chipmix.planning.portfolio.formulation`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from chipmix.catalog.catalog import Catalog
from chipmix.catalog.offer import PriceTier
from chipmix.errors import InfeasibleError, InputError
from chipmix.planning.portfolio.scenario import RESERVED_TIERS, Scenario

if TYPE_CHECKING:  # the serving model is imported when a scenario serves (`serving_options`)
    from chipmix.serve.results import ServeEstimate

__all__ = [
    "SECONDS_PER_DAY",
    "ServingColumns",
    "ServingOption",
    "serving_columns",
    "serving_options",
]

SECONDS_PER_DAY = 86_400.0

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class ServingOption:
    """One way to serve one entry: an offer and tier, with the best replica layout there."""

    serving: int
    """Index into the scenario's serving entries."""
    offer: int
    tier: PriceTier
    estimate: ServeEstimate
    usd_per_chip_hour: float
    h100_per_chip_hour: float
    """Compute of one chip-hour in H100-equivalents (dense bf16 peak ratio)."""
    power_mw_per_chip: float

    @property
    def reserved(self) -> bool:
        return self.tier in RESERVED_TIERS

    @property
    def replica_chips(self) -> int:
        return self.estimate.layout.replica_chips

    @property
    def tokens_per_day_per_replica(self) -> float:
        e = self.estimate
        return e.output_tokens_per_s / e.layout.replicas * SECONDS_PER_DAY


def serving_options(scenario: Scenario, catalog: Catalog, reference: float) -> list[ServingOption]:
    """Every (serving entry × allowed offer × tier) option. Raises `InfeasibleError` when no
    allowed offer meets an entry's targets, naming each chip's reason (the target and the
    best p99 it reaches, or the memory it lacks)."""
    from chipmix.serve.public import serve_search

    out: list[ServingOption] = []
    index = {o.id: i for i, o in enumerate(scenario.offers)}
    for e, ps in enumerate(scenario.serving):
        found: dict[str, ServeEstimate | str] = {}
        for offer_id in ps.offers:
            offer = scenario.offers[index[offer_id]]
            system = offer.system
            if system.id not in found:
                try:
                    found[system.id] = serve_search(
                        ps.job.model, system.id, ps.search_chips, top=1, catalog=catalog,
                        ttft_p99_ms=ps.ttft_p99_ms, tpot_p99_ms=ps.tpot_p99_ms,
                        input_len=ps.job.input_len, output_len=ps.job.output_len,
                        precision=ps.job.precision, kv_precision=ps.job.kv_precision,
                        stack=ps.job.stack,
                    ).best  # fmt: skip
                except (InfeasibleError, InputError) as exc:
                    found[system.id] = str(exc)
            est = found[system.id]
            if isinstance(est, str):
                continue
            for tier, price in offer.usd_per_chip_hour.items():
                out.append(
                    ServingOption(
                        serving=e, offer=index[offer_id], tier=tier, estimate=est,
                        usd_per_chip_hour=price,
                        h100_per_chip_hour=system.chip.peak_flops("bf16") / reference,
                        power_mw_per_chip=system.power_w_per_chip / 1e6,
                    )
                )  # fmt: skip
        if not any(o.serving == e for o in out):
            reasons = "; ".join(f"{s}: {r}" for s, r in found.items() if isinstance(r, str))
            raise InfeasibleError(
                f"serving {ps.name!r} ({ps.job.model.name}, {ps.slo()}): no allowed offer "
                f"serves it — {reasons or 'no offer is allowed'}"
            )
    return out


@dataclass(frozen=True)
class ServingColumns:
    """The replica columns z_{g,t}: option g held in period t, and what one replica costs."""

    option: I64
    entry: I64
    """The serving entry of each column."""
    period: I64
    chips: F64
    """Chips per replica."""
    offer: I64
    tier_key: I64
    """Index into the problem's reservations for reserved options, -1 otherwise."""
    vendor: I64
    cloud: I64
    usd: F64
    """Per-use cost of one replica for the period ($); 0 for reserved tiers."""
    usd_used: F64
    """chip-hours × $/chip-hour in every tier (a reserved replica's share of its term)."""
    compute: F64
    power_mw: F64
    energy_mwh: F64
    tokens_per_day: F64
    """Output tokens a day one replica serves."""
    upper: F64
    """Replicas that alone meet the period's demand (no more are ever needed)."""
    demand: F64
    """demand[e, t]: output tokens a day asked of entry e in period t (its busiest day)."""
    asked: F64
    """asked[e, t]: output tokens asked of entry e over period t."""
    hours: F64
    """Hours of each period inside the horizon."""

    def __len__(self) -> int:
        return len(self.option)


def serving_columns(
    scenario: Scenario,
    options: list[ServingOption],
    reservations: dict[tuple[int, str], tuple[int, float]],
    vendors: list[str],
    clouds: list[str],
    cap: F64,
) -> ServingColumns:
    """The columns of every option in every period its entry asks for tokens, its offer
    holds chips and (reserved) its term runs. ``reservations``: (offer, tier) → (index,
    term hours)."""
    periods = scenario.num_periods
    period_h = scenario.period_h
    hours = np.array(
        [min(period_h, scenario.horizon_h - t * period_h) for t in range(periods)], dtype=float
    )
    demand = np.zeros((len(scenario.serving), periods))
    asked_tokens = np.zeros_like(demand)
    for e, ps in enumerate(scenario.serving):
        for t in range(periods):
            first = scenario.day_at(t * period_h)
            last = scenario.day_at(t * period_h + hours[t] - 1e-6)
            demand[e, t] = ps.tokens_per_day(first, last)
            asked_tokens[e, t] = ps.tokens_between(first, last)
    rows: list[tuple[float, ...]] = []
    for g, opt in enumerate(options):
        offer = scenario.offers[opt.offer]
        key, term_h = reservations.get((opt.offer, opt.tier), (-1, math.inf))
        per_day = opt.tokens_per_day_per_replica
        n = float(opt.replica_chips)
        for t in range(periods):
            asked = demand[opt.serving, t]
            if asked <= 0 or cap[opt.offer, t] < n or t * period_h >= term_h:
                continue
            chip_hours = n * hours[t]
            used = chip_hours * opt.usd_per_chip_hour
            owner = (vendors.index(offer.vendor), clouds.index(offer.cloud))
            rows.append((
                g, opt.serving, t, n, opt.offer, key, *owner,
                0.0 if opt.reserved else used, used, chip_hours * opt.h100_per_chip_hour,
                n * opt.power_mw_per_chip, n * opt.power_mw_per_chip * hours[t], per_day,
                math.ceil(asked / per_day - 1e-9),
            ))  # fmt: skip
    c = np.array(rows, dtype=float).reshape(-1, 15).T
    i = [col.astype(np.int64) for col in c[[0, 1, 2, 4, 5, 6, 7]]]
    return ServingColumns(
        option=i[0], entry=i[1], period=i[2], chips=c[3], offer=i[3], tier_key=i[4],
        vendor=i[5], cloud=i[6], usd=c[8], usd_used=c[9], compute=c[10], power_mw=c[11],
        energy_mwh=c[12], tokens_per_day=c[13], upper=c[14], demand=demand, asked=asked_tokens,
        hours=hours,
    )  # fmt: skip
