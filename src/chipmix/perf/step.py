"""Step time of a training job for a batch of layouts, with its named breakdown.

One optimizer step of 1F1B pipeline parallelism (Narayanan et al. 2021, arXiv 2104.04473):
each of ``m = global_batch / (dp · micro_batch)`` micro-batches passes forward and backward
through every stage; a stage's time per micro-batch ``t_mb`` is its layers' compute plus the
exposed tensor/context/expert-parallel communication; the pipeline adds the bubble
``(pp − 1) / vpp · t_mb`` (ibid. eq. 1 and §2.2.2). The step then waits for what the data-
parallel gradient reduction does not hide, runs the optimizer and pays a fixed overhead.

The stage's terms and the bubble are `chipmix.perf.stage`'s. Every term is an array over
the layouts of a `LayoutBatch`, so the search evaluates thousands of layouts in one call;
`chipmix.estimate` is the same code on one layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
from numpy.typing import NDArray

from chipmix.catalog.calibration import Calibration, ChipCalibration, StackCalibration
from chipmix.catalog.system import ResolvedSystem
from chipmix.perf import collectives as coll
from chipmix.perf import experts
from chipmix.perf.layout import LayoutBatch
from chipmix.perf.memory import (
    GRAD_BYTES,
    WEIGHT_BYTES,
    MemoryBreakdown,
    memory_per_chip,
    parameters_per_chip,
)
from chipmix.perf.rerun import recompute_flops_per_token
from chipmix.perf.stage import Stage, members, stage
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


def floor_seconds(
    job: Job,
    system: ResolvedSystem,
    calibration: Calibration,
    batch: LayoutBatch,
    found: Stage | None = None,
) -> Array:
    """What `evaluate` would sum of the terms that depend neither on the ZeRO stage nor on
    the eager stack (`chipmix.layouts.prune.FLOOR_TERMS`, in that order): the step time less
    the data-parallel reduction, the optimizer and the eager work, per layout, without
    computing those (nor the memory). ``found``: the batch's `stage`, when the caller has
    it."""
    s = found if found is not None else stage(job, system, calibration, batch)
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
    groups: tuple[Stage, NDArray[np.intp]] | None = None,
) -> StepResult:
    """Predict step time, throughput, MFU and memory for every layout in ``batch``.

    Divisibility is not checked here (see `chipmix.perf.validity`); memory fit is reported
    in `StepResult.fits`, not enforced. ``memory``, when the caller already has it for
    ``batch`` (the search does), is reused. ``chip_cal`` / ``stack_cal`` replace the
    calibration's entries for this chip and stack; the fitter passes them with one value
    per layout (numpy arrays, built with ``model_construct``) to evaluate one case under
    many candidate calibrations in a single call. ``groups``, a `stage` of layouts and
    each layout's row of it, where each layout differs from that row's only in its ZeRO
    stage and recomputation policy (the pruned search's groups), is built on (`members`):
    the same numbers.
    """
    if groups is not None and chip_cal is None and stack_cal is None:
        s = members(job, groups[0], batch, groups[1])
    else:
        s = stage(job, system, calibration, batch, chip_cal, stack_cal)
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
