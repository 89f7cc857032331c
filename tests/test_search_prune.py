"""The pruned layout search (`chipmix.layouts.prune`) returns what the exhaustive one does:
the same best layouts with the same predictions, on dense and MoE models, fused and eager
stacks, pinned axes and memory-tight jobs; and its floor is below every layout's step time."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np
import pytest

from chipmix.catalog import load_catalog
from chipmix.catalog.system import ResolvedSystem
from chipmix.errors import InfeasibleError
from chipmix.layouts.prune import FLOOR_TERMS, step_floor
from chipmix.layouts.search import run_search
from chipmix.layouts.space import SearchSpace
from chipmix.perf.stage import stage
from chipmix.perf.step import StepResult, evaluate, floor_seconds
from chipmix.perf.validity import POLICY_RULES, violations
from chipmix.workload.job import Job
from chipmix.workload.make import make_job

CAT = load_catalog()

CASES: list[tuple[str, dict[str, Any], str, int, dict[str, int | str], int]] = [
    # model, job, system, chips, pinned axes, top
    ("qwen3-235b-a22b", {"seq_len": 4096, "global_batch": 4096}, "p5.48xlarge", 2048, {}, 1),
    ("qwen3-235b-a22b", {"seq_len": 4096, "global_batch": 4096}, "tpu-v5p-pod", 2048, {}, 3),
    ("llama3-70b", {"seq_len": 8192, "global_batch": 1024}, "trn2.48xlarge", 256, {}, 1),
    ("llama3.1-405b", {"seq_len": 8192, "global_batch": 2048}, "h100-sxm", 512, {}, 1),
    ("llama3-8b", {"seq_len": 8192, "global_batch": 512}, "tpu-v6e-256", 512, {"zero": 1}, 2),
    ("llama3-8b", {"seq_len": 4096, "global_batch": 256, "stack": "torchtitan"}, "h100-sxm", 64,
     {}, 1),
    ("llama3-8b", {"seq_len": 4096, "global_batch": 256, "stack": "pytorch"}, "h100-sxm", 16,
     {}, 1),  # an eager stack: not pruned
    ("mixtral-8x7b", {"seq_len": 4096, "global_batch": 512}, "azure-nd-mi300x-v5", 256,
     {"recompute": "full"}, 1),
]  # fmt: skip


def _rows(result: StepResult, n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        row: dict[str, Any] = {"layout": result.batch.layout(i)}
        row |= result.breakdown_row(i)
        row |= {f"mem_{f.name}": float(getattr(result.memory, f.name)[i])
                for f in fields(result.memory)}  # fmt: skip
        row |= {k: float(getattr(result, k)[i]) for k in ("step_time_s", "tokens_per_s", "mfu")}
        row["hfu"] = float(result.hfu[i])
        out.append(row)
    return out


@pytest.mark.parametrize(("model", "shape", "system", "chips", "fixed", "top"), CASES)
def test_pruned_search_ranks_the_same_layouts_with_the_same_numbers(
    model: str, shape: dict[str, Any], system: str, chips: int, fixed: dict[str, int | str],
    top: int,
) -> None:  # fmt: skip
    job = make_job(model, **shape)
    resolved = CAT.system(system)
    try:
        full = run_search(job, resolved, chips, CAT.calibration, fixed)
    except InfeasibleError as exc:
        with pytest.raises(type(exc), match="^" + __import__("re").escape(str(exc)) + "$"):
            run_search(job, resolved, chips, CAT.calibration, fixed, top, prune=True)
        return
    pruned = run_search(job, resolved, chips, CAT.calibration, fixed, top, prune=True)
    count = min(top, full.feasible)
    assert _rows(pruned.result, len(pruned.result.batch)) == _rows(full.result, count)
    assert pruned.tried == full.tried
    assert pruned.feasible + sum(pruned.rejected.values()) + pruned.skipped == full.tried


def test_some_search_skips_most_layouts() -> None:
    job = make_job("qwen3-235b-a22b", seq_len=4096, global_batch=4096)
    outcome = run_search(job, CAT.system("p5.48xlarge"), 2048, CAT.calibration, top=1, prune=True)
    assert outcome.skipped > 0.9 * outcome.tried


def _space(
    model: str, shape: dict[str, Any], system: str, chips: int, fixed: dict[str, int | str]
) -> tuple[Job, ResolvedSystem, SearchSpace]:
    """The job, the system and the whole search space of a case."""
    job = make_job(model, **shape)
    resolved = CAT.system(system)
    stack = CAT.calibration.stack_name(job.stack, resolved.chip.vendor)
    return job, resolved, SearchSpace(job, resolved, chips, fixed, stack)


@pytest.mark.parametrize(("model", "shape", "system", "chips", "fixed", "top"), CASES[:5])
def test_the_floor_is_below_every_layouts_step_time(
    model: str, shape: dict[str, Any], system: str, chips: int, fixed: dict[str, int | str],
    top: int,
) -> None:  # fmt: skip
    job, resolved, space = _space(model, shape, system, chips, fixed)
    batch = space.batch()
    masks = violations(job, resolved, chips, batch, topology="tp" not in fixed)
    rows = np.flatnonzero(~np.any(np.stack(list(masks.values())), axis=0))
    floor = step_floor(job, resolved, CAT.calibration, space)[space.floor_rows(rows)]
    step = evaluate(job, resolved, CAT.calibration, batch.take(rows)).step_time_s
    assert np.all(floor <= step * (1.0 + 1e-12))


@pytest.mark.parametrize(
    "fixed", [{}, {"offload": "optimizer"}, {"zero": 3}, {"recompute": "full"}]
)
def test_the_groups_partition_the_space(fixed: dict[str, int | str]) -> None:
    job = make_job("qwen3-235b-a22b", seq_len=4096, global_batch=4096)
    system = CAT.system("p5.48xlarge")
    space = SearchSpace(job, system, 256, fixed, "megatron")
    batch, groups = space.batch(), space.floor_batch()
    rows = np.arange(len(batch))
    assert space.size() == len(batch)
    group = space.floor_rows(rows)
    for axis in ("tp", "pp", "dp", "cp", "ep", "vpp", "micro_batch", "offload"):
        assert np.array_equal(getattr(batch, axis), getattr(groups, axis)[group])
    some = np.array([0, 3, len(groups) // 2, len(groups) - 1])
    members = space.members(some)
    assert np.array_equal(members, np.flatnonzero(np.isin(group, some)))
    picked = space.layouts(members)
    for axis in ("tp", "pp", "dp", "cp", "ep", "vpp", "micro_batch", "zero", "recompute"):
        assert np.array_equal(getattr(picked, axis), getattr(batch, axis)[members])


@pytest.mark.parametrize(
    ("model", "stack", "fixed"),
    [
        ("qwen3-235b-a22b", "megatron", {}),
        ("llama3-70b", "maxtext", {}),
        ("llama3-8b", "neuronx-distributed", {}),
        ("llama3-8b", "torchtitan", {"offload": "optimizer"}),
        ("mixtral-8x7b", "megatron", {"recompute": "full", "zero": 3}),
    ],
)
def test_a_group_breaks_a_rule_only_where_every_layout_of_it_does(
    model: str, stack: str, fixed: dict[str, int | str]
) -> None:
    # The pruned search never checks a group whose layout with ZeRO 0 and no
    # recomputation breaks a rule: no rule may refuse ZeRO 0 or no recomputation alone.
    job = make_job(model, seq_len=4096, global_batch=512, stack=stack)
    system = CAT.system("h100-sxm")
    space = SearchSpace(job, system, 512, fixed, stack)
    batch, groups = space.batch(), space.floor_batch()
    broken = np.any(list(violations(job, system, 512, batch).values()), axis=0)
    group_broken = np.any(list(violations(job, system, 512, groups).values()), axis=0)
    members_of_broken = group_broken[space.floor_rows(np.arange(len(batch)))]
    assert np.all(broken[members_of_broken])


@pytest.mark.parametrize(("model", "shape", "system", "chips", "fixed", "top"), CASES[:6])
def test_the_floor_is_the_step_models_own_terms(
    model: str, shape: dict[str, Any], system: str, chips: int, fixed: dict[str, int | str],
    top: int,
) -> None:  # fmt: skip
    # `floor_seconds` stops the step model before the ZeRO-dependent terms: the same sum,
    # to the last bit, as adding up `FLOOR_TERMS` of the whole evaluation.
    job, resolved, space = _space(model, shape, system, chips, fixed)
    groups = space.floor_batch()
    groups = groups.take(np.arange(min(len(groups), 3000)))
    whole = evaluate(job, resolved, CAT.calibration, groups).breakdown
    summed = np.asarray(sum(getattr(whole, term) for term in FLOOR_TERMS))
    assert np.array_equal(floor_seconds(job, resolved, CAT.calibration, groups), summed)


@pytest.mark.parametrize(("model", "shape", "system", "chips", "fixed", "top"), CASES[:6])
def test_a_groups_layouts_evaluated_on_its_stage_are_the_same_to_the_last_bit(
    model: str, shape: dict[str, Any], system: str, chips: int, fixed: dict[str, int | str],
    top: int,
) -> None:  # fmt: skip
    # `evaluate(groups=...)` builds each layout's stage on its group's (`perf.stage.members`):
    # every figure the same as evaluating the layouts on their own.
    job, resolved, space = _space(model, shape, system, chips, fixed)
    groups = space.floor_batch()
    some = np.arange(0, len(groups), max(len(groups) // 200, 1))
    rows = space.members(some)
    batch = space.layouts(rows)
    found = stage(job, resolved, CAT.calibration, groups.take(some))
    group = np.searchsorted(some, space.floor_rows(rows))
    alone = evaluate(job, resolved, CAT.calibration, batch)
    built = evaluate(job, resolved, CAT.calibration, batch, groups=(found, group))
    for name in ("step_time_s", "tokens_per_s", "mfu", "hfu"):
        assert np.array_equal(getattr(built, name), getattr(alone, name))
    for f in fields(alone.breakdown):
        assert np.array_equal(getattr(built.breakdown, f.name), getattr(alone.breakdown, f.name))


@pytest.mark.parametrize(
    ("model", "stack", "fixed"),
    [
        ("qwen3-235b-a22b", "megatron", {}),
        ("llama3-70b", "maxtext", {}),
        ("llama3-8b", "torchtitan", {"offload": "optimizer"}),
    ],
)
def test_only_the_policy_rules_read_the_zero_stage_or_the_recomputation(
    model: str, stack: str, fixed: dict[str, int | str]
) -> None:
    # The pruned search checks a group's layouts against `POLICY_RULES` alone: every other
    # rule answers for a layout what it answers for its group's (ZeRO 0, no recomputation).
    job = make_job(model, seq_len=4096, global_batch=512, stack=stack)
    system = CAT.system("h100-sxm")
    space = SearchSpace(job, system, 512, fixed, stack)
    batch, groups = space.batch(), space.floor_batch()
    group = space.floor_rows(np.arange(len(batch)))
    mine = violations(job, system, 512, batch)
    theirs = violations(job, system, 512, groups)
    for reason, mask in mine.items():
        if reason not in POLICY_RULES:
            assert np.array_equal(mask, theirs[reason][group]), reason


@pytest.mark.parametrize(("model", "shape", "system", "chips", "fixed", "top"), CASES)
def test_the_groups_rules_checked_once_per_degrees_are_the_same(
    model: str, shape: dict[str, Any], system: str, chips: int, fixed: dict[str, int | str],
    top: int,
) -> None:  # fmt: skip
    job, resolved, space = _space(model, shape, system, chips, fixed)
    for topology in (True, False):
        mine = space.floor_violations(topology)
        whole = violations(job, resolved, chips, space.floor_batch(), topology=topology)
        assert list(mine) == list(whole)
        for reason, mask in whole.items():
            assert np.array_equal(mine[reason], mask), reason
