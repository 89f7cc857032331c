"""One sample history of a simulated run: the data of a timeline plot.

The Monte Carlo keeps only each replica's totals. `sample_history` replays the same seeded
replicas (same seed, same count: the same histories) with the engine recording one of
them, the replica whose outcome is the median, so the timeline shows a typical run rather
than a lucky or an unlucky one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from chipmix.sim.engine import Trace, run_replicas
from chipmix.sim.montecarlo import Outcome
from chipmix.sim.results import SimulationResult
from chipmix.sim.timeline import Timeline

__all__ = ["SampleHistory", "sample_history"]


@dataclass(frozen=True, slots=True)
class SampleHistory:
    """One replica's spans (training, restart, waiting) and events (interruptions with
    their cause, outages and migrations, the end)."""

    replica: int
    """Which replica of the result this is (the median one)."""
    label: str
    """The variant it comes from ('as planned', 'with migration' …)."""
    timeline: Timeline
    """The runs the spans' ``run`` indexes point to, and the phases."""
    trace: Trace
    completion_days: float | None
    """When it reached the token target (None in a fixed window, or when it never did)."""
    tokens: float
    """Tokens trained (the target, or what the window held)."""


def _median_replica(outcome: Outcome) -> int:
    a = outcome.arrays
    value = a.tokens if outcome.window else np.where(np.isfinite(a.wall_s), a.wall_s, np.inf)
    finite = np.isfinite(value)
    if not finite.any():
        return 0
    middle = float(np.median(value[finite]))
    return int(np.argmin(np.where(finite, np.abs(value - middle), np.inf)))


def sample_history(result: SimulationResult, replica: int | None = None) -> SampleHistory:
    """The history of ``replica`` of ``result``'s run as planned (default: the median
    one), replayed from the result's seed."""
    outcome = result.outcome
    a = outcome.arrays
    count = int(a.wall_s.size)
    index = _median_replica(outcome) if replica is None else replica
    if not 0 <= index < count:
        raise ValueError(f"replica must be from 0 to {count - 1} (got {index})")
    trace = Trace(replica=index)
    run_replicas(
        outcome.timeline,
        target_tokens=math.inf if result.tokens is None else float(result.tokens),
        window=outcome.window,
        replicas=count,
        rng=np.random.default_rng(result.seed),
        trace=trace,
        model_error=outcome.model_error,
    )
    wall = float(a.wall_s[index])
    done = not outcome.window and math.isfinite(wall)
    return SampleHistory(
        replica=index,
        label=outcome.label,
        timeline=outcome.timeline,
        trace=trace,
        completion_days=wall / 86400.0 if done else None,
        tokens=float(a.tokens[index]),
    )
