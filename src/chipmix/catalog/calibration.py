"""Calibration: the few named efficiency parameters that turn datasheet peaks into achieved rates.

Each parameter has a physical meaning (below); defaults come from public microbenchmarks and
are refitted by ``chipmix calibrate`` from published runs or from measurements on a device.
A chip's parameters move only that chip's predictions; a stack's only that stack's.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Calibration", "ChipCalibration", "StackCalibration"]


class ChipCalibration(BaseModel):
    """Achievable fractions of a chip's peaks, as microbenchmarks see them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    matmul_efficiency: float = Field(0.75, gt=0, le=1)
    """Fraction of dense peak a large GEMM reaches (the maximum achievable matmul FLOP/s)."""
    matmul_half_dim: float = Field(96.0, ge=0)
    """GEMM dimension at which that efficiency halves: e = e_max · d / (d + d_half), d the
    smallest of m, k, n (tile quantization and launch overhead of small matmuls)."""
    attention_efficiency: float = Field(0.55, gt=0, le=1)
    """Fraction of dense peak a fused (flash) attention kernel reaches, forward and backward."""
    memory_efficiency: float = Field(0.80, gt=0, le=1)
    """Fraction of HBM bandwidth a streaming kernel (copy, norm, elementwise) reaches."""
    scaleup_efficiency: float = Field(0.75, gt=0, le=1)
    """Fraction of per-direction scale-up link bandwidth a large collective reaches (bus BW)."""
    scaleout_efficiency: float = Field(0.70, gt=0, le=1)
    """Fraction of per-chip scale-out bandwidth a large collective reaches (bus BW)."""
    collective_latency_s: float = Field(10e-6, ge=0)
    """Fixed cost of one collective step (the alpha of the alpha-beta model)."""
    memory_reserved_gib: float = Field(4.0, ge=0)
    """Device memory the model cannot use: runtime context, workspaces, fragmentation."""
    source: str = ""
    """Where these values come from (microbenchmark, fit and its cases)."""


class StackCalibration(BaseModel):
    """How much of the hardware a software stack gets: overlap and kernel quality."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    compute_efficiency: float = Field(1.0, gt=0, le=1.5)
    """Multiplier on achieved compute rates relative to the chip's microbenchmarks
    (fused kernels, compiler quality; 1 = microbenchmark speed)."""
    tp_overlap: float = Field(0.0, ge=0, le=1)
    """Fraction of tensor/sequence-parallel communication hidden behind compute."""
    dp_overlap: float = Field(0.8, ge=0, le=1)
    """Fraction of data-parallel gradient/parameter communication hidden behind backward."""
    pp_overlap: float = Field(0.5, ge=0, le=1)
    """Fraction of pipeline point-to-point transfers hidden behind compute."""
    step_overhead_s: float = Field(0.0, ge=0)
    """Fixed time per optimizer step outside the model (data loading, logging, host sync)."""
    source: str = ""


class Calibration(BaseModel):
    """All chips' and stacks' parameters; unknown ones fall back to the defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    default_chip: ChipCalibration = ChipCalibration()
    default_stack: StackCalibration = StackCalibration()
    chips: dict[str, ChipCalibration] = {}
    stacks: dict[str, StackCalibration] = {}
    provenance: dict[str, str] = {}
    """Free-form record of how the file was produced (command, date, cases, residuals)."""

    def for_chip(self, chip_id: str) -> ChipCalibration:
        """The chip's parameters: its own entry's fields over the defaults."""
        entry = self.chips.get(chip_id)
        if entry is None:
            return self.default_chip
        return self.default_chip.model_copy(update=entry.model_dump(exclude_unset=True))

    def for_stack(self, stack: str | None) -> StackCalibration:
        """The stack's parameters: its own entry's fields over the defaults."""
        entry = self.stacks.get(stack) if stack is not None else None
        if entry is None:
            return self.default_stack
        return self.default_stack.model_copy(update=entry.model_dump(exclude_unset=True))
