"""The chance that each planned run meets its deadline under the model's own error.

A plan is built on point predictions of throughput. Each prediction's error distribution
(`chipmix.uncertainty.interval`: log(actual / predicted) ~ Normal(m, σ), from
cross-validated residuals of its evidence class) is sampled, one standard normal per chip
and draw — runs on one chip share its calibration and so its error — and a run meets its
deadline when ``start + duration / factor ≤ deadline``. Starts are held at the plan's (a
late run does not delay the next one on its reservation), so the joint figure is
optimistic where runs are chained.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from chipmix.uncertainty.interval import ErrorDistribution

__all__ = ["DRAWS", "RunOdds", "deadline_odds"]

DRAWS = 20_000
"""Samples of the model error (the sampling error of a probability is below 0.4 %)."""


@dataclass(frozen=True, slots=True)
class RunOdds:
    """What one planned run needs to meet its deadline."""

    chip: str
    start_h: float
    duration_h: float
    deadline_h: float | None
    error: ErrorDistribution | None


def deadline_odds(
    runs: Sequence[RunOdds], *, draws: int = DRAWS, seed: int = 0
) -> tuple[list[float | None], float | None]:
    """Per run, P(meeting its deadline) (None without a deadline), and P(every run with a
    deadline meets it) (None when none has one)."""
    rng = np.random.default_rng(seed)
    chips = sorted({r.chip for r in runs})
    z = {chip: rng.standard_normal(draws) for chip in chips}
    every = np.ones(draws, dtype=bool)
    per_run: list[float | None] = []
    for r in runs:
        if r.deadline_h is None:
            per_run.append(None)
            continue
        if r.error is None:
            factor = np.ones(draws)
        else:
            factor = np.exp(r.error.log_median + r.error.log_sigma * z[r.chip])
        met = r.start_h + r.duration_h / factor <= r.deadline_h + 1e-9
        every &= met
        per_run.append(float(met.mean()))
    with_deadline = any(p is not None for p in per_run)
    return per_run, float(every.mean()) if with_deadline else None
