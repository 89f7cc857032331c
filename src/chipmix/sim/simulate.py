"""`simulate`: one training run under failures, maintenance, reclaims and outages.

It finds the layout (``chipmix.layouts.best.estimate``) on the job's system and, for a scenario, on
the chips left during an outage and on the migration target; builds the phases; runs the
Monte Carlo; and, on request, sweeps checkpoint intervals around Daly's optimum.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np

from chipmix.catalog.catalog import Catalog, load_catalog
from chipmix.catalog.offer import PRICE_TIERS, PriceTier
from chipmix.catalog.reliability import Reliability, load_reliability
from chipmix.errors import InfeasibleError, InputError, UnknownNameError
from chipmix.layouts.best import estimate
from chipmix.pricing import cheapest_offers
from chipmix.sim.checkpoint import checkpoint_spec, daly_interval, parse_interval, young_interval
from chipmix.sim.failures import HARDWARE_CAUSES, job_rates
from chipmix.sim.montecarlo import monte_carlo, sweep_intervals
from chipmix.sim.restart import restart_policy
from chipmix.sim.results import CheckpointPolicy, SimulationResult
from chipmix.sim.scenario import ContinuityScenario, Migration, load_scenario
from chipmix.sim.timeline import Move, SystemRun, Timeline, build_timeline, plan_move
from chipmix.workload.model import ModelSpec

__all__ = ["MAX_REPLICAS", "simulate"]

MAX_REPLICAS = 1_000_000
SWEEP_FACTORS = tuple(float(f) for f in np.geomspace(0.25, 4.0, 17))
"""Checkpoint intervals swept, as multiples of Daly's optimum."""
GIVE_UP_FACTOR = 20.0
"""A replica still training after this many times the failure-free time is unfinished."""


def _check_number(name: str, value: float | None, *, low: float = 0.0) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > low:
        raise InputError(f"{name} must be a number > {low:g} (got {value!r})")
    if math.isinf(value) or math.isnan(value):
        raise InputError(f"{name} must be finite (got {value!r})")


def _scenario(value: ContinuityScenario | str | Path | None) -> ContinuityScenario | None:
    if value is None or isinstance(value, ContinuityScenario):
        return value
    return load_scenario(value)


def simulate(
    model: str | ModelSpec,
    system: str,
    chips: int,
    *,
    tokens: float | None = None,
    duration_days: float | None = None,
    checkpoint_interval: float | str | None = None,
    asynchronous_checkpoint: bool = False,
    scenario: ContinuityScenario | str | Path | None = None,
    replicas: int = 1000,
    seed: int = 0,
    deadline_days: float | None = None,
    price_tier: str = "on-demand",
    hot_spare_nodes: int | None = None,
    failure_rate_multiplier: float | None = None,
    sweep: bool = False,
    catalog: Catalog | str | Path | None = None,
    model_error: bool = True,
    **job_and_layout: Any,
) -> SimulationResult:
    """Monte Carlo of training ``model`` on ``chips`` chips of ``system``.

    Give the run's length as ``tokens`` (the result has completion times) or as a window of
    ``duration_days`` (the result has the tokens trained in it). ``checkpoint_interval``:
    seconds, a string with a unit (``"30m"``) or ``"daly"`` (default) / ``"young"``.
    ``scenario``: a `ContinuityScenario` or the path of a scenario file (outages, migration,
    what-ifs); with a migration target the result also holds the run without it. ``sweep``
    adds the simulated best checkpoint interval beside Young's and Daly's. ``model_error``
    (default) draws each replica's throughput from the prediction's p10–p90 error
    distribution, so a deadline inside that interval is met with a probability below 1;
    False replays the point prediction. Other keyword
    arguments are `chipmix.make_job`'s and layout axes to pin on the job's own system.
    """
    if (tokens is None) == (duration_days is None):
        raise InputError("give the run's length: tokens=… or duration_days=… (one of them)")
    _check_number("tokens", tokens)
    _check_number("duration_days", duration_days)
    _check_number("deadline_days", deadline_days)
    if deadline_days is not None and tokens is None:
        raise InputError("a deadline needs a token target (tokens=…), not a fixed duration")
    if (
        isinstance(replicas, bool)
        or not isinstance(replicas, int)
        or not (1 <= replicas <= MAX_REPLICAS)
    ):
        raise InputError(f"replicas must be a whole number from 1 to {MAX_REPLICAS:,} "
                         f"(got {replicas!r})")  # fmt: skip
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"seed must be a whole number >= 0 (got {seed!r})")
    if price_tier not in PRICE_TIERS:
        raise UnknownNameError("price tier", price_tier, PRICE_TIERS)
    tier: PriceTier = price_tier
    interval = parse_interval(checkpoint_interval)
    scen = _scenario(scenario)
    overrides = scen.reliability if scen is not None else None
    multiplier = failure_rate_multiplier
    if multiplier is None:
        multiplier = overrides.failure_rate_multiplier if overrides is not None else 1.0
    if multiplier < 0:
        raise InputError(f"failure rate multiplier must be >= 0 (got {multiplier})")
    spares = hot_spare_nodes
    if spares is None and overrides is not None:
        spares = overrides.hot_spare_nodes
    if spares is not None and (isinstance(spares, bool) or spares < 0):
        raise InputError(f"hot spare nodes must be a whole number >= 0 (got {spares!r})")

    cat = catalog if isinstance(catalog, Catalog) else load_catalog(catalog)
    rel = load_reliability(cat)
    reference = cat.chip(rel.reference.chip)
    job_kwargs = {k: v for k, v in job_and_layout.items() if k not in _LAYOUT}

    def make_run(
        sys_name: str, n: int, run_tier: PriceTier, label: str, **pinned: Any
    ) -> SystemRun:
        e = estimate(model, sys_name, n, catalog=cat, price_tier=run_tier, tokens=tokens,
                     **job_kwargs, **pinned)  # fmt: skip
        resolved = e.system
        rates = job_rates(rel, resolved, reference, n, run_tier, multiplier=multiplier)
        ckpt = checkpoint_spec(e.job, n, rel.storage, asynchronous=asynchronous_checkpoint)
        price = cheapest_offers(cat, resolved).get(run_tier)
        cloud = price[0].cloud if price is not None else _cloud(cat, resolved.id)
        restart = restart_policy(rel.restart, rates.nodes, rel.spot_warning(cloud), spares)
        run = SystemRun(
            label=label, estimate=e, chips=n, price_tier=run_tier,
            usd_per_chip_hour=None if price is None else price[1],
            rates=rates, checkpoint=ckpt, restart=restart, interval_s=math.inf, cloud=cloud,
        )  # fmt: skip
        return dataclasses.replace(run, interval_s=_interval(run, interval))

    def other_run(sys_name: str, n: int, run_tier: PriceTier, label: str) -> SystemRun | None:
        try:
            return make_run(sys_name, n, run_tier, label)
        except InfeasibleError:
            if label.startswith("migrated"):
                raise InfeasibleError(
                    f"the migration target {sys_name!r} cannot run the job on {n} chips "
                    f"(no layout fits); give migration.chips or another system"
                ) from None
            return None

    pinned = {k: v for k, v in job_and_layout.items() if k in _LAYOUT}
    primary = make_run(system, chips, tier, "primary", **pinned)
    window = duration_days is not None
    target = math.inf if tokens is None else float(tokens)
    if window:
        horizon = float(duration_days) * 86400.0  # type: ignore[arg-type]
    else:
        ideal = target / primary.tokens_per_s
        outages = sum(o.duration_days for o in scen.outages) * 86400.0 if scen else 0.0
        horizon = GIVE_UP_FACTOR * ideal + outages + 30 * 86400.0
        _check_reachable(primary, ideal, horizon)
    deadline_s = None if deadline_days is None else deadline_days * 86400.0
    scen_or_empty = scen if scen is not None else ContinuityScenario()
    figures = rel.migration

    def make_move(source: SystemRun, target: SystemRun, migration: Migration) -> Move:
        porting = figures.porting(source.vendor, target.vendor).value * 86400.0
        return plan_move(
            source, target, migration,
            transfer_gb_s=rel.storage.transfer_gb_s.value,
            reshard_gb_s=figures.reshard_gb_s.value,
            porting_s=porting,
            egress_usd_per_gb=lambda cloud: figures.egress(cloud).value,
        )  # fmt: skip

    def timeline(migrate: bool, run: SystemRun = primary) -> Timeline:
        return build_timeline(run, scen_or_empty, other_run, migrate=migrate,
                              horizon_s=horizon, make_move=make_move)  # fmt: skip

    has_migration = scen is not None and scen.migration is not None
    main = monte_carlo(
        "with migration" if has_migration else "as planned",
        timeline(True),
        target_tokens=target, window=window, replicas=replicas, seed=seed,
        deadline_s=deadline_s, model_error=model_error,
    )  # fmt: skip
    baseline = None
    if has_migration:
        baseline = monte_carlo("without migration", timeline(False), target_tokens=target,
                               window=window, replicas=replicas, seed=seed,
                               deadline_s=deadline_s, model_error=model_error)  # fmt: skip

    delta = primary.checkpoint.blocking_s
    mtbf_s = primary.lossy_mtbf_s
    daly = daly_interval(delta, mtbf_s)
    found = None
    if sweep and math.isfinite(daly):
        grid = [daly * f for f in SWEEP_FACTORS]
        found = sweep_intervals(
            lambda tau: timeline(True, dataclasses.replace(primary, interval_s=tau)),
            grid, target_tokens=target, window=window, replicas=replicas, seed=seed,
            model_error=model_error,
        )  # fmt: skip
    policy = CheckpointPolicy(
        interval_s=primary.interval_s,
        chosen_by=interval if isinstance(interval, str) else "given",
        young_interval_s=young_interval(delta, mtbf_s),
        daly_interval_s=daly,
        mtbf_lossy_h=mtbf_s / 3600.0,
        sweep=found,
    )
    return SimulationResult(
        model=primary.estimate.job.model.name,
        primary=primary,
        outcome=main,
        without_migration=baseline,
        policy=policy,
        tokens=tokens,
        duration_days=duration_days,
        deadline_days=deadline_days,
        replicas=replicas,
        seed=seed,
        scenario=scen,
        assumptions=_assumptions(rel, primary)
        + _move_notes(main.timeline, scen)
        + _unpriced(main.timeline.runs),
    )


_LAYOUT = ("tp", "pp", "dp", "cp", "ep", "vpp", "micro_batch", "zero", "recompute")


def _cloud(cat: Catalog, system_id: str) -> str:
    return cat.systems[system_id].provider if system_id in cat.systems else "default"


def _interval(run: SystemRun, interval: float | str) -> float:
    """The compute time between checkpoints for ``run``: given, or Young's/Daly's optimum."""
    if isinstance(interval, float):
        return max(interval, run.checkpoint.min_interval_s())
    delta, mtbf = run.checkpoint.blocking_s, run.lossy_mtbf_s
    best = young_interval(delta, mtbf) if interval == "young" else daly_interval(delta, mtbf)
    if not math.isfinite(best):
        best = 365 * 86400.0  # nothing loses work: checkpoint once a year of compute
    return max(best, run.checkpoint.min_interval_s(), 1.0)


def _check_reachable(run: SystemRun, ideal_s: float, horizon_s: float) -> None:
    """Refuse a run that could not finish: by Daly's exact model (2006, eq. 13) a segment of
    ``τ + δ`` takes ``M·e^{R/M}·(e^{(τ+δ)/M} − 1)`` on average; past the give-up horizon
    every replica would end unfinished after a long loop."""
    m = run.lossy_mtbf_s
    if not math.isfinite(m):
        return
    r = run.restart
    per_hour = run.rates.per_hour
    hardware = sum(per_hour[c] for c in HARDWARE_CAUSES)
    lossy = run.rates.lossy_per_hour(run.spot_saved)
    # hot spares run out when more nodes are in repair at once than there are spares
    swap = r.swap_s if hardware / 3600.0 * r.repair_s <= r.hot_spare_nodes else r.replace_s
    node = (hardware * swap + (lossy - hardware) * r.relaunch_s) / lossy if lossy > 0 else 0.0
    restart = r.detect_s + node + run.checkpoint.load_s + r.warmup_s
    tau, delta = run.interval_s, run.checkpoint.blocking_s
    exponent = restart / m + (tau + delta) / m
    expected = (
        math.inf
        if exponent > 700
        else (m * math.exp(restart / m) * math.expm1((tau + delta) / m) * ideal_s / tau)
    )
    if expected > horizon_s:
        raise InfeasibleError(
            f"the run would not finish: {ideal_s / 86400:.1f} days of work, but with an "
            f"interruption every {m / 3600:.2g} h that loses work and restarts of "
            f"{restart / 60:.0f} min it would take ~{expected / 86400:.3g} days "
            f"(> {horizon_s / 86400:.0f}); use fewer chips, faster restarts or a lower "
            f"failure rate"
        )


def _move_notes(timeline: Timeline, scen: ContinuityScenario | None) -> list[str]:
    """What moving to the migration target takes, part by part, and what a standby costs."""
    move = timeline.move
    if move is None or scen is None or scen.migration is None:
        return []
    target = timeline.runs[1]
    notes = [
        f"moving to {target.estimate.system.id}: checkpoint transfer {move.transfer_s / 60:.0f} "
        f"min over the inter-site link + resharding for its layout {move.reshard_s / 60:.0f} "
        f"min (+ detection, load and warm-up); egress ${move.egress_usd:,.0f} out of "
        f"{timeline.runs[0].cloud}"
        + (f", ${move.egress_back_usd:,.0f} back" if scen.migration.return_when_restored else "")
    ]
    if scen.migration.warm:
        notes.append(
            f"warm standby: {target.held_chips:,} chips of {target.estimate.system.id} held "
            f"for the whole run at {target.price_tier} "
            f"${move.standby_usd_per_s * 3600:,.0f}/h, paid while idle (taken as ported "
            f"and tested in advance)"
        )
    else:
        notes.append(
            f"cold target: moves after the longer of its capacity lead time "
            f"({move.capacity_s / 3600:.0f} h) and porting to {target.vendor} "
            f"({move.porting_s / 86400:.0f} days)"
        )
    return notes


def _unpriced(runs: list[SystemRun]) -> list[str]:
    return [
        f"no current {r.price_tier} offer prices {r.estimate.system.id} ({r.label}): the cost "
        f"of the runs that use it is unknown"
        for r in runs
        if r.usd_per_chip_hour is None
    ]


def _assumptions(rel: Reliability, run: SystemRun) -> list[str]:
    ref = rel.reference
    src = rel.sources[ref.source]
    notes = [
        f"failure rates per chip-hour from {ref.num_chips:,} {ref.chip} over {ref.days:g} days: "
        f"{src.title} ({src.url})",
        "failures are Poisson (constant rates, independent); interruptions also strike "
        "during restarts",
        f"checkpoint = {run.checkpoint.size_bytes / 1e12:.2f} TB (bf16 weights + fp32 master "
        f"+ Adam moments, 14 B/param); write {run.checkpoint.write_s:.1f} s, load "
        f"{run.checkpoint.load_s:.1f} s at min(chips × per-chip, storage aggregate) bandwidth",
        f"restart: detect {run.restart.detect_s:.0f} s, relaunch {run.restart.relaunch_s:.0f} s "
        f"or hot-spare swap {run.restart.swap_s:.0f} s ({run.restart.hot_spare_nodes} spare "
        f"nodes, repair {run.restart.repair_s / 3600:.0f} h, else replacement "
        f"{run.restart.replace_s:.0f} s), warm-up {run.restart.warmup_s:.0f} s",
        "planned maintenance is taken at a checkpoint (no work lost)",
        "cost = chips held (job + hot spares) × wall time × the tier's cheapest current "
        "$/chip-hour; wasted cost is the part not spent on kept work",
    ]
    notes += run.rates.assumptions
    return notes
