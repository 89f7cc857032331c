"""Step time of a training job for a batch of layouts, with its named breakdown.

One optimizer step of 1F1B pipeline parallelism (Narayanan et al. 2021, arXiv 2104.04473):
each of ``m = global_batch / (dp · micro_batch)`` micro-batches passes forward and backward
through every stage; a stage's time per micro-batch ``t_mb`` is its layers' compute plus the
exposed tensor/context/expert-parallel communication; the pipeline adds the bubble
``(pp − 1) / vpp · t_mb`` (ibid. eq. 1 and §2.2.2). The step then waits for what the data-
parallel gradient reduction does not hide, runs the optimizer and pays a fixed overhead.

Every term is an array over the layouts of a `LayoutBatch`, so the search evaluates
thousands of layouts in one call; `chipmix.estimate` is the same code on one layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
from numpy.typing import NDArray

from chipmix.catalog.calibration import Calibration, ChipCalibration, StackCalibration
from chipmix.catalog.system import ResolvedSystem
from chipmix.perf import collectives as coll
from chipmix.perf import experts
from chipmix.perf.eager import EagerTerms, eager_terms
from chipmix.perf.layer_times import LayerTimes, layer_shapes, layer_times
from chipmix.perf.layout import LayoutBatch, stage_layers
from chipmix.perf.memory import (
    GRAD_BYTES,
    WEIGHT_BYTES,
    MemoryBreakdown,
    memory_per_chip,
    parameters_per_chip,
)
from chipmix.perf.ops import ACT_BYTES, layer_work, logits_work
from chipmix.perf.precision import low_precision_rates
from chipmix.perf.rerun import (
    recompute_flops_per_token,
    rerun_comm,
    rerun_time,
)
from chipmix.perf.roofline import ChipRates
from chipmix.perf.stacks import stack_traits
from chipmix.workload.job import Job

__all__ = [
    "StepBreakdown",
    "StepResult",
    "evaluate",
    "floor_seconds",
    "model_flops_per_token",
]

Array = NDArray[np.float64]

ADAM_STEP_BYTES = 30.0
"""HBM traffic of one Adam update per parameter: read fp32 grad, master, m, v (16 B),
write master, m, v (12 B) and the bf16 weight (2 B)."""


@dataclass(frozen=True, slots=True)
class StepBreakdown:
    """Seconds per optimizer step by cause; they add up to the step time."""

    matmul: Array
    """Projection, MLP, expert and logits GEMMs, forward and backward."""
    attention: Array
    """The attention core (flash attention), forward and backward."""
    memory_bound: Array
    """Norms, residuals, activations, rotary, routing, cross-entropy, and the casts of a
    low-precision recipe."""
    recompute: Array
    """Forward work repeated in backward (selective or full recomputation)."""
    tp_comm: Array
    """Exposed tensor/sequence-parallel all-gathers and reduce-scatters."""
    cp_comm: Array
    """Exposed context-parallel key/value exchange (ring or all-gather)."""
    ep_comm: Array
    """Expert-parallel all-to-all (dispatch and combine)."""
    pp_comm: Array
    """Exposed pipeline point-to-point sends."""
    pipeline_bubble: Array
    """Idle time of the pipeline's fill and drain."""
    dp_comm: Array
    """Exposed data-parallel gradient reduction and parameter gathering."""
    optimizer: Array
    """The optimizer update (memory-bound) and the per-step cast of the weights."""
    overhead: Array
    """Fixed per-step cost of the stack (data loading, logging, host sync)."""
    eager: Array
    """What an eager (unfused) stack pays beyond fused kernels; its named terms are in
    `StepResult.eager_terms` (`chipmix.perf.eager`). Zero for fused stacks."""

    @property
    def total(self) -> Array:
        return np.asarray(sum(getattr(self, f.name) for f in fields(self)))

    def row(self, i: int) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name)[i]) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class StepResult:
    """Everything `perf` predicts for each layout of a batch."""

    batch: LayoutBatch
    breakdown: StepBreakdown
    memory: MemoryBreakdown
    step_time_s: Array
    tokens_per_s: Array
    mfu: Array
    hfu: Array
    memory_capacity_bytes: float
    model_flops_per_token: float
    eager_terms: dict[str, Array] = field(default_factory=dict)
    """The eager stack's named terms (seconds per step; they add up to ``breakdown.eager``),
    empty for fused stacks."""

    def breakdown_row(self, i: int) -> dict[str, float]:
        """Seconds per step by term for layout ``i``; an eager stack's ``eager`` total is
        replaced by its named terms (`chipmix.perf.eager`)."""
        row = self.breakdown.row(i)
        if self.eager_terms:
            row.pop("eager")
            row |= {name: float(seconds[i]) for name, seconds in self.eager_terms.items()}
        return row

    @property
    def fits(self) -> NDArray[np.bool_]:
        return np.asarray(self.memory.total <= self.memory_capacity_bytes)

    @property
    def chips(self) -> NDArray[np.int64]:
        b = self.batch
        return np.asarray(b.tp * b.pp * b.dp * b.cp)


def model_flops_per_token(job: Job) -> float:
    """Model FLOPs per token (PaLM, Chowdhery et al. 2022, arXiv 2204.02311, appendix B):
    ``6·N + 12·L·H·Q·T`` with N the matmul parameters a token touches, H·Q the query width
    and T the sequence length; attention counted without the causal mask, and scaled by
    the share sliding-window layers leave of it (`ModelSpec.attention_span`). LoRA freezes
    the base weights, so their weight-gradient GEMMs vanish: ``4·N`` for the matmuls."""
    model = job.model
    n = model.matmul_params_per_token()
    span = model.attention_span(job.seq_len)
    attention = 12.0 * model.num_layers * model.q_dim * job.seq_len * span
    return (4.0 if job.mode == "lora" else 6.0) * n + attention


def hardware_flops_per_token(job: Job) -> float:
    """FLOPs per token the chips execute in one forward and backward pass (no
    recomputation): PaLM's count with the causal attention core a masked kernel runs,
    ``6·L·H·Q·T`` (half of PaLM's unmasked ``12·L·H·Q·T``; Dao et al. 2022, FlashAttention,
    skips the masked blocks). HFU divides this, plus what recomputation repeats, by the peak:
    unlike PaLM's MFU it cannot pass the chip's achievable rate on long sequences."""
    model = job.model
    span = model.attention_span(job.seq_len)
    causal = 6.0 * model.num_layers * model.q_dim * job.seq_len * span
    return model_flops_per_token(job) - causal


@dataclass(frozen=True, slots=True)
class _Stage:
    """Seconds per micro-batch on the fullest pipeline stage by cause, the bubble, and what
    the step's later terms read (`evaluate`)."""

    microbatches: Array
    matmul: Array
    attention: Array
    memory: Array
    recompute: Array
    tp: Array
    cp: Array
    ep: Array
    pp: Array
    t_mb: Array
    """Their sum, with the eager stack's extra work."""
    bubble: Array
    eager: EagerTerms | None
    moe_layers: Array
    weight_cast: Array
    """Per-step cast of the stage's weights to the recipe's format, seconds."""
    bf16: ChipRates
    chip_cal: ChipCalibration
    stack_cal: StackCalibration
    stack: str | None


def _link(
    group_span: Array, system: ResolvedSystem, calib_up: float, calib_out: float
) -> tuple[Array, Array]:
    """Per-chip bandwidth for a group whose members span ``group_span`` consecutive ranks:
    the scale-up fabric if that span fits in one domain, else the scale-out network."""
    up = system.scaleup_bytes_per_s * calib_up
    out = np.maximum(system.scaleout_bytes_per_s * calib_out, 1.0)
    inside = group_span <= system.scaleup_domain_chips
    return np.asarray(inside), np.where(inside, up, out)


def _stage(
    job: Job,
    system: ResolvedSystem,
    calibration: Calibration,
    batch: LayoutBatch,
    chip_cal: ChipCalibration | None,
    stack_cal: StackCalibration | None,
) -> _Stage:
    """One micro-batch on the fullest pipeline stage and the pipeline's bubble, per layout
    (`evaluate`'s first part; the floor of `chipmix.layouts.prune` stops here)."""
    model = job.model
    chip = system.chip
    stack = calibration.stack_name(job.stack, chip.vendor)
    # Calibrations given by the caller may hold one value per layout (the fitter's), which
    # makes every layout's layer its own; the catalog's are the same for all.
    shapes = layer_shapes(batch) if chip_cal is None and stack_cal is None else None
    if chip_cal is None:
        chip_cal = calibration.for_chip(chip.id)
    if stack_cal is None:
        stack_cal = calibration.for_stack(stack)
    recipe = job.recipe
    bf16 = ChipRates(chip.peak_flops("bf16"), chip.hbm_bytes_per_s, chip_cal, stack_cal, 2.0)
    low = low_precision_rates(chip, chip_cal, stack_cal, recipe, bf16)
    frozen = job.mode == "lora"
    lora_rank = job.lora_rank if frozen else None
    alpha = chip_cal.collective_latency_s

    tp = batch.tp.astype(np.float64)
    pp = batch.pp.astype(np.float64)
    dp = batch.dp.astype(np.float64)
    cp = batch.cp.astype(np.float64)
    vpp = batch.vpp.astype(np.float64)
    mb = batch.micro_batch.astype(np.float64)
    microbatches = job.global_batch / (dp * mb)
    layers_per_stage = stage_layers(model.num_layers, batch)
    moe_layers = np.minimum(layers_per_stage, model.num_moe_layers)
    dense_layers = layers_per_stage - moe_layers

    # -- compute per micro-batch on the fullest stage -----------------------------------
    traits = stack_traits(stack)
    unfused = traits.materialized_attention
    shaped = batch if shapes is None else shapes[0]

    def layer(moe_layer: bool) -> LayerTimes:
        work = layer_work(model, job.seq_len, shaped, moe_layer=moe_layer, lora_rank=lora_rank,
                          materialized_attention=unfused)  # fmt: skip
        times = layer_times(model, work, bf16, low, recipe, frozen)
        return times if shapes is None else times.take(shapes[1])

    dense = layer(moe_layer=False)
    moe = layer(moe_layer=True) if model.moe is not None else dense

    def per_stage(f: str) -> Array:
        return np.asarray(dense_layers * getattr(dense, f) + moe_layers * getattr(moe, f))

    gemm_fwd, gemm_bwd = per_stage("gemm_fwd"), per_stage("gemm_bwd")
    attn_fwd, elem_fwd = per_stage("attention_fwd"), per_stage("elementwise_fwd")
    logits_gemm, ce_bytes = logits_work(model, job.seq_len, batch)
    logits_fwd = bf16.gemm_time(logits_gemm.m, logits_gemm.k, logits_gemm.n)
    logits_time = logits_fwd * (2.0 if frozen else 3.0)

    matmul_mb = gemm_fwd + gemm_bwd + logits_time
    attention_mb = attn_fwd * 3.5  # forward + 2.5× backward
    memory_mb = elem_fwd * 3.0 + bf16.memory_time(ce_bytes) + per_stage("cast")
    # Forward work the recomputation policy repeats (`chipmix.perf.rerun`).
    recompute_mb = dense_layers * rerun_time(batch, model, dense.ops) + moe_layers * rerun_time(
        batch, model, moe.ops
    )
    tp_dense, _ = rerun_comm(batch, moe_layer=False)
    tp_moe, a2a_again = rerun_comm(batch, moe_layer=True)

    # -- tensor parallel (sequence parallel): 2 all-gathers + 2 reduce-scatters of the
    # full activation per layer forward, as many backward (Korthikanti et al. 2022 §4.2.2).
    tokens = mb * job.seq_len / cp
    act_bytes = tokens * model.hidden_size * ACT_BYTES
    _, tp_bw = _link(tp, system, chip_cal.scaleup_efficiency, chip_cal.scaleout_efficiency)
    tp_one = coll.reduce_scatter_time(tp, act_bytes, tp_bw, alpha)
    tp_passes = dense_layers * (8.0 + tp_dense) + moe_layers * (8.0 + tp_moe)
    tp_mb = tp_passes * tp_one * (1.0 - stack_cal.tp_overlap)

    # -- context parallel, in the variants the stack offers (the faster one counts):
    # ring attention passes K and V chunks cp−1 times per layer forward, K/V and their
    # gradients backward (Liu et al. 2023, arXiv 2310.01889), overlapped with the attention
    # core it feeds; all-gather (Llama 3, Dubey et al. 2024 §3.3.2; Megatron-Core
    # --cp-comm-type all_gather) gathers the whole sequence's K/V before attention and
    # reduce-scatters their gradients after it, exposed.
    kv_bytes = tokens * 2.0 * model.kv_dim / tp * ACT_BYTES
    _, cp_bw = _link(tp * cp, system, chip_cal.scaleup_efficiency, chip_cal.scaleout_efficiency)
    ring = (cp - 1.0) * coll.p2p_time(kv_bytes, cp_bw, alpha)
    cp_fwd = np.maximum(ring - attn_fwd / np.maximum(layers_per_stage, 1.0), 0.0)
    cp_bwd = np.maximum(2.0 * ring - 2.5 * attn_fwd / np.maximum(layers_per_stage, 1.0), 0.0)
    gather = 2.0 * coll.reduce_scatter_time(cp, kv_bytes * cp, cp_bw, alpha)
    variants = [cp_fwd + cp_bwd] if traits.cp_ring else []
    variants += [gather] if traits.cp_all_gather or not variants else []
    cp_layer = np.minimum.reduce(variants) if len(variants) > 1 else variants[0]
    cp_mb = np.where(cp > 1, layers_per_stage * cp_layer, 0.0)

    # -- expert parallel: dispatch and combine all-to-all per MoE layer, forward and
    # backward (Lepikhin et al. 2020, GShard, arXiv 2006.16668); tokens are split over tp.
    # Copies to ranks in the same scale-up domain and across domains move concurrently on
    # their own links; a deduplicating dispatcher sends a token once per remote domain
    # (`chipmix.perf.experts`).
    if model.moe is not None:
        a2a = experts.all_to_all_seconds(
            model, tokens / tp, batch, system.scaleup_domain_chips,
            system.scaleup_bytes_per_s * chip_cal.scaleup_efficiency,
            max(system.scaleout_bytes_per_s * chip_cal.scaleout_efficiency, 1.0), alpha,
            dedup=traits.ep_dispatch_dedup, element_bytes=ACT_BYTES,
        )  # fmt: skip
        ep_mb = moe_layers * (4.0 + 2.0 * a2a_again) * a2a
    else:
        ep_mb = np.zeros_like(tp)

    # -- pipeline point-to-point: one activation forward, one gradient backward per
    # micro-batch and virtual stage.
    _, pp_bw = _link(
        tp * cp * dp * pp, system, chip_cal.scaleup_efficiency, chip_cal.scaleout_efficiency
    )
    p2p = coll.p2p_time(act_bytes / tp, pp_bw, alpha)
    pp_mb = np.where(pp > 1, 2.0 * vpp * p2p * (1.0 - stack_cal.pp_overlap), 0.0)

    eager = None
    if stack_cal.eager is not None:
        weights_here = parameters_per_chip(job, batch)[0]
        eager = eager_terms(model, job.seq_len, batch, layers_per_stage, stack_cal.eager,
                            bf16, weights_per_chip=weights_here)  # fmt: skip
    t_mb = matmul_mb + attention_mb + memory_mb + recompute_mb + tp_mb + cp_mb + ep_mb + pp_mb
    if eager is not None:
        t_mb = t_mb + eager.microbatch_s
    bubble = (pp - 1.0) / vpp * t_mb
    return _Stage(
        microbatches=np.asarray(microbatches),
        matmul=np.asarray(matmul_mb),
        attention=np.asarray(attention_mb),
        memory=np.asarray(memory_mb),
        recompute=np.asarray(recompute_mb),
        tp=np.asarray(tp_mb),
        cp=np.asarray(cp_mb),
        ep=np.asarray(ep_mb),
        pp=np.asarray(pp_mb),
        t_mb=np.asarray(t_mb),
        bubble=np.asarray(bubble),
        eager=eager,
        moe_layers=np.asarray(moe_layers),
        weight_cast=per_stage("weight_cast"),
        bf16=bf16,
        chip_cal=chip_cal,
        stack_cal=stack_cal,
        stack=stack,
    )


def floor_seconds(
    job: Job, system: ResolvedSystem, calibration: Calibration, batch: LayoutBatch
) -> Array:
    """What `evaluate` would sum of the terms that depend neither on the ZeRO stage nor on
    the eager stack (`chipmix.layouts.prune.FLOOR_TERMS`, in that order): the step time less
    the data-parallel reduction, the optimizer and the eager work, per layout, without
    computing those (nor the memory)."""
    s = _stage(job, system, calibration, batch, None, None)
    m = s.microbatches
    overhead = np.full_like(m, s.stack_cal.step_overhead_s)
    terms = [m * s.matmul, m * s.attention, m * s.memory, m * s.recompute, m * s.tp,
             m * s.cp, m * s.ep, m * s.pp, s.bubble, overhead]  # fmt: skip
    return np.asarray(sum(terms))


def evaluate(
    job: Job,
    system: ResolvedSystem,
    calibration: Calibration,
    batch: LayoutBatch,
    memory: MemoryBreakdown | None = None,
    *,
    chip_cal: ChipCalibration | None = None,
    stack_cal: StackCalibration | None = None,
) -> StepResult:
    """Predict step time, throughput, MFU and memory for every layout in ``batch``.

    Divisibility is not checked here (see `chipmix.perf.validity`); memory fit is reported
    in `StepResult.fits`, not enforced. ``memory``, when the caller already has it for
    ``batch`` (the search does), is reused. ``chip_cal`` / ``stack_cal`` replace the
    calibration's entries for this chip and stack; the fitter passes them with one value
    per layout (numpy arrays, built with ``model_construct``) to evaluate one case under
    many candidate calibrations in a single call.
    """
    s = _stage(job, system, calibration, batch, chip_cal, stack_cal)
    model, chip = job.model, system.chip
    chip_cal, stack_cal, stack, bf16 = s.chip_cal, s.stack_cal, s.stack, s.bf16
    alpha = chip_cal.collective_latency_s
    tp = batch.tp.astype(np.float64)
    pp = batch.pp.astype(np.float64)
    dp = batch.dp.astype(np.float64)
    cp = batch.cp.astype(np.float64)
    microbatches, t_mb, bubble, eager = s.microbatches, s.t_mb, s.bubble, s.eager
    moe_layers = s.moe_layers

    # -- data parallel: gradients reduce-scattered (fp32) and weights all-gathered (bf16)
    # over dp (ZeRO-1/2), all-reduced (ZeRO-0) or gathered every micro-batch (ZeRO-3);
    # hidden behind the backward of the last micro-batch up to the stack's overlap. The
    # group is dp × cp: context-parallel ranks hold the same weights and partial gradients
    # (Megatron-Core's data-parallel group "with context parallel").
    mem = memory or memory_per_chip(
        job, batch, chip_cal.memory_reserved_gib, stack=stack, capacity_bytes=chip.hbm_bytes
    )
    weights, trainable = parameters_per_chip(job, batch)
    # Routed experts reduce over their own, sparser expert-data-parallel group
    # (`chipmix.perf.experts`); LoRA's adapters all reduce over dp.
    expert_w = experts.expert_parameters(model, batch, moe_layers)
    expert_t = expert_w if job.mode != "lora" else np.zeros_like(expert_w)
    dp_group = dp * cp
    per_domain_dp = np.maximum(system.scaleup_domain_chips // batch.tp, 1)
    edp, per_domain_edp = experts.expert_dp_group(batch, system.scaleup_domain_chips)
    up = system.scaleup_bytes_per_s * chip_cal.scaleup_efficiency
    out = np.maximum(system.scaleout_bytes_per_s * chip_cal.scaleout_efficiency, 1.0)
    zero = batch.zero

    def reduce_time(dense_params: Array, expert_params: Array, nbytes: float) -> Array:
        dense_t = coll.hierarchical_reduce_scatter_time(
            dp_group, per_domain_dp, dense_params * nbytes, up, out, alpha
        )
        expert_time = experts.expert_gradient_seconds(
            edp, per_domain_edp, expert_params * nbytes, up, out, alpha
        )
        return np.asarray(dense_t + np.where(edp > 1, expert_time, 0.0))

    grad_rs = reduce_time(trainable - expert_t, expert_t, GRAD_BYTES)
    # ZeRO-1/2 gather the updated trained weights; ZeRO-3 gathers every weight it shards.
    weights_ag = np.where(
        zero >= 3,
        reduce_time(weights - expert_w, expert_w, WEIGHT_BYTES),
        reduce_time(trainable - expert_t, expert_t, WEIGHT_BYTES),
    )
    dp_time = np.select(
        [zero == 0, zero <= 2],
        [2.0 * grad_rs, grad_rs + weights_ag],
        default=grad_rs + 2.0 * microbatches * weights_ag,
    )
    dp_time = np.where(dp_group > 1, dp_time, 0.0)
    # Gradients of the last micro-batch reduce while its backward runs and, with a
    # pipeline, while later stages drain (the cool-down half of the bubble).
    window = np.where(zero >= 3, microbatches * t_mb, t_mb + 0.5 * bubble)
    dp_exposed = np.maximum(dp_time * (1.0 - stack_cal.dp_overlap), dp_time - window)

    # -- optimizer: Adam over this chip's shard of the trainable weights.
    shard = np.where(zero >= 1, (trainable - expert_t) / dp_group + expert_t / edp, trainable)
    adam_bytes = stack_cal.eager.optimizer_bytes_per_param if stack_cal.eager else ADAM_STEP_BYTES
    optimizer = bf16.memory_time(shard * adam_bytes) + s.weight_cast
    overhead = np.full_like(tp, stack_cal.step_overhead_s)

    breakdown = StepBreakdown(
        matmul=microbatches * s.matmul,
        attention=microbatches * s.attention,
        memory_bound=microbatches * s.memory,
        recompute=microbatches * s.recompute,
        tp_comm=microbatches * s.tp,
        cp_comm=microbatches * s.cp,
        ep_comm=microbatches * s.ep,
        pp_comm=microbatches * s.pp,
        pipeline_bubble=np.asarray(bubble),
        dp_comm=np.asarray(dp_exposed),
        optimizer=optimizer,
        overhead=overhead,
        eager=eager.total(microbatches) if eager else np.zeros_like(tp),
    )
    step_time = breakdown.total
    tokens_per_s = job.tokens_per_step / step_time
    chips = tp * pp * dp * cp
    peak = chip.peak_flops(job.precision)
    flops_per_token = model_flops_per_token(job)
    mfu = flops_per_token * tokens_per_s / (chips * peak)
    extra = recompute_flops_per_token(job, batch)
    hfu = (hardware_flops_per_token(job) + extra) * tokens_per_s / (chips * peak)
    return StepResult(
        batch=batch,
        breakdown=breakdown,
        memory=mem,
        step_time_s=step_time,
        tokens_per_s=np.asarray(tokens_per_s),
        mfu=np.asarray(mfu),
        hfu=np.asarray(hfu),
        memory_capacity_bytes=chip.hbm_bytes,
        model_flops_per_token=flops_per_token,
        eager_terms=eager.named(microbatches) if eager else {},
    )
