"""`plan`: a scenario in, a portfolio plan out.

The steps: validate the scenario (`scenario_file`, `resolve`); find every job's candidate
placements with the layout search (`placements`); solve the MILP (`formulation`, `solver`)
for the scenario's objective (`objective`; min-makespan and max-tokens are lexicographic:
the best value first, then the cheapest plan that keeps it); move every run as early as
capacity, power and reservations allow (the MILP is indifferent to when a run starts
within its window, so the plan reads better without changing any constraint or cost);
then explain: binding constraints and their marginal value, the best single-vendor plan,
the Pareto front (`sensitivity`). An infeasible scenario raises
`PlanInfeasibleError` saying which constraints conflict and by how much
(`explain`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from chipmix.catalog.catalog import Catalog, load_catalog
from chipmix.errors import InfeasibleError
from chipmix.planning.portfolio.objective import plan_cost, solve_objective
from chipmix.planning.portfolio.occupancy import compact
from chipmix.planning.portfolio.odds import RunOdds, deadline_odds
from chipmix.planning.portfolio.placements import (
    Candidates,
    SearchCache,
    candidates,
    reference_peak,
)
from chipmix.planning.portfolio.problem import Problem
from chipmix.planning.portfolio.results import (
    Allocation,
    PlanInfeasibleError,
    PlanResult,
    Reservation,
    Share,
    SolveStats,
)
from chipmix.planning.portfolio.scenario import Scenario
from chipmix.planning.portfolio.scenario_file import load_scenario, parse_scenario
from chipmix.planning.portfolio.served import serving_lines
from chipmix.planning.portfolio.serving import serving_options
from chipmix.planning.portfolio.solver import Solution
from chipmix.results import Estimate

__all__ = ["plan"]


def plan(
    scenario: Scenario | str | Path | Mapping[str, Any],
    *,
    catalog: Catalog | str | Path | None = None,
    pareto: bool = False,
    sensitivity: bool | None = None,
    single_vendor: bool | None = None,
    cache: SearchCache | None = None,
) -> PlanResult:
    """Plan a scenario: a `Scenario`, a scenario file's path, or the file's structure as a
    mapping. ``sensitivity`` and ``single_vendor`` default to the scenario's ``solver``
    options; ``pareto`` adds the cost-vs-makespan front."""
    from chipmix.planning.portfolio.explain import explain_infeasible, unplaceable
    from chipmix.planning.portfolio.sensitivity import (
        binding_constraints,
        pareto_front,
        single_vendor_plans,
    )

    started = time.perf_counter()
    cat = catalog if isinstance(catalog, Catalog) else load_catalog(catalog)
    sc = _scenario(scenario, cat)
    cache = cache or SearchCache.shared(cat)
    cands = candidates(sc, cache)
    if sc.serving:
        cands.serving = serving_options(sc, cat, reference_peak(cat))
    candidates_s = time.perf_counter() - started
    missing = unplaceable(sc, cands)
    required_missing = [c for j, c in missing if sc.jobs[j].required]
    if required_missing:
        raise PlanInfeasibleError(
            sc.name,
            required_missing,
            f"{len(required_missing)} job(s) cannot run on any allowed offer within their window",
        )
    pb = Problem.of(sc, cands)
    base = solve_objective(pb, sc.objective)
    if base.status == "infeasible":
        raise explain_infeasible(pb)
    if not base.ok:
        raise InfeasibleError(
            f"scenario {sc.name!r}: HiGHS stopped ({base.status}) after "
            f"{sc.solver.time_limit_s:g} s without a plan; raise solver.time_limit_s or "
            "solver.gap, or use a longer solver.period_days"
        )
    runs = compact(pb, base.chosen, base.reserved_units, base.replicas)
    solve_s = base.seconds
    extra = 0
    want_sensitivity = sc.solver.sensitivity if sensitivity is None else sensitivity
    want_baseline = sc.solver.single_vendor_baseline if single_vendor is None else single_vendor
    binding, n = (
        binding_constraints(pb, base, runs) if want_sensitivity else ([], 0)
    )  # fmt: skip
    extra += n
    baselines = single_vendor_plans(pb) if want_baseline and len(pb.vendors) > 1 else []
    extra += len(baselines)
    front = None
    if pareto:
        front, n = pareto_front(pb, base, runs)
        extra += n
    result = _result(
        pb, cands, base, runs, binding, baselines, front, [c.message for _, c in missing]
    )
    stats = SolveStats(
        status=base.status,
        gap=base.gap,
        placements=pb.num_placements,
        columns=base.num_cols,
        rows=base.num_rows,
        nonzeros=base.nonzeros,
        searches=cands.searches,
        cache_hits=cands.cache_hits,
        candidates_s=candidates_s,
        solve_s=solve_s,
        extra_solves=extra,
        total_s=time.perf_counter() - started,
    )
    return PlanResult(**{**result, "stats": stats})


def _scenario(scenario: Scenario | str | Path | Mapping[str, Any], cat: Catalog) -> Scenario:
    if isinstance(scenario, Scenario):
        return scenario
    if isinstance(scenario, Mapping):
        return parse_scenario(scenario, catalog=cat)
    return load_scenario(scenario, catalog=cat)


# -- the result ------------------------------------------------------------------------------
def _result(
    pb: Problem,
    cands: Candidates,
    sol: Solution,
    runs: list[tuple[int, int]],
    binding: list[Any],
    baselines: list[Any],
    front: list[Any] | None,
    notes: list[str],
) -> dict[str, Any]:
    sc = pb.scenario
    origin = datetime(sc.start.year, sc.start.month, sc.start.day)
    allocations = []
    for p, s in runs:
        pl = cands.placements[p]
        pj = sc.jobs[pl.job]
        offer = sc.offers[pl.offer]
        start_h, end_h, _ = pb.span(p, s)
        allocations.append(
            Allocation(
                job=pj.name,
                model=pj.job.model.name,
                mode=pj.job.mode,
                tokens=pj.tokens,
                offer=offer.id,
                cloud=offer.cloud,
                region=offer.region,
                system=offer.system.id,
                chip=offer.chip,
                vendor=offer.vendor,
                tier=pl.tier,
                chips=pl.chips,
                layout=pl.estimate.layout,
                tokens_per_s=pl.estimate.tokens_per_s,
                mfu=pl.estimate.mfu,
                start=origin + timedelta(hours=start_h),
                end=origin + timedelta(hours=end_h),
                duration_h=pl.duration_h,
                cost_usd=pl.usd,
                energy_mwh=pl.energy_mwh,
                h100_hours=pl.h100_hours,
                deadline=pj.deadline,
                slack_h=sc.deadline_h(pj) - end_h,
                **_evidence(pl.estimate),
                price_flag=offer.price_flags.get(pl.tier, ""),
            )
        )
    per_run, every = _deadline_odds(pb, cands, runs)
    allocations = [
        replace(a, deadline_probability=q) for a, q in zip(allocations, per_run, strict=True)
    ]
    allocations.sort(key=lambda a: (a.start, a.job))
    reservations = _reservations(pb, cands, runs, sol.reserved_units, sol.replicas)
    cost = plan_cost(pb, runs, sol.reserved_units, sol.replicas)
    lines, entries = serving_lines(pb, cands.serving, sol.replicas)
    makespan = max((a.end - origin).total_seconds() / 3600 for a in allocations) if runs else 0.0
    placed = {a.job for a in allocations}
    notes = list(notes)
    beyond = sum(r.beyond_horizon_usd for r in reservations)
    if beyond > 0:
        notes.append(
            f"reservations are billed for their whole term: ${beyond:,.0f} of the cost falls "
            "after the horizon's end"
        )
    for offer in sc.offers:
        if offer.inline and any(a.offer == offer.id for a in allocations):
            notes.append(f"offer {offer.id} is the scenario's own; its price: {offer.source}")
    return {
        "scenario": sc.name,
        "objective": sc.objective,
        "horizon_start": sc.start,
        "horizon_end": sc.end,
        "allocations": allocations,
        "reservations": reservations,
        "unplaced": [j.name for j in sc.jobs if j.name not in placed],
        "cost_usd": cost,
        "energy_mwh": sum(a.energy_mwh for a in allocations) + sum(s.energy_mwh for s in lines),
        "tokens": sum(a.tokens for a in allocations),
        "makespan_h": makespan,
        "completion": origin + timedelta(hours=makespan),
        "vendors": _shares(pb, runs, sol.replicas, "vendor"),
        "clouds": _shares(pb, runs, sol.replicas, "cloud"),
        "cap_basis": sc.constraints.cap_basis,
        "binding": binding,
        "baselines": baselines,
        "pareto": front,
        "notes": notes,
        "deadline_probability": every,
        "serving": lines,
        "serving_entries": entries,
        "period_days": sc.solver.period_days,
    }


def _evidence(estimate: Estimate) -> dict[str, Any]:
    e = estimate.evidence
    if e is None:
        return {}
    return {
        "evidence": e.to_list(),
        "evidence_summary": e.describe(),
        "extrapolated": e.extrapolated,
    }


def _deadline_odds(
    pb: Problem, cands: Candidates, runs: list[tuple[int, int]]
) -> tuple[list[float | None], float | None]:
    """P(meeting its deadline) per run, and P(all do), under the model's error."""
    odds = []
    for p, s in runs:
        pl = cands.placements[p]
        job = pb.scenario.jobs[pl.job]
        start_h, end_h, _ = pb.span(p, s)
        deadline_h = pb.scenario.deadline_h(job) if job.deadline is not None else None
        chip = pl.estimate.system.chip.id
        odds.append(RunOdds(chip, start_h, end_h - start_h, deadline_h, pl.estimate.error))
    return deadline_odds(odds)


def _reservations(
    pb: Problem,
    cands: Candidates,
    runs: list[tuple[int, int]],
    units: dict[int, int],
    replicas: dict[int, int],
) -> list[Reservation]:
    out = []
    horizon_h = pb.scenario.horizon_h
    for k, u in sorted(units.items()):
        o, tier, per_unit, term_h = pb.reservations[k]
        offer = pb.scenario.offers[o]
        chips = u * offer.chips_per_unit
        cost = u * per_unit
        within = min(term_h, horizon_h)
        used = sum(cands.placements[p].chip_hours for p, _ in runs if int(pb.tier_key[p]) == k)
        z = pb.serving
        if z is not None:
            used += sum(
                n * float(z.chips[i] * z.hours[z.period[i]])
                for i, n in replicas.items()
                if int(z.tier_key[i]) == k
            )
        beyond = cost * max(0.0, term_h - horizon_h) / term_h if math.isfinite(term_h) else 0.0
        out.append(
            Reservation(
                offer=offer.id,
                tier=tier,  # type: ignore[arg-type]
                chips=chips,
                term_days=(term_h if math.isfinite(term_h) else horizon_h) / 24.0,
                cost_usd=cost,
                beyond_horizon_usd=beyond,
                utilization=used / (chips * within) if chips and within else 0.0,
            )
        )
    return out


def _shares(
    pb: Problem, runs: list[tuple[int, int]], replicas: dict[int, int], by: str
) -> list[Share]:
    sc = pb.scenario
    names = pb.vendors if by == "vendor" else pb.clouds
    caps = sc.constraints.vendor_caps if by == "vendor" else sc.constraints.cloud_caps
    spend, compute = pb.shares(runs, by, replicas)
    total_spend, total_compute = float(spend.sum()), float(compute.sum())
    return [
        Share(
            name=name,
            spend_usd=float(spend[i]),
            spend_share=float(spend[i]) / total_spend if total_spend else 0.0,
            h100_hours=float(compute[i]),
            compute_share=float(compute[i]) / total_compute if total_compute else 0.0,
            cap=caps.get(name),
        )
        for i, name in enumerate(names)
        if spend[i] > 0 or compute[i] > 0 or name in caps
    ]
