"""Time of one forward pass of a serving replica: a prefill or one decode iteration.

The work comes from `chipmix.perf.ops` (per-op FLOPs and bytes of one layer) and its time
from the roofline of `chipmix.perf.roofline` (``max(FLOPs / achieved rate, bytes /
achieved bandwidth)`` per GEMM), as for training; serving adds what differs:

- **Decode** runs one token per request: a GEMM of ``m = batch`` rows reads the whole
  weight matrix, so small batches are memory-bound and the time per token at batch 1 is
  ≈ weight bytes / achieved bandwidth (Pope et al. 2022, arXiv 2211.05102, §3.1; Yuan et
  al. 2024, "LLM Inference Unveiled: Survey and Roofline Model Insights", arXiv 2402.16363).
  Attention reads every cached K/V of every request: ``batch · context · kv_bytes`` per layer
  against ``4 · batch · context · heads · d_head`` FLOPs, memory-bound at any batch.
- **Prefill** runs the whole prompt at once: GEMMs of ``m = input_len`` rows and causal
  attention over the prompt, compute-bound at long inputs (Agrawal et al. 2023, Sarathi,
  arXiv 2308.16369, §2). Logits are computed for the last position only.
- **Mixture of experts**: a decode batch of ``T`` tokens routed top-``k`` over ``E`` experts
  touches ``E · (1 − (1 − k/E)^T)`` distinct experts in expectation (`distinct_experts`),
  and only their weights are read; each runs a GEMM of ``T·k / touched`` rows, so a decode
  batch's grouped GEMMs stay memory-bound until an expert's rows pass the chip's ridge point
  (peak FLOP/s ÷ (2 · HBM bytes/s) per weight byte: a few hundred on current GPUs). With expert
  parallelism the experts are sharded over ``ep`` chips (whole experts per chip) and tokens
  move by a dispatch and a combine all-to-all per MoE layer (GShard, Lepikhin et al. 2020,
  arXiv 2006.16668); without it every expert is split ``tp`` ways.
- **Tensor parallelism** adds two all-reduces of the activations per layer (Megatron-LM,
  Shoeybi et al. 2019, §3). Decode messages are small, so latency dominates: the bandwidth
  term of `perf.collectives` plus ``⌈log₂ r⌉·α`` over the ``r`` ranks (recursive doubling
  for short messages, Thakur, Rabenseifner & Gropp 2005, §4). A chip its framework sees as
  ``d`` devices (the catalog's ``devices_per_chip``: TPU7x's two TensorCores, Trainium's
  NeuronCores) is ``d`` ranks, so ``r = tp · d``, and a one-chip replica of such a chip
  still all-reduces; the bytes inside the chip cross a die-to-die or on-chip fabric whose
  bandwidth is not published, so only the latency steps are drawn.
- **Pipeline parallelism**: the iteration's requests are split into ``pp`` micro-batches in
  flight, so one iteration costs ``pp`` stage-times of a ``⌈batch/pp⌉`` micro-batch plus the
  point-to-point hops.

Every argument is an array over layouts; the functions broadcast.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import NDArray

from chipmix.catalog.calibration import Calibration, StackCalibration
from chipmix.catalog.system import ResolvedSystem
from chipmix.perf import collectives as coll
from chipmix.perf.layout import LayoutBatch
from chipmix.perf.ops import Gemm, layer_work, logits_work
from chipmix.perf.roofline import ChipRates, gemm_efficiency
from chipmix.serve.calibration import ServeCalibration, ServeStackCalibration
from chipmix.serve.job import ServeJob
from chipmix.serve.memory import _kv_elements_per_token_layer
from chipmix.serve.precision import has_fp4_peak, kv_bytes, matmul_peak_flops, weight_bytes

__all__ = [
    "ForwardTime",
    "ServeSetup",
    "decode_time",
    "distinct_experts",
    "gemm_time",
    "iteration_time",
    "prefill_time",
    "serve_setup",
]

Array = NDArray[np.float64]
ACT_BYTES = 2.0


@dataclass(frozen=True, slots=True)
class ForwardTime:
    """Seconds of one forward pass by cause; they add up to its time."""

    matmul: Array
    """Projection, MLP, expert and logits GEMMs."""
    attention: Array
    """The attention core (prefill: flash attention; decode: reading the KV cache)."""
    memory_bound: Array
    """Norms, residuals, activations, rotary embedding."""
    tp_comm: Array
    """Tensor-parallel all-reduces."""
    ep_comm: Array
    """Expert-parallel all-to-all (dispatch and combine)."""
    pp_comm: Array
    """Pipeline point-to-point hops."""
    overhead: Array
    """The stack's fixed time per iteration (scheduling, sampling, launch gaps)."""

    @property
    def total(self) -> Array:
        return np.asarray(sum(getattr(self, f.name) for f in fields(self)))

    def row(self, i: int) -> dict[str, float]:
        return {f.name: float(np.broadcast_to(getattr(self, f.name), self.total.shape)[i])
                for f in fields(self)}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ServeSetup:
    """One job on one system under one calibration: the rates every forward pass uses."""

    job: ServeJob
    system: ResolvedSystem
    gemm: ChipRates
    """Rates of the weights' GEMMs (weight bytes per element, the matmul precision's peak)."""
    experts: ChipRates
    """Rates of routed-expert GEMMs (the same, at the calibrated expert efficiency)."""
    attention: ChipRates
    """Rates of the attention core (bf16)."""
    stack: ServeStackCalibration
    alpha: float
    devices_per_chip: float
    """Tensor-parallel ranks per chip (the catalog's ``devices_per_chip``; 1 for most)."""
    link_up: float
    link_out: float
    memory_reserved_bytes: float
    server_utilization: float


def serve_setup(
    job: ServeJob,
    system: ResolvedSystem,
    calibration: Calibration,
    serving: ServeCalibration,
) -> ServeSetup:
    """Resolve the chip's calibration and the stack's serving parameters for ``job``."""
    chip = system.chip
    chip_cal = calibration.for_chip(chip.id)
    own = serving.for_chip(chip.id)
    if own.memory_efficiency is not None:
        chip_cal = chip_cal.model_copy(update={"memory_efficiency": own.memory_efficiency})
    stack = serving.for_stack(serving.stack_name(job.stack, chip.vendor))
    stack_cal = StackCalibration(compute_efficiency=stack.compute_efficiency)
    peak = matmul_peak_flops(chip, job.precision, weight_only=job.weight_only)
    peak *= own.compute_efficiency
    if job.precision == "fp4" and not job.weight_only and not has_fp4_peak(chip):
        peak *= serving.fp4_speedup
    gemm = ChipRates(peak, chip.hbm_bytes_per_s, chip_cal, stack_cal, weight_bytes(job.precision))
    bf16 = chip.peak_flops("bf16") * own.compute_efficiency
    attention = ChipRates(bf16, chip.hbm_bytes_per_s, chip_cal, stack_cal, 2.0)
    experts = ChipRates(
        peak * serving.expert_efficiency, chip.hbm_bytes_per_s, chip_cal, stack_cal,
        weight_bytes(job.precision),
    )  # fmt: skip
    return ServeSetup(
        job=job,
        system=system,
        gemm=gemm,
        experts=experts,
        attention=attention,
        stack=stack,
        alpha=chip_cal.collective_latency_s,
        devices_per_chip=float(chip.devices),
        link_up=system.scaleup_bytes_per_s * chip_cal.scaleup_efficiency,
        link_out=max(system.scaleout_bytes_per_s * chip_cal.scaleout_efficiency, 1.0),
        memory_reserved_bytes=chip_cal.memory_reserved_gib * 2**30,
        server_utilization=serving.server_utilization,
    )


def _batch(tp: Array, tokens_per_seq: Array) -> LayoutBatch:
    ones = np.ones_like(tp, dtype=np.int64)
    mb = np.maximum(np.asarray(tokens_per_seq), 1).astype(np.int64)
    return LayoutBatch(
        tp.astype(np.int64), ones, ones, ones, ones, ones, mb, ones * 0, ones * 0
    )  # fmt: skip


M_TILE = 64.0
"""Rows of the smallest tensor-core tile a skinny GEMM is padded to (Hopper's wgmma
instructions have M = 64: NVIDIA PTX ISA 8.0, §9.7.14; other matrix units are no finer)."""


def gemm_time(rates: ChipRates, m: Array, k: Array | float, n: Array | float) -> Array:
    """Seconds of one ``(m × k) · (k × n)`` GEMM whose second operand is a weight matrix.

    The roofline of `perf.roofline` with the efficiency curve taken over the weight's
    dimensions (``d = min(k, n)``) and ``m`` padded to one tile: a decode GEMM of a few rows
    streams the weights at memory speed rather than paying the small-square-GEMM penalty
    that ``d = min(m, k, n)`` would charge (the LLM-inference roofline of Yuan et al. 2024,
    arXiv 2402.16363, §3)."""
    m = np.asarray(m, dtype=np.float64)
    d = np.minimum(np.asarray(k, dtype=np.float64), n)
    rate = rates.peak_flops * gemm_efficiency(d, rates.chip) * rates.compute_scale
    flops = 2.0 * np.maximum(m, M_TILE) * k * n
    traffic = rates.bytes_per_element * (m * k + k * n) + ACT_BYTES * m * n
    return np.asarray(np.maximum(flops / rate, traffic / rates.memory_rate))


def distinct_experts(tokens: Array | float, experts: int, top_k: int) -> Array:
    """Expected number of distinct experts ``tokens`` tokens routed top-``k`` over
    ``experts`` experts touch: ``E · (1 − (1 − k/E)^T)``.

    Each token picks ``k`` of the ``E`` experts, so a given expert escapes one token with
    probability ``1 − k/E`` and all ``T`` (independently routed) tokens with
    ``(1 − k/E)^T``; the expectation of the number of occupied cells follows by linearity
    (the classical occupancy problem: Feller, *An Introduction to Probability Theory and Its
    Applications* I, 3rd ed. 1968, §II.11 and §IV.2). Routing is taken as uniform, which the
    load-balancing loss trains it toward (Switch Transformer, Fedus et al. 2021, arXiv
    2101.03961, §2.2). At least one expert is touched."""
    t = np.asarray(tokens, dtype=np.float64)
    e = float(experts)
    return np.asarray(np.maximum(e * (1.0 - (1.0 - top_k / e) ** t), 1.0))


def _gemms_time(s: ServeSetup, gemms: list[Gemm], tokens: Array, tp: Array, ep: Array) -> Array:
    """GEMM seconds of one layer; routed experts adjusted for touched experts and ep."""
    moe = s.job.model.moe
    total = np.zeros_like(np.asarray(tokens, dtype=np.float64))
    for g in gemms:
        m, n, count = np.asarray(g.m, dtype=np.float64), g.n, np.asarray(g.count, dtype=float)
        if g.name.startswith("experts_") and moe is not None:
            routed = tokens * moe.top_k
            touched = distinct_experts(tokens, moe.num_experts, moe.top_k)
            m = routed / touched
            # Whole experts per chip under ep: each chip holds E/ep experts ep× wider.
            widen = ep if g.name == "experts_in" else 1.0
            k_scale = ep if g.name == "experts_out" else 1.0
            count = touched / ep
            total = total + gemm_time(s.experts, m, g.k * k_scale, n * widen) * count
            continue
        total = total + gemm_time(s.gemm, m, g.k, n) * count
    return np.asarray(total)


def _comm(s: ServeSetup, tp: Array, ep: Array, tokens: Array, moe_layers: Array,
          layers: Array) -> tuple[Array, Array]:  # fmt: skip
    model = s.job.model
    inside = tp <= s.system.scaleup_domain_chips
    bw = np.where(inside, s.link_up, s.link_out)
    nbytes = tokens * model.hidden_size * ACT_BYTES
    ranks = tp * s.devices_per_chip
    latency = np.ceil(np.log2(np.maximum(ranks, 1.0))) * s.alpha
    one = np.where(ranks > 1, coll.all_reduce_time(tp, nbytes, bw, 0.0) + latency, 0.0)
    if model.moe is None:
        return np.asarray(2.0 * layers * one), np.zeros_like(one)
    a2a_bytes = tokens * model.moe.top_k * model.hidden_size * ACT_BYTES
    a2a = coll.all_to_all_time(ep, a2a_bytes, bw, s.alpha)
    ep_on = ep > 1
    tp_comm = layers * one + np.where(ep_on, layers - moe_layers, layers) * one
    ep_comm = np.where(ep_on, 2.0 * moe_layers * a2a, 0.0)
    return np.asarray(tp_comm), np.asarray(ep_comm)


def _forward(
    s: ServeSetup, tp: Array, pp: Array, ep: Array, tokens: Array, seqs: Array, attention: Array
) -> ForwardTime:
    """One pass of ``tokens`` tokens of ``seqs`` sequences (per pipeline micro-batch) through
    every layer, with ``attention`` seconds of attention core over all layers."""
    model = s.job.model
    tokens = np.maximum(tokens, 1.0)
    batch = _batch(tp, np.ceil(tokens))
    layers = float(model.num_layers)
    moe_layers = float(model.num_moe_layers)
    dense = layer_work(model, 1, batch, moe_layer=False)
    gemm = (layers - moe_layers) * _gemms_time(s, dense.gemms, tokens, tp, ep)
    elem = (layers - moe_layers) * s.gemm.memory_time(dense.elementwise_bytes)
    if moe_layers:
        moe = layer_work(model, 1, batch, moe_layer=True)
        gemm = gemm + moe_layers * _gemms_time(s, moe.gemms, tokens, tp, ep)
        elem = elem + moe_layers * s.gemm.memory_time(moe.elementwise_bytes)
    logits, _ = logits_work(model, 1, _batch(tp, np.ones_like(tp)))
    gemm = gemm + gemm_time(s.attention, np.maximum(seqs, 1.0), logits.k, logits.n)
    tp_comm, ep_comm = _comm(s, tp, ep, tokens, np.asarray(moe_layers), np.asarray(layers))
    p2p = coll.p2p_time(tokens * model.hidden_size * ACT_BYTES / tp, s.link_out, s.alpha)
    p2p = np.where(pp > 1, p2p, 0.0)
    # A request crosses all pp stages of ⌈L/pp⌉ layers each; in decode the pp micro-batches
    # keep every stage busy, so one iteration also costs pp stage-times.
    share = pp * np.ceil(layers / pp) / layers
    return ForwardTime(
        matmul=np.asarray(share * gemm),
        attention=np.asarray(share * attention),
        memory_bound=np.asarray(share * elem),
        tp_comm=np.asarray(share * tp_comm),
        ep_comm=np.asarray(share * ep_comm),
        pp_comm=np.asarray((pp - 1.0) * p2p),
        overhead=np.asarray(s.stack.iteration_overhead_s + s.stack.request_overhead_s * seqs * pp),
    )


def _prefill_attention(s: ServeSetup, tp: Array, input_len: int) -> Array:
    """Attention core of one prompt's prefill over all layers (causal flash attention)."""
    work = layer_work(s.job.model, input_len, _batch(tp, np.ones_like(tp)), moe_layer=False)
    return np.asarray(s.job.model.num_layers * s.attention.attention_time(work.attention_flops))


def _decode_attention(s: ServeSetup, tp: Array, requests: Array, context: float) -> Array:
    """Attention core of ``requests`` decode tokens over all layers: every cached K/V read."""
    model = s.job.model
    heads = model.num_heads / tp
    if model.mla is not None:
        qk = float(model.mla.kv_lora_rank + model.mla.qk_rope_head_dim)  # absorbed MLA
        v = float(model.mla.kv_lora_rank)
    else:
        qk = v = float(model.head_dim)
    flops = 2.0 * requests * context * heads * (qk + v)
    kv = requests * context * _kv_elements_per_token_layer(model, tp) * kv_bytes(s.job.kv_precision)
    per_layer = np.maximum(s.attention.attention_time(flops), s.attention.memory_time(kv))
    return np.asarray(model.num_layers * per_layer)


def prefill_time(s: ServeSetup, tp: Array, pp: Array, ep: Array, input_len: int) -> ForwardTime:
    """One request's prefill of ``input_len`` tokens on an otherwise idle replica."""
    tp, pp, ep = (np.asarray(a, dtype=np.float64) for a in (tp, pp, ep))
    tokens = np.full_like(tp, float(input_len))
    attention = _prefill_attention(s, tp, input_len)
    return _forward(s, tp, pp, ep, tokens, np.ones_like(tp), attention)


def iteration_time(
    s: ServeSetup,
    tp: Array,
    pp: Array,
    ep: Array,
    batch: Array,
    prompts: Array | float,
    context: float,
) -> ForwardTime:
    """One iteration of continuous batching with chunked prefill: each of ``batch`` running
    requests advances by one token, attending to ``context`` cached tokens, and ``prompts``
    prompts' worth of prefill (of the job's input length) ride in the same GEMMs
    (Sarathi-Serve, Agrawal et al. 2024, arXiv 2403.02310, §4.2: the weights are read
    once for decode and prefill tokens together)."""
    tp, pp, ep, batch = (np.asarray(a, dtype=np.float64) for a in (tp, pp, ep, batch))
    prompts = np.asarray(prompts, dtype=np.float64)
    input_len = s.job.input_len
    micro = np.ceil(batch / pp)  # requests per pipeline micro-batch
    prefill_seqs = prompts / pp
    tokens = micro + prefill_seqs * input_len
    attention = _decode_attention(s, tp, micro, context) + prefill_seqs * _prefill_attention(
        s, tp, input_len
    )
    return _forward(s, tp, pp, ep, tokens, micro + prefill_seqs, attention)


def decode_time(
    s: ServeSetup, tp: Array, pp: Array, ep: Array, batch: Array, context: float
) -> ForwardTime:
    """One decode iteration of ``batch`` requests and no prefill."""
    return iteration_time(s, tp, pp, ep, batch, 0.0, context)
