"""One accelerator package: its peak rates, memory and links (the datasheet view)."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from chipmix.catalog.figure import Figure, check_positive_figures
from chipmix.common.files import NoBoolNumbers
from chipmix.common.units import PRECISIONS, Precision

__all__ = ["PRECISIONS", "Chip", "ChipStatus", "ChipUse", "Precision"]

ChipStatus = Literal["available", "announced"]
ChipUse = Literal["training", "inference"]

_FALLBACK: dict[str, tuple[Precision, ...]] = {
    "fp4": ("fp4", "fp8", "bf16"),
    "int8": ("int8", "bf16"),
}
"""Where a chip lacks a precision's matrix units, the rate its stacks fall back to: an fp4
recipe runs its GEMMs in fp8 on a chip without fp4 units (Hopper, MI300), else in bf16."""


class Chip(NoBoolNumbers):
    """A chip as its vendor specifies it. All compute figures are *dense* (no 2:4 sparsity)."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.\-]*$")
    """Catalog id, e.g. ``h100-sxm``; the ids are listed in DESIGN.md."""
    name: str
    vendor: str
    """``nvidia``, ``aws``, ``google``, ``amd``, ``intel`` or ``cpu``."""
    year: int
    peak_tflops_dense: dict[Precision, Figure]
    """Dense peak TFLOP/s (TOP/s for int8) per precision the chip's matrix units support."""
    hbm_gib: Figure
    """Device memory capacity in GiB (the usable figure where vendors differ)."""
    hbm_tb_s: Figure
    """Device memory bandwidth in TB/s (10^12 bytes/s)."""
    sram_mib: Figure | None = None
    """On-chip memory in MiB (L2 / Infinity Cache / SBUF / SRAM; not comparable across vendors)."""
    scaleup_gb_s_per_direction: Figure
    """Scale-up (NVLink, NeuronLink, ICI, Infinity Fabric) bandwidth per chip and direction,
    GB/s."""
    scaleup_domain_chips: Figure
    """Chips on one scale-up fabric in the chip's standard system."""
    scaleout_gbit_s_per_chip: Figure | None = None
    """Scale-out network (InfiniBand, EFA, RoCE, DCN) per chip in the standard system, Gbit/s."""
    tdp_w: Figure | None = None
    """Board power of the accelerator alone in W where the vendor publishes one (host,
    network and cooling are the system's share, `System.power_w_per_chip`)."""
    devices_per_chip: Figure | None = None
    """Compute dies or cores a framework addresses as separate devices, each a
    tensor-parallel rank, on one chip (TPU7x's two TensorCores without megacore, Trainium's
    NeuronCores, logical ones at Trainium2's default LNC); None: one device."""
    status: ChipStatus = "available"
    """``announced``: a part its vendor has announced but nobody rents or ships yet; its
    figures are the announcement's, and answers that do not name it leave it out."""
    use: ChipUse = "training"
    """``inference``: a part built for serving (inf2); training answers that do not name it
    leave it out."""
    note: str = ""

    @property
    def flags(self) -> list[str]:
        """What a user must know before trusting this chip's figures (shown beside them)."""
        out: list[str] = []
        if self.status == "announced":
            out.append("announced")
        if self.use == "inference":
            out.append("inference-only")
        return out

    @model_validator(mode="after")
    def _usable_figures(self) -> Chip:
        check_positive_figures(self)
        return self

    @property
    def devices(self) -> int:
        """Devices (tensor-parallel ranks) one chip is to its framework."""
        return 1 if self.devices_per_chip is None else int(self.devices_per_chip.value)

    def peak_flops(self, precision: Precision) -> float:
        """Dense peak in FLOP/s for ``precision``; falls back to the next wider precision the
        chip has (fp4 → fp8 → bf16) where a lower one is absent.

        A chip without fp8/int8 matrix units runs those jobs at its bf16 rate (the stack
        keeps bf16 matmuls), which is what a user of that chip gets.
        """
        table = self.peak_tflops_dense
        for p in _FALLBACK.get(precision, (precision, "bf16")):
            if p in table:
                return table[p].value * 1e12
        return table["fp32"].value * 1e12

    @property
    def hbm_bytes(self) -> float:
        return self.hbm_gib.value * 2**30

    @property
    def hbm_bytes_per_s(self) -> float:
        return self.hbm_tb_s.value * 1e12
