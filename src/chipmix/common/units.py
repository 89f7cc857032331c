"""Names and units every room shares: numeric precisions, bytes per GiB."""

from __future__ import annotations

from typing import Literal

__all__ = ["GIB", "PRECISIONS", "Precision"]

Precision = Literal["fp32", "tf32", "bf16", "fp8", "int8", "fp4"]
"""A numeric format a chip computes in (peak FLOP/s are quoted per precision)."""
PRECISIONS: tuple[Precision, ...] = ("fp32", "tf32", "bf16", "fp8", "int8", "fp4")

GIB = float(2**30)
"""Bytes in a GiB (memory capacities are quoted in GiB)."""
