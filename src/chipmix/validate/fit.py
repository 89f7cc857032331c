"""Fit calibration parameters to measurements: robust least squares on log error,
regularized toward the physics-based priors.

Minimize over parameters θ (each in a transformed space: log for positive scales, logit
for fractions)::

    Σ_rows ρ( log(predicted_i(θ) / published_i) )  +  Σ_params ((θ_j − θ⁰_j) / σ_j)²

with ρ the soft-L1 loss (robust to a few bad rows) and θ⁰ the microbenchmark priors of
``calibration.yaml``. A parameter is fitted only for a chip or stack with at least
``MIN_ROWS`` predicted rows — no parameter belongs to a single row — and every other chip
or stack keeps its priors. Layouts left open by a row are found by the search under the
current calibration, then held fixed while fitting; the fit is repeated once with the
layouts the fitted calibration prefers.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from numpy.typing import NDArray

from chipmix.catalog.calibration import Calibration, ChipCalibration, StackCalibration
from chipmix.catalog.catalog import Catalog
from chipmix.perf.layout import Layout, LayoutBatch
from chipmix.perf.step import evaluate
from chipmix.validate.cases import Case
from chipmix.validate.score import case_job, predict_case

__all__ = [
    "FIT_PARAMETERS",
    "MIN_ROWS",
    "FitParameter",
    "FitResult",
    "fit_calibration",
    "from_fit_space",
    "robust_residuals",
    "to_fit_space",
    "write_calibration",
]

MIN_ROWS = 2
"""Rows a chip or stack needs before any of its parameters is fitted."""


@dataclass(frozen=True)
class FitParameter:
    """One calibratable field: its scope, transform and prior width."""

    scope: str
    """``chip`` or ``stack``."""
    name: str
    transform: str
    """``log`` (positive scale) or ``logit`` (fraction in (0, 1))."""
    sigma: float
    """Prior width in the transformed space: a deviation of σ costs as much as one row
    off by a factor e (log error 1.0) under the squared loss."""
    only_low_precision: bool = False
    """Fit only for stacks with fp8/int8 rows."""


FIT_PARAMETERS: tuple[FitParameter, ...] = (
    FitParameter("chip", "matmul_efficiency", "logit", 2.0),
    FitParameter("chip", "matmul_half_dim", "log", 1.5),
    FitParameter("chip", "attention_efficiency", "logit", 1.5),
    FitParameter("stack", "compute_efficiency", "log", 0.3),
    FitParameter("stack", "tp_overlap", "logit", 2.0),
    FitParameter("stack", "dp_overlap", "logit", 2.0),
    FitParameter("stack", "low_precision_fraction", "logit", 2.0, only_low_precision=True),
    FitParameter("stack", "step_overhead_s", "log", 2.0),
)

_EPS = 0.02
"""Fractions are fitted inside [ε, 1 − ε] so a prior on the boundary can still move."""


def to_fit_space(transform: str, value: float) -> float:
    """A parameter value in the space the fit moves in (log or logit, fractions kept inside
    [ε, 1 − ε])."""
    if transform == "log":
        return math.log(max(value, _EPS))
    v = min(max(value, _EPS), 1.0 - _EPS)
    return math.log(v / (1.0 - v))


def from_fit_space(transform: str, x: float) -> float:
    """The inverse of `to_fit_space`."""
    if transform == "log":
        return math.exp(x)
    return 1.0 / (1.0 + math.exp(-x))


@dataclass(frozen=True)
class _Slot:
    param: FitParameter
    key: str
    """Chip id or stack name."""
    prior: float
    measured: bool
    """True when the prior comes from the calibration file (a microbenchmark or a stated
    figure for this chip or stack), False when it is the generic default."""

    @property
    def sigma(self) -> float:
        """A generic default is a weak prior: twice as wide as a measured one."""
        return self.param.sigma * (1.0 if self.measured else 2.0)


@dataclass(frozen=True)
class FitResult:
    """The fitted calibration and what it was fitted from."""

    calibration: Calibration
    """Priors with the fitted fields on top."""
    fitted: Calibration
    """Only the fitted fields (what ``chipmix calibrate`` writes)."""
    parameters: list[dict[str, Any]]
    cases_used: list[str]
    log_residuals: dict[str, float]


def _slots(cases: Sequence[Case], prior: Calibration) -> list[_Slot]:
    chips = Counter(c.row.chip for c in cases)
    stacks = Counter(c.row.stack for c in cases)
    low = {c.row.stack for c in cases if c.row.precision != "bf16"}
    slots = []
    for param in FIT_PARAMETERS:
        counts = chips if param.scope == "chip" else stacks
        for key, n in sorted(counts.items()):
            if n < MIN_ROWS or (param.only_low_precision and key not in low):
                continue
            entry: ChipCalibration | StackCalibration = (
                prior.for_chip(key) if param.scope == "chip" else prior.for_stack(key)
            )
            own = (prior.chips if param.scope == "chip" else prior.stacks).get(key)
            measured = own is not None and param.name in own.model_fields_set
            slots.append(_Slot(param, key, float(getattr(entry, param.name)), measured))
    return slots


def _apply(
    prior: Calibration, slots: Sequence[_Slot], x: NDArray[np.float64]
) -> tuple[Calibration, Calibration]:
    chip_fields: dict[str, dict[str, Any]] = {}
    stack_fields: dict[str, dict[str, Any]] = {}
    for slot, value in zip(slots, x, strict=True):
        target = chip_fields if slot.param.scope == "chip" else stack_fields
        target.setdefault(slot.key, {})[slot.param.name] = from_fit_space(
            slot.param.transform, float(value)
        )
    fitted = Calibration(
        chips={k: ChipCalibration(**v) for k, v in chip_fields.items()},
        stacks={k: StackCalibration(**v) for k, v in stack_fields.items()},
    )
    return prior.overlay(fitted), fitted


ROBUST_SCALE = 0.5
"""Log error beyond which a row counts less and less (soft-L1 scale, ≈ 50% off)."""


def robust_residuals(r: NDArray[np.float64]) -> NDArray[np.float64]:
    """Soft-L1 on the data rows only, as residuals: their squares sum to
    Σ 2f²(√(1 + (r/f)²) − 1), quadratic near 0 and linear for outliers; the prior terms
    stay quadratic."""
    f = ROBUST_SCALE
    return np.sign(r) * np.sqrt(2.0 * f * f * (np.sqrt(1.0 + (r / f) ** 2) - 1.0))


def _residual_fn(
    cases: Sequence[Case],
    layouts: Sequence[Layout],
    catalog: Catalog,
    prior: Calibration,
    slots: Sequence[_Slot],
) -> Callable[[NDArray[np.float64]], NDArray[np.float64]]:
    x0 = np.array([to_fit_space(s.param.transform, s.prior) for s in slots])
    sigma = np.array([s.sigma for s in slots])
    jobs = [case_job(c) for c in cases]
    systems = [catalog.system(c.row.chip) for c in cases]
    batches = [LayoutBatch.of([layout]) for layout in layouts]
    # A row's prediction depends only on its chip's and its stack's parameters: memoize on
    # them, so a finite-difference step re-evaluates only the rows it touches.
    memo: dict[tuple[int, tuple[float, ...], tuple[float, ...]], float] = {}

    def log_error(i: int, calibration: Calibration) -> float:
        case = cases[i]
        chip = calibration.for_chip(case.row.chip)
        stack = calibration.for_stack(case.row.stack)
        key = (i, _numbers(chip), _numbers(stack))
        if key not in memo:
            tps = float(evaluate(jobs[i], systems[i], calibration, batches[i]).tokens_per_s[0])
            predicted = (
                tps if case.row.metric == "tokens_per_s" else (jobs[i].tokens_per_step / tps)
            )
            memo[key] = math.log(predicted / case.row.value)
        return memo[key]

    def residuals(x: NDArray[np.float64]) -> NDArray[np.float64]:
        calibration, _ = _apply(prior, slots, x)
        errors = np.array([log_error(i, calibration) for i in range(len(cases))])
        return np.concatenate([robust_residuals(errors), (x - x0) / sigma])

    return residuals


def _numbers(entry: ChipCalibration | StackCalibration) -> tuple[float, ...]:
    return tuple(v for v in entry.model_dump().values() if isinstance(v, float))


def fit_calibration(
    cases: Sequence[Case], catalog: Catalog, *, rounds: int = 2, max_evaluations: int = 400
) -> FitResult:
    """Fit `FIT_PARAMETERS` to ``cases`` starting from the catalog's priors."""
    from scipy.optimize import least_squares

    prior = catalog.prior_calibration
    calibration = prior
    usable: list[Case] = []
    layouts: list[Layout] = []
    for case in cases:
        score = predict_case(case, catalog, calibration)
        if score.layout is not None:
            usable.append(case)
            layouts.append(score.layout)
    slots = _slots(usable, prior)
    x = np.array([to_fit_space(s.param.transform, s.prior) for s in slots])
    for _round in range(rounds):
        fn = _residual_fn(usable, layouts, catalog, prior, slots)
        if len(slots):
            solution = least_squares(fn, x, max_nfev=max_evaluations, diff_step=1e-3)
            x = solution.x
        calibration, fitted = _apply(prior, slots, x)
        refreshed = [predict_case(c, catalog, calibration) for c in usable]
        layouts = [r.layout or old for r, old in zip(refreshed, layouts, strict=True)]
    calibration, fitted = _apply(prior, slots, x)
    final = [
        predict_case(c, catalog, calibration, layout=lay)
        for c, lay in zip(usable, layouts, strict=True)
    ]
    parameters = [
        {"scope": s.param.scope, "key": s.key, "name": s.param.name, "prior": s.prior,
         "fitted": from_fit_space(s.param.transform, float(v)),
         "rows": sum(1 for c in usable
                     if (c.row.chip if s.param.scope == "chip" else c.row.stack) == s.key)}
        for s, v in zip(slots, x, strict=True)
    ]  # fmt: skip
    residuals = {r.id: math.log(r.predicted / r.published) for r in final if r.predicted}
    return FitResult(
        calibration,
        _with_provenance(fitted, prior, usable, residuals),
        parameters,
        [c.id for c in usable],
        residuals,
    )


def _with_provenance(
    fitted: Calibration, prior: Calibration, cases: Sequence[Case], residuals: dict[str, float]
) -> Calibration:
    errors = np.abs(np.expm1(np.array(list(residuals.values()) or [0.0])))
    note = (
        f"fitted by chipmix calibrate on {date.today().isoformat()} from "
        f"{len(cases)} published runs; in-sample median |error| "
        f"{float(np.median(errors)):.3f}"
    )

    def cite(old: ChipCalibration | StackCalibration | None, fields: list[str]) -> str:
        fitted_note = f"{', '.join(fields)} {note}"
        return f"{old.source}; {fitted_note}" if old is not None and old.source else fitted_note

    chips = {
        k: v.model_copy(update={"source": cite(prior.chips.get(k), sorted(v.model_fields_set))})
        for k, v in fitted.chips.items()
    }
    stacks = {
        k: v.model_copy(update={"source": cite(prior.stacks.get(k), sorted(v.model_fields_set))})
        for k, v in fitted.stacks.items()
    }
    for entry in (*chips.values(), *stacks.values()):
        entry.model_fields_set.add("source")
    return Calibration(
        chips=chips, stacks=stacks,
        provenance={
            "command": "chipmix calibrate",
            "date": date.today().isoformat(),
            "cases": ", ".join(c.id for c in cases),
            "sources": "; ".join(sorted({c.row.source.split(" (")[0] for c in cases})),
            "method": "robust least squares (soft-L1) on log(predicted/published), "
                      "regularized toward calibration.yaml priors; parameters fitted only "
                      f"for chips/stacks with >= {MIN_ROWS} rows",
            "in_sample_median_abs_error": f"{float(np.median(errors)):.4f}",
        },
    )  # fmt: skip


def write_calibration(result: FitResult, path: str | Path) -> None:
    """Write the fitted fields, their sources and the provenance as a calibration file."""
    doc = result.fitted.model_dump(exclude_unset=True, exclude_defaults=False)
    doc.pop("default_chip", None)
    doc.pop("default_stack", None)
    doc["parameters"] = result.parameters
    header = (
        "# Written by `chipmix calibrate`; do not edit by hand. Regenerate with:\n"
        "#   chipmix calibrate --out src/chipmix/catalog/data/calibration-fitted.yaml\n"
    )
    body = yaml.safe_dump(_plain(doc), sort_keys=False, allow_unicode=True, width=100)
    Path(path).write_text(header + body, encoding="utf-8")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return float(f"{value:.6g}")
    return value
