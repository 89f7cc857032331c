"""`futures`: a scenario's plans over N sampled futures — deterministic, robust, single-vendor.

The steps: the deterministic plan (`chipmix.planning.portfolio.planner.plan`); N futures
(`sample`); the wait-and-see first stages of the first few futures and each vendor's
single-vendor plan in the nominal future (phase 1); every candidate first stage in every
future (phase 2, `recourse`), as Ray tasks or serially (`parallel`); the robust choice
(`robust`), the frontier and the value of diversification.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from chipmix.catalog.catalog import Catalog, load_catalog
from chipmix.errors import InputError
from chipmix.planning.futures.as_planned import as_planned, plan_runs
from chipmix.planning.futures.model_error import model_error
from chipmix.planning.futures.parallel import Pool
from chipmix.planning.futures.recourse import FirstStage, Outcome, recourse
from chipmix.planning.futures.results import (
    FrontierPoint,
    FuturesResult,
    Reserved,
    SourceUsed,
    StageResult,
)
from chipmix.planning.futures.robust import WAIT_AND_SEE, choose, propose, summarize
from chipmix.planning.futures.sample import Future, sample_futures
from chipmix.planning.futures.sources import FuturesSpec
from chipmix.planning.portfolio.placements import SearchCache, candidates, reference_peak
from chipmix.planning.portfolio.planner import plan
from chipmix.planning.portfolio.problem import Problem
from chipmix.planning.portfolio.scenario import Scenario
from chipmix.planning.portfolio.scenario_file import load_scenario, parse_scenario
from chipmix.planning.portfolio.serving import serving_options

__all__ = ["MAX_FUTURES", "PENALTY_FACTOR", "futures"]

PENALTY_FACTOR = 10.0
"""A missed deadline costs this many times the deterministic plan (M of `robust`)."""
MAX_FUTURES = 100_000

_Context = tuple[Problem, float]
_Item = tuple[Future, tuple[FirstStage, ...]]


def futures(
    scenario: Scenario | str | Path | Mapping[str, Any],
    n: int,
    *,
    seed: int = 0,
    workers: int = 1,
    ray_address: str | None = None,
    catalog: Catalog | str | Path | None = None,
    cache: SearchCache | None = None,
    target: float | None = None,
) -> FuturesResult:
    """Sample ``n`` futures of the scenario and plan for them (see the module's steps)."""
    if not 1 <= n <= MAX_FUTURES:
        raise InputError(f"--futures must be between 1 and {MAX_FUTURES} (got {n})")
    if workers < 1:
        raise InputError(f"--workers must be at least 1 (got {workers})")
    if seed < 0:
        raise InputError(f"--seed must be a non-negative integer (got {seed})")
    started = time.perf_counter()
    cat = catalog if isinstance(catalog, Catalog) else load_catalog(catalog)
    sc = _scenario(scenario, cat)
    spec = sc.futures or FuturesSpec()
    if target is not None:
        if not 0 < target <= 1:
            raise InputError(f"--target must lie in (0, 1] (got {target:g})")
        spec = spec.model_copy(update={"target": target})
    cache = cache or SearchCache.shared(cat)
    base = plan(sc, catalog=cat, sensitivity=False, single_vendor=False, cache=cache)
    cands = candidates(sc, cache)
    if sc.serving:  # the serving demand, as the plan holds it
        cands.serving = serving_options(sc, cat, reference_peak(cat))
    pb = Problem.of(sc, cands)
    det_units = _units_of(pb, base.reservations)
    penalty = PENALTY_FACTOR * max(base.cost_usd, 1.0)
    drawn = sample_futures(pb, spec, cat, n, seed)
    p_as_planned = as_planned(pb, plan_runs(pb, base), drawn)
    nominal = _nominal(pb)
    det = FirstStage("deterministic", det_units)
    with Pool((pb, penalty), workers=workers, address=ray_address) as pool:
        free = [FirstStage("wait-and-see", free=True)]
        alone = [FirstStage(f"{v} only", free=True, vendor=v) for v in pb.vendors]
        first: list[_Item] = [(f, tuple(free)) for f in drawn[: min(n, WAIT_AND_SEE)]]
        first += [(nominal, (st,)) for st in (det, *alone)]  # one solve a task
        phase1 = [outs[0] for outs in pool.map(_solve, first)]
        ws = phase1[: len(first) - 1 - len(alone)]
        nominal_outs = phase1[len(ws) :]
        mix = propose(det_units, ws, len(pb.reservations), lambda u: _reserved_label(pb, u))
        single, notes = _single_vendor(pb, nominal_outs[1:])
        stages = tuple(mix + single)
        outcomes = pool.map(_solve, [(f, stages) for f in drawn])
        mode = pool.mode
    solves = len(phase1) + n * len(stages)
    by_stage = {st.name: [outs[i] for outs in outcomes] for i, st in enumerate(stages)}
    robust = choose({s.name: by_stage[s.name] for s in mix}, spec.target, det.name)
    chosen_single = {}
    for v in pb.vendors:
        mine = {s.name: by_stage[s.name] for s in single if s.vendor == v}
        if mine:
            chosen_single[v] = choose(mine, spec.target, next(iter(mine)))
    nominal_offers = {det.name: nominal_outs[0].offers}
    nominal_offers.update({f"{o.stage}": o.offers for o in nominal_outs[1:]})
    results = _stage_results(
        pb, stages, by_stage, det.name, robust, chosen_single, nominal_offers, [s.name for s in mix]
    )
    rob = next(r for r in results if r.name == robust)
    for st in stages:
        short = sum(o.unserved > 1e-6 for o in by_stage[st.name])
        if short:
            notes.append(
                f"{st.name} leaves serving demand unserved in {short} of {n} futures (charged "
                "at the cheapest replica, as a missed job at its cheapest run)"
            )
    stopped = sum(o.status != "optimal" for outs in outcomes for o in outs)
    if stopped:
        notes.append(
            f"{stopped} recourse solve(s) stopped before proving optimality (time limit): "
            "their plans, and so this result, may differ on a faster or slower machine"
        )
    as_reliable = [
        r.cost_mean_usd
        for r in results
        if r.role == "single-vendor" and r.p_all_met >= rob.p_all_met - 1e-12
    ]
    return FuturesResult(
        scenario=sc.name,
        futures=n,
        seed=seed,
        target=spec.target,
        penalty_usd=penalty,
        sources=_sources(spec, pb, cat),
        stages=tuple(results),
        deterministic=det.name,
        robust=robust,
        single_vendor=chosen_single,
        frontier=_frontier(results, {s.name for s in mix}),
        diversification_usd=min(as_reliable) - rob.cost_mean_usd if as_reliable else None,
        notes=tuple(notes),
        solves=solves,
        wall_s=time.perf_counter() - started,
        p_as_planned=p_as_planned,
        mode=mode,
        workers=workers,
    )


def _solve(ctx: _Context, item: _Item) -> list[Outcome]:
    """One Ray task (or serial call): every stage of the item in its future."""
    pb, penalty = ctx
    fut, stages = item
    return [recourse(pb, fut, st, penalty) for st in stages]


def _scenario(scenario: Scenario | str | Path | Mapping[str, Any], cat: Catalog) -> Scenario:
    if isinstance(scenario, Scenario):
        return scenario
    if isinstance(scenario, Mapping):
        return parse_scenario(scenario, catalog=cat)
    return load_scenario(scenario, catalog=cat)


def _units_of(pb: Problem, reservations: Sequence[Any]) -> dict[int, int]:
    units = {}
    for k, (o, tier, _, _) in enumerate(pb.reservations):
        offer = pb.scenario.offers[o]
        for r in reservations:
            if r.offer == offer.id and r.tier == tier and r.chips:
                units[k] = r.chips // offer.chips_per_unit
    return units


def _reserved_label(pb: Problem, units: dict[int, int]) -> str:
    """``lab owned 16 chips + …``: a first stage's reservations in words."""
    parts = []
    for k, u in sorted(units.items()):
        o, tier, _, _ = pb.reservations[k]
        offer = pb.scenario.offers[o]
        parts.append(f"{offer.id} {tier} {u * offer.chips_per_unit} chips")
    return " + ".join(parts) or "nothing"


def _nominal(pb: Problem) -> Future:
    """The future the deterministic plan assumes: nothing moves."""
    offers = len(pb.scenario.offers)
    return Future(
        index=-1,
        perf={},
        time_factor=np.ones(pb.num_placements),
        price_factor=np.ones(offers),
        capacity=np.ones(offers),
        delay_h=np.zeros(offers),
        outages=(),
    )


def _single_vendor(pb: Problem, nominal: Sequence[Outcome]) -> tuple[list[FirstStage], list[str]]:
    """Each vendor able to run every job alone: its nominal plan's reservations, and none."""
    out: list[FirstStage] = []
    notes = []
    for v, o in zip(pb.vendors, nominal, strict=True):
        if not o.all_met:
            missed = sum(not m for m in o.met)
            notes.append(f"{v} alone cannot meet {missed} deadline(s) even as planned")
            continue
        out.append(FirstStage(f"{v} only", dict(o.units), vendor=v))
        if o.units:
            out.append(FirstStage(f"{v} only, no reservation", {}, vendor=v))
    return out, notes


def _stage_results(
    pb: Problem,
    stages: Sequence[FirstStage],
    by_stage: dict[str, list[Outcome]],
    det: str,
    robust: str,
    single: dict[str, str],
    nominal_offers: dict[str, tuple[int, ...]],
    mix: list[str],
) -> list[StageResult]:
    n = len(next(iter(by_stage.values())))
    cost = {s: np.array([o.cost_usd for o in by_stage[s]]) for s in by_stage}
    met = {s: np.array([sum(o.met) for o in by_stage[s]]) for s in by_stage}
    out = []
    for st in stages:
        outs = by_stage[st.name]
        p_all, mean = summarize(outs)
        regret = np.zeros(n)
        for i in range(n):
            rivals = [cost[m][i] for m in mix if met[m][i] >= met[st.name][i]]
            regret[i] = cost[st.name][i] - min([*rivals, cost[st.name][i]])
        home = nominal_offers.get(st.name) or nominal_offers.get(f"{st.vendor} only")
        home = home or nominal_offers[det]
        moved = [sum(a != b for a, b in zip(o.offers, home, strict=True)) for o in outs]
        spend = np.array([o.vendor_usd for o in outs])
        role = (
            "deterministic" if st.name == det
            else "robust" if st.name == robust
            else "single-vendor" if st.name in single.values()
            else "candidate"
        )  # fmt: skip
        reserved = tuple(
            Reserved(
                offer=pb.scenario.offers[pb.reservations[k][0]].id,
                tier=pb.reservations[k][1],
                chips=u * pb.scenario.offers[pb.reservations[k][0]].chips_per_unit,
                cost_usd=u * pb.reservations[k][2],
            )
            for k, u in sorted(st.units.items())
        )
        c = cost[st.name]
        out.append(
            StageResult(
                name=st.name,
                group=st.vendor or "mix",
                role=role,
                reserved=reserved,
                reserved_usd=sum(r.cost_usd for r in reserved),
                p_all_met=p_all,
                p_met={
                    job.name: float(np.mean([o.met[j] for o in outs]))
                    for j, job in enumerate(pb.scenario.jobs)
                },
                cost_mean_usd=mean,
                cost_p10_usd=float(np.percentile(c, 10)),
                cost_p50_usd=float(np.percentile(c, 50)),
                cost_p90_usd=float(np.percentile(c, 90)),
                regret_mean_usd=float(regret.mean()),
                regret_p90_usd=float(np.percentile(regret, 90)),
                migrations=float(np.mean(moved)),
                vendor_spend_usd={v: float(spend[:, i].mean()) for i, v in enumerate(pb.vendors)},
                vendor_spend_p90_usd={
                    v: float(np.percentile(spend[:, i], 90)) for i, v in enumerate(pb.vendors)
                },
            )
        )
    if robust != det:  # a stage both deterministic and robust is shown as deterministic
        return out
    return [replace(r, role="deterministic") if r.name == det else r for r in out]


def _frontier(results: Sequence[StageResult], mix: set[str]) -> tuple[FrontierPoint, ...]:
    """The cheapest mix first stage reaching each reliability one of them reaches."""
    pool = [r for r in results if r.name in mix]
    out: list[FrontierPoint] = []
    for target in sorted({r.p_all_met for r in pool}):
        best = min(
            (r for r in pool if r.p_all_met >= target - 1e-12),
            key=lambda r: (r.cost_mean_usd, r.name),
        )
        if out and out[-1].stage == best.name:
            out[-1] = FrontierPoint(target, best.name, best.p_all_met, best.cost_mean_usd)
            continue
        out.append(FrontierPoint(target, best.name, best.p_all_met, best.cost_mean_usd))
    return tuple(out)


def _sources(spec: FuturesSpec, pb: Problem, cat: Catalog) -> tuple[SourceUsed, ...]:
    out = [
        SourceUsed(
            kind=s.kind,
            subject=s.subject,
            distribution=f"{s.dist} " + ", ".join(f"{k}={v:g}" for k, v in s.parameters().items()),
            source=s.source,
        )
        for s in spec.sources
    ]
    explicit = {c for s in spec.sources if s.kind == "performance" for c in (s.chips or [])}
    if any(s.kind == "performance" and s.chips is None for s in spec.sources):
        explicit = {o.chip for o in pb.scenario.offers}
    if spec.default_performance:
        for chip in sorted({o.chip for o in pb.scenario.offers} - explicit):
            err = model_error(cat, chip)
            out.append(
                SourceUsed(
                    kind="performance",
                    subject=f"chip {chip} ({err.evidence})",
                    distribution=f"lognormal median={err.median:g}, sigma={err.sigma:g}",
                    source=err.source,
                )
            )
    return tuple(out)
