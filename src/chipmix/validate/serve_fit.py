"""Fit the serving parameters to published serving rows, in the style of `validate.fit`:
robust least squares (soft-L1) on ``log(predicted / published)``, regularized toward the
priors, each parameter fitted only for a chip, stack or op class with at least
``MIN_ROWS`` predicted rows.

Parameters (their meaning in `chipmix.serve.calibration`):

- per chip: ``memory_efficiency`` (decode's share of HBM bandwidth; prior the chip
  calibration's STREAM-like figure) and ``compute_efficiency`` (a serving multiplier on its
  matmul rate);
- per stack: ``compute_efficiency`` and ``iteration_overhead_s``;
- for every stack: ``request_overhead_s`` (host time per running request);
- per op class: ``expert_efficiency`` (rows of mixture-of-experts models) and
  ``server_utilization`` (rows of the server scenario).

Layouts a row leaves open are chosen by the serving search under the prior calibration and
held fixed while fitting; the fit is repeated with the layouts the fitted calibration
prefers.
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

from chipmix.catalog.catalog import Catalog
from chipmix.serve.calibration import (
    PRIOR,
    ServeCalibration,
    ServeChipCalibration,
    ServeStackCalibration,
)
from chipmix.serve.layout import ReplicaLayout
from chipmix.validate.fit import MIN_ROWS, from_fit_space, robust_residuals
from chipmix.validate.fit import to_fit_space as _to_fit_space
from chipmix.validate.serve_cases import ServeCase
from chipmix.validate.serve_score import predict_layout

__all__ = [
    "SERVE_FIT_PARAMETERS",
    "ServeFitParameter",
    "ServeFitResult",
    "fit_serving",
    "prior_layouts",
    "write_serve_calibration",
]


@dataclass(frozen=True)
class ServeFitParameter:
    scope: str
    """``chip``, ``stack``, ``all`` (every row; the default stack's value), ``moe`` (rows
    of MoE models) or ``server`` (server rows)."""
    name: str
    transform: str
    sigma: float


SERVE_FIT_PARAMETERS: tuple[ServeFitParameter, ...] = (
    ServeFitParameter("chip", "memory_efficiency", "logit", 2.0),
    ServeFitParameter("chip", "compute_efficiency", "log", 1.0),
    ServeFitParameter("stack", "compute_efficiency", "log", 0.5),
    ServeFitParameter("stack", "iteration_overhead_s", "log", 1.5),
    ServeFitParameter("all", "request_overhead_s", "log", 1.0),
    ServeFitParameter("moe", "expert_efficiency", "log", 1.0),
    ServeFitParameter("server", "server_utilization", "logit", 1.0),
    ServeFitParameter("fp4", "fp4_speedup", "log", 1.0),
)


_UPPER = {"compute_efficiency": 1.5, "expert_efficiency": 1.5, "chip_compute": 3.0,
          "fp4_speedup": 4.0}  # fmt: skip
"""Upper bounds of scale parameters fitted in log space (the calibration's own limits)."""


def to_fit_space(transform: str, value: float) -> float:
    """`validate.fit.to_fit_space`, but log-scaled values keep their own size (serving's
    overheads are milli- and microseconds, below that function's floor)."""
    return math.log(value) if transform == "log" else _to_fit_space(transform, value)


@dataclass(frozen=True)
class _Slot:
    param: ServeFitParameter
    key: str
    prior: float


@dataclass(frozen=True)
class ServeFitResult:
    calibration: ServeCalibration
    """Priors with the fitted values on top."""
    parameters: list[dict[str, Any]]
    cases_used: list[str]
    log_residuals: dict[str, float]


def _key(case: ServeCase, scope: str) -> str | None:
    if scope == "chip":
        return case.row.chip
    if scope == "stack":
        return case.row.stack
    if scope == "all":
        return "all"
    if scope == "moe":
        return "moe" if case.job.model.moe is not None else None
    if scope == "fp4":
        return "fp4" if case.job.precision == "fp4" else None
    return "server" if case.row.scenario == "server" else None


def _slots(cases: Sequence[ServeCase], catalog: Catalog, prior: ServeCalibration) -> list[_Slot]:
    slots = []
    for param in SERVE_FIT_PARAMETERS:
        counts = Counter(k for c in cases if (k := _key(c, param.scope)) is not None)
        for key, n in sorted(counts.items()):
            if n < MIN_ROWS:
                continue
            if param.scope == "chip":
                own = prior.for_chip(key)
                value = getattr(own, param.name)
                if value is None:  # the shared chip calibration's figure
                    value = getattr(catalog.calibration.for_chip(key), param.name)
            elif param.scope in ("stack", "all"):
                value = getattr(prior.for_stack(None if key == "all" else key), param.name)
            else:
                value = getattr(prior, param.name)
            slots.append(_Slot(param, key, float(value)))
    return slots


def _apply(
    prior: ServeCalibration, slots: Sequence[_Slot], x: NDArray[np.float64]
) -> ServeCalibration:
    chips: dict[str, dict[str, float]] = {}
    stacks: dict[str, dict[str, float]] = {}
    top: dict[str, float] = {}
    default: dict[str, float] = {}
    for slot, value in zip(slots, x, strict=True):
        name = "chip_compute" if slot.param.scope == "chip" else slot.param.name
        v = min(from_fit_space(slot.param.transform, float(value)), _UPPER.get(name, 1e9))
        if slot.param.scope == "chip":
            chips.setdefault(slot.key, {})[slot.param.name] = v
        elif slot.param.scope == "stack":
            stacks.setdefault(slot.key, {})[slot.param.name] = v
        elif slot.param.scope == "all":
            default[slot.param.name] = v
        else:
            top[slot.param.name] = v
    fitted = ServeCalibration(
        chips={k: ServeChipCalibration(**v) for k, v in chips.items()},
        stacks={k: ServeStackCalibration(**v) for k, v in stacks.items()},
        **top,
    )
    out = prior.overlay(fitted)
    if default:
        out = out.model_copy(update={"default_stack": out.default_stack.model_copy(update=default)})
    return out


def _touches(cases: Sequence[ServeCase], slots: Sequence[_Slot]) -> list[list[int]]:
    """For each row, the slots its prediction depends on (its chip, stack, op classes)."""
    return [[j for j, s in enumerate(slots) if _key(c, s.param.scope) == s.key] for c in cases]


def _sparsity(touches: list[list[int]], n: int) -> NDArray[np.int8]:
    """Which residual depends on which parameter: rows on their slots, priors on their own
    (so the finite-difference Jacobian perturbs slots of disjoint rows together)."""
    out = np.zeros((len(touches) + n, n), dtype=np.int8)
    for i, js in enumerate(touches):
        out[i, js] = 1
    out[len(touches) :, :] = np.eye(n, dtype=np.int8)
    return out


def _residual_fn(
    cases: Sequence[ServeCase],
    layouts: Sequence[ReplicaLayout],
    catalog: Catalog,
    prior: ServeCalibration,
    slots: Sequence[_Slot],
) -> Callable[[NDArray[np.float64]], NDArray[np.float64]]:
    x0 = np.array([to_fit_space(s.param.transform, s.prior) for s in slots])
    sigma = np.array([s.param.sigma for s in slots])
    # A row depends only on the slots of its chip, stack and op classes: memoize on them.
    touches = _touches(cases, slots)
    memo: dict[tuple[int, tuple[float, ...]], float] = {}

    def residuals(x: NDArray[np.float64]) -> NDArray[np.float64]:
        calibration: ServeCalibration | None = None
        errors = np.empty(len(cases))
        for i, case in enumerate(cases):
            key = (i, tuple(float(x[j]) for j in touches[i]))
            if key not in memo:
                calibration = calibration or _apply(prior, slots, x)
                score, _ = predict_layout(case, catalog, calibration, layouts[i])
                memo[key] = math.log(score.predicted / score.published) if score.predicted else 0.0
            errors[i] = memo[key]
        return np.concatenate([robust_residuals(errors), (x - x0) / sigma])

    return residuals


def prior_layouts(
    cases: Sequence[ServeCase], catalog: Catalog, prior: ServeCalibration = PRIOR
) -> dict[str, ReplicaLayout]:
    """The layout the serving search picks for each predictable row under ``prior``."""
    out = {}
    for case in cases:
        _, layout = predict_layout(case, catalog, prior)
        if layout is not None:
            out[case.id] = layout
    return out


def fit_serving(
    cases: Sequence[ServeCase],
    catalog: Catalog,
    *,
    prior: ServeCalibration = PRIOR,
    rounds: int = 2,
    max_evaluations: int = 200,
    layouts: dict[str, ReplicaLayout] | None = None,
) -> ServeFitResult:
    """Fit `SERVE_FIT_PARAMETERS` to ``cases`` starting from ``prior``; ``layouts`` are
    the rows' starting layouts (`prior_layouts`, computed when not given). Each round but
    the last is followed by a new layout search under the fitted values."""
    from scipy.optimize import least_squares

    start = layouts if layouts is not None else prior_layouts(cases, catalog, prior)
    usable = [c for c in cases if c.id in start]
    fixed = [start[c.id] for c in usable]
    slots = _slots(usable, catalog, prior)
    x = np.array([to_fit_space(s.param.transform, s.prior) for s in slots])
    calibration = prior
    for round_ in range(rounds):
        if slots:
            fn = _residual_fn(usable, fixed, catalog, prior, slots)
            sparsity = _sparsity(_touches(usable, slots), len(slots))
            x = least_squares(
                fn, x, max_nfev=max_evaluations, diff_step=1e-3, jac_sparsity=sparsity
            ).x
        calibration = _apply(prior, slots, x)
        if round_ < rounds - 1:
            refreshed = [predict_layout(c, catalog, calibration)[1] for c in usable]
            fixed = [new or old for new, old in zip(refreshed, fixed, strict=True)]
    final = [
        predict_layout(c, catalog, calibration, lay)[0]
        for c, lay in zip(usable, fixed, strict=True)
    ]
    residuals = {r.id: math.log(r.predicted / r.published) for r in final if r.predicted}
    parameters = [
        {"scope": s.param.scope, "key": s.key, "name": s.param.name, "prior": s.prior,
         "fitted": from_fit_space(s.param.transform, float(v)),
         "rows": sum(1 for c in usable if _key(c, s.param.scope) == s.key)}
        for s, v in zip(slots, x, strict=True)
    ]  # fmt: skip
    calibration = calibration.model_copy(update={"parameters": parameters})
    return ServeFitResult(calibration, parameters, [c.id for c in usable], residuals)


def write_serve_calibration(result: ServeFitResult, path: str | Path, command: str) -> None:
    """Write the fitted serving parameters, with their priors and rows, as YAML."""
    chips: dict[str, dict[str, float]] = {}
    stacks: dict[str, dict[str, float]] = {}
    doc: dict[str, Any] = {}
    for p in result.parameters:
        value = float(f"{p['fitted']:.6g}")
        if p["scope"] == "chip":
            chips.setdefault(p["key"], {})[p["name"]] = value
        elif p["scope"] == "stack":
            stacks.setdefault(p["key"], {})[p["name"]] = value
        elif p["scope"] == "all":
            doc.setdefault("default_stack", {})[p["name"]] = value
        else:
            doc[p["name"]] = value
    doc |= {"chips": chips, "stacks": stacks}
    doc["provenance"] = {
        "command": command,
        "date": date.today().isoformat(),
        "cases": ", ".join(result.cases_used),
        "method": "robust least squares (soft-L1) on log(predicted/published), regularized "
        f"toward the serving priors; parameters fitted only where >= {MIN_ROWS} rows",
    }
    doc["parameters"] = [
        {k: (float(f"{v:.6g}") if isinstance(v, float) else v) for k, v in p.items()}
        for p in result.parameters
    ]
    header = f"# Written by `{command}`; do not edit by hand.\n"
    body = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)
    Path(path).write_text(header + body, encoding="utf-8")
