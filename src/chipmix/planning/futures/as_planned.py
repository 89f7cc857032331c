"""The deterministic plan held as planned in sampled futures: every run on its offer, tier
and chips, from its planned start (or its offer's delivery, if later), nothing moved.

``P(as planned)`` is the share of futures in which every run with a deadline ends by it.
With the model's error as the only source, this is the figure `plan` reports as
P(every deadline met) (`chipmix.planning.portfolio.odds`): both sample each placement's
own error distribution (`chipmix.uncertainty`) with one draw per chip shared by its runs.
The futures' recourse (`recourse`) may move runs and rent more; P(as planned) is the plan
that does neither. Outages are not applied to it (a run paused by one is not modelled).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from chipmix.planning.futures.sample import Future
from chipmix.planning.portfolio.problem import Problem
from chipmix.planning.portfolio.results import PlanResult

__all__ = ["as_planned", "plan_runs"]


def plan_runs(pb: Problem, result: PlanResult) -> list[tuple[int, float]]:
    """The plan's runs as (placement of ``pb``, start hour from the horizon's start)."""
    sc = pb.scenario
    origin = datetime(sc.start.year, sc.start.month, sc.start.day)
    jobs = {j.name: i for i, j in enumerate(sc.jobs)}
    offers = {o.id: i for i, o in enumerate(sc.offers)}
    index = {
        (pl.job, pl.offer, pl.tier, pl.chips): p for p, pl in enumerate(pb.candidates.placements)
    }
    out = []
    for a in result.allocations:
        p = index[(jobs[a.job], offers[a.offer], a.tier, a.chips)]
        out.append((p, (a.start - origin).total_seconds() / 3600.0))
    return out


def as_planned(
    pb: Problem, runs: Sequence[tuple[int, float]], futures: Sequence[Future]
) -> float | None:
    """P(every run with a deadline ends by it) over ``futures`` (None: no run has one)."""
    sc = pb.scenario
    timed = [(p, start) for p, start in runs if sc.jobs[int(pb.job[p])].deadline is not None]
    if not timed or not futures:
        return None
    met = 0
    for f in futures:
        met += all(
            max(start, float(f.delay_h[pb.offer[p]])) + float(pb.duration_h[p] * f.time_factor[p])
            <= float(pb.deadline_h[pb.job[p]]) + 1e-6
            for p, start in timed
        )
    return met / len(futures)
