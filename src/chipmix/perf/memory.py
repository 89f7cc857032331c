"""Device memory per chip: weights, gradients, optimizer state, activations, loss, reserve.

Weights, gradients and optimizer state take the bytes per parameter the stack keeps
(`chipmix.perf.stacks`: Megatron's bf16 weights + fp32 gradient buffer + fp32 master and
Adam moments, "6 + 12/d" with its distributed optimizer; MaxText's fp32 weights and
moments). ZeRO (Rajbhandari et al. 2020, arXiv 1910.02054, §5) stage 1 shards the
optimizer state over the data-parallel ranks (× context-parallel ranks, which hold the same
weights), stage 2 also the gradients, stage 3 (FSDP) also the weights. Routed experts'
state is sharded over the expert-data-parallel group. Optimizer state offloaded to the
host takes no device memory.

Activations per layer follow the layout's recomputation policy (`chipmix.perf.activations`,
Korthikanti et al. 2022). Each pipeline rank holds the activations of the micro-batches in
flight in Megatron's schedules (``megatron/core/pipeline_parallel/schedules.py``): rank r of
1F1B keeps ``min(pp − r, m)`` micro-batches; with ``vpp`` interleaved chunks it warms up
``2·(pp − r − 1) + (vpp − 1)·pp`` chunks (all ``m·vpp`` when there are no more), which is
Korthikanti's ``pp·(1 + (pp − 1)/(pp·vpp))`` micro-batches on rank 0 (§4.2.3). The first
rank also holds the embedding, the last the output layer and the loss's logits; the
fullest of the first, second and last ranks is reported.

The reserve is the chip calibration's ``memory_reserved_gib`` (runtime context, collective
buffers, allocator fragmentation: about 3 GiB under PyTorch + NCCL, stated per chip).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import NDArray

from chipmix.common.units import GIB
from chipmix.perf.activations import layer_activations
from chipmix.perf.layout import LayoutBatch, expert_tp, pipeline_split, stage_layers
from chipmix.perf.offload import ALL_LAYERS
from chipmix.perf.stacks import StackTraits, stack_traits
from chipmix.workload.job import Job
from chipmix.workload.model import ModelSpec

__all__ = [
    "GRAD_BYTES",
    "OPTIMIZER_BYTES",
    "WEIGHT_BYTES",
    "MemoryBreakdown",
    "lora_params_per_layer",
    "memory_per_chip",
    "parameters_per_chip",
]

Array = NDArray[np.float64]

WEIGHT_BYTES = 2.0  # bf16 weights as the GEMMs read them (and as data parallelism moves them)
GRAD_BYTES = 4.0  # fp32 gradient reduction (Megatron's main_grad)
OPTIMIZER_BYTES = 12.0  # fp32 master weights + Adam's two moments (mixed-precision Adam)


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
    experts = moe_per_stage * model.expert_params_per_layer() / (batch.ep * expert_tp(batch))
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


def _in_flight(pp: Array, vpp: Array, microbatches: Array, rank: Array) -> Array:
    """Micro-batches of its layers rank ``rank`` holds at its peak (Megatron schedules)."""
    plain = np.minimum(pp - rank, microbatches)
    warmup = 2.0 * (pp - rank - 1.0) + (vpp - 1.0) * pp
    chunks = np.minimum(warmup + 1.0, microbatches * vpp)
    return np.asarray(np.maximum(np.where(vpp > 1, chunks / vpp, plain), 1.0))


@dataclass(frozen=True, slots=True)
class _Shards:
    """Per-layout coefficients of the parameter state, computed once for every rank."""

    dense_per_layer: Array  # non-expert weights of one layer on one chip (tp split)
    per_table: Array  # one embedding table on one chip
    experts_per_layer: Array  # one MoE layer's routed experts on one chip
    dense_frac: dict[str, Array]  # share of the dense weights kept: weights/grads/optimizer
    expert_frac: dict[str, Array]  # ditto for the experts (sharded over edp)
    gather_dense: Array  # ZeRO-3: two layers' gathered bf16 dense weights
    gather_experts: Array  # ZeRO-3: two layers' gathered bf16 experts


def _shards(job: Job, batch: LayoutBatch) -> _Shards:
    model = job.model
    tp = batch.tp.astype(np.float64)
    dp = batch.dp.astype(np.float64) * batch.cp  # cp ranks hold the same weights
    ep = batch.ep.astype(np.float64)
    etp = expert_tp(batch)
    edp = np.maximum(tp * dp / (ep * etp), 1.0)
    zero = batch.zero
    dense_frac = {
        "weights": np.where(zero >= 3, 1.0 / dp, 1.0),
        "gradients": np.where(zero >= 2, 1.0 / dp, 1.0),
        "optimizer": np.where(zero >= 1, 1.0 / dp, 1.0),
    }
    expert_frac = {
        "weights": np.where(zero >= 3, 1.0 / edp, 1.0),
        "gradients": np.where(zero >= 2, 1.0 / edp, 1.0),
        "optimizer": np.where(zero >= 1, 1.0 / edp, 1.0),
    }
    # FSDP gathers the next layer's weights while computing this one: two layers' bf16
    # buffers of what is sharded.
    fsdp = zero >= 3
    ne = _non_expert_params_per_layer(model)
    gather_dense = np.where(fsdp & (dp > 1), 2.0 * ne / tp * WEIGHT_BYTES, 0.0)
    gather_experts = np.where(
        fsdp & (edp > 1), 2.0 * model.expert_params_per_layer() / ep / tp * WEIGHT_BYTES, 0.0
    )
    return _Shards(
        dense_per_layer=(ne + _kv_replica_params(model, tp)) / tp,
        per_table=1.0 / tp,
        experts_per_layer=model.expert_params_per_layer() / (ep * etp),
        dense_frac=dense_frac,
        expert_frac=expert_frac,
        gather_dense=gather_dense,
        gather_experts=gather_experts,
    )


def _states(
    job: Job, batch: LayoutBatch, traits: StackTraits, sh: _Shards, layers: Array, embed: Array
) -> tuple[Array, Array, Array]:
    """Weights, gradients and optimizer bytes on one chip of a rank with ``layers``
    transformer layers and ``embed`` embedding parameters."""
    model = job.model
    moe = np.minimum(layers, model.num_moe_layers)
    dense = layers * sh.dense_per_layer + embed * sh.per_table
    experts = moe * sh.experts_per_layer

    def kept(kind: str) -> Array:
        return np.asarray(dense * sh.dense_frac[kind] + experts * sh.expert_frac[kind])

    # ZeRO-3 holds the layer it computes and the next one gathered: two of the rank's
    # layers, and as many of its MoE layers' experts as it has, at most two
    gathered = np.minimum(layers, 2.0) / 2.0 * sh.gather_dense
    gathered = gathered + np.minimum(moe, 2.0) / 2.0 * sh.gather_experts

    if job.mode == "lora":
        # Frozen bf16 base weights; mixed-precision Adam on the adapters only.
        adapters = (
            (layers - moe) * lora_params_per_layer(model, job.lora_rank, False)
            + moe * lora_params_per_layer(model, job.lora_rank, True)
        ) * sh.per_table
        weights = kept("weights") * WEIGHT_BYTES + adapters * WEIGHT_BYTES + gathered
        grads = adapters * traits.grad_bytes
        optimizer = adapters * traits.optimizer_bytes
    else:
        weights = kept("weights") * traits.weight_bytes + gathered
        grads = kept("gradients") * traits.grad_bytes
        optimizer = kept("optimizer") * traits.optimizer_bytes
    optimizer = np.where(batch.offload_codes % 2 == 1, 0.0, optimizer)
    return np.asarray(weights), np.asarray(grads), np.asarray(optimizer)


def _kv_replica_params(model: ModelSpec, tp: Array) -> Array:
    """Extra K/V projection weights per layer when tp > KV heads replicates them."""
    if model.mla is not None:
        return np.zeros_like(tp)
    copies = np.maximum(tp, model.num_kv_heads) / model.num_kv_heads
    return np.asarray((copies - 1.0) * 2.0 * model.hidden_size * model.kv_dim)


def memory_per_chip(
    job: Job,
    batch: LayoutBatch,
    reserved_gib: float,
    stack: str | None = None,
    capacity_bytes: float | None = None,
) -> MemoryBreakdown:
    """Bytes per chip of every layout in ``batch`` on its fullest pipeline rank.

    A job that does not state ``loss_tiles`` on a stack that tiles the loss takes, per
    layout, the fewest tiles (a power of two) that fit in ``capacity_bytes``."""
    model = job.model
    traits = stack_traits(stack if stack is not None else job.stack)
    tp = batch.tp.astype(np.float64)
    pp = batch.pp.astype(np.float64)
    dp = batch.dp.astype(np.float64)
    vpp = batch.vpp.astype(np.float64)
    microbatches = job.global_batch / (dp * batch.micro_batch)
    split = pipeline_split(model.num_layers, batch)
    table = float(model.vocab_size * model.hidden_size)

    # -- activations of one layer and one micro-batch -----------------------------------
    tokens = batch.micro_batch * job.seq_len / batch.cp.astype(np.float64)
    low = traits.low_precision_saved_inputs and job.precision != "bf16"
    # Saved GEMM inputs: fp8 1 B; fp4 (NVFP4) 0.5 B plus one fp8 scale per 16 elements.
    input_bytes = {"fp8": 1.0, "int8": 1.0, "fp4": 0.5625}.get(job.precision, 2.0) if low else 2.0
    dense = layer_activations(model, tokens, batch, False, input_bytes)
    # A dense model's "MoE" layer is its dense layer (`tensor_bytes_per_token`).
    moe = dense if model.moe is None else layer_activations(model, tokens, batch, True, input_bytes)
    offload_layers = np.minimum(batch.offload_codes // 2, ALL_LAYERS).astype(np.float64)

    dense_working = dense.working + dense.host
    moe_working = dense_working if moe is dense else moe.working + moe.host
    offloading = bool(np.any(offload_layers > 0))

    def stage(layers: Array, rank: Array) -> tuple[Array, Array]:
        """(activations, working set) of a rank holding ``layers`` layers."""
        n_moe = np.minimum(layers, model.num_moe_layers)
        n_dense = layers - n_moe
        on_host = np.minimum(offload_layers, np.maximum(layers - 1.0, 0.0))
        keep = np.maximum(layers - on_host, 0.0)
        share = np.where(layers > 0, keep / np.maximum(layers, 1.0), 0.0)
        per_mb = (n_dense * dense.device + n_moe * moe.device) * share
        in_flight = _in_flight(pp, vpp, microbatches, rank)
        has_moe = n_moe > 0
        working = dense_working if moe is dense else np.where(has_moe, moe_working, dense_working)
        if offloading:  # (adding 0 changes nothing)
            # Offloaded layers stream back one at a time, double-buffered.
            layer_dev = np.where(has_moe, moe.device, dense.device)
            working = working + np.where(on_host > 0, 2.0 * layer_dev, 0.0)
        return np.asarray(per_mb * in_flight), np.asarray(np.where(layers > 0, working, 0.0))

    zeros = np.zeros_like(tp)
    embed_first = np.where(pp > 1, table, float(model.embedding_params()))
    # The last rank holds the output layer (a copy of the embedding when tied) and the
    # loss's logits (the only rank when pp is 1); a tiled loss (MaxText num_vocab_tiling)
    # keeps one tile of tokens' logits at a time.
    embed_last = np.where(pp > 1, table, 0.0)
    whole = traits.loss_bytes_per_logit * tokens * model.vocab_size / tp
    reserved = reserved_gib * GIB

    ranks = []
    sh = _shards(job, batch)
    for layers, rank, embed in (
        (split.first, zeros, embed_first),
        (split.middle, np.minimum(zeros + 1.0, pp - 1.0), zeros),
        (split.last, pp - 1.0, embed_last),
    ):
        w, g, o = _states(job, batch, traits, sh, layers, embed)
        act, working = stage(layers, rank)
        ranks.append([w, g, o, act + working])
    if job.loss_tiles is None and traits.vocab_tiling and capacity_bytes is not None:
        # The loss rank's other bytes decide how many tiles an unstated tiling takes.
        held = np.where(pp > 1, sum(ranks[2]), sum(ranks[0])) + reserved
        logits = whole / _fewest_tiles(whole, held, tokens, capacity_bytes)
    else:
        logits = whole / float(job.loss_tiles or 1)
    ranks[0].append(np.where(pp > 1, 0.0, logits))
    ranks[1].append(zeros)
    ranks[2].append(np.where(pp > 1, logits, 0.0))
    totals = np.stack([sum(parts) for parts in ranks])
    worst = np.argmax(totals, axis=0)
    first, middle = worst == 0, worst == 1

    def pick(k: int) -> Array:
        """Part ``k`` of each layout's fullest rank (``np.choose``'s selection, in a third
        of its time)."""
        return np.where(first, ranks[0][k], np.where(middle, ranks[1][k], ranks[2][k]))

    return MemoryBreakdown(
        weights=pick(0),
        gradients=pick(1),
        optimizer=pick(2),
        activations=pick(3),
        logits=pick(4),
        reserved=np.full_like(tp, reserved),
    )


def _fewest_tiles(whole: Array, held: Array, tokens: Array, capacity_bytes: float) -> Array:
    """The tiles a loss not stated as tiled takes on a stack that tiles it (MaxText
    ``num_vocab_tiling``, configs/base.yml): the fewest powers of two with which the loss
    rank, holding ``held`` bytes besides the logits, fits; at most one token per tile.

    Each tile projects its slice of hidden states, takes its loss and frees its logits
    (MaxText docs/explanations/tiling.md), the same FLOPs as the whole projection; MaxText
    enables it to fit a config "maintaining the original performance intent" (PR #4081), so
    the step time takes it as free."""
    most = np.exp2(np.floor(np.log2(np.clip(tokens, 1.0, 4096.0))))
    room = capacity_bytes - held
    need = np.where(room > 0, whole / np.maximum(room, 1.0), np.inf)
    return np.asarray(np.exp2(np.ceil(np.log2(np.clip(need, 1.0, most)))))
