"""Op time on one chip: the roofline (Williams et al. 2009, CACM 52(4)) × calibrated efficiency.

``time = max(flops / (peak · e), bytes / (bandwidth · e_mem))`` where the matmul efficiency
``e`` depends on the GEMM's smallest dimension ``d``: ``e = e_max · d / (d + d_half)``
(tile quantization and launch overhead make small GEMMs slow; ``e_max`` is the chip's
maximum achievable matmul throughput ÷ peak, ``d_half`` a calibrated constant).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from chipmix.catalog.calibration import ChipCalibration, StackCalibration

__all__ = ["ChipRates", "gemm_efficiency"]

Array = NDArray[np.float64]


def gemm_efficiency(
    d: Array | float,
    calib: ChipCalibration,
    max_efficiency: Array | float | None = None,
    half_dim: Array | float | None = None,
) -> Array:
    """Fraction of peak a GEMM whose smallest dimension is ``d`` reaches (the chip's bf16
    figures unless ``max_efficiency`` / ``half_dim`` are given)."""
    d = np.asarray(d, dtype=np.float64)
    e = calib.matmul_efficiency if max_efficiency is None else max_efficiency
    h = calib.matmul_half_dim if half_dim is None else half_dim
    return np.asarray(e * d / (d + h))


@dataclass(frozen=True, slots=True)
class ChipRates:
    """The achieved rates of one chip under one stack, ready to turn work into seconds."""

    peak_flops: float
    """Dense peak FLOP/s at the job's matmul precision."""
    hbm_bytes_per_s: float
    chip: ChipCalibration
    stack: StackCalibration
    bytes_per_element: float
    """Matmul input width: 2 for bf16, 1 for fp8/int8, 0.5 for fp4."""
    max_efficiency: float | None = None
    """Large-GEMM fraction of ``peak_flops`` where it differs from the chip's bf16
    ``matmul_efficiency`` (the low-precision units: `chipmix.perf.precision`)."""
    half_dim: float | None = None
    """Small-GEMM half dimension where it differs from the chip's bf16 one."""

    @property
    def efficiency(self) -> float:
        return self.chip.matmul_efficiency if self.max_efficiency is None else self.max_efficiency

    @property
    def compute_scale(self) -> float:
        """Stack multiplier, capped so no rate ever exceeds the datasheet peak."""
        return np.minimum(self.stack.compute_efficiency, 1.0 / self.efficiency)  # type: ignore[no-any-return]

    def gemm_time(self, m: Array, k: Array | float, n: Array | float) -> Array:
        """Seconds for one ``(m × k) · (k × n)`` GEMM."""
        flops = 2.0 * m * k * n
        d = np.minimum(np.minimum(m, k), n)
        e = gemm_efficiency(d, self.chip, self.max_efficiency, self.half_dim)
        rate = self.peak_flops * e * self.compute_scale
        traffic = self.bytes_per_element * (m * k + k * n) + 2.0 * m * n
        return np.asarray(np.maximum(flops / rate, traffic / self.memory_rate))

    def attention_time(self, flops: Array) -> Array:
        """Seconds for fused (flash) attention doing ``flops`` useful FLOPs. Its efficiency
        never exceeds the chip's large-GEMM efficiency: attention is built from GEMMs plus
        softmax work, so it cannot outrun the best matmul."""
        fraction = np.minimum(self.chip.attention_efficiency, self.chip.matmul_efficiency)
        rate = self.peak_flops * np.minimum(fraction * self.compute_scale, 1.0)
        return np.asarray(flops / rate)

    @property
    def memory_rate(self) -> float:
        return self.hbm_bytes_per_s * self.chip.memory_efficiency

    def memory_time(self, nbytes: Array | float) -> Array:
        """Seconds for a memory-bound (streaming) kernel moving ``nbytes``."""
        return np.asarray(np.asarray(nbytes, dtype=np.float64) / self.memory_rate)
