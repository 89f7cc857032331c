"""Skip the layouts that cannot be among the best few: a floor under each one's step time.

The step time is a sum of non-negative terms (`chipmix.perf.step.StepBreakdown`). Leave out
the ones that depend on the ZeRO stage (the data-parallel reduction, the optimizer) and the
eager stack's extra work, and evaluate the rest without recomputation (a policy only adds
work: forward ops re-run, collectives repeated): what is left is a floor under the step time
of every layout of its group, the layouts that share every other axis (tp, cp, pp, dp, ep,
vpp, micro-batch, offload: `SearchSpace.floor_batch`), found in one evaluation per group
(a group holds 12 to 16 layouts).

Branch and bound on that floor: the layouts of the groups with the lowest floors are checked
and evaluated in full (rules, memory, step time) until ``top`` of them fit; the ``top``-th
best step time among them bounds the answer, and only the groups whose floor is below it can
hold one of the best ``top``. The search evaluates those groups' layouts, in their order in
the whole space (ties break as in the exhaustive search), and ranks exactly what the
exhaustive search ranks first; `tests/test_search_prune.py` checks both, and that the floor
is below every layout's step time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from chipmix.catalog.calibration import Calibration
from chipmix.catalog.system import ResolvedSystem
from chipmix.layouts.space import SearchSpace
from chipmix.perf.memory import MemoryBreakdown, memory_per_chip
from chipmix.perf.stage import Stage, stage
from chipmix.perf.step import StepResult, evaluate, floor_seconds
from chipmix.perf.validity import POLICY_RULES, violations
from chipmix.workload.job import Job

__all__ = ["FLOOR_TERMS", "Checked", "branch_and_bound", "first_reason", "step_floor"]

FLOOR_TERMS = (
    "matmul", "attention", "memory_bound", "recompute", "tp_comm", "cp_comm", "ep_comm",
    "pp_comm", "pipeline_bubble", "overhead",
)  # fmt: skip
"""The step-time terms the floor keeps: none depends on the ZeRO stage, and each is least
without recomputation. Left out: ``dp_comm`` and ``optimizer`` (ZeRO), ``eager``."""

MARGIN = 1e-6
"""Relative slack on the comparison of a floor with a step time (the two sum the same terms
in different orders): a group is skipped only when its floor is clearly above the bound."""

FIRST_GROUPS = 32
GROWTH = 4
"""Groups checked in the first round (the lowest floors), and the growth of the rounds."""


def step_floor(
    job: Job,
    system: ResolvedSystem,
    calibration: Calibration,
    space: SearchSpace,
    topology: bool = True,
) -> NDArray[np.float64]:
    """A floor under the step time of every layout of each group (`floor_batch` row) of
    ``space``: 0 where it is not a finite number; infinite for a group whose layout with
    ZeRO stage 0 and no recomputation breaks a rule (`chipmix.perf.validity`), as every
    layout of the group then does (no rule refuses ZeRO 0 or no recomputation alone:
    `tests/test_search_prune.py`)."""
    return _floor(job, system, calibration, space, topology)[0]


def _floor(
    job: Job,
    system: ResolvedSystem,
    calibration: Calibration,
    space: SearchSpace,
    topology: bool,
) -> tuple[NDArray[np.float64], Stage, NDArray[np.intp]]:
    """`step_floor`, the `stage` of the groups that break no rule, and each group's row of
    that stage (-1 for the others)."""
    groups = space.floor_batch()
    masks = space.floor_violations(topology)
    valid = np.flatnonzero(~np.any(list(masks.values()), axis=0))
    checked = groups.take(valid)
    with np.errstate(all="ignore"):
        found = stage(job, system, calibration, checked)
        seconds = floor_seconds(job, system, calibration, checked, found)
    floor = np.full(len(groups), np.inf)
    floor[valid] = np.where(np.isfinite(seconds), seconds, 0.0)
    row = np.full(len(groups), -1, dtype=np.intp)
    row[valid] = np.arange(len(valid))
    return floor, found, row


def first_reason(masks: Mapping[str, NDArray[np.bool_]], n: int) -> NDArray[np.int64]:
    """Index of the first broken rule per layout (len(masks) where none is broken)."""
    first = np.full(n, len(masks), dtype=np.int64)
    for index, mask in reversed(list(enumerate(masks.values()))):
        first = np.where(mask, index, first)
    return first


@dataclass(frozen=True)
class Checked:
    """The layouts a pruned search checked: the ones that fit, evaluated, and their rows
    of the whole space (``rows``: the order ties break in), and how many of the others
    broke each rule or did not fit."""

    result: StepResult
    rows: NDArray[np.intp]
    rejected: dict[str, int]
    checked: int


def branch_and_bound(
    job: Job,
    system: ResolvedSystem,
    calibration: Calibration,
    space: SearchSpace,
    reserved_gib: float,
    stack: str | None,
    top: int,
    topology: bool,
) -> Checked | None:
    """Check and evaluate the groups of ``space`` in the order of their floors, lowest
    first, until the next floor is above the ``top``-th best step time found: every layout
    that may rank among the best ``top`` is then evaluated. None where the floor does not
    apply (an eager stack) or no layout fits (the exhaustive search says why)."""
    if calibration.for_stack(stack).eager is not None:
        return None
    floor, groups_stage, group_row = _floor(job, system, calibration, space, topology)
    capacity = system.chip.hbm_bytes
    bound = np.inf
    parts: list[tuple[NDArray[np.intp], StepResult]] = []
    counts: dict[str, int] = {}
    steps = np.zeros(0)
    taken = np.zeros(len(floor), dtype=bool)
    size, checked = FIRST_GROUPS, 0
    while True:
        # The ``size`` lowest floors not yet checked, of those that may beat the bound (the
        # groups that break a rule, with infinite floors, last).
        groups = np.flatnonzero(~taken & (floor <= bound * (1.0 + MARGIN)))
        if not len(groups):
            break
        if len(groups) > size:
            groups = groups[np.argpartition(floor[groups], size - 1)[:size]]
        taken[groups] = True
        size *= GROWTH
        rows = space.members(np.sort(groups))
        batch = space.layouts(rows)
        checked += len(rows)
        # The layouts of groups that break no rule can break only a rule that reads the
        # ZeRO stage or the recomputation policy.
        only = POLICY_RULES if np.all(np.isfinite(floor[groups])) else None
        masks = violations(job, system, space.chips, batch, topology=topology, only=only)
        first = first_reason(masks, len(rows))
        for index, n in enumerate(np.bincount(first, minlength=len(masks) + 1)[:-1]):
            reason = list(masks)[index]
            counts[reason] = counts.get(reason, 0) + int(n)
        valid = np.flatnonzero(first == len(masks))
        if not len(valid):
            continue
        # (Most rounds keep every layout, then every one that fits: no copies then.)
        if len(valid) < len(rows):
            batch, rows = batch.take(valid), rows[valid]
        memory = memory_per_chip(job, batch, reserved_gib, stack=stack, capacity_bytes=capacity)
        fits = np.flatnonzero(memory.total <= capacity)
        counts["memory"] = counts.get("memory", 0) + len(rows) - len(fits)
        if not len(fits):
            continue
        if len(fits) < len(rows):
            batch, rows = batch.take(fits), rows[fits]
            memory = MemoryBreakdown(*(getattr(memory, f.name)[fits] for f in fields(memory)))
        # Each layout's group has its stage in the floor's: evaluate builds on it.
        group = group_row[space.floor_rows(rows)]
        assert np.all(group >= 0), "a layout breaks no rule where its group breaks one"
        result = evaluate(job, system, calibration, batch, memory, groups=(groups_stage, group))
        parts.append((rows, result))
        steps = np.concatenate([steps, result.step_time_s])
        if len(steps) >= top:
            bound = float(np.partition(steps, top - 1)[top - 1])
    if not parts:
        return None
    rows = np.concatenate([r for r, _ in parts])
    result = _joined([part for _, part in parts])
    return Checked(result, rows, counts, checked)


def _joined(parts: list[StepResult]) -> StepResult:
    """The parts' rows one after the other."""

    def join(values: list[Any]) -> Any:
        first = values[0]
        if isinstance(first, np.ndarray):
            return np.concatenate(values) if len(values) > 1 else first
        if isinstance(first, dict):
            return {k: join([v[k] for v in values]) for k in first}
        if is_dataclass(first):
            kind: Any = type(first)
            return kind(*(join([getattr(v, f.name) for v in values]) for f in fields(first)))
        return first  # a figure of the job and chip, the same in every part

    return join(parts)  # type: ignore[no-any-return]
