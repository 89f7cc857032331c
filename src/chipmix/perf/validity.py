"""Which layouts can run at all: divisibility and topology rules, as masks over a batch.

Each rule is a named reason; the search counts rejected layouts by reason, and `estimate`
turns the first broken rule into a `LayoutError` whose message shows the arithmetic. Rules
follow what the job's stack accepts (`chipmix.perf.stacks`) and name the stack that allows
what another refuses; a job without a known stack gets every layout some stack runs.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from chipmix.catalog.system import ResolvedSystem
from chipmix.errors import LayoutError
from chipmix.perf.layout import Layout, LayoutBatch
from chipmix.perf.recompute import policy_by_code, policy_code
from chipmix.perf.stacks import stack_traits
from chipmix.workload.job import Job

__all__ = ["DEGREE_RULES", "POLICY_RULES", "RULES", "Rule", "check_layout", "violations"]

Mask = NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Rule:
    """A named constraint: ``broken`` marks layouts that violate it, ``explain`` says why
    for one layout."""

    reason: str
    broken: Callable[[Job, ResolvedSystem, int, LayoutBatch], Mask]
    explain: Callable[[Job, ResolvedSystem, int, Layout], str]


def _heads(job: Job, b: LayoutBatch) -> Mask:
    """Query heads split over tp; KV heads split too, or — where the stack replicates them
    (Megatron-Core query groups, NeuronX Distributed's kv_size_multiplier) — each group
    of ``tp / kv`` ranks shares one KV head."""
    m = job.model
    kv = m.num_kv_heads if m.mla is None else m.num_heads
    split = kv % b.tp == 0
    if stack_traits(job.stack).kv_replication:
        split = split | (b.tp % kv == 0)
    return np.asarray((m.num_heads % b.tp != 0) | ~split)


def _heads_why(job: Job, _s: ResolvedSystem, _c: int, x: Layout) -> str:
    m = job.model
    kv = m.num_kv_heads if m.mla is None else m.num_heads
    if m.num_heads % x.tp:
        return f"tp={x.tp} must divide the {m.num_heads} attention heads of {m.name}"
    family = stack_traits(job.stack).family
    if stack_traits(job.stack).kv_replication:
        return (
            f"tp={x.tp} must divide the {kv} key-value heads of {m.name} or be a multiple "
            f"of them (KV heads replicated)"
        )
    return (
        f"tp={x.tp} must divide the {kv} key-value heads of {m.name}: {family} does not "
        f"replicate KV heads (Megatron-Core and NeuronX Distributed do)"
    )


def _experts(job: Job, b: LayoutBatch) -> Mask:
    """Experts over ep ranks inside dp, or — Megatron-Core MoE parallel folding — over
    the tp × cp × dp ranks of a stage."""
    moe = job.model.moe
    if moe is None:
        return np.asarray(b.ep > 1)
    inside = b.dp % b.ep == 0
    if stack_traits(job.stack).ep_folding:
        inside = inside | ((b.tp * b.cp * b.dp) % b.ep == 0)
    return np.asarray((moe.num_experts % b.ep != 0) | ~inside)


def _experts_why(job: Job, _s: ResolvedSystem, _c: int, x: Layout) -> str:
    moe = job.model.moe
    if moe is None:
        return f"ep={x.ep} but {job.model.name} is a dense model (no experts); use ep=1"
    if moe.num_experts % x.ep:
        return f"ep={x.ep} must divide the {moe.num_experts} experts"
    traits = stack_traits(job.stack)
    if traits.ep_folding:
        return (
            f"ep={x.ep} must divide tp × cp × dp = {x.tp * x.cp * x.dp} "
            f"(experts folded over the stage's ranks, Megatron-Core MoE parallel folding)"
        )
    return (
        f"ep={x.ep} must divide dp={x.dp}: {traits.family} shards experts over part of the "
        f"data-parallel group only (Megatron-Core folds them over tp × dp)"
    )


def _stages(job: Job, b: LayoutBatch) -> Mask:
    """At most one layer per virtual stage, or L + 2 slots with the embedding and loss
    counted as layers (Megatron-Core --account-for-embedding/loss-in-pipeline-split);
    stacks without uneven stages need ``pp · vpp`` to divide the layers."""
    layers = job.model.num_layers
    virtual = b.pp * b.vpp
    fits = (virtual <= layers) | ((virtual <= layers + 2) & ((layers + 2) % virtual == 0))
    if not stack_traits(job.stack).uneven_pipeline:
        fits = fits & (layers % virtual == 0)
    return np.asarray(~fits | ((b.vpp > 1) & (b.pp == 1)))


def _stages_why(job: Job, _s: ResolvedSystem, _c: int, x: Layout) -> str:
    layers = job.model.num_layers
    traits = stack_traits(job.stack)
    if x.vpp > 1 and x.pp == 1:
        return f"vpp={x.vpp} needs pp > 1"
    if traits.uneven_pipeline or layers % (x.pp * x.vpp) == 0:
        return (
            f"pp={x.pp} × vpp={x.vpp} = {x.pp * x.vpp} virtual stages must not exceed the "
            f"{layers} layers (+2 when the embedding and loss count as stages)"
        )
    return (
        f"pp={x.pp} × vpp={x.vpp} = {x.pp * x.vpp} must divide the {layers} layers: "
        f"{traits.family} splits layers evenly (Megatron-Core allows uneven first/last stages)"
    )


def _policy_stack(job: Job, b: LayoutBatch) -> Mask:
    """Megatron-Core module lists run on Megatron stacks, MaxText remat policies on MaxText,
    Transformer Engine activation offload on Megatron; the generic policies everywhere."""
    family = stack_traits(job.stack).family
    codes = np.asarray(b.recompute)
    present = np.flatnonzero(np.bincount(codes, minlength=1))
    bad = np.array([policy_by_code(int(c)).stack not in ("any", family) for c in present])
    wrong = bad[np.searchsorted(present, codes)] if family != "pytorch" else codes < 0
    activations_offload = b.offload_codes >= 2
    if family == "maxtext":
        wrong = wrong | activations_offload
    return np.asarray(wrong)


def _policy_why(job: Job, _s: ResolvedSystem, _c: int, x: Layout) -> str:
    family = stack_traits(job.stack).family
    policy = policy_by_code(policy_code(x.recompute))
    if policy.stack not in ("any", family):
        return (
            f"recompute {x.recompute!r} is a {policy.stack} policy; {family} does not run it "
            f"(use none, selective, full or one of {family}'s own)"
        )
    return (
        f"offload {x.offload!r} is Transformer Engine's activation offload (Megatron); "
        f"{family} offloads named tensors through its remat policy (custom:…=offload)"
    )


RULES: tuple[Rule, ...] = (
    Rule(
        "chips",
        lambda j, s, n, b: np.asarray(b.tp * b.pp * b.dp * b.cp != n),
        lambda j, s, n, x: (
            f"tp({x.tp}) × pp({x.pp}) × dp({x.dp}) × cp({x.cp}) = {x.chips} ≠ chips({n})"
        ),
    ),
    Rule("tp_heads", lambda j, s, n, b: _heads(j, b), _heads_why),
    Rule(
        "tp_domain",
        lambda j, s, n, b: np.asarray(b.tp > s.scaleup_domain_chips),
        lambda j, s, n, x: (
            f"tp={x.tp} exceeds the scale-up domain of {s.id} "
            f"({s.scaleup_domain_chips} chips); tensor parallelism needs the "
            f"fast fabric"
        ),
    ),
    Rule("pp_layers", lambda j, s, n, b: _stages(j, b), _stages_why),
    Rule(
        "batch",
        lambda j, s, n, b: np.asarray(j.global_batch % (b.dp * b.micro_batch) != 0),
        lambda j, s, n, x: (
            f"global batch {j.global_batch} is not a multiple of "
            f"dp({x.dp}) × micro_batch({x.micro_batch}) = "
            f"{x.dp * x.micro_batch}"
        ),
    ),
    Rule(
        "interleave_batch",
        lambda j, s, n, b: np.asarray(
            (b.vpp > 1) & ((j.global_batch // np.maximum(b.dp * b.micro_batch, 1)) % b.pp != 0)
        ),
        lambda j, s, n, x: (
            f"the interleaved schedule (vpp={x.vpp}) needs the "
            f"{j.global_batch // max(x.dp * x.micro_batch, 1)} micro-batches "
            f"to be a multiple of pp={x.pp}"
        ),
    ),
    Rule(
        "cp_seq",
        lambda j, s, n, b: np.asarray((b.cp > 1) & (j.seq_len % (2 * b.cp) != 0)),
        lambda j, s, n, x: (
            f"seq_len {j.seq_len} must split into 2 × cp = {2 * x.cp} "
            f"equal chunks for load-balanced context parallelism"
        ),
    ),
    Rule("ep", lambda j, s, n, b: _experts(j, b), _experts_why),
    Rule("recompute_stack", lambda j, s, n, b: _policy_stack(j, b), _policy_why),
)


def violations(
    job: Job,
    system: ResolvedSystem,
    chips: int,
    batch: LayoutBatch,
    *,
    topology: bool = True,
    only: Collection[str] | None = None,
) -> dict[str, Mask]:
    """For each rule, which layouts of ``batch`` break it (``topology=False`` drops the
    scale-up domain rule, for users who ask for tp beyond it on purpose; ``only`` keeps the
    rules of those reasons)."""
    return {
        rule.reason: rule.broken(job, system, chips, batch)
        for rule in RULES
        if (topology or rule.reason != "tp_domain") and (only is None or rule.reason in only)
    }


DEGREE_RULES = ("chips", "tp_heads", "tp_domain", "cp_seq", "ep")
"""The rules that read a layout's degrees alone (tp, pp, dp, cp, ep): a search checks
them once per combination of degrees (`chipmix.layouts.space.SearchSpace`)."""

POLICY_RULES = ("recompute_stack",)
"""The rules that read a layout's ZeRO stage or recomputation policy; every other rule
gives a layout the answer it gives the same layout with ZeRO 0 and no recomputation
(`tests/test_search_prune.py`)."""


def check_layout(job: Job, system: ResolvedSystem, layout: Layout) -> None:
    """Raise `LayoutError` naming the first rule ``layout`` breaks on ``layout.chips``."""
    batch = LayoutBatch.of([layout])
    for rule in RULES:
        if rule.reason == "tp_domain":
            continue
        if bool(rule.broken(job, system, layout.chips, batch)[0]):
            raise LayoutError(
                f"invalid layout: {rule.explain(job, system, layout.chips, layout)}", rule.reason
            )
