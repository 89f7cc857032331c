"""Device memory per chip: weights, gradients, optimizer state, activations, reserve.

Mixed-precision Adam (Micikevicius et al. 2018; ZeRO, Rajbhandari et al. 2020, §3): bf16
weights (2 B/param), fp32 gradient accumulation (4 B, Megatron-LM's main_grad), fp32 master
weights + two moments (12 B). ZeRO stage 1 shards the 12 B over data-parallel ranks, stage
2 also the gradients, stage 3 (FSDP) also the weights. Routed experts' state is sharded over
the expert-data-parallel group (``dp / ep``).

Activations per layer and micro-batch follow Korthikanti et al. 2022 (arXiv 2205.05198, §4,
with sequence parallelism: ``34·s·b·h / t`` for a GPT layer with dropout), generalized to
the model's own widths (GQA, SwiGLU, MoE) and with fused (flash) attention, which stores
only the softmax log-sum-exp instead of the ``5·a·s²·b`` attention-score terms. The first
pipeline stage of 1F1B holds ``pp`` micro-batches in flight, ×(1 + (pp−1)/(pp·vpp)) when
interleaved (ibid. §4.2.3).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import NDArray

from chipmix.common.units import GIB
from chipmix.perf.layout import LayoutBatch, stage_layers
from chipmix.workload.job import Job
from chipmix.workload.model import ModelSpec

__all__ = [
    "MemoryBreakdown",
    "lora_params_per_layer",
    "memory_per_chip",
    "parameters_per_chip",
]

Array = NDArray[np.float64]

WEIGHT_BYTES = 2.0  # bf16 weights
GRAD_BYTES = 4.0  # fp32 gradient accumulation buffer
OPTIMIZER_BYTES = 12.0  # fp32 master weights + Adam first and second moments
ADAM_BYTES_PER_TRAINABLE = WEIGHT_BYTES + GRAD_BYTES + OPTIMIZER_BYTES


@dataclass(frozen=True, slots=True)
class MemoryBreakdown:
    """Bytes per chip on the fullest pipeline stage, one entry per layout."""

    weights: Array
    gradients: Array
    optimizer: Array
    activations: Array
    logits: Array
    reserved: Array

    @property
    def total(self) -> Array:
        return np.asarray(sum(getattr(self, f.name) for f in fields(self)))

    def as_gib(self, i: int) -> dict[str, float]:
        out = {f.name: float(getattr(self, f.name)[i]) / GIB for f in fields(self)}
        out["total"] = float(self.total[i]) / GIB
        return out


def lora_params_per_layer(model: ModelSpec, rank: int, moe_layer: bool) -> float:
    """Adapter parameters of one layer: r·(k + n) per adapted projection (all experts)."""
    h = model.hidden_size
    q, kv = model.q_dim, model.kv_dim
    attention = rank * ((h + q + 2 * kv) + (q + h))

    def mlp(f: int) -> int:
        width_in = 2 * f if model.mlp == "swiglu" else f
        return rank * ((h + width_in) + (f + h))

    if moe_layer and model.moe is not None:
        moe = model.moe
        experts = moe.num_experts + moe.num_shared_experts
        return float(attention + experts * mlp(moe.expert_ffn_hidden_size))
    return float(attention + mlp(model.ffn_hidden_size))


def _activation_bytes_per_layer(
    model: ModelSpec, tokens: Array, batch: LayoutBatch, moe_layer: bool
) -> Array:
    """Korthikanti's per-layer activation bytes, no recomputation, flash attention."""
    h, q, kv = model.hidden_size, model.q_dim, model.kv_dim
    t = batch.tp.astype(np.float64)
    drop = 1.0 if model.dropout else 0.0
    attention = 2 * h + 2 * (q + kv) + 2 * kv + 2 * q + drop * h  # elements×bytes per token
    norms = 2 * 2 * h

    def mlp_bytes(f: float) -> float:
        act_in = 2 * (2 * f if model.mlp == "swiglu" else f)
        return 2 * h + act_in + 2 * f + drop * h

    if moe_layer and model.moe is not None:
        moe = model.moe
        f = float(moe.expert_ffn_hidden_size)
        routed = moe.top_k * (mlp_bytes(f) - drop * h)
        shared = moe.num_shared_experts * (mlp_bytes(f) - 2 * h - drop * h)
        mlp = 2 * h + routed + shared + 4 * moe.num_experts + drop * h
    else:
        mlp = mlp_bytes(float(model.ffn_hidden_size))
    # Flash attention keeps the fp32 log-sum-exp of each query row per head.
    lse = 4.0 * model.num_heads
    return np.asarray(tokens * (attention + norms + mlp + lse) / t)


def _non_expert_params_per_layer(model: ModelSpec) -> float:
    layers_total = model.num_params() - model.embedding_params() - model.hidden_size
    return (layers_total - model.num_moe_layers * model.expert_params_per_layer()) / (
        model.num_layers
    )


def _stage_parameters(job: Job, batch: LayoutBatch) -> tuple[Array, Array]:
    """Weights on one chip of the fullest stage, unsharded by ZeRO: (dense, routed experts)."""
    model = job.model
    tp = batch.tp.astype(np.float64)
    pp = batch.pp.astype(np.float64)
    layers_per_stage = stage_layers(model.num_layers, batch)
    moe_per_stage = np.minimum(layers_per_stage, model.num_moe_layers)
    table = model.vocab_size * model.hidden_size
    embeddings = np.where(pp > 1, float(table), float(model.embedding_params()))
    dense = (layers_per_stage * _non_expert_params_per_layer(model) + embeddings) / tp
    experts = moe_per_stage * model.expert_params_per_layer() / (batch.ep * tp)
    return np.asarray(dense), np.asarray(experts)


def parameters_per_chip(job: Job, batch: LayoutBatch) -> tuple[Array, Array]:
    """(all weights, trained weights) on one chip of the fullest stage before ZeRO
    sharding — what data parallelism gathers and reduces. LoRA trains only adapters."""
    dense, experts = _stage_parameters(job, batch)
    weights = dense + experts
    if job.mode != "lora":
        return weights, weights
    model = job.model
    layers_per_stage = stage_layers(model.num_layers, batch)
    moe_layers = np.minimum(layers_per_stage, model.num_moe_layers)
    adapters = (
        (layers_per_stage - moe_layers) * lora_params_per_layer(model, job.lora_rank, False)
        + moe_layers * lora_params_per_layer(model, job.lora_rank, True)
    ) / batch.tp
    return weights, np.asarray(adapters)


def memory_per_chip(job: Job, batch: LayoutBatch, reserved_gib: float) -> MemoryBreakdown:
    """Bytes per chip of every layout in ``batch`` on its fullest pipeline stage."""
    model = job.model
    tp = batch.tp.astype(np.float64)
    pp = batch.pp.astype(np.float64)
    dp = batch.dp.astype(np.float64)
    ep = batch.ep.astype(np.float64)
    layers_per_stage = stage_layers(model.num_layers, batch)
    moe_per_stage = np.minimum(layers_per_stage, model.num_moe_layers)

    # -- parameters on one chip of the fullest stage ------------------------------------
    expert_per_layer = float(model.expert_params_per_layer())
    non_expert_avg = _non_expert_params_per_layer(model)
    dense_params, expert_params = _stage_parameters(job, batch)
    params = dense_params + expert_params

    zero = batch.zero
    edp = np.maximum(dp / ep, 1.0)  # expert-data-parallel ranks
    shard_all = dense_params / dp + expert_params / edp

    weights = np.where(zero >= 3, shard_all * WEIGHT_BYTES, params * WEIGHT_BYTES)
    if job.mode == "lora":
        moe_layers = moe_per_stage
        adapters = (
            (layers_per_stage - moe_layers) * lora_params_per_layer(model, job.lora_rank, False)
            + moe_layers * lora_params_per_layer(model, job.lora_rank, True)
        ) / tp
        gradients = adapters * GRAD_BYTES
        optimizer = adapters * (OPTIMIZER_BYTES + WEIGHT_BYTES)
    else:
        gradients = np.where(zero >= 2, shard_all, params) * GRAD_BYTES
        optimizer = np.where(zero >= 1, shard_all, params) * OPTIMIZER_BYTES
    if np.any(zero >= 3):
        # FSDP gathers the next layer's weights while computing this one: two layers' buffers
        # of what is sharded (nothing on one data-parallel rank; experts only if edp > 1).
        sharded = np.where(dp > 1, non_expert_avg, 0.0)
        sharded = sharded + np.where(edp > 1, expert_per_layer / ep, 0.0)
        gathered = 2.0 * sharded / tp * WEIGHT_BYTES
        weights = weights + np.where(zero >= 3, gathered, 0.0)

    # -- activations ----------------------------------------------------------------------
    tokens = batch.micro_batch * job.seq_len / batch.cp.astype(np.float64)
    dense_layer = _activation_bytes_per_layer(model, tokens, batch, moe_layer=False)
    moe_layer = _activation_bytes_per_layer(model, tokens, batch, moe_layer=True)
    full_layer = np.where(moe_per_stage > 0, moe_layer, dense_layer)
    stage_bytes = (layers_per_stage - moe_per_stage) * dense_layer + moe_per_stage * moe_layer
    layer_input = 2.0 * tokens * model.hidden_size / tp
    # Full recomputation keeps each layer's input per micro-batch in flight and, once (one
    # micro-batch is recomputed at a time), the working set of the layer being recomputed.
    full = batch.recompute == 2
    per_microbatch = np.where(full, layers_per_stage * layer_input, stage_bytes)
    working = np.where(full, full_layer, 0.0)

    microbatches = job.global_batch / (dp * batch.micro_batch)
    in_flight = np.where(pp > 1, np.minimum(pp, np.maximum(microbatches, 1.0)), 1.0)
    vpp = batch.vpp.astype(np.float64)
    interleave = np.where(vpp > 1, 1.0 + (pp - 1.0) / (pp * vpp), 1.0)
    first_stage = per_microbatch * in_flight * interleave + working

    # Logits on the last stage: fp32 logits and bf16 copy for one micro-batch in flight.
    logits = 6.0 * tokens * model.vocab_size / tp
    last_stage = per_microbatch + working + logits
    last_wins = (pp > 1) & (last_stage > first_stage)
    activations = np.where(last_wins, per_microbatch + working, first_stage)
    logits_term = np.where((pp == 1) | last_wins, logits, 0.0)

    reserved = np.full_like(tp, reserved_gib * GIB)
    return MemoryBreakdown(
        weights=np.asarray(weights),
        gradients=np.asarray(gradients),
        optimizer=np.asarray(optimizer),
        activations=np.asarray(activations),
        logits=np.asarray(logits_term),
        reserved=reserved,
    )
