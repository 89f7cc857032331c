"""Skip the layouts that cannot be among the best few: a floor under each one's step time.

The step time is a sum of non-negative terms (`chipmix.perf.step.StepBreakdown`). Leave out
the ones that depend on the ZeRO stage (the data-parallel reduction, the optimizer) and the
eager stack's extra work, and evaluate the rest without recomputation (a policy only adds
work: forward ops re-run, collectives repeated): what is left is a floor under the step time
of every layout that shares the other axes (tp, cp, pp, dp, ep, vpp, micro-batch, offload),
found in one evaluation per such group, about 16x fewer than the layouts.

Branch and bound on that floor: the layouts with the lowest floors are evaluated in full
(memory and step time) until ``top`` of them fit; the ``top``-th best step time among them
bounds the answer, and only the layouts whose floor is below it can rank among the best
``top``. The search evaluates those (in their original order, so ties break as in the
exhaustive search) and returns exactly what the exhaustive search returns for its first
``top`` rows; `tests/test_search_prune.py` checks both, and that the floor is below every
layout's step time.
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np
from numpy.typing import NDArray

from chipmix.catalog.calibration import Calibration
from chipmix.catalog.system import ResolvedSystem
from chipmix.layouts.space import SearchSpace
from chipmix.perf.layout import LayoutBatch
from chipmix.perf.memory import MemoryBreakdown, memory_per_chip
from chipmix.perf.step import StepBreakdown, evaluate
from chipmix.workload.job import Job

__all__ = ["FLOOR_TERMS", "step_floor", "worth_evaluating"]

FLOOR_TERMS = (
    "matmul", "attention", "memory_bound", "recompute", "tp_comm", "cp_comm", "ep_comm",
    "pp_comm", "pipeline_bubble", "overhead",
)  # fmt: skip
"""The step-time terms the floor keeps: none depends on the ZeRO stage, and each is least
without recomputation. Left out: ``dp_comm`` and ``optimizer`` (ZeRO), ``eager``."""

MARGIN = 1e-6
"""Relative slack on the comparison of a floor with a step time (the two sum the same terms
in different orders): a layout is skipped only when its floor is clearly above the bound."""

FIRST_ROUND = 512
"""Layouts with the lowest floors evaluated in full to find the bound (8x more each round
in which fewer than ``top`` of them fit in memory)."""


def _zero_memory(n: int) -> MemoryBreakdown:
    zero = np.zeros(n)
    return MemoryBreakdown(zero, zero, zero, zero, zero, zero)


def step_floor(
    job: Job,
    system: ResolvedSystem,
    calibration: Calibration,
    space: SearchSpace,
    rows: NDArray[np.intp],
) -> NDArray[np.float64]:
    """A floor under the step time of each layout ``rows`` of ``space.batch()``."""
    floor_batch, group = space.floor_batch()
    needed = np.zeros(len(floor_batch), dtype=np.bool_)
    needed[group[rows]] = True
    which = np.flatnonzero(needed)
    compact = np.cumsum(needed) - 1
    result = evaluate(job, system, calibration, floor_batch.take(which), _zero_memory(len(which)))
    breakdown: StepBreakdown = result.breakdown
    floor = np.asarray(sum(getattr(breakdown, term) for term in FLOOR_TERMS))
    return np.asarray(floor[compact[group[rows]]])


def worth_evaluating(
    job: Job,
    system: ResolvedSystem,
    calibration: Calibration,
    space: SearchSpace,
    batch: LayoutBatch,
    rows: NDArray[np.intp],
    reserved_gib: float,
    stack: str | None,
    top: int,
) -> NDArray[np.intp] | None:
    """The positions in ``rows`` (valid layouts of ``batch``, `space`'s batch) of the layouts
    that may rank among the best ``top``, in order; None when every one may (an eager
    stack, or fewer than ``top`` layouts fit in memory)."""
    if calibration.for_stack(stack).eager is not None or len(rows) <= FIRST_ROUND:
        return None
    floor = step_floor(job, system, calibration, space, rows)
    order = np.argsort(floor, kind="stable")
    size = FIRST_ROUND
    capacity = system.chip.hbm_bytes
    while True:
        probe = batch.take(rows[order[:size]])
        memory = memory_per_chip(job, probe, reserved_gib, stack=stack, capacity_bytes=capacity)
        fits = np.flatnonzero(memory.total <= capacity)
        if len(fits) >= top:
            break
        if size >= len(rows):
            return None
        size *= 8
    fitting = MemoryBreakdown(*(getattr(memory, f.name)[fits] for f in fields(memory)))
    steps = evaluate(job, system, calibration, probe.take(fits), fitting).step_time_s
    bound = float(np.partition(steps, top - 1)[top - 1])
    return np.flatnonzero(floor <= bound * (1.0 + MARGIN))
