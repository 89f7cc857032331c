"""Serving calibration: the few parameters serving adds on top of the chip calibration.

A prediction uses the chip's calibration (matmul, attention, memory and link efficiencies:
`chipmix.catalog.calibration.ChipCalibration`, shared with training) and these serving
parameters, fitted by `chipmix.validate.serve_fit` from published serving measurements
where at least two rows support them, and kept at their priors elsewhere. The shipped file
``catalog/data/calibration-serving.yaml`` holds the fitted values with their provenance.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from chipmix.catalog.catalog import DATA_DIR
from chipmix.common.files import read_yaml
from chipmix.errors import FileFormatError

__all__ = [
    "SERVING_CALIBRATION",
    "ServeCalibration",
    "ServeChipCalibration",
    "ServeStackCalibration",
    "load_serve_calibration",
]

SERVING_CALIBRATION = DATA_DIR / "calibration-serving.yaml"


class ServeChipCalibration(BaseModel):
    """What serving on one chip achieves beyond the shared chip calibration."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    memory_efficiency: float | None = Field(None, gt=0, le=1)
    """Fraction of HBM bandwidth decode reaches streaming weights and KV cache (None: the
    chip calibration's ``memory_efficiency``, a STREAM-like figure)."""
    compute_efficiency: float = Field(1.0, gt=0, le=3.0)
    """Multiplier on the chip's matmul peak at the weights' precision when serving (what
    its microbenchmarks did not measure, e.g. an fp4 rate the catalog does not list yet)."""
    source: str = ""


class ServeStackCalibration(BaseModel):
    """How much of the hardware a serving stack gets."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    compute_efficiency: float = Field(1.0, gt=0, le=1.5)
    """Multiplier on the chip's achieved matmul and attention rates (kernel quality, fusion,
    CUDA graphs); 1 = microbenchmark speed."""
    iteration_overhead_s: float = Field(0.002, ge=0)
    """Fixed time per forward iteration outside the kernels: launch gaps, synchronization.
    Prior assumed: a few ms per step (vLLM v0.6 performance update, blog.vllm.ai
    2024-09-05, found CPU overhead a large share of each step before overlapping it)."""
    request_overhead_s: float = Field(5e-6, ge=0)
    """Host time per running request per iteration: scheduling, sampling, detokenization
    and block-table updates grow with the batch (same source; prior assumed)."""
    source: str = ""


class ServeCalibration(BaseModel):
    """Serving parameters for every chip and stack; unknown ones take the defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    default_stack: ServeStackCalibration = ServeStackCalibration()
    chips: dict[str, ServeChipCalibration] = {}
    stacks: dict[str, ServeStackCalibration] = {}
    server_utilization: float = Field(0.9, gt=0, le=1)
    """Share of its offline throughput a replica sustains under Poisson arrivals within
    p99 latency limits (queueing needs headroom: Kingman's formula, the M/G/1 wait grows as
    ρ/(1−ρ)). Prior: MLPerf Server results typically reach ~90% of Offline."""
    expert_efficiency: float = Field(0.7, gt=0, le=1.5)
    """Achieved rate of routed-expert GEMMs relative to dense GEMMs of the same shape (an op
    class: grouped/fused MoE kernels gather tokens per expert and run many small GEMMs;
    MegaBlocks, Gale et al. 2022, arXiv 2211.15841, §5, measures the gap). Prior assumed."""
    fp4_speedup: float = Field(1.0, gt=0, le=4.0)
    """Rate of fp4 matmuls relative to the fp8 rate on chips whose catalog entry lists no
    fp4 peak (an op class; FP4 tensor cores run at twice the FP8 rate on Blackwell and
    MI355X datasheets, but a chip without them gains nothing: the prior says nothing)."""
    vendor_stacks: dict[str, str] = {}
    """The stack a request without ``stack`` is assumed to run on each vendor's chips."""
    provenance: dict[str, str] = {}
    parameters: list[dict[str, str | float | int]] = []

    def for_stack(self, stack: str | None) -> ServeStackCalibration:
        entry = self.stacks.get(stack) if stack is not None else None
        if entry is None:
            return self.default_stack
        return self.default_stack.model_copy(update=entry.model_dump(exclude_unset=True))

    def for_chip(self, chip_id: str) -> ServeChipCalibration:
        return self.chips.get(chip_id) or ServeChipCalibration()

    def stack_name(self, stack: str | None, vendor: str) -> str | None:
        return stack if stack is not None else self.vendor_stacks.get(vendor)

    def overlay(self, new: ServeCalibration) -> ServeCalibration:
        """This calibration with ``new``'s entries on top, field by field."""
        chips = dict(self.chips)
        for key, value in new.chips.items():
            old = chips.get(key)
            chips[key] = (
                old.model_copy(update=value.model_dump(exclude_unset=True)) if old else value
            )
        stacks = dict(self.stacks)
        for key, svalue in new.stacks.items():
            sold = stacks.get(key)
            stacks[key] = (
                sold.model_copy(update=svalue.model_dump(exclude_unset=True)) if sold else svalue
            )
        update: dict[str, object] = dict(
            new.model_dump(
                include={"server_utilization", "expert_efficiency", "fp4_speedup"},
                exclude_unset=True,
            )
        )
        if "default_stack" in new.model_fields_set:
            update["default_stack"] = self.default_stack.model_copy(
                update=new.default_stack.model_dump(exclude_unset=True)
            )
        return self.model_copy(
            update={
                "chips": chips,
                "stacks": stacks,
                "vendor_stacks": {**self.vendor_stacks, **new.vendor_stacks},
                "provenance": {**self.provenance, **new.provenance},
                "parameters": new.parameters or self.parameters,
                **update,
            }
        )


PRIOR = ServeCalibration(
    vendor_stacks={
        "nvidia": "vllm",
        "amd": "vllm",
        "google": "vllm",
        "intel": "vllm",
        "aws": "neuronx-vllm",
    }
)
"""Priors: the defaults above, vLLM (or vLLM on Neuron) as every vendor's default stack."""


@cache
def _load(path: Path) -> ServeCalibration:
    if not path.exists():
        return PRIOR
    try:
        fitted = ServeCalibration.model_validate(read_yaml(path) or {})
    except ValueError as exc:
        raise FileFormatError(f"{path}: invalid serving calibration ({exc})") from None
    return PRIOR.overlay(fitted)


def load_serve_calibration(path: str | Path | None = None) -> ServeCalibration:
    """The priors with the shipped fitted file (or ``path``) on top."""
    return _load(Path(path) if path is not None else SERVING_CALIBRATION)
