"""The forward work a recomputation policy repeats in the backward pass: time and FLOPs.

Each policy (`chipmix.perf.recompute`) names the forward ops it runs again; their time is
the same roofline time as the first forward (GEMMs by name, the attention core, the
elementwise ops by kind), and their FLOPs are what HFU adds to MFU (Korthikanti et al.
2022, arXiv 2205.05198, §5: full recomputation adds a forward pass, selective adds the
attention core). Re-running a projection under tensor/sequence parallelism repeats its
all-gather or reduce-scatter; re-running the MoE dispatch repeats its all-to-all.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from chipmix.perf.layout import Layout, LayoutBatch
from chipmix.perf.ops import LayerWork, layer_work
from chipmix.perf.recompute import policy_by_code
from chipmix.perf.roofline import ChipRates
from chipmix.workload.job import Job
from chipmix.workload.model import ModelSpec

__all__ = [
    "ELEMENTWISE_OPS",
    "GEMM_OPS",
    "op_times",
    "recompute_flops_per_token",
    "rerun_comm",
    "rerun_time",
]

Array = NDArray[np.float64]

GEMM_OPS: dict[str, str] = {
    "qkv": "qkv", "q": "qkv", "q_down": "qkv", "kv_down": "qkv", "q_up": "mla_up",
    "kv_up": "mla_up", "attn_out": "out_proj", "mlp_in": "fc1", "mlp_out": "fc2",
    "router": "router", "shared_in": "shared", "shared_out": "shared",
    "experts_in": "experts", "experts_out": "experts",
}  # fmt: skip
"""Which op each GEMM of `chipmix.perf.ops` belongs to."""
ELEMENTWISE_OPS = {"norm": "norm", "rope": "rope", "act": "act", "moe_act": "moe_act"}
"""Elementwise parts of `chipmix.perf.ops` by op; dropout goes with the norms."""


def _op(model: ModelSpec, op: str) -> str:
    """A model given without MLA latents has its up-projection in the QKV GEMM."""
    return "qkv" if op == "mla_up" and model.mla is None else op


def op_times(
    model: ModelSpec, work: LayerWork, rates: ChipRates, attention: ChipRates
) -> dict[str, Array]:
    """Forward seconds of each op of one layer (one micro-batch), per layout."""
    zero = np.zeros_like(work.attention_flops)
    out: dict[str, Array] = {}
    for g in work.gemms:
        op = _op(model, GEMM_OPS.get(g.name, "qkv"))
        out[op] = out.get(op, zero) + rates.gemm_time(g.m, g.k, g.n) * g.count
    for part, bytes_ in work.elementwise_parts.items():
        op = ELEMENTWISE_OPS.get(part, "norm")
        out[op] = out.get(op, zero) + rates.memory_time(bytes_)
    out["attn"] = attention.attention_time(work.attention_flops) + attention.memory_time(
        work.attention_score_bytes
    )
    return out


def _runs(model: ModelSpec, code: int) -> set[str]:
    """The ops of `op_times` a policy re-runs (rotary goes with the projection it follows)."""
    ops = {_op(model, op) for op in policy_by_code(code).rerun}
    return ops | ({"rope"} if ops & {"qkv", "mla_up"} else set())


def rerun_time(
    batch: LayoutBatch,
    model: ModelSpec,
    times: dict[str, Array],
    rows: NDArray[np.intp] | None = None,
) -> Array:
    """Seconds of forward work each layout's policy repeats for one layer: ``times`` per
    layout, or per distinct layer shape with each layout's row among them (``rows``)."""
    codes = np.asarray(batch.recompute)
    present = np.flatnonzero(np.bincount(codes, minlength=1))
    rerun = [_runs(model, int(c)) for c in present]
    total = np.zeros(len(codes))
    if not any(rerun):  # no layout re-runs anything (the floor's batches)
        return total
    index = np.searchsorted(present, codes)
    if rows is not None:
        # Each policy's sum per shape, looked up once per layout: the same additions in the
        # same order (the ops a policy does not re-run add 0).
        table = np.zeros((len(present), len(next(iter(times.values())))))
        for k, ops in enumerate(rerun):
            for op, seconds in times.items():
                if op in ops:
                    table[k] += seconds
        return np.asarray(table[index, rows])
    for op, seconds in times.items():
        runs = np.array([op in ops for ops in rerun])
        if runs.any():
            total += np.where(runs[index], seconds, 0.0)
    return total


def rerun_comm(batch: LayoutBatch, moe_layer: bool) -> tuple[Array, Array]:
    """Per layer: extra tensor-parallel collectives and extra all-to-all pairs repeated."""
    codes = np.asarray(batch.recompute)
    present = np.flatnonzero(np.bincount(codes, minlength=1))
    index = np.searchsorted(present, codes)
    tp_extra = np.zeros(len(present))
    a2a_extra = np.zeros(len(present))
    for i, code in enumerate(present):
        rerun = policy_by_code(int(code)).rerun
        # The all-gather before QKV and fc1, the reduce-scatter after out_proj and fc2.
        mlp = 2 * ("experts" in rerun) if moe_layer else ("fc1" in rerun) + ("fc2" in rerun)
        tp_extra[i] = ("qkv" in rerun) + ("out_proj" in rerun) + mlp
        a2a_extra[i] = 1.0 if moe_layer and "a2a" in rerun else 0.0
    return tp_extra[index], a2a_extra[index]


@lru_cache(maxsize=256)
def _flops_per_token(
    model: ModelSpec, seq_len: int, moe_layer: bool
) -> tuple[tuple[str, float], ...]:
    """Forward FLOPs per token of each op of one layer, unsplit, as the hardware runs them
    (the attention core causal: half of the full ``4·Q·T`` score and value products)."""
    unit = LayoutBatch.of([Layout()])
    work = layer_work(model, seq_len, unit, moe_layer=moe_layer)
    out: dict[str, float] = {}
    for g in work.gemms:
        op = _op(model, GEMM_OPS.get(g.name, "qkv"))
        out[op] = out.get(op, 0.0) + float(g.flops[0]) / seq_len
    out["attn"] = 2.0 * model.q_dim * seq_len * model.attention_span(seq_len)
    return tuple(out.items())


def recompute_flops_per_token(job: Job, batch: LayoutBatch) -> Array:
    """Hardware FLOPs per token the recomputation adds, over all layers."""
    model = job.model
    kinds = [(False, model.num_dense_layers), (True, model.num_moe_layers)]
    per_kind = [(_flops_per_token(model, job.seq_len, moe), n) for moe, n in kinds if n]
    codes = np.asarray(batch.recompute)
    present = np.flatnonzero(np.bincount(codes, minlength=1))
    extra = np.zeros(len(present))
    for i, code in enumerate(present):
        rerun = {_op(model, op) for op in policy_by_code(int(code)).rerun}
        extra[i] = sum(n * sum(f for op, f in flops if op in rerun) for flops, n in per_kind)
    return np.asarray(extra[np.searchsorted(present, codes)])
