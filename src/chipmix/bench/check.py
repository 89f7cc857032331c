"""``chipmix bench --check``: the model's prediction of an end-to-end step beside the
measurement of the same step.

The prediction is `chipmix.perf.step.evaluate` for the bench's job on one chip (no
parallelism: tp = pp = dp = cp = 1, the whole batch as one micro-batch, no ZeRO, no
recomputation) with the catalog's calibration — after ``chipmix calibrate --from-bench``,
the measured one. The eager step is predicted with the stack ``pytorch`` (the eager terms
of `chipmix.perf.eager`: unfused norms, rotary, activations, the fp32 loss, autocast casts,
kernel launches, fused AdamW); a ``torch.compile``d step with ``chipmix-bench``, the fused
kernels every other stack assumes. Neither has a fixed per-step overhead: the bench's loop
loads no data and logs nothing. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from chipmix.bench.store import Result
from chipmix.catalog.calibration import Calibration, StackCalibration
from chipmix.catalog.catalog import Catalog
from chipmix.perf.layout import Layout, LayoutBatch
from chipmix.perf.step import evaluate
from chipmix.workload.job import Job
from chipmix.workload.model import ModelSpec

__all__ = [
    "BENCH_STACK",
    "EAGER_STACK",
    "CheckResult",
    "Prediction",
    "compare",
    "predict_step",
    "stack_for",
]

BENCH_STACK = "chipmix-bench"
"""The stack a compiled bench step is predicted with: fused kernels, no overhead."""
EAGER_STACK = "pytorch"
"""The stack an eager bench step (and a plain PyTorch / Transformers loop) is predicted
with."""
_BENCH_STACK_CALIBRATION = StackCalibration(
    step_overhead_s=0.0,
    source="chipmix bench's training loop: random tokens already on the device, no data "
    "loading, logging or checkpointing, so no fixed per-step overhead; other fields default",
)


@dataclass(frozen=True, slots=True)
class Prediction:
    """What chipmix predicts for one step on one chip."""

    step_time_s: float
    tokens_per_s: float
    mfu: float
    breakdown: dict[str, float]
    calibration_source: str
    """Where the chip's calibration comes from (its ``source`` field)."""


@dataclass(frozen=True, slots=True)
class CheckResult:
    """Predicted beside measured, for one model on one chip."""

    chip: str
    model: str
    params: int
    seq_len: int
    batch: int
    compiled: bool
    predicted: Prediction
    measured_step_time_s: float
    measured_tokens_per_s: float
    measured_mfu: float

    @property
    def error(self) -> float:
        """Signed relative error of the predicted step time: predicted / measured − 1."""
        return self.predicted.step_time_s / self.measured_step_time_s - 1.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["error"] = self.error
        return out


def stack_for(compiled: bool) -> str:
    """The stack a bench step is predicted with."""
    return BENCH_STACK if compiled else EAGER_STACK


def predict_step(
    catalog: Catalog, chip: str, model: ModelSpec, *, seq_len: int, batch: int,
    compiled: bool = False,
) -> Prediction:  # fmt: skip
    """Predict one optimizer step of ``batch`` sequences on one ``chip``, eager (stack
    ``pytorch``) or compiled (``chipmix-bench``)."""
    stack = stack_for(compiled)
    job = Job(model=model, seq_len=seq_len, global_batch=batch, stack=stack)
    system = catalog.system(chip)
    layout = Layout(micro_batch=batch, zero=0)
    calibration = catalog.calibration
    if stack == BENCH_STACK and BENCH_STACK not in calibration.stacks:
        calibration = calibration.overlay(
            Calibration(stacks={BENCH_STACK: _BENCH_STACK_CALIBRATION})
        )
    result = evaluate(job, system, calibration, LayoutBatch.of([layout]))
    return Prediction(
        step_time_s=float(result.step_time_s[0]),
        tokens_per_s=float(result.tokens_per_s[0]),
        mfu=float(result.mfu[0]),
        breakdown=result.breakdown_row(0),
        calibration_source=catalog.calibration.for_chip(system.chip.id).source,
    )


def compare(catalog: Catalog, chip: str, measured: Result) -> CheckResult:
    """The check for an ``e2e`` result: its prediction beside it."""
    model = ModelSpec.model_validate(measured.shape["model"])
    seq_len, batch = int(measured.shape["seq_len"]), int(measured.shape["batch"])
    compiled = bool(measured.shape.get("compile", False))
    predicted = predict_step(catalog, chip, model, seq_len=seq_len, batch=batch, compiled=compiled)
    peak = catalog.chip(chip).peak_flops("bf16")
    return CheckResult(
        chip=chip,
        model=model.name,
        params=model.num_params(),
        seq_len=seq_len,
        batch=batch,
        compiled=bool(measured.shape.get("compile", False)),
        predicted=predicted,
        measured_step_time_s=measured.median_s,
        measured_tokens_per_s=seq_len * batch / measured.median_s,
        measured_mfu=measured.flops / measured.median_s / peak,
    )
