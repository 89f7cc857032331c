"""Bytes per stored element and the matmul rate of a serving precision.

Weights are stored in ``bf16``, ``fp8``, ``int8`` or ``fp4``; the KV cache in ``bf16`` or
``fp8``. FP4 formats carry one scale per block: NVFP4 one FP8 (E4M3) scale per 16 values
(NVIDIA, "Introducing NVFP4 for efficient and accurate low-precision inference", 2025),
MXFP4 one 8-bit (E8M0) scale per 32 (OCP Microscaling Formats spec v1.0, 2023); we count
NVFP4's 4 + 8/16 = 4.5 bits. Weight-only quantization (int8 storage, bf16 matmuls, as in
transformers-neuronx) reads the small weights but multiplies at the bf16 rate.
"""

from __future__ import annotations

from typing import Literal, cast

from chipmix.catalog.chip import Chip
from chipmix.catalog.figure import Figure

__all__ = [
    "KV_PRECISIONS",
    "WEIGHT_PRECISIONS",
    "KVPrecision",
    "WeightPrecision",
    "has_fp4_peak",
    "kv_bytes",
    "matmul_peak_flops",
    "weight_bytes",
]

WeightPrecision = Literal["bf16", "fp8", "int8", "fp4"]
WEIGHT_PRECISIONS: tuple[WeightPrecision, ...] = ("bf16", "fp8", "int8", "fp4")
KVPrecision = Literal["bf16", "fp8"]
KV_PRECISIONS: tuple[KVPrecision, ...] = ("bf16", "fp8")

_WEIGHT_BYTES: dict[str, float] = {"bf16": 2.0, "fp8": 1.0, "int8": 1.0, "fp4": 4.5 / 8.0}
_KV_BYTES: dict[str, float] = {"bf16": 2.0, "fp8": 1.0}


def weight_bytes(precision: str) -> float:
    """Bytes per stored weight, block scales included."""
    return _WEIGHT_BYTES[precision]


def kv_bytes(precision: str) -> float:
    """Bytes per stored KV-cache element."""
    return _KV_BYTES[precision]


def has_fp4_peak(chip: Chip) -> bool:
    """True when the chip's catalog entry lists a dense fp4 peak."""
    return "fp4" in cast(dict[str, Figure], chip.peak_tflops_dense)


def matmul_peak_flops(chip: Chip, precision: str, *, weight_only: bool = False) -> float:
    """Dense peak FLOP/s the weights' matmuls run at: the precision's own rate where the chip
    has it, else the next wider one it has (fp4 → fp8 → bf16); bf16 for weight-only
    quantization. A chip without the low-precision units dequantizes and multiplies in bf16."""
    if weight_only:
        return chip.peak_flops("bf16")
    table = cast(dict[str, Figure], chip.peak_tflops_dense)
    ladder = {"fp4": ("fp4", "fp8"), "fp8": ("fp8",), "int8": ("int8",)}.get(precision, ())
    for p in ladder:
        if p in table:
            return table[p].value * 1e12
    return chip.peak_flops("bf16")
