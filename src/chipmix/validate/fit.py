"""Fit calibration parameters to published runs: hierarchical, regularized, robust.

Every calibrated parameter of a chip is its prior (microbenchmark or datasheet,
``calibration.yaml``) moved by the deviations of the levels it belongs to, in a transformed
space (log for positive scales, logit for fractions)::

    θ_chip = θ⁰_chip + u_vendor + u_family + u_chip        (vendor → generation → chip)
    θ_stack = θ⁰_stack + Σ u_s over the stack and its ancestors   (nemo → megatron)

and the fit minimizes over the deviations u::

    Σ_rows ρ( log(predicted_i(u) / published_i) )²  +  Σ_levels (u_l / τ_l)²

with ρ the soft-L1 residual (robust to a few bad rows) and τ_l a prior width per
parameter and level: hierarchical shrinkage (Gelman & Hill 2007, ch. 12). A chip with few
rows stays near its family; a chip with none takes its own prior moved by its family's
and vendor's deviations. A deviation is fitted only where at least ``MIN_ROWS`` rows
inform it — no parameter belongs to a single row — and every other stays at zero. The
widths τ (as a whole) and the soft-L1 scale are the regularization, which each training
set chooses for itself by an inner cross-validation (`fit_tuned`, `validate/tuning.py`).

The solver is Levenberg–Marquardt on the stacked residuals, run for many folds at once
(the full set, or every fold of a cross-validation): each case is evaluated once per
iteration with all folds' candidate calibrations and their finite-difference steps as one
batch of identical layouts carrying per-layout parameter arrays (`perf.step.evaluate`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.linalg import cho_factor, cho_solve
from threadpoolctl import threadpool_limits

from chipmix.catalog.calibration import Calibration, ChipCalibration, StackCalibration
from chipmix.catalog.catalog import Catalog
from chipmix.perf.layout import Layout, LayoutBatch
from chipmix.perf.memory import MemoryBreakdown, memory_per_chip
from chipmix.perf.step import evaluate
from chipmix.validate.calibration_file import write_fitted
from chipmix.validate.cases import Case, source_key
from chipmix.validate.hierarchy import FIT_PARAMETERS, MIN_ROWS, FitParameter, Hierarchy, Slot
from chipmix.validate.score import case_job, predict_case
from chipmix.validate.tuning import (
    DEFAULT_REGULARIZATION,
    GRID,
    INNER_FOLDS,
    ROBUST_SCALE,
    Regularization,
    choose_regularization,
    robust_residuals,
    robust_slope,
)

__all__ = [
    "FIT_PARAMETERS",
    "MIN_ROWS",
    "ROBUST_SCALE",
    "FitParameter",
    "FitResult",
    "FoldFit",
    "Regularization",
    "Slot",
    "fit_calibration",
    "fit_folds",
    "fit_tuned",
    "fitted_calibration",
    "from_fit_space",
    "prepare",
    "robust_residuals",
    "to_fit_space",
    "write_calibration",
]

Array = NDArray[np.float64]

_STEP = 1e-3
"""Finite-difference step in the fit space."""
_MAX_ITERATIONS = 30
_REFIT_ITERATIONS = 8
"""A refit under another regularization starts from its Gauss–Newton step, near the end."""


def to_fit_space(transform: str, value: float) -> float:
    """A parameter value in the space the fit moves in (log or logit, fractions kept inside
    [ε, 1 − ε])."""
    return FitParameter("chip", "", transform, 1.0).to_fit(value)


def from_fit_space(transform: str, x: float) -> float:
    """The inverse of `to_fit_space`."""
    return float(FitParameter("chip", "", transform, 1.0).natural(x))


@dataclass(frozen=True)
class FoldFit:
    """The deviations fitted on one training set."""

    u: Array
    """One deviation per slot of the hierarchy (0 where not fitted)."""
    active: NDArray[np.bool_]
    """Slots fitted in this fold (at least ``MIN_ROWS`` training rows inform them)."""
    rows: NDArray[np.int64]
    """Training rows behind each slot."""
    mask: NDArray[np.bool_]
    """The training rows."""
    errors: Array
    """log(predicted / published) of the training rows at ``u``."""
    slopes: Array
    """d errors / d u of the training rows at ``u`` (rows × active slots)."""
    regularization: Regularization = DEFAULT_REGULARIZATION


@dataclass(frozen=True)
class FitResult:
    """The fitted calibration and what it was fitted from."""

    calibration: Calibration
    """Priors with the fitted fields on top."""
    fitted: Calibration
    """Only the fitted fields, their evidence and provenance (what ``calibrate`` writes)."""
    parameters: list[dict[str, Any]]
    cases_used: list[str]
    log_residuals: dict[str, float]
    regularization: Regularization = DEFAULT_REGULARIZATION
    """The regularization the rows chose (`chipmix.validate.tuning`)."""


class _Problem:
    """The cases, their layouts and the hierarchy, ready to evaluate in batches."""

    def __init__(self, cases: Sequence[Case], layouts: Sequence[Layout], catalog: Catalog) -> None:
        self.cases = list(cases)
        self.layouts = list(layouts)
        self.catalog = catalog
        self.prior = catalog.prior_calibration
        self.hierarchy = Hierarchy(self.cases, catalog)
        self.jobs = [case_job(c) for c in self.cases]
        self.systems = [catalog.system(c.row.chip) for c in self.cases]
        self.log_published = np.log([c.row.value for c in self.cases])
        self.batches = [LayoutBatch.of([layout]) for layout in self.layouts]
        # Memory per chip depends on the row alone (its job, layout and the chip's reserved
        # memory, which is not fitted), never on the fitted parameters: computed once per
        # row here and handed to every evaluation of that row.
        self.memory = [
            memory_per_chip(
                job,
                batch,
                float(h_chip["memory_reserved_gib"]),
                stack=self.prior.stack_name(job.stack, system.chip.vendor),
                capacity_bytes=system.chip.hbm_bytes,
            )
            for job, batch, system, h_chip in zip(
                self.jobs, self.batches, self.systems, self.hierarchy.chip_base, strict=True
            )
        ]
        self.case_slots = [np.asarray(s, dtype=np.intp) for s in self.hierarchy.case_slots]
        # Per row, the fitted parameters it depends on: (parameter, prior in the fit space,
        # the slots whose deviations move it).
        h = self.hierarchy
        self.moved = [
            [
                (param, h.x0[i][j], np.asarray(h.chains[i][j], dtype=np.intp))
                for j, param in enumerate(FIT_PARAMETERS)
                if h.chains[i][j]
            ]
            for i in range(len(self.cases))
        ]

    def log_errors(self, i: int, u: Array) -> Array:
        """log(predicted / published) of case ``i`` under each row of ``u`` (points × slots)."""
        h = self.hierarchy
        n = u.shape[0]
        chip_values: dict[str, Any] = dict(h.chip_base[i])
        stack_values: dict[str, Any] = dict(h.stack_base[i])
        for param, x0, chain in self.moved[i]:
            value = param.natural(x0 + u[:, chain].sum(axis=1))
            (chip_values if param.scope == "chip" else stack_values)[param.name] = value
        chip = ChipCalibration.model_construct(**chip_values)
        stack = StackCalibration.model_construct(**stack_values)
        same = np.zeros(n, dtype=np.intp)
        batch = self.batches[i].take(same)
        memory = self.memory[i]
        result = evaluate(
            self.jobs[i],
            self.systems[i],
            self.prior,
            batch,
            MemoryBreakdown(*(getattr(memory, f.name)[same] for f in fields(memory))),
            chip_cal=chip,
            stack_cal=stack,
        )
        tps = np.asarray(result.tokens_per_s, dtype=np.float64)
        case = self.cases[i]
        predicted = tps if case.row.metric == "tokens_per_s" else self.jobs[i].tokens_per_step / tps
        return np.asarray(np.log(predicted) - self.log_published[i])


def fit_folds(
    problem: _Problem,
    train: Sequence[NDArray[np.bool_]],
    regularizations: Sequence[Regularization] | None = None,
    starts: Sequence[Array | None] | None = None,
    max_iterations: int = _MAX_ITERATIONS,
) -> list[FoldFit]:
    """Fit every fold (a mask of training cases) at once; Levenberg–Marquardt per fold,
    each under its own regularization and from its own start (default: the priors)."""
    h = problem.hierarchy
    n_slots = len(h.slots)
    n_cases = len(problem.cases)
    tau = np.array([s.sigma for s in h.slots])
    regs = list(regularizations or [DEFAULT_REGULARIZATION] * len(train))
    begin = list(starts or [None] * len(train))
    folds = []
    for mask, reg, origin in zip(train, regs, begin, strict=True):
        rows = (h.incidence[mask]).sum(axis=0).astype(np.int64)
        folds.append(_FoldState(mask, rows >= MIN_ROWS, rows, n_slots, reg, origin))
    for _iteration in range(max_iterations):
        live = [f for f in folds if not f.done]
        if not live:
            break
        trials = np.stack([f.trial for f in live])
        masks = np.stack([f.mask for f in live])
        actives = np.stack([f.active for f in live])
        errors = np.zeros((len(live), n_cases))
        slopes = np.zeros((len(live), n_cases, n_slots))
        for i in range(n_cases):
            # Per fold training on row i: its trial, then one point per active slot of the
            # row moved by the finite-difference step (fold by fold, slots in order).
            fold = np.flatnonzero(masks[:, i])
            if len(fold) == 0:
                continue
            slots = problem.case_slots[i]
            touched = actives[fold][:, slots]
            which, column = np.nonzero(touched)
            counts = 1 + touched.sum(axis=1)
            first = np.cumsum(counts) - counts
            points = np.repeat(trials[fold], counts, axis=0)
            moved = first[which] + 1 + (np.arange(len(which)) - (first[which] - which))
            points[moved, slots[column]] += _STEP
            e = problem.log_errors(i, points)
            errors[fold, i] = e[first]
            slopes[fold[which], i, slots[column]] = (e[moved] - e[first[which]]) / _STEP
        for k, f in enumerate(live):
            f.step(errors[k], slopes[k], tau * f.reg.strength)
    return [f.result() for f in folds]


class _FoldState:
    """One fold's Levenberg–Marquardt state."""

    def __init__(
        self,
        mask: NDArray[np.bool_],
        active: NDArray[np.bool_],
        rows: NDArray[np.int64],
        n: int,
        reg: Regularization,
        start: Array | None,
    ) -> None:
        self.mask = mask
        self.active = active
        self.rows = rows
        self.reg = reg
        self.u = np.zeros(n)
        self.trial = np.zeros(n) if start is None else np.where(active, start, 0.0)
        self.cost = math.inf
        self.damping = 1e-3
        self.done = not bool(np.any(active))
        self.residual: Array | None = None
        self.jacobian: Array | None = None
        self.errors = np.zeros(int(mask.sum()))
        self.slopes = np.zeros((int(mask.sum()), int(active.sum())))

    def result(self) -> FoldFit:
        return FoldFit(
            self.u, self.active, self.rows, self.mask, self.errors, self.slopes, self.reg
        )

    def step(self, errors: Array, slopes: Array, tau: Array) -> None:
        e = errors[self.mask]
        f = self.reg.robust_scale
        r = robust_residuals(e, f)
        cost = float(np.sum(r**2) + np.sum((self.trial / tau)[self.active] ** 2))
        if cost < self.cost:
            improvement = (self.cost - cost) / max(cost, 1e-12)
            self.u, self.cost = self.trial.copy(), cost
            self.residual = r
            self.errors = e
            self.slopes = slopes[self.mask][:, self.active]
            self.jacobian = self.slopes * robust_slope(e, f)[:, None]
            self.damping = max(self.damping / 3.0, 1e-7)
            if improvement < 1e-3:
                self.done = True
                return
        else:
            self.damping *= 4.0
            if self.damping > 1e6:
                self.done = True
                return
        assert self.residual is not None
        assert self.jacobian is not None
        j, u = self.jacobian, self.u[self.active]
        prior = 1.0 / tau[self.active] ** 2
        # einsum and a Cholesky solve: these matrices are small (rows × slots), where a
        # threaded BLAS call costs more in synchronization than in arithmetic.
        normal = np.einsum("ij,ik->jk", j, j) + np.diag(prior)
        gradient = np.einsum("ij,i->j", j, self.residual) + prior * u
        damped = normal + self.damping * np.diag(np.diag(normal))
        delta = cho_solve(cho_factor(damped), -gradient)
        if float(np.max(np.abs(delta))) < 1e-6:
            self.done = True
            return
        self.trial = self.u.copy()
        self.trial[self.active] += delta


def fit_tuned(
    problem: _Problem, train: Sequence[NDArray[np.bool_]], groups: Sequence[str]
) -> list[FoldFit]:
    """Fit every fold under the regularization its own training rows choose: fitted as
    shipped, then, where an inner cross-validation over whole ``groups`` of its training
    rows prefers another candidate (`chipmix.validate.tuning`), refitted under that one."""
    with _one_blas_thread():
        return _fit_tuned(problem, train, groups)


def _one_blas_thread() -> Any:
    """BLAS on one thread while fitting. The normal equations have one row per slot of
    the hierarchy (about 190 over both published files): from about that size OpenBLAS
    threads its Cholesky, and its threads' spinning cost 5× the CPU of the whole
    leave-one-chip-out over 113 rows (40.7 s against 7.5 s on one thread, 2 cores)."""
    return threadpool_limits(limits=1, user_api="blas")


def _fit_tuned(
    problem: _Problem, train: Sequence[NDArray[np.bool_]], groups: Sequence[str]
) -> list[FoldFit]:
    first = fit_folds(problem, train)
    tau = np.array([s.sigma for s in problem.hierarchy.slots])
    chosen = [
        choose_regularization(
            u=f.u, active=f.active, mask=f.mask, errors=f.errors, slopes=f.slopes,
            incidence=problem.hierarchy.incidence, tau=tau, groups=groups,
        )
        for f in first
    ]  # fmt: skip
    again = [i for i, (reg, _) in enumerate(chosen) if reg != first[i].regularization]
    if not again:
        return first
    refits = fit_folds(
        problem,
        [train[i] for i in again],
        [chosen[i][0] for i in again],
        [chosen[i][1] for i in again],
        max_iterations=_REFIT_ITERATIONS,
    )
    out = list(first)
    for i, fold in zip(again, refits, strict=True):
        out[i] = fold
    return out


def prepare(cases: Sequence[Case], catalog: Catalog) -> tuple[_Problem, list[Case]]:
    """The cases the prior calibration can predict, with the layouts the search gives them
    under it (held fixed while fitting)."""
    usable: list[Case] = []
    layouts: list[Layout] = []
    for case in cases:
        score = predict_case(case, catalog, catalog.prior_calibration)
        if score.layout is not None:
            usable.append(case)
            layouts.append(score.layout)
    return _Problem(usable, layouts, catalog), usable


def fitted_calibration(problem: _Problem, fold: FoldFit) -> tuple[Calibration, Calibration]:
    """(priors with the fit on top, the fitted fields alone with their evidence)."""
    fitted = problem.hierarchy.resolve(fold.u, fold.active, fold.rows)
    return problem.prior.overlay(fitted), fitted


def fit_calibration(cases: Sequence[Case], catalog: Catalog, *, rounds: int = 2) -> FitResult:
    """Fit the hierarchy to ``cases`` starting from the catalog's priors; with two rounds,
    the layouts the rows leave open are searched again under the first fit."""
    problem, usable = prepare(cases, catalog)
    mask = np.ones(len(usable), dtype=bool)
    fold = fit_tuned(problem, [mask], [source_key(c) for c in usable])[0]
    for _round in range(rounds - 1):
        calibration, _ = fitted_calibration(problem, fold)
        refreshed = [predict_case(c, catalog, calibration) for c in usable]
        layouts = [r.layout or old for r, old in zip(refreshed, problem.layouts, strict=True)]
        problem = _Problem(usable, layouts, catalog)
        with _one_blas_thread():
            fold = fit_folds(problem, [mask], [fold.regularization], [fold.u])[0]
    calibration, fitted = fitted_calibration(problem, fold)
    residuals = {
        c.id: float(problem.log_errors(i, fold.u[None, :])[0]) for i, c in enumerate(usable)
    }
    fitted = problem.hierarchy.with_provenance(fitted, usable, residuals)
    provenance = dict(fitted.provenance)
    provenance["regularization"] = (
        f"{fold.regularization.describe()}: chosen among {len(GRID)} candidates by "
        f"{INNER_FOLDS}-fold cross-validation over whole sources of the training rows, "
        "each held-out source weighing the same"
    )
    return FitResult(
        calibration,
        fitted.model_copy(update={"provenance": provenance}),
        problem.hierarchy.parameters(fold.u, fold.active, fold.rows),
        [c.id for c in usable],
        residuals,
        fold.regularization,
    )


def write_calibration(result: FitResult, path: str | Path) -> None:
    """Write a fit as the calibration file the catalog reads back."""
    write_fitted(result.fitted, result.parameters, path)
