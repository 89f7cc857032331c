"""Monte Carlo over seeded replicas: distributions of completion time, effective training time
ratio (ETTR), goodput, cost with the wasted part, and the chance of meeting a deadline; and
the sweep of checkpoint intervals that finds the simulated optimum.

Replicas draw from one ``numpy.random.Generator`` (PCG64) seeded by the user, so a seed
gives the same numbers on every machine with the same numpy. The sweep reuses the seed at
every interval (common random numbers), which keeps the comparison between intervals far
less noisy than independent runs would.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from chipmix.sim.engine import ReplicaArrays, run_replicas
from chipmix.sim.failures import CAUSES, HARDWARE_CAUSES
from chipmix.sim.timeline import Timeline

__all__ = ["IntervalSweep", "Outcome", "monte_carlo", "sweep_intervals"]

UNPLANNED = tuple(c for c in CAUSES if c != "planned")
"""Interruptions that were not scheduled: failures of every class and reclaims."""


def _stats(x: np.ndarray[Any, Any], prefix: str) -> dict[str, float | None]:
    """Mean and 10/50/90th percentiles; None where unknown (NaN: no price) or unbounded."""
    if np.isnan(x).any():
        return {f"{prefix}_{s}": None for s in ("mean", "p10", "p50", "p90")}
    finite = x[np.isfinite(x)]
    if finite.size < x.size:  # unfinished replicas push the upper quantiles to infinity
        # no interpolation: an infinite neighbour would make inf − inf
        pct = {q: float(np.quantile(x, q / 100, method="inverted_cdf")) for q in (10, 50, 90)}
    else:
        pct = {q: float(np.quantile(x, q / 100)) for q in (10, 50, 90)}
    mean = float(np.mean(x)) if finite.size == x.size else math.inf
    out: dict[str, float | None] = {f"{prefix}_mean": mean}
    out |= {f"{prefix}_p{q}": v for q, v in pct.items()}
    return {k: (None if v is not None and not math.isfinite(v) else v) for k, v in out.items()}


@dataclass(frozen=True, slots=True)
class Outcome:
    """The replicas of one variant of the run (e.g. with or without migration)."""

    label: str
    timeline: Timeline
    arrays: ReplicaArrays
    window: bool
    """True for a fixed window (``--duration-days``), False for a token target."""
    deadline_s: float | None
    model_error: bool = True
    """True when each replica drew its throughput from the prediction's error model."""

    @property
    def ideal_tokens_per_s(self) -> float:
        return self.timeline.runs[0].tokens_per_s

    @property
    def completion_days(self) -> np.ndarray[Any, np.dtype[np.float64]]:
        return np.asarray(self.arrays.wall_s / 86400.0)

    @property
    def deadline_probability(self) -> float | None:
        if self.deadline_s is None:
            return None
        a = self.arrays
        return float(np.mean(a.finished & (a.wall_s <= self.deadline_s)))

    def summary(self) -> dict[str, Any]:
        """Means and quantiles over replicas."""
        a = self.arrays
        counts = a.counts
        with np.errstate(invalid="ignore", divide="ignore"):
            goodput = np.where(a.elapsed_s > 0, a.tokens / a.elapsed_s, 0.0)
        unplanned = [CAUSES.index(c) for c in UNPLANNED]
        hardware = [CAUSES.index(c) for c in CAUSES if c in HARDWARE_CAUSES]
        out: dict[str, Any] = {
            "label": self.label,
            "replicas": int(a.wall_s.size),
            "interruptions_mean": float(counts.sum(axis=1).mean()),
            "unplanned_interruptions_mean": float(counts[:, unplanned].sum(axis=1).mean()),
            "hardware_interruptions_mean": float(counts[:, hardware].sum(axis=1).mean()),
            "interruptions_by_cause_mean": {
                c: float(counts[:, i].mean()) for i, c in enumerate(CAUSES)
            },
            "outage_hits_mean": float(a.outage_hits.mean()),
        }
        out |= _stats(a.ettr, "ettr")
        out |= _stats(goodput, "goodput_tokens_per_s")
        out["goodput_fraction_mean"] = _nanmean(goodput / self.ideal_tokens_per_s)
        out |= _stats(self.completion_days, "completion_days")
        out |= _stats(a.cost_usd, "cost_usd")
        out["wasted_cost_usd_mean"] = _nanmean(a.cost_usd - a.productive_cost_usd)
        out["tokens_mean"] = float(a.tokens.mean())
        out |= {
            "lost_work_hours_mean": float(a.lost_work_s.mean() / 3600),
            "checkpoint_hours_mean": float(a.checkpoint_s.mean() / 3600),
            "restart_hours_mean": float(a.downtime_s.mean() / 3600),
            "waiting_hours_mean": float(a.waiting_s.mean() / 3600),
            "unfinished_fraction": float(1.0 - a.finished.mean()),
        }
        if self.deadline_s is not None:
            out["deadline_probability"] = self.deadline_probability
        return out


def _nanmean(x: np.ndarray[Any, Any]) -> float | None:
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else None


def monte_carlo(
    label: str,
    timeline: Timeline,
    *,
    target_tokens: float,
    window: bool,
    replicas: int,
    seed: int,
    deadline_s: float | None,
    model_error: bool = True,
) -> Outcome:
    """Run ``replicas`` seeded histories of ``timeline`` (each with its throughput drawn
    from the prediction's error model unless ``model_error`` is False)."""
    rng = np.random.default_rng(seed)
    arrays = run_replicas(
        timeline, target_tokens=target_tokens, window=window, replicas=replicas, rng=rng,
        model_error=model_error,
    )  # fmt: skip
    return Outcome(label, timeline, arrays, window, deadline_s, model_error)


@dataclass(frozen=True, slots=True)
class IntervalSweep:
    """Mean ETTR at each checkpoint interval, and where it peaks."""

    intervals_s: list[float]
    ettr_mean: list[float]
    completion_days_mean: list[float | None]
    best_interval_s: float
    """The peak of a parabola through the best grid point and its neighbours (in log τ)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "simulated_best_interval_s": self.best_interval_s,
            "sweep": [
                {"interval_s": t, "ettr_mean": e, "completion_days_mean": d}
                for t, e, d in zip(
                    self.intervals_s, self.ettr_mean, self.completion_days_mean, strict=True
                )
            ],
        }


def sweep_intervals(
    timeline_at: Callable[[float], Timeline],
    intervals_s: list[float],
    *,
    target_tokens: float,
    window: bool,
    replicas: int,
    seed: int,
    model_error: bool = True,
) -> IntervalSweep:
    """Simulate each interval with the same seed; the best maximizes mean ETTR (for a token
    target that is the same as minimizing the mean completion time)."""
    ettr, days = [], []
    for tau in intervals_s:
        out = monte_carlo("sweep", timeline_at(tau), target_tokens=target_tokens,
                          window=window, replicas=replicas, seed=seed, deadline_s=None,
                          model_error=model_error)  # fmt: skip
        ettr.append(float(out.arrays.ettr.mean()))
        done = out.completion_days[np.isfinite(out.completion_days)]
        days.append(float(done.mean()) if done.size else None)
    return IntervalSweep(intervals_s, ettr, days, _peak(intervals_s, ettr))


def _peak(x: list[float], y: list[float]) -> float:
    """Vertex of the parabola through the best point and its neighbours, in log x."""
    i = int(np.nanargmax(y))
    if i == 0 or i == len(x) - 1:
        return x[i]
    lx = np.log(np.asarray(x[i - 1 : i + 2]))
    yy = np.asarray(y[i - 1 : i + 2])
    a, b, _ = np.polyfit(lx, yy, 2)
    if a >= 0:
        return x[i]
    return float(np.exp(np.clip(-b / (2 * a), lx[0], lx[2])))
