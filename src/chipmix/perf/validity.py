"""Which layouts can run at all: divisibility and topology rules, as masks over a batch.

Each rule is a named reason; the search counts rejected layouts by reason, and `estimate`
turns the first broken rule into a `LayoutError` whose message shows the arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from chipmix.catalog.system import ResolvedSystem
from chipmix.errors import LayoutError
from chipmix.perf.layout import Layout, LayoutBatch
from chipmix.workload.job import Job

__all__ = ["RULES", "Rule", "check_layout", "violations"]

Mask = NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Rule:
    """A named constraint: ``broken`` marks layouts that violate it, ``explain`` says why
    for one layout."""

    reason: str
    broken: Callable[[Job, ResolvedSystem, int, LayoutBatch], Mask]
    explain: Callable[[Job, ResolvedSystem, int, Layout], str]


def _heads(job: Job, b: LayoutBatch) -> Mask:
    m = job.model
    return np.asarray(
        (m.num_heads % b.tp != 0) | ((m.num_kv_heads if m.mla is None else m.num_heads) % b.tp != 0)
    )


def _experts(job: Job, b: LayoutBatch) -> Mask:
    moe = job.model.moe
    if moe is None:
        return np.asarray(b.ep > 1)
    return np.asarray((moe.num_experts % b.ep != 0) | (b.dp % b.ep != 0))


def _experts_why(job: Job, _s: ResolvedSystem, _c: int, x: Layout) -> str:
    moe = job.model.moe
    if moe is None:
        return f"ep={x.ep} but {job.model.name} is a dense model (no experts); use ep=1"
    return (
        f"ep={x.ep} must divide the {moe.num_experts} experts and dp={x.dp} "
        f"(experts are sharded over part of the data-parallel group)"
    )


RULES: tuple[Rule, ...] = (
    Rule(
        "chips",
        lambda j, s, n, b: np.asarray(b.tp * b.pp * b.dp * b.cp != n),
        lambda j, s, n, x: (
            f"tp({x.tp}) × pp({x.pp}) × dp({x.dp}) × cp({x.cp}) = {x.chips} ≠ chips({n})"
        ),
    ),
    Rule(
        "tp_heads",
        lambda j, s, n, b: _heads(j, b),
        lambda j, s, n, x: (
            f"tp={x.tp} must divide the attention heads "
            f"({j.model.num_heads}) and key-value heads "
            f"({j.model.num_kv_heads}) of {j.model.name}"
        ),
    ),
    Rule(
        "tp_domain",
        lambda j, s, n, b: np.asarray(b.tp > s.scaleup_domain_chips),
        lambda j, s, n, x: (
            f"tp={x.tp} exceeds the scale-up domain of {s.id} "
            f"({s.scaleup_domain_chips} chips); tensor parallelism needs the "
            f"fast fabric"
        ),
    ),
    Rule(
        "pp_layers",
        lambda j, s, n, b: np.asarray(
            (b.pp * b.vpp > j.model.num_layers) | ((b.vpp > 1) & (b.pp == 1))
        ),
        lambda j, s, n, x: (
            f"pp={x.pp} × vpp={x.vpp} = {x.pp * x.vpp} virtual stages must not exceed the "
            f"{j.model.num_layers} layers (and vpp > 1 needs pp > 1)"
        ),
    ),
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
)


def violations(
    job: Job, system: ResolvedSystem, chips: int, batch: LayoutBatch, *, topology: bool = True
) -> dict[str, Mask]:
    """For each rule, which layouts of ``batch`` break it (``topology=False`` drops the
    scale-up domain rule, for users who ask for tp beyond it on purpose)."""
    return {
        rule.reason: rule.broken(job, system, chips, batch)
        for rule in RULES
        if topology or rule.reason != "tp_domain"
    }


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
