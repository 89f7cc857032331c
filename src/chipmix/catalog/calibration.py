"""Calibration: the few named efficiency parameters that turn datasheet peaks into achieved rates.

Each parameter has a physical meaning (below); defaults come from public microbenchmarks and
are refitted by ``chipmix calibrate`` from published runs or from measurements on a device.
A chip's parameters move only that chip's predictions; a stack's only that stack's.
"""

from __future__ import annotations

from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from chipmix.catalog.eager import EagerCalibration
from chipmix.common.files import NoBoolNumbers

__all__ = ["Calibration", "ChipCalibration", "Evidence", "StackCalibration"]

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


class ChipCalibration(NoBoolNumbers):
    """Achievable fractions of a chip's peaks, as microbenchmarks see them."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    matmul_efficiency: float = Field(0.75, gt=0, le=1)
    """Fraction of dense peak a large GEMM reaches (the maximum achievable matmul FLOP/s)."""
    matmul_half_dim: float = Field(384.0, ge=0)
    """GEMM dimension at which that efficiency halves: e = e_max · d / (d + d_half), d the
    smallest of m, k, n (tile quantization, wave quantization and launch overhead of small
    matmuls). The default is our assumption that a 2048-wide GEMM reaches ~85% of the
    large-GEMM rate, as square-GEMM sweeps on A100/H100 typically show; fitted per chip."""
    low_precision_efficiency: float | None = Field(None, gt=0, le=1)
    """Fraction of the dense fp8/int8/fp4 peak a large GEMM in that format reaches; None
    means the bf16 ``matmul_efficiency`` (assumed: the low-precision units keep the same
    share of their peak). Prior from a microbenchmark where one is published."""
    grouped_gemm_efficiency: float = Field(0.8, gt=0, le=1)
    """Rate of the routed experts' grouped GEMM as a fraction of a dense GEMM of the same
    shapes (`chipmix.perf.precision.GROUPED`). The default 0.8 is assumed; fitted on
    published MoE runs per vendor, generation and chip."""
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


class StackCalibration(NoBoolNumbers):
    """How much of the hardware a software stack gets: overlap and kernel quality."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    compute_efficiency: float = Field(1.0, gt=0, le=1.5)
    """Multiplier on achieved compute rates relative to the chip's microbenchmarks
    (fused kernels, compiler quality; 1 = microbenchmark speed)."""
    tp_overlap: float = Field(0.0, ge=0, le=1)
    """Fraction of tensor/sequence-parallel communication hidden behind compute."""
    dp_overlap: float = Field(0.8, ge=0, le=1)
    """Fraction of data-parallel gradient/parameter communication hidden behind backward."""
    pp_overlap: float = Field(0.5, ge=0, le=1)
    """Fraction of pipeline point-to-point transfers hidden behind compute."""
    step_overhead_s: float = Field(0.02, ge=0)
    """Fixed time per optimizer step outside the model (data loading, logging, host sync)."""
    eager: EagerCalibration | None = None
    """For a stack that runs op by op (eager PyTorch): what it pays beyond fused kernels
    (`chipmix.perf.eager`); None for fused stacks."""
    source: str = ""


Basis = Literal["fitted", "family", "parent", "measured", "default"]


class Evidence(BaseModel):
    """Where one resolved parameter of one chip or stack comes from."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    scope: Literal["chip", "stack"]
    key: str
    """Chip id or stack name."""
    name: str
    """Parameter name (a field of `ChipCalibration` or `StackCalibration`)."""
    value: float
    prior: float
    """The value before any fit: the chip's microbenchmark or datasheet figure, its
    family's prior, or the model default."""
    basis: Basis
    """``fitted``: its own published rows moved it; ``family``: only its vendor's or
    generation's rows did (a chip borrowing from its family); ``parent``: only a parent
    stack's rows did; ``measured``: no fit, a measured or stated prior; ``default``: no
    fit and a generic default."""
    rows: int = 0
    """Published rows of this very chip or stack behind the fit."""
    pooled: list[str] = []
    """Every level that moved it, as ``level:key (N rows)`` (vendor, family, chip; stack
    ancestors and itself)."""


class Calibration(BaseModel):
    """All chips' and stacks' parameters; unknown ones fall back to the defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    default_chip: ChipCalibration = ChipCalibration.model_construct()
    default_stack: StackCalibration = StackCalibration.model_construct()
    chips: dict[str, ChipCalibration] = {}
    stacks: dict[str, StackCalibration] = {}
    provenance: dict[str, str] = {}
    """Free-form record of how the file was produced (command, date, cases, residuals)."""
    vendor_stacks: dict[str, str] = {}
    """The stack a job without ``--stack`` is assumed to run on each vendor's chips (the
    vendor's reference training stack), so its fitted parameters apply."""
    parameters: list[dict[str, str | float | int]] = []
    """For a fitted file: each fitted unknown (a chip's, family's, vendor's or stack's
    deviation from its prior, in the fit's log/logit space) and the rows behind it."""
    chip_families: dict[str, list[str]] = {}
    """Generations of one vendor whose chips share their deviations from the
    microbenchmark priors (hierarchical shrinkage: vendor → family → chip)."""
    stack_parents: dict[str, str] = {}
    """A stack built on another (nemo → megatron): it inherits the parent's parameters and
    the fit moves it only by its own rows."""
    evidence: list[Evidence] = []
    """For a fitted file: every resolved parameter of every chip and stack, with its basis."""

    def family_of(self, chip_id: str) -> str | None:
        """The generation a chip belongs to (None when no family lists it)."""
        for family, chips in self.chip_families.items():
            if chip_id in chips:
                return family
        return None

    def stack_chain(self, stack: str) -> list[str]:
        """The stack and its ancestors, root first."""
        chain = [stack]
        while chain[-1] in self.stack_parents and len(chain) < 16:
            chain.append(self.stack_parents[chain[-1]])
        return chain[::-1]

    def evidence_for(self, scope: str, key: str, name: str) -> Evidence | None:
        """The provenance of one resolved parameter (None for an unfitted calibration)."""
        for e in self.evidence:
            if e.scope == scope and e.key == key and e.name == name:
                return e
        return None

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
            chip_families={**self.chip_families, **new.chip_families},
            stack_parents={**self.stack_parents, **new.stack_parents},
            evidence=new.evidence or self.evidence,
        )

    def for_chip(self, chip_id: str) -> ChipCalibration:
        """The chip's parameters: its own entry's fields over the defaults."""
        entry = self.chips.get(chip_id)
        if entry is None:
            return self.default_chip
        return self.default_chip.model_copy(
            update={name: getattr(entry, name) for name in entry.model_fields_set}
        )

    def stack_name(self, stack: str | None, vendor: str) -> str | None:
        """The stack a job runs: its own, else its chip vendor's reference stack."""
        return stack if stack is not None else self.vendor_stacks.get(vendor)

    def for_stack(self, stack: str | None) -> StackCalibration:
        """The stack's parameters: its own entry's fields over its parent stack's (nemo
        over megatron), over the defaults."""
        if stack is None:
            return self.default_stack
        resolved = self.default_stack
        for name in self.stack_chain(stack):
            entry = self.stacks.get(name)
            if entry is not None:
                resolved = _merge(resolved, entry)
        return resolved
