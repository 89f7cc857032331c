"""One micro-batch on the fullest pipeline stage, and the pipeline's bubble: the first part
of the step model (`chipmix.perf.step.evaluate`), per layout of a `LayoutBatch`.

A stage's time per micro-batch ``t_mb`` is its layers' compute plus the exposed
tensor/context/expert-parallel communication and the pipeline's sends; the bubble is
``(pp − 1) / vpp · t_mb`` (Narayanan et al. 2021, arXiv 2104.04473, eq. 1 and §2.2.2).

Only the recomputation policy's terms (the forward work re-run, the collectives and
all-to-alls it repeats) read the policy, and nothing here reads the ZeRO stage: the layouts
that differ only in those two axes (a group of `chipmix.layouts.prune`) share every other
term. `members` builds the stage of such layouts from their group's stage, with the same
numbers, to the last bit, as `stage` on the layouts themselves (the same operations on the
same values, element by element).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from chipmix.catalog.calibration import Calibration, ChipCalibration, StackCalibration
from chipmix.catalog.system import ResolvedSystem
from chipmix.perf import collectives as coll
from chipmix.perf import experts
from chipmix.perf.eager import EagerTerms, eager_terms
from chipmix.perf.layer_times import LayerTimes, layer_shapes, layer_times
from chipmix.perf.layout import LayoutBatch, stage_layers
from chipmix.perf.memory import parameters_per_chip
from chipmix.perf.ops import ACT_BYTES, layer_work, logits_work
from chipmix.perf.precision import low_precision_rates
from chipmix.perf.rerun import rerun_comm, rerun_time
from chipmix.perf.roofline import ChipRates
from chipmix.perf.stacks import stack_traits
from chipmix.workload.job import Job

__all__ = ["Stage", "members", "stage"]

Array = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class _Shared:
    """The terms that read neither the recomputation policy nor the ZeRO stage, per layout,
    and the layer times they came from (per distinct layer shape: ``shape_rows``)."""

    layers: Array
    """Layers on the fullest stage."""
    tp_one: Array
    """One tensor-parallel collective of a layer's activation, seconds."""
    a2a: Array | None
    """One expert-parallel all-to-all, seconds (None for a dense model)."""
    dense: LayerTimes
    moe: LayerTimes
    shape_rows: NDArray[np.intp] | None
    """Each layout's row of ``dense`` and ``moe`` (None: one row per layout)."""


@dataclass(frozen=True, slots=True)
class Stage:
    """Seconds per micro-batch on the fullest pipeline stage by cause, the bubble, and what
    the step's later terms read (`chipmix.perf.step.evaluate`)."""

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
    shared: _Shared


def _link(
    group_span: Array, system: ResolvedSystem, calib_up: float, calib_out: float
) -> tuple[Array, Array]:
    """Per-chip bandwidth for a group whose members span ``group_span`` consecutive ranks:
    the scale-up fabric if that span fits in one domain, else the scale-out network."""
    up = system.scaleup_bytes_per_s * calib_up
    out = np.maximum(system.scaleout_bytes_per_s * calib_out, 1.0)
    inside = group_span <= system.scaleup_domain_chips
    return np.asarray(inside), np.where(inside, up, out)


def stage(
    job: Job,
    system: ResolvedSystem,
    calibration: Calibration,
    batch: LayoutBatch,
    chip_cal: ChipCalibration | None = None,
    stack_cal: StackCalibration | None = None,
) -> Stage:
    """One micro-batch on the fullest pipeline stage and the pipeline's bubble, per layout
    (`chipmix.perf.step.evaluate`'s first part; the floor of `chipmix.layouts.prune`
    stops here)."""
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
        return layer_times(model, work, bf16, low, recipe, frozen)

    # Each distinct shape's times, looked up per layout field by field (`rows`).
    dense = layer(moe_layer=False)
    moe = layer(moe_layer=True) if model.moe is not None else dense
    rows = None if shapes is None else shapes[1]

    def per_layout(times: LayerTimes, f: str) -> Array:
        value: Array = getattr(times, f)
        return value if rows is None else value.take(rows)

    def per_stage(f: str) -> Array:
        value = per_layout(dense, f)
        other = value if moe is dense else per_layout(moe, f)
        return np.asarray(dense_layers * value + moe_layers * other)

    # What a layer's shape alone decides (tp, cp, micro-batch, ep and its rank stride) is
    # found once per shape, like the layer's times, and looked up per layout.
    def per_shape(value: Array) -> Array:
        return value if rows is None else value.take(rows)

    s_tp = shaped.tp.astype(np.float64)
    s_cp = shaped.cp.astype(np.float64)
    s_tokens = shaped.micro_batch.astype(np.float64) * job.seq_len / s_cp

    gemm_fwd, gemm_bwd = per_stage("gemm_fwd"), per_stage("gemm_bwd")
    attn_fwd, elem_fwd = per_stage("attention_fwd"), per_stage("elementwise_fwd")
    logits_gemm, ce_bytes = logits_work(model, job.seq_len, shaped)
    logits_fwd = bf16.gemm_time(logits_gemm.m, logits_gemm.k, logits_gemm.n)
    logits_time = per_shape(logits_fwd * (2.0 if frozen else 3.0))

    matmul_mb = gemm_fwd + gemm_bwd + logits_time
    attention_mb = attn_fwd * 3.5  # forward + 2.5× backward
    memory_mb = elem_fwd * 3.0 + per_shape(bf16.memory_time(ce_bytes)) + per_stage("cast")

    # -- tensor parallel (sequence parallel): 2 all-gathers + 2 reduce-scatters of the
    # full activation per layer forward, as many backward (Korthikanti et al. 2022 §4.2.2).
    s_act_bytes = s_tokens * model.hidden_size * ACT_BYTES
    _, tp_bw = _link(s_tp, system, chip_cal.scaleup_efficiency, chip_cal.scaleout_efficiency)
    tp_one = per_shape(coll.reduce_scatter_time(s_tp, s_act_bytes, tp_bw, alpha))

    # -- context parallel, in the variants the stack offers (the faster one counts):
    # ring attention passes K and V chunks cp−1 times per layer forward, K/V and their
    # gradients backward (Liu et al. 2023, arXiv 2310.01889), overlapped with the attention
    # core it feeds; all-gather (Llama 3, Dubey et al. 2024 §3.3.2; Megatron-Core
    # --cp-comm-type all_gather) gathers the whole sequence's K/V before attention and
    # reduce-scatters their gradients after it, exposed.
    kv_bytes = s_tokens * 2.0 * model.kv_dim / s_tp * ACT_BYTES
    _, cp_bw = _link(s_tp * s_cp, system, chip_cal.scaleup_efficiency, chip_cal.scaleout_efficiency)
    s_ring = (s_cp - 1.0) * coll.p2p_time(kv_bytes, cp_bw, alpha)
    ring, ring_twice = per_shape(s_ring), per_shape(2.0 * s_ring)
    cp_fwd = np.maximum(ring - attn_fwd / np.maximum(layers_per_stage, 1.0), 0.0)
    cp_bwd = np.maximum(ring_twice - 2.5 * attn_fwd / np.maximum(layers_per_stage, 1.0), 0.0)
    gather = per_shape(2.0 * coll.reduce_scatter_time(s_cp, kv_bytes * s_cp, cp_bw, alpha))
    variants = [cp_fwd + cp_bwd] if traits.cp_ring else []
    variants += [gather] if traits.cp_all_gather or not variants else []
    cp_layer = np.minimum.reduce(variants) if len(variants) > 1 else variants[0]
    cp_mb = np.where(cp > 1, layers_per_stage * cp_layer, 0.0)

    # -- expert parallel: dispatch and combine all-to-all per MoE layer, forward and
    # backward (Lepikhin et al. 2020, GShard, arXiv 2006.16668); tokens are split over tp.
    # Copies to ranks in the same scale-up domain and across domains move concurrently on
    # their own links; a deduplicating dispatcher sends a token once per remote domain
    # (`chipmix.perf.experts`).
    a2a = None
    if model.moe is not None:
        a2a = per_shape(experts.all_to_all_seconds(
            model, s_tokens / s_tp, shaped, system.scaleup_domain_chips,
            system.scaleup_bytes_per_s * chip_cal.scaleup_efficiency,
            max(system.scaleout_bytes_per_s * chip_cal.scaleout_efficiency, 1.0), alpha,
            dedup=traits.ep_dispatch_dedup, element_bytes=ACT_BYTES,
        ))  # fmt: skip

    # -- pipeline point-to-point: one activation forward, one gradient backward per
    # micro-batch and virtual stage.
    _, pp_bw = _link(
        tp * cp * dp * pp, system, chip_cal.scaleup_efficiency, chip_cal.scaleout_efficiency
    )
    p2p = coll.p2p_time(per_shape(s_act_bytes / s_tp), pp_bw, alpha)
    pp_mb = np.where(pp > 1, 2.0 * vpp * p2p * (1.0 - stack_cal.pp_overlap), 0.0)

    eager = None
    if stack_cal.eager is not None:
        weights_here = parameters_per_chip(job, batch)[0]
        eager = eager_terms(model, job.seq_len, batch, layers_per_stage, stack_cal.eager,
                            bf16, weights_per_chip=weights_here)  # fmt: skip
    shared = _Shared(layers_per_stage, tp_one, a2a, dense, moe, rows)
    return _policy_terms(
        job, batch, shared, microbatches, matmul_mb, attention_mb, memory_mb, cp_mb, pp_mb,
        moe_layers, per_stage("weight_cast"), eager, bf16, chip_cal, stack_cal, stack,
    )  # fmt: skip


def members(job: Job, groups: Stage, batch: LayoutBatch, group: NDArray[np.intp]) -> Stage:
    """The stage of the layouts ``batch``, each of which differs from its group's layout
    (row ``group`` of the batch ``groups`` was found for) in its ZeRO stage and
    recomputation policy alone: the group's terms, and the policy's own. Fused stacks only
    (an eager stack's terms read the whole layout)."""
    assert groups.eager is None, "an eager stack's stage is found layout by layout"
    g = groups.shared
    shared = _Shared(
        g.layers[group], g.tp_one[group], None if g.a2a is None else g.a2a[group],
        g.dense, g.moe, group if g.shape_rows is None else g.shape_rows[group],
    )  # fmt: skip
    return _policy_terms(
        job, batch, shared, groups.microbatches[group], groups.matmul[group],
        groups.attention[group], groups.memory[group], groups.cp[group], groups.pp[group],
        groups.moe_layers[group], groups.weight_cast[group], None, groups.bf16,
        groups.chip_cal, groups.stack_cal, groups.stack,
    )  # fmt: skip


def _policy_terms(
    job: Job,
    batch: LayoutBatch,
    shared: _Shared,
    microbatches: Array,
    matmul_mb: Array,
    attention_mb: Array,
    memory_mb: Array,
    cp_mb: Array,
    pp_mb: Array,
    moe_layers: Array,
    weight_cast: Array,
    eager: EagerTerms | None,
    bf16: ChipRates,
    chip_cal: ChipCalibration,
    stack_cal: StackCalibration,
    stack: str | None,
) -> Stage:
    """The terms the recomputation policy changes, and the stage's sum and bubble."""
    model = job.model
    layers_per_stage = shared.layers
    dense_layers = layers_per_stage - moe_layers
    rows = shared.shape_rows
    # Forward work the recomputation policy repeats (`chipmix.perf.rerun`).
    recompute_mb = dense_layers * rerun_time(batch, model, shared.dense.ops, rows) + (
        moe_layers * rerun_time(batch, model, shared.moe.ops, rows)
    )
    tp_dense, _ = rerun_comm(batch, moe_layer=False)
    tp_moe, a2a_again = rerun_comm(batch, moe_layer=True)
    tp_passes = dense_layers * (8.0 + tp_dense) + moe_layers * (8.0 + tp_moe)
    tp_mb = tp_passes * shared.tp_one * (1.0 - stack_cal.tp_overlap)
    if shared.a2a is not None:
        ep_mb = moe_layers * (4.0 + 2.0 * a2a_again) * shared.a2a
    else:
        ep_mb = np.zeros_like(layers_per_stage)
    t_mb = matmul_mb + attention_mb + memory_mb + recompute_mb + tp_mb + cp_mb + ep_mb + pp_mb
    if eager is not None:
        t_mb = t_mb + eager.microbatch_s
    pp = batch.pp.astype(np.float64)
    vpp = batch.vpp.astype(np.float64)
    bubble = (pp - 1.0) / vpp * t_mb
    return Stage(
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
        weight_cast=weight_cast,
        bf16=bf16,
        chip_cal=chip_cal,
        stack_cal=stack_cal,
        stack=stack,
        shared=shared,
    )
