"""Sampled futures: each a draw of every uncertainty source, and the plan problem it makes.

`sample_futures` draws N futures. Future i draws from its own generator, seeded by the i-th
child of ``numpy.random.SeedSequence(seed).spawn(N)``: a future is the same whatever the
order, the number of workers or the machine that draws it. Within a future the sources are
drawn in the scenario's order, then the default model error per chip in sorted order.

A future changes the plan problem (`chipmix.planning.portfolio.problem.Problem`) so:

- run time × the chip's performance factor × the model's error × the failure factor
  ``1 / (1 − λ·n·h)``
  (λ interruptions per chip-hour, n chips, h hours lost per interruption: the first-order
  goodput loss of a run that restarts from its last checkpoint; capped at 90 % lost);
- per-use cost × the same time factor × the offer family's price factor (reservations are
  paid at their contracted price: that is what the first stage buys);
- the model's error: each placement's own prediction-error distribution (its
  `Estimate.error`, from `chipmix.uncertainty`: log(actual / predicted throughput) ~
  Normal(m, s) by evidence class, job and chip count), with one standard normal per chip
  shared by every placement on it (runs on one chip share its calibration): run time ×
  ``exp(−(m + s·z_chip))``. This is the distribution, and the sharing, `plan`'s P(on time)
  samples (`chipmix.planning.portfolio.odds`), so the two agree; a placement without an
  error takes the chip's (`model_error`);
- capacity: the unreserved part of an offer's cap × the vendor's delivered fraction
  (reserved chips are delivered: ``cap' = R + φ·(cap − R)``);
- a delivery delay bans every run of the vendor's offers that starts before it;
- an outage bans every run on the offer that is running during it (the run must wait for
  it to end, move to another offer or finish late).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from chipmix.catalog.catalog import Catalog
from chipmix.errors import UnknownNameError
from chipmix.planning.futures.model_error import model_error
from chipmix.planning.futures.sources import FuturesSpec, SourceSpec, draw
from chipmix.planning.portfolio.problem import F64, Problem
from chipmix.planning.portfolio.scenario import HOURS_PER_DAY, PlanOffer, Scenario

__all__ = [
    "MAX_LOST",
    "Future",
    "check_names",
    "future_seeds",
    "model_errors",
    "sample_future",
    "sample_futures",
]

MAX_LOST = 0.9
"""The largest fraction of a run's time failures may take (beyond, the run never ends)."""


@dataclass(frozen=True)
class Future:
    """One sampled future, as factors on the plan problem's arrays."""

    index: int
    perf: dict[str, float]
    """Run-time factor per chip from the scenario's performance sources."""
    time_factor: F64
    """Per placement: perf × the model's error × failures."""
    price_factor: F64
    """Per offer: on its per-use tiers."""
    capacity: F64
    """Per offer: fraction of the unreserved cap delivered."""
    delay_h: F64
    """Per offer: hours from the horizon's start before anything is delivered."""
    outages: tuple[tuple[int, float, float], ...]
    """(offer, start h, hours) of every outage within the horizon (and the runs' tails)."""

    def hit(self, offer: int) -> bool:
        """Whether anything in this future moves away from the plan for ``offer``."""
        return bool(
            self.capacity[offer] < 1.0
            or self.delay_h[offer] > 0
            or any(o == offer for o, _, _ in self.outages)
        )


def future_seeds(seed: int, n: int) -> list[np.random.SeedSequence]:
    """One independent seed per future (`numpy.random.SeedSequence.spawn`)."""
    return np.random.SeedSequence(seed).spawn(n)


def _matches(src: SourceSpec, offer: PlanOffer) -> bool:
    checks = (
        (src.vendor, offer.vendor),
        (src.cloud, offer.cloud),
        (src.region, offer.region),
    )
    if any(want is not None and want != have for want, have in checks):
        return False
    if src.family is not None and src.family not in (offer.cloud, offer.vendor, offer.id):
        return False
    return not (src.chips is not None and offer.chip not in src.chips)


def check_names(spec: FuturesSpec, scenario: Scenario) -> None:
    """Every vendor, cloud, region, family and chip a source names is in the scenario."""
    offers = scenario.offers
    valid = {
        "vendor": {o.vendor for o in offers},
        "cloud": {o.cloud for o in offers},
        "region": {o.region for o in offers},
        "family": {o.cloud for o in offers} | {o.vendor for o in offers} | {o.id for o in offers},
    }
    chips = {o.chip for o in offers}
    for src in spec.sources:
        for key, names in valid.items():
            value = getattr(src, key)
            if value is not None and value not in names:
                raise UnknownNameError(f"{src.kind} source's {key}", value, names)
        for chip in src.chips or []:
            if chip not in chips:
                raise UnknownNameError(f"{src.kind} source's chip", chip, chips)


def sample_future(
    pb: Problem,
    spec: FuturesSpec,
    catalog: Catalog,
    index: int,
    seed: np.random.SeedSequence,
    errors: tuple[F64, F64] | None = None,
) -> Future:
    """Future ``index``, drawn from its own seed. ``errors``: every placement's model
    error (`model_errors`), found once for many futures."""
    rng = np.random.default_rng(seed)
    offers = pb.scenario.offers
    n_off = len(offers)
    chips = sorted({o.chip for o in offers})
    horizon_h = pb.scenario.horizon_h
    tail_h = horizon_h + float(pb.duration_h.max(initial=0.0)) * 2
    perf = dict.fromkeys(chips, 1.0)
    explicit: set[str] = set()
    price = np.ones(n_off)
    capacity = np.ones(n_off)
    delay = np.zeros(n_off)
    fail_rate = np.zeros(n_off)
    """Interruptions per chip-hour × hours lost each, per offer."""
    outages: list[tuple[int, float, float]] = []
    for src in spec.sources:
        hits = [o for o, offer in enumerate(offers) if _matches(src, offer)]
        if src.kind == "performance":
            for chip in sorted(src.chips or chips):
                perf[chip] *= float(draw(src, rng))
                explicit.add(chip)
        elif src.kind == "price":
            price[hits] *= float(draw(src, rng))
        elif src.kind == "capacity":
            capacity[hits] *= float(np.clip(draw(src, rng), 0.0, 1.0))
        elif src.kind == "delay":
            late = rng.random() < src.probability
            days = float(draw(src, rng))
            if late:
                delay[hits] = np.maximum(delay[hits], days * HOURS_PER_DAY)
        elif src.kind == "outage":
            count = int(rng.poisson(src.rate_per_year * tail_h / (365.0 * HOURS_PER_DAY)))
            starts = rng.uniform(0.0, tail_h, count)
            lengths = np.asarray(draw(src, rng, count), dtype=np.float64) * HOURS_PER_DAY
            for start, hours in zip(starts.tolist(), lengths.tolist(), strict=True):
                outages.extend((o, start, hours) for o in hits)
        else:  # failures
            rate = float(draw(src, rng)) / 1000.0 / HOURS_PER_DAY
            fail_rate[hits] += rate * src.hours_lost
    error = np.ones(len(pb.offer))
    if spec.default_performance:
        z = {chip: float(rng.standard_normal()) for chip in chips if chip not in explicit}
        log_m, log_s = errors if errors is not None else model_errors(pb, catalog)
        chip_p = [offers[o].chip for o in pb.offer.tolist()]
        zs = np.array([z.get(c, 0.0) for c in chip_p])
        on = np.array([c in z for c in chip_p], dtype=np.bool_)
        error = np.where(on, np.exp(-(log_m + log_s * zs)), 1.0)
    chip_of = np.array([perf[offers[o].chip] for o in pb.offer.tolist()], dtype=np.float64)
    lost = np.minimum(fail_rate[pb.offer] * pb.chips, MAX_LOST)
    return Future(
        index=index,
        perf=perf,
        time_factor=chip_of * error / (1.0 - lost),
        price_factor=price,
        capacity=capacity,
        delay_h=delay,
        outages=tuple(sorted(outages)),
    )


def model_errors(pb: Problem, catalog: Catalog) -> tuple[F64, F64]:
    """Per placement, (m, s) of log(actual / predicted throughput): its estimate's error
    distribution, or its chip's (`model_error`) when the estimate has none."""
    log_m = np.zeros(pb.num_placements)
    log_s = np.zeros(pb.num_placements)
    for p, pl in enumerate(pb.candidates.placements):
        err = pl.estimate.error
        if err is not None:
            log_m[p], log_s[p] = err.log_median, err.log_sigma
        else:
            chip = model_error(catalog, pl.estimate.system.chip.id)
            log_m[p], log_s[p] = -math.log(chip.median), chip.sigma
    return log_m, log_s


def sample_futures(
    pb: Problem, spec: FuturesSpec, catalog: Catalog, n: int, seed: int
) -> list[Future]:
    """N futures, future i from the i-th spawned seed."""
    check_names(spec, pb.scenario)
    errors = model_errors(pb, catalog)
    return [
        sample_future(pb, spec, catalog, i, s, errors) for i, s in enumerate(future_seeds(seed, n))
    ]
