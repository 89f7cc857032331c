"""The fitter's batched evaluation gives what one plain model call per point gives.

The fit computes each row's memory per chip once and builds every fold's finite-difference
points as arrays (issue 16: cross-validation speed); neither may change a number."""

from __future__ import annotations

import numpy as np
import pytest

from chipmix.catalog import load_catalog
from chipmix.catalog.calibration import ChipCalibration, StackCalibration
from chipmix.perf.step import evaluate
from chipmix.validate.cases import DEFAULT_CASES, read_cases
from chipmix.validate.fit import _STEP, _Problem, fit_folds, prepare
from chipmix.validate.hierarchy import FIT_PARAMETERS


@pytest.fixture(scope="module")
def problem() -> _Problem:
    cases = read_cases(DEFAULT_CASES)[:14]
    prepared, usable = prepare(cases, load_catalog())
    assert len(usable) >= 10
    return prepared


def _plain(problem: _Problem, i: int, u: np.ndarray) -> float:
    """log(predicted / published) of row ``i`` at one point, by one unbatched model call
    that computes its own memory."""
    h = problem.hierarchy
    chip_values, stack_values = dict(h.chip_base[i]), dict(h.stack_base[i])
    for j, param in enumerate(FIT_PARAMETERS):
        chain = h.chains[i][j]
        if chain:
            value = float(param.natural(h.x0[i][j] + u[chain].sum()))
            (chip_values if param.scope == "chip" else stack_values)[param.name] = value
    result = evaluate(
        problem.jobs[i], problem.systems[i], problem.prior, problem.batches[i],
        chip_cal=ChipCalibration.model_construct(**chip_values),
        stack_cal=StackCalibration.model_construct(**stack_values),
    )  # fmt: skip
    tps = float(result.tokens_per_s[0])
    case = problem.cases[i]
    predicted = tps if case.row.metric == "tokens_per_s" else problem.jobs[i].tokens_per_step / tps
    return float(np.log(predicted) - problem.log_published[i])


def test_batched_log_errors_equal_plain_calls(problem: _Problem) -> None:
    rng = np.random.default_rng(0)
    points = rng.normal(0.0, 0.2, (5, len(problem.hierarchy.slots)))
    for i in range(len(problem.cases)):
        batched = problem.log_errors(i, points)
        plain = [_plain(problem, i, p) for p in points]
        np.testing.assert_allclose(batched, plain, rtol=1e-12, atol=1e-12)


def test_every_folds_slopes_are_its_own_finite_differences(problem: _Problem) -> None:
    n = len(problem.cases)
    rng = np.random.default_rng(1)
    masks = [np.arange(n) % 3 != k for k in range(3)]
    starts = [rng.normal(0.0, 0.1, len(problem.hierarchy.slots)) for _ in masks]
    folds = fit_folds(problem, masks, starts=starts, max_iterations=1)
    for fold, start in zip(folds, starts, strict=True):
        trial = np.where(fold.active, start, 0.0)
        slots = np.flatnonzero(fold.active)
        for row, i in enumerate(np.flatnonzero(fold.mask)):
            e0 = _plain(problem, int(i), trial)
            assert fold.errors[row] == pytest.approx(e0, rel=1e-12, abs=1e-12)
            for col, s in enumerate(slots):
                if s not in problem.hierarchy.case_slots[i]:
                    assert fold.slopes[row, col] == 0.0
                    continue
                moved = trial.copy()
                moved[s] += _STEP
                slope = (_plain(problem, int(i), moved) - e0) / _STEP
                assert fold.slopes[row, col] == pytest.approx(slope, rel=1e-9, abs=1e-9)
