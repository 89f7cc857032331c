"""The fit's regularization, chosen by cross-validation inside the training rows.

How far the hierarchy's deviations may move from the priors (a multiplier on every prior
width τ) and how soon a row counts as an outlier (the soft-L1 scale) are hyper-parameters.
Each training set chooses its own: its rows are split into ``INNER_FOLDS`` folds of whole
groups (sources, or chips), every candidate of `GRID` is fitted without each inner fold
and scored on it, and the candidate with the smallest held-out error is refitted on the
whole training set. A cross-validation therefore never tunes anything on the rows it
predicts (nested cross-validation; Varma & Simon 2006, BMC Bioinformatics 7:91).

The held-out error is the mean over held-out groups of each group's mean absolute log
error (`group_weights`): every source (or chip) counts once, however many rows it
published. What the choice estimates is the error on a *new* source or chip, and a
publication is one draw of that: its rows share its stack, its chip and its way of
measuring, so its 16 rows are not 16 independent draws. Weighted by row, one large
source decides the regularization for all: fitted on both published files (91 base rows
and 22 on chips the base lacks, 16 of them one TPU7x table), the row-weighted choice took
prior widths × 0.5 (held-out mean absolute log error 0.1507 against 0.1536 for × 2, the
TPU7x fold dominating) and the base set's in-sample error went from 4.7 % / 14.9 % to
7.2 % / 21.6 % (median / p90). Weighted by group it keeps × 2 (0.1058 against 0.1153 for
× 0.5): the base set is 4.8 % / 15.0 % in sample and the 22 extra rows 4.5 % / 16.4 %.
Cross-validated on the base set, leave one source out stays 9.1 % / 24.5 % (2 of its 34
folds take the soft-L1 scale 0.5 instead of 0.15) and leave one chip out 12.3 % median
(p90 26.0 % → 26.3 %; 7 of its 13 folds choose another candidate, mostly narrower
widths); held out by chip over both files the 22 extra rows go
from 28.3 % / 56.0 % to 20.2 % / 40.3 % (TPU7x 30.1 % → 24.5 % median). Weighting each
inner fold equally instead changes nothing: the folds are already balanced by rows.

The inner fits are one Gauss–Newton step of the same robust, shrunk objective from the
training set's own fit (its log errors and their slopes there, which the
Levenberg–Marquardt fit already holds), so choosing costs milliseconds; the chosen
candidate is then refitted exactly from that step (`chipmix.validate.fit.fit_tuned`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.linalg import cho_factor, cho_solve

from chipmix.validate.hierarchy import MIN_ROWS

__all__ = [
    "DEFAULT_REGULARIZATION",
    "GRID",
    "INNER_FOLDS",
    "ROBUST_SCALE",
    "Regularization",
    "choose_regularization",
    "group_weights",
    "inner_folds",
    "robust_residuals",
    "robust_slope",
]

Array = NDArray[np.float64]

ROBUST_SCALE = 0.5
"""Log error beyond which a row counts less and less (soft-L1 scale, ≈ 50% off)."""


def robust_residuals(r: Array, scale: float = ROBUST_SCALE) -> Array:
    """Soft-L1 on the data rows only, as residuals: their squares sum to
    Σ 2f²(√(1 + (r/f)²) − 1), quadratic near 0 and linear for outliers (f = ``scale``)."""
    f = scale
    return np.asarray(np.sign(r) * np.sqrt(2.0 * f * f * (np.sqrt(1.0 + (r / f) ** 2) - 1.0)))


def robust_slope(r: Array, scale: float = ROBUST_SCALE) -> Array:
    """d robust_residuals / d r (1 at r = 0)."""
    f = scale
    root = np.sqrt(1.0 + (r / f) ** 2)
    g = np.sqrt(np.maximum(2.0 * f * f * (root - 1.0), 1e-300))
    return np.asarray(np.where(np.abs(r) < 1e-8, 1.0, np.abs(r) / (root * g)))


@dataclass(frozen=True)
class Regularization:
    """The fit's two hyper-parameters: how far the deviations may move from the priors
    (``strength`` scales every prior width τ) and how soon a row's log error counts less
    (the soft-L1 ``robust_scale``). Chosen by cross-validation inside the training rows,
    never on the rows a fold predicts."""

    strength: float = 1.0
    robust_scale: float = ROBUST_SCALE

    def describe(self) -> str:
        return f"prior widths x {self.strength:g}, soft-L1 scale {self.robust_scale:g}"


DEFAULT_REGULARIZATION = Regularization()
"""The shipped prior widths and soft-L1 scale (the first candidate)."""

GRID: tuple[Regularization, ...] = tuple(
    Regularization(strength, scale) for scale in (0.5, 0.15) for strength in (1.0, 0.5, 2.0)
)
"""Candidates, the default first (it wins ties): prior widths halved, as shipped or doubled;
outliers from ≈ 50% or ≈ 15% off."""

INNER_FOLDS = 5


def inner_folds(groups: Sequence[str], k: int = INNER_FOLDS) -> NDArray[np.int64]:
    """Each row's inner fold: whole groups, the largest first into the fold with fewest
    rows (deterministic, balanced by rows)."""
    sizes: dict[str, int] = {}
    for g in groups:
        sizes[g] = sizes.get(g, 0) + 1
    load = [0] * k
    fold_of: dict[str, int] = {}
    for g in sorted(sizes, key=lambda name: (-sizes[name], name)):
        target = min(range(k), key=lambda i: (load[i], i))
        fold_of[g] = target
        load[target] += sizes[g]
    return np.array([fold_of[g] for g in groups], dtype=np.int64)


def group_weights(groups: Sequence[str]) -> Array:
    """Each row's weight in the held-out error: one over its group's rows, over the number
    of groups, so every group weighs the same and the weights sum to 1."""
    _, index, counts = np.unique(np.asarray(groups), return_inverse=True, return_counts=True)
    return np.asarray(1.0 / (counts[index] * len(counts)), dtype=np.float64)


def _gauss_newton(
    rw: Array, jw: Array, x_star: Array, keep: NDArray[np.bool_], widths: Sequence[Array]
) -> list[Array]:
    """One Gauss–Newton step from ``x_star`` of the robust, shrunk objective with the robust
    residuals ``rw`` and their slopes ``jw`` (rows × active slots) taken at ``x_star``, one
    per set of prior ``widths`` (the data's normal equations are formed once for all); the
    slots not in ``keep`` (too few rows in this training set) go to 0."""
    fixed = ~keep
    rhs = rw - jw[:, fixed] @ x_star[fixed] if np.any(fixed) else rw
    j = jw[:, keep]
    data_normal = np.einsum("ij,ik->jk", j, j)
    data_gradient = np.einsum("ij,i->j", j, rhs)
    steps = []
    for width in widths:
        inv = 1.0 / width[keep] ** 2
        normal = data_normal + np.diag(inv)
        gradient = data_gradient + inv * x_star[keep]
        x = np.where(keep, x_star, 0.0)
        x[keep] -= cho_solve(cho_factor(normal), gradient)
        steps.append(x)
    return steps


def choose_regularization(
    *,
    u: Array,
    active: NDArray[np.bool_],
    mask: NDArray[np.bool_],
    errors: Array,
    slopes: Array,
    incidence: NDArray[np.bool_],
    tau: Array,
    groups: Sequence[str],
) -> tuple[Regularization, Array]:
    """The candidate of `GRID` whose inner fits predict their held-out groups best, for
    one training set (``mask``) fitted at ``u`` with ``errors`` and ``slopes`` there (rows
    of the training set × its ``active`` slots); ``incidence`` is cases × slots, ``tau``
    the slots' prior widths. With it, the linearized fit of the whole training set under
    that candidate (a start for the exact refit)."""
    train = np.flatnonzero(mask)
    if not np.any(active) or len(train) < 2 * MIN_ROWS:
        return GRID[0], u
    inner = inner_folds([groups[int(i)] for i in train])
    if len(set(inner.tolist())) < 2:
        return GRID[0], u
    rows_in = incidence[train][:, active]
    widths = tau[active]
    x_star = u[active]
    scores: dict[Regularization, list[Array]] = {reg: [] for reg in GRID}
    for scale in sorted({reg.robust_scale for reg in GRID}):
        rw = robust_residuals(errors, scale)
        jw = slopes * robust_slope(errors, scale)[:, None]
        for k in np.unique(inner):
            fit_rows = inner != k
            keep = rows_in[fit_rows].sum(axis=0) >= MIN_ROWS
            regs = [r for r in GRID if r.robust_scale == scale]
            steps = _gauss_newton(
                rw[fit_rows], jw[fit_rows], x_star, keep, [widths * r.strength for r in regs]
            )
            for reg, x in zip(regs, steps, strict=True):
                scores[reg].append(errors[~fit_rows] + slopes[~fit_rows] @ (x - x_star))
    # The held-out rows in the order their errors are scored (inner fold by inner fold).
    held = np.concatenate([train[inner == k] for k in np.unique(inner)])
    weights = group_weights([groups[int(i)] for i in held])
    best, best_score = GRID[0], np.inf
    for reg in GRID:
        score = float(weights @ np.abs(np.concatenate(scores[reg])))
        if score < best_score - 1e-9:
            best, best_score = reg, score
    start = u.copy()
    every = np.ones(len(x_star), dtype=bool)
    start[active] = _gauss_newton(
        robust_residuals(errors, best.robust_scale),
        slopes * robust_slope(errors, best.robust_scale)[:, None],
        x_star,
        every,
        [widths * best.strength],
    )[0]
    return best, start
