"""The cost of a precision recipe on one chip: low-precision GEMM time and cast traffic.

A low-precision GEMM runs at the chip's dense peak for that format (catalog) times the
fraction a large GEMM of that format reaches (calibration ``low_precision_efficiency``,
prior: the chip's bf16 fraction, or a microbenchmark where one is published). Its
small-GEMM penalty grows with the rate: the fixed per-GEMM costs (launch, pipeline fill,
the last partial wave) take the same seconds whatever the format, so the dimension at
which they halve the efficiency scales with the peak ratio — the reason fp8 gains little
on small models (e = e_max · d / (d + d_half · P_low / P_bf16)).

Every quantized tensor is produced by a memory-bound cast: read the bf16 tensor (once more
per amax pass), write the quantized copy or copies and their scales. Activations are cast
for every micro-batch (the forward input ``X``; the output gradient ``dY`` in backward),
weights once per optimizer step (Transformer Engine caches a weight's fp8 copy across the
micro-batches of a step: ``is_first_microbatch``). The speed-up of a recipe over bf16 is
what is left of the GEMM gain after this traffic and the work that stays in bf16
(attention, logits, norms, communication) — not a flat factor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from chipmix.catalog.calibration import ChipCalibration, StackCalibration
from chipmix.catalog.chip import Chip
from chipmix.perf.ops import ACT_BYTES, Gemm
from chipmix.perf.roofline import ChipRates
from chipmix.workload.precision import PrecisionRecipe

__all__ = ["GemmPassTimes", "gemm_pass_times", "low_precision_rates"]

Array = NDArray[np.float64]

_BF16_ONLY = frozenset({"router"})
"""GEMMs every recipe keeps in bf16 besides the logits (which `perf.step` times apart)."""

GROUPED = frozenset({"experts_in", "experts_out"})
"""The routed experts' GEMMs: one grouped GEMM over the local experts, each with its own
ragged token count (MegaBlocks, Gale et al. 2022, arXiv 2211.15841; Megatron-Core
``--moe-grouped-gemm``). Beyond the small-GEMM penalty every expert's GEMM pays through its
own shape, a grouped GEMM reaches the chip's calibrated ``grouped_gemm_efficiency`` of the
dense rate (per-group tile and wave tails, scheduling of ragged groups)."""


def low_precision_rates(
    chip: Chip,
    chip_cal: ChipCalibration,
    stack_cal: StackCalibration,
    recipe: PrecisionRecipe,
    bf16: ChipRates,
) -> ChipRates | None:
    """The rates of the recipe's low-precision GEMMs, or None where they run in bf16 (a
    bf16 recipe, or a chip whose units for that format are no faster than bf16)."""
    if recipe.precision == "bf16":
        return None
    peak = chip.peak_flops(recipe.precision)
    ratio = peak / chip.peak_flops("bf16")
    if ratio <= 1.0:
        return None
    efficiency = chip_cal.low_precision_efficiency
    return ChipRates(
        peak_flops=peak,
        hbm_bytes_per_s=bf16.hbm_bytes_per_s,
        chip=chip_cal,
        stack=stack_cal,
        bytes_per_element=recipe.element_bytes,
        max_efficiency=chip_cal.matmul_efficiency if efficiency is None else efficiency,
        half_dim=chip_cal.matmul_half_dim * ratio,
    )


@dataclass(frozen=True, slots=True)
class GemmPassTimes:
    """One layer's linear layers for one micro-batch: GEMM seconds and cast bytes."""

    forward: Array
    """Forward GEMM seconds (adapters included)."""
    backward: Array
    """Backward GEMM seconds: input and weight gradients (adapters included)."""
    cast_bytes: Array
    """HBM bytes of the per-micro-batch casts (forward and backward together)."""
    weight_cast_bytes: Array
    """HBM bytes of casting this layer's weights once per step."""


def gemm_pass_times(
    gemms: list[Gemm],
    adapters: list[Gemm],
    frozen: bool,
    recipe: PrecisionRecipe,
    bf16: ChipRates,
    low: ChipRates | None,
) -> GemmPassTimes:
    """Time the forward, input-gradient and weight-gradient GEMMs of a layer in the
    recipe's formats, and count the bytes its casts move.

    The backward GEMMs have the forward GEMM's FLOPs and smallest dimension (Narayanan et
    al. 2021, arXiv 2104.04473 §5.1), so each pass costs the forward time at its own rate.
    A frozen (LoRA) base runs no weight gradient; adapters stay in bf16.
    """
    zero = np.zeros_like(np.asarray(gemms[0].m, dtype=np.float64))
    t_bf16, t_low = zero.copy(), zero.copy()
    cast, weights = zero.copy(), zero.copy()
    share = 1.0 - recipe.bf16_layer_share if low is not None else 0.0
    q = recipe.quantized_bytes
    copies = 2.0 if recipe.both_orientations else 1.0
    read = ACT_BYTES * (1.0 + recipe.amax_reads)
    grouped = 1.0 / np.asarray(bf16.chip.grouped_gemm_efficiency, dtype=np.float64)
    for g in gemms:
        slow = grouped if g.name in GROUPED else 1.0
        bf16_time = bf16.gemm_time(g.m, g.k, g.n) * g.count * slow
        t_bf16 = t_bf16 + bf16_time
        if low is None or g.name in _BF16_ONLY:
            t_low = t_low + bf16_time
            continue
        t_low = t_low + low.gemm_time(g.m, g.k, g.n) * g.count * slow
        x = g.m * g.k * g.count  # forward input
        dy = g.m * g.n * g.count  # output gradient
        w = g.k * g.n * g.count
        orient = 1.0 if frozen else copies  # the transposed copies feed the wgrad GEMM
        cast = cast + x * (read + q * orient) + dy * (read + q * orient)
        if recipe.hadamard_on_wgrad and not frozen:
            cast = cast + (x + dy) * 2.0 * ACT_BYTES
        if not frozen:  # a frozen weight is cast once for the whole run
            weights = weights + w * (ACT_BYTES + q * copies)

    def pass_time(name: str) -> Array:
        low_time = t_low if name in recipe.passes else t_bf16
        return np.asarray(share * low_time + (1.0 - share) * t_bf16)

    forward = pass_time("fprop")
    backward = pass_time("dgrad") if frozen else pass_time("dgrad") + pass_time("wgrad")
    for g in adapters:
        a = bf16.gemm_time(g.m, g.k, g.n) * g.count
        forward = forward + a
        backward = backward + 2.0 * a
    return GemmPassTimes(
        forward=np.asarray(forward),
        backward=np.asarray(backward),
        cast_bytes=np.asarray(share * cast),
        weight_cast_bytes=np.asarray(share * weights),
    )
