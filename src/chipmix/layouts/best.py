"""Find the best layouts for a job on a system, or check and evaluate a fixed one, and
price each as an `Estimate`: the work behind `chipmix.search` and `chipmix.estimate`.

Layout axes the caller pins are kept; the search chooses the others (`run_search`). A full
layout is checked by the rules and by memory, and a layout that does not fit is refused
with the numbers. Pricing (time, chip-hours, cost, energy of the run) is
`chipmix.pricing`'s; the stack's name is the calibration's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chipmix.catalog.catalog import Catalog, load_catalog
from chipmix.catalog.offer import PRICE_TIERS, PriceTier
from chipmix.common.units import GIB
from chipmix.errors import InputError, LayoutError, UnknownNameError
from chipmix.layouts.search import run_search
from chipmix.perf.layout import Layout, LayoutBatch
from chipmix.perf.offload import canonical_offload
from chipmix.perf.recompute import canonical_recompute
from chipmix.perf.step import evaluate
from chipmix.perf.validity import check_layout
from chipmix.pricing import run_cost
from chipmix.results import Estimate, SearchResult
from chipmix.uncertainty.evidence import evidence_for
from chipmix.uncertainty.interval import error_model
from chipmix.workload.job import Job
from chipmix.workload.make import make_job
from chipmix.workload.model import ModelSpec

__all__ = ["KNOWN_STACKS", "LAYOUT_AXES", "estimate", "search", "with_uncertainty"]

LAYOUT_AXES = (
    "tp", "pp", "dp", "cp", "ep", "vpp", "micro_batch", "zero", "recompute", "offload",
)  # fmt: skip


def _fixed_axes(layout: dict[str, Any]) -> dict[str, int | str]:
    fixed: dict[str, int | str] = {}
    for axis, value in layout.items():
        if value is None:
            continue
        if axis not in LAYOUT_AXES:
            raise UnknownNameError("layout axis", axis, LAYOUT_AXES)
        if axis == "recompute":
            fixed[axis] = canonical_recompute(str(value))
            continue
        if axis == "offload":
            fixed[axis] = canonical_offload(str(value))
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"layout {axis} must be a whole number (got {value!r})")
        low = 0 if axis == "zero" else 1
        high = 3 if axis == "zero" else 1 << 20
        if not low <= value <= high:
            raise InputError(f"layout {axis} must be between {low} and {high} (got {value})")
        fixed[axis] = value
    return fixed


def _chips(chips: int | None, fixed: dict[str, int | str]) -> int:
    if chips is not None:
        if isinstance(chips, bool) or not isinstance(chips, int) or not 1 <= chips <= 10**7:
            raise InputError(
                f"chips must be a whole number between 1 and 10,000,000 (got {chips!r})"
            )
        return chips
    if all(a in fixed for a in ("tp", "pp", "dp")):
        n = 1
        for a in ("tp", "pp", "dp", "cp"):
            n *= int(fixed.get(a, 1))
        return n
    raise InputError("give the number of chips (--chips N), or a full layout (--tp --pp --dp)")


KNOWN_STACKS = (
    "deepspeed",
    "jax",
    "maxtext",
    "megatron",
    "mlperf-amd",
    "mlperf-google",
    "mlperf-nvidia",
    "nemo",
    "nemo-neuron",
    "neuronx-distributed",
    "torchtitan",
)
"""Software stacks chipmix knows by name; a calibration file may add more."""


def _check_stack(cat: Catalog, stack: str | None) -> None:
    valid = set(KNOWN_STACKS) | set(cat.calibration.stacks)
    if stack is not None and stack not in valid:
        raise UnknownNameError("stack", stack, valid)


def _tier(price_tier: str) -> PriceTier:
    if price_tier not in PRICE_TIERS:
        raise UnknownNameError("price tier", price_tier, PRICE_TIERS)
    return price_tier


def search(
    model: str | ModelSpec,
    system: str,
    chips: int,
    *,
    top: int = 5,
    catalog: Catalog | str | Path | None = None,
    price_tier: str = "on-demand",
    prune: bool = False,
    **job_and_layout: Any,
) -> SearchResult:
    """The best layouts for a job on ``chips`` chips of ``system``, best first.

    ``prune`` skips the layouts that cannot rank among the ``top`` (`run_search`): the
    same estimates, but the counts of feasible and rejected layouts cover only those
    evaluated, and the result's ``layouts`` only the ``top``.

    Keyword arguments are `make_job`'s (mode, seq_len, global_batch, precision, tokens,
    stack) and any layout axes to pin (tp, pp, dp, cp, ep, vpp, micro_batch, zero,
    recompute).
    """
    cat = catalog if isinstance(catalog, Catalog) else load_catalog(catalog)
    _check_stack(cat, job_and_layout.get("stack"))
    layout = {k: job_and_layout.pop(k) for k in list(job_and_layout) if k in LAYOUT_AXES}
    fixed = _fixed_axes(layout)
    job = make_job(model, **job_and_layout)
    resolved = cat.system(system)
    n = _chips(chips, fixed)
    tier = _tier(price_tier)  # bad input is reported before any search
    cat.check_job_size(resolved, n)  # the same limit compare, plan and budget honour
    outcome = run_search(
        job, resolved, n, cat.calibration, fixed, top if prune else None, prune=prune
    )  # every feasible layout unless pruned
    count = min(top, outcome.feasible)
    estimates = []
    for i in range(count):
        tps = float(outcome.result.tokens_per_s[i])
        run = (
            run_cost(cat, resolved, n, tps, job.tokens_per_step, job.tokens) if job.tokens else None
        )
        stack = cat.calibration.stack_name(job.stack, resolved.chip.vendor)
        estimate = Estimate.from_step(job, resolved, outcome.result, i, run, tier, stack)
        estimates.append(with_uncertainty(cat, estimate))
    return SearchResult(
        estimates, outcome.tried, outcome.feasible, outcome.rejected, layouts=outcome.result
    )


def estimate(
    model: str | ModelSpec,
    system: str,
    chips: int | None = None,
    *,
    catalog: Catalog | str | Path | None = None,
    price_tier: str = "on-demand",
    **job_and_layout: Any,
) -> Estimate:
    """Predict one job on one system. Layout axes given are kept; the others are chosen by
    the search (all of them when none is given). A full layout that is invalid or does not
    fit raises `LayoutError` saying why, with the numbers.

    The search is pruned (`chipmix.layouts.prune`): it evaluates only the layouts that can
    be the best, and finds the layout the exhaustive search ranks first, with the same
    numbers; an estimate reports no count of the layouts tried."""
    cat = catalog if isinstance(catalog, Catalog) else load_catalog(catalog)
    _check_stack(cat, job_and_layout.get("stack"))
    layout = {k: v for k, v in job_and_layout.items() if k in LAYOUT_AXES and v is not None}
    if set(layout) >= set(LAYOUT_AXES) - {"offload"}:  # offload defaults to none
        fixed = _fixed_axes(layout)
        job = make_job(model, **{k: v for k, v in job_and_layout.items() if k not in LAYOUT_AXES})
        n = _chips(chips, fixed)
        return _estimate_exact(cat, job, system, n, Layout(**fixed), _tier(price_tier))  # type: ignore[arg-type]
    rest = {k: v for k, v in job_and_layout.items() if k not in LAYOUT_AXES}
    n = _chips(chips, _fixed_axes(layout))
    return search(
        model, system, n, top=1, catalog=cat, price_tier=price_tier, prune=True, **rest, **layout
    ).best  # the exhaustive search's best (tests/test_estimate_pruned.py)


def _estimate_exact(
    cat: Catalog, job: Job, system: str, chips: int, layout: Layout, tier: PriceTier
) -> Estimate:
    resolved = cat.system(system)
    cat.check_job_size(resolved, chips)
    if layout.chips != chips:
        raise LayoutError(
            f"invalid layout: tp({layout.tp}) × pp({layout.pp}) × dp({layout.dp}) × "
            f"cp({layout.cp}) = {layout.chips} ≠ chips({chips})",
            "chips",
        )
    check_layout(job, resolved, layout)
    result = evaluate(job, resolved, cat.calibration, LayoutBatch.of([layout]))
    if not bool(result.fits[0]):
        parts = result.memory.as_gib(0)
        capacity = result.memory_capacity_bytes / GIB
        dominant = max(
            ("weights", "gradients", "optimizer", "activations", "logits"), key=lambda k: parts[k]
        )
        raise LayoutError(
            f"layout {layout} does not fit on {resolved.chip.id}: it needs "
            f"{parts['total']:.1f} GiB per chip, {parts['total'] - capacity:.1f} GiB more than "
            f"the {capacity:.0f} GiB available; the largest term is {dominant} "
            f"({parts[dominant]:.1f} GiB; weights {parts['weights']:.1f}, "
            f"gradients {parts['gradients']:.1f}, optimizer {parts['optimizer']:.1f}, "
            f"activations {parts['activations']:.1f}). "
            f"Try full recomputation, a larger tp/pp, a higher ZeRO stage or more chips.",
            "memory",
        )
    run = (
        run_cost(
            cat, resolved, chips, float(result.tokens_per_s[0]), job.tokens_per_step, job.tokens
        )
        if job.tokens
        else None
    )
    stack = cat.calibration.stack_name(job.stack, resolved.chip.vendor)
    return with_uncertainty(cat, Estimate.from_step(job, resolved, result, 0, run, tier, stack))


def with_uncertainty(cat: Catalog, estimate: Estimate) -> Estimate:
    """The estimate with its evidence class and the distribution of its error
    (`chipmix.uncertainty`)."""
    from dataclasses import replace

    model = error_model()
    evidence = evidence_for(
        model.envelope,
        cat.calibration,
        chip=estimate.system.chip.id,
        stack=estimate.stack,
        precision=estimate.job.precision,
        chips=estimate.chips,
    )
    return replace(estimate, evidence=evidence, error=model.for_evidence(evidence))
