"""Find the best layouts: generate, prune by the rules and by memory, rank by throughput."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from dataclasses import fields as dc_fields

import numpy as np
from numpy.typing import NDArray

from chipmix.catalog.calibration import Calibration
from chipmix.catalog.system import ResolvedSystem
from chipmix.common.units import GIB
from chipmix.errors import InfeasibleError, LayoutError
from chipmix.layouts.prune import branch_and_bound, first_reason
from chipmix.layouts.space import SearchSpace
from chipmix.perf.layout import Layout, LayoutBatch
from chipmix.perf.memory import memory_per_chip
from chipmix.perf.step import StepResult, evaluate
from chipmix.perf.validity import RULES, violations
from chipmix.workload.job import Job

__all__ = ["SearchOutcome", "run_search"]


@dataclass(frozen=True)
class SearchOutcome:
    """The ranked feasible layouts and what happened to the rest."""

    result: StepResult
    """Predictions for the best feasible layouts (all of them, or the ``top`` asked
    for), best first."""
    tried: int
    feasible: int
    """Layouts that pass every rule and fit in memory."""
    rejected: dict[str, int] = field(default_factory=dict)
    """Layouts rejected, by the first reason that rules them out ("memory" last)."""
    skipped: int = 0
    """Layouts never checked nor evaluated: their step time cannot rank them among the
    ``top`` asked for (``prune``; they count in neither ``feasible`` nor ``rejected``)."""

    def layout(self, rank: int = 0) -> Layout:
        return self.result.batch.layout(rank)


def run_search(
    job: Job,
    system: ResolvedSystem,
    chips: int,
    calibration: Calibration,
    fixed: Mapping[str, int | str] | None = None,
    top: int | None = None,
    *,
    prune: bool = False,
) -> SearchOutcome:
    """Evaluate every layout of the space (with ``fixed`` axes pinned) and rank the
    feasible ones by tokens/s, then by memory headroom; keep the best ``top`` (all when
    None). Raises `LayoutError` when none is feasible, naming the constraint that rules
    them all out.

    Memory is checked before the step time: `perf.memory.memory_per_chip` is cheap next to
    `perf.step.evaluate`, and only the layouts that fit are timed (about half, typically).
    """
    fixed = dict(fixed or {})
    stack = calibration.stack_name(job.stack, system.chip.vendor)
    space = SearchSpace(job, system, chips, fixed, stack)
    topology = "tp" not in fixed
    reserved = calibration.for_chip(system.chip.id).memory_reserved_gib
    tried = space.size()
    if prune and top is not None:
        found = branch_and_bound(job, system, calibration, space, reserved, stack, top, topology)
        if found is not None:
            rejected = {k: v for k, v in found.rejected.items() if v}
            skipped = tried - found.checked
            return _ranked(found.result, top, tried, rejected, skipped, found.rows)
    batch = space.batch()
    masks = violations(job, system, chips, batch, topology=topology)
    first = first_reason(masks, tried)
    valid = first == len(masks)
    counts = np.bincount(first, minlength=len(masks) + 1)
    rejected = {reason: int(counts[i]) for i, reason in enumerate(masks)}

    candidates = batch.take(np.flatnonzero(valid))
    memory = memory_per_chip(
        job, candidates, reserved, stack=stack, capacity_bytes=system.chip.hbm_bytes
    )
    fits = memory.total <= system.chip.hbm_bytes
    rejected["memory"] = int(np.sum(~fits))
    rejected = {k: v for k, v in rejected.items() if v}

    if not np.any(fits):
        result = evaluate(job, system, calibration, candidates)
        raise _explain_none(job, system, chips, batch, masks, first, result, fixed)

    keep = np.flatnonzero(fits)
    kept_memory = type(memory)(*(getattr(memory, f.name)[keep] for f in dc_fields(memory)))
    result = evaluate(job, system, calibration, candidates.take(keep), kept_memory)
    # The step model reports memory the same way; a mismatch would mis-rank silently.
    assert bool(np.all(result.fits)), "perf.step and perf.memory disagree on memory"
    return _ranked(result, top, tried, rejected, 0)


def _ranked(
    result: StepResult,
    top: int | None,
    tried: int,
    rejected: dict[str, int],
    skipped: int,
    rows: NDArray[np.intp] | None = None,
) -> SearchOutcome:
    """The feasible layouts ``result`` by tokens/s, then by memory headroom, then by their
    rows of the space (``rows``; None: ``result`` is in the space's order)."""
    headroom = result.memory_capacity_bytes - result.memory.total
    keys = (-headroom, -result.tokens_per_s)
    order = np.lexsort(keys if rows is None else (rows, *keys))
    return SearchOutcome(_take(result, order[:top]), tried, len(order), rejected, skipped)


def _take(result: StepResult, order: NDArray[np.intp]) -> StepResult:
    def pick(obj: object) -> object:
        return type(obj)(*(getattr(obj, f.name)[order] for f in dc_fields(obj)))  # type: ignore[arg-type]

    return StepResult(
        batch=result.batch.take(order),
        breakdown=pick(result.breakdown),  # type: ignore[arg-type]
        memory=pick(result.memory),  # type: ignore[arg-type]
        step_time_s=result.step_time_s[order],
        tokens_per_s=result.tokens_per_s[order],
        mfu=result.mfu[order],
        hfu=result.hfu[order],
        memory_capacity_bytes=result.memory_capacity_bytes,
        model_flops_per_token=result.model_flops_per_token,
        eager_terms={k: v[order] for k, v in result.eager_terms.items()},
    )


def _explain_none(
    job: Job,
    system: ResolvedSystem,
    chips: int,
    batch: LayoutBatch,
    masks: Mapping[str, NDArray[np.bool_]],
    first: NDArray[np.int64],
    result: StepResult,
    fixed: Mapping[str, int | str],
) -> InfeasibleError:
    """Say which constraint rules out every layout, with the numbers."""
    model = job.model
    capacity = result.memory_capacity_bytes
    if len(result.batch):  # some layouts pass the rules; memory rules them all out
        best = int(np.argmin(result.memory.total))
        parts = result.memory.as_gib(best)
        static_total = model.num_params() * 18.0 if job.mode != "lora" else model.num_params() * 2.0
        if static_total / chips > capacity:
            return LayoutError(
                f"{model.name} needs {static_total / 2**40:.2f} TiB for weights, gradients "
                f"and optimizer state alone ({job.mode}); {chips} × {system.chip.id} hold "
                f"{chips * capacity / 2**40:.2f} TiB. Use more chips (at least "
                f"{int(np.ceil(static_total / capacity))}) or a larger-memory chip.",
                "memory",
            )
        dominant = max(
            ("weights", "gradients", "optimizer", "activations", "logits"), key=lambda k: parts[k]
        )
        return LayoutError(
            f"no layout of {model.name} fits on {chips} × {system.chip.id} "
            f"({capacity / GIB:.0f} GiB each): the leanest, {result.batch.layout(best)}, "
            f"needs {parts['total']:.1f} GiB per chip, {parts['total'] - capacity / GIB:.1f} "
            f"GiB too many; the largest term is {dominant} ({parts[dominant]:.1f} GiB). Try more "
            f"chips, a shorter sequence or a smaller micro-batch.",
            "memory",
        )
    if len(batch) == 0:
        pinned = ", ".join(f"{k}={v}" for k, v in fixed.items()) or "none"
        return LayoutError(
            f"no layout of {chips} chips can be formed for {model.name} on {system.id} "
            f"(pinned axes: {pinned}): tp must be a power of two dividing the "
            f"{model.num_kv_heads} key-value heads within the scale-up domain of "
            f"{system.scaleup_domain_chips}, and the degrees must multiply to {chips}",
            "chips",
        )
    counts = np.bincount(first, minlength=len(masks))
    # The rule that stops the candidates which pass the most rules: the one to change (a
    # pinned axis makes many candidates break an arithmetic rule first; that is not news).
    worst = int(first[first < len(masks)].max())
    example = batch.layout(int(np.flatnonzero(first == worst)[0]))
    rule = next(r for r in RULES if r.reason == list(masks)[worst])
    return LayoutError(
        f"no valid layout of {model.name} on {chips} × {system.chip.id}: "
        f"{rule.explain(job, system, chips, example)} (rules out {counts[worst]} of "
        f"{len(batch)} candidates)",
        rule.reason,
    )
