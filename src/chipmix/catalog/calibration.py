"""Calibration: the few named efficiency parameters that turn datasheet peaks into achieved rates.

Each parameter has a physical meaning (below); defaults come from public microbenchmarks and
are refitted by ``chipmix calibrate`` from published runs or from measurements on a device.
A chip's parameters move only that chip's predictions; a stack's only that stack's.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field

from chipmix.catalog.eager import EagerCalibration

__all__ = ["Calibration", "ChipCalibration", "StackCalibration"]

M = TypeVar("M", bound=BaseModel)


def _merge(old: M, upper: BaseModel) -> M:
    """``old`` with the fields ``upper`` sets; a nested entry (a stack's ``eager``) merges
    field by field too."""
    update: dict[str, object] = {}
    for name in upper.model_fields_set:
        value, current = getattr(upper, name), getattr(old, name, None)
        if isinstance(value, BaseModel) and isinstance(current, BaseModel):
            value = _merge(current, value)
        update[name] = value
    return old.model_copy(update=update)


class ChipCalibration(BaseModel):
    """Achievable fractions of a chip's peaks, as microbenchmarks see them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    matmul_efficiency: float = Field(0.75, gt=0, le=1)
    """Fraction of dense peak a large GEMM reaches (the maximum achievable matmul FLOP/s)."""
    matmul_half_dim: float = Field(384.0, ge=0)
    """GEMM dimension at which that efficiency halves: e = e_max · d / (d + d_half), d the
    smallest of m, k, n (tile quantization, wave quantization and launch overhead of small
    matmuls). The default is our assumption that a 2048-wide GEMM reaches ~85% of the
    large-GEMM rate, as square-GEMM sweeps on A100/H100 typically show; fitted per chip."""
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
    memory_reserved_gib: float = Field(3.0, ge=0)
    """Device memory the model cannot use: runtime context, communication buffers,
    workspaces and allocator fragmentation (about 3 GiB under PyTorch + NCCL; an assumption,
    stated per chip in the calibration file where a runtime differs)."""
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
    low_precision_fraction: float = Field(1.0, ge=0, le=1)
    """Share of GEMM work a job in fp8/int8 actually runs at the low-precision rate (some
    recipes keep weight-gradient or sensitive GEMMs in bf16); 1 = all of them."""
    step_overhead_s: float = Field(0.02, ge=0)
    """Fixed time per optimizer step outside the model (data loading, logging, host sync)."""
    eager: EagerCalibration | None = None
    """For a stack that runs op by op (eager PyTorch): what it pays beyond fused kernels
    (`chipmix.perf.eager`); None for fused stacks."""
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
    vendor_stacks: dict[str, str] = {}
    """The stack a job without ``--stack`` is assumed to run on each vendor's chips (the
    vendor's reference training stack), so its fitted parameters apply."""
    parameters: list[dict[str, str | float | int]] = []
    """For a fitted file: each fitted parameter with its scope, key, prior, fitted value
    and the number of rows behind it."""

    def overlay(self, new: Calibration) -> Calibration:
        """This calibration with ``new`` on top, field by field: a chip or stack entry in
        ``new`` replaces only the fields it sets."""

        def merge(old: M, upper: M | None) -> M:
            if upper is None:
                return old
            return _merge(old, upper)

        chips = {k: merge(self.chips[k], v) if k in self.chips else v for k, v in new.chips.items()}
        stacks = {
            k: merge(self.stacks[k], v) if k in self.stacks else v for k, v in new.stacks.items()
        }
        return Calibration(
            default_chip=merge(
                self.default_chip,
                new.default_chip if "default_chip" in new.model_fields_set else None,
            ),
            default_stack=merge(
                self.default_stack,
                new.default_stack if "default_stack" in new.model_fields_set else None,
            ),
            chips=self.chips | chips,
            stacks=self.stacks | stacks,
            provenance={**self.provenance, **new.provenance},
            vendor_stacks={**self.vendor_stacks, **new.vendor_stacks},
            parameters=new.parameters or self.parameters,
        )

    def for_chip(self, chip_id: str) -> ChipCalibration:
        """The chip's parameters: its own entry's fields over the defaults."""
        entry = self.chips.get(chip_id)
        if entry is None:
            return self.default_chip
        return self.default_chip.model_copy(update=entry.model_dump(exclude_unset=True))

    def stack_name(self, stack: str | None, vendor: str) -> str | None:
        """The stack a job runs: its own, else its chip vendor's reference stack."""
        return stack if stack is not None else self.vendor_stacks.get(vendor)

    def for_stack(self, stack: str | None) -> StackCalibration:
        """The stack's parameters: its own entry's fields over the defaults."""
        entry = self.stacks.get(stack) if stack is not None else None
        if entry is None:
            return self.default_stack
        return _merge(self.default_stack, entry)
