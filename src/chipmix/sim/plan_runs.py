"""`simulate_plan`: a portfolio plan's jobs under failures — each job's run as the planner
placed it (offer's system, tier, chips and the layout it chose), simulated from its planned
start, against its deadline.

What it does not model: knock-on delays between jobs that share capacity one after the
other (each job starts on its planned day whatever happened to the one before), and
reservations: a reserved tier's cost does not grow with a late finish, a per-use tier's
does. Jobs draw independent histories (seed + job index), so the chance that every job
meets its deadline is the share of replica indices where all of them do.

Serving lines (a scenario's ``serving:``) are not simulated: they are held as planned, their
planned cost counted in the mean cost, and the result names them (`not_simulated`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from chipmix.catalog.catalog import Catalog, load_catalog
from chipmix.planning.portfolio.results import Allocation, PlanResult
from chipmix.planning.portfolio.scenario import RESERVED_TIERS
from chipmix.sim.results import SimulationResult
from chipmix.sim.simulate import simulate

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["PlanJobSimulation", "PlanSimulation", "simulate_plan"]


@dataclass(frozen=True, slots=True)
class PlanJobSimulation:
    """One planned job and its Monte Carlo."""

    allocation: Allocation
    result: SimulationResult
    deadline_days: float | None
    """From the planned start to the end of the deadline day."""

    @property
    def meets_deadline(self) -> np.ndarray[Any, np.dtype[np.bool_]]:
        a = self.result.outcome.arrays
        if self.deadline_days is None:
            return np.ones(a.wall_s.size, dtype=bool)
        return np.asarray(a.finished & (a.wall_s <= self.deadline_days * 86400.0))

    @property
    def cost_usd_mean(self) -> float:
        """The plan's cost, grown by the mean wall time over the failure-free time for a
        per-use tier (a reservation is paid anyway)."""
        a = self.allocation
        if a.tier in RESERVED_TIERS or a.duration_h <= 0:
            return a.cost_usd
        wall_h = float(np.mean(self.result.outcome.arrays.elapsed_s)) / 3600.0
        return a.cost_usd * wall_h / a.duration_h

    def to_dict(self) -> dict[str, Any]:
        a = self.allocation
        s = self.result.summary
        start = a.start
        p50, p90 = s["completion_days_p50"], s["completion_days_p90"]
        return {
            "job": a.job,
            "offer": a.offer,
            "system": a.system,
            "tier": a.tier,
            "chips": a.chips,
            "layout": a.layout.as_dict(),
            "planned_start": start.isoformat(),
            "planned_end": a.end.isoformat(),
            "planned_days": a.duration_h / 24.0,
            "deadline": None if a.deadline is None else a.deadline.isoformat(),
            "deadline_days": self.deadline_days,
            "interruptions_mean": s["interruptions_mean"],
            "ettr_mean": s["ettr_mean"],
            "completion_days_p50": p50,
            "completion_days_p90": p90,
            "end_p50": None if p50 is None else (start + timedelta(days=p50)).isoformat(),
            "end_p90": None if p90 is None else (start + timedelta(days=p90)).isoformat(),
            "deadline_probability": float(self.meets_deadline.mean()),
            "planned_cost_usd": a.cost_usd,
            "cost_usd_mean": self.cost_usd_mean,
            "checkpoint_interval_s": self.result.policy.interval_s,
        }


@dataclass(frozen=True, slots=True)
class PlanSimulation:
    """Every job of a plan, simulated."""

    scenario: str
    plan: PlanResult
    jobs: list[PlanJobSimulation]
    replicas: int
    seed: int

    @property
    def not_simulated(self) -> list[str]:
        """The plan's serving lines, held as planned (``chat on <offer> (<tier>)``)."""
        return [f"{s.serving} on {s.offer} ({s.tier})" for s in self.plan.serving]

    @property
    def cost_usd_mean(self) -> float:
        """The jobs' mean cost under failures plus the serving lines' planned cost."""
        return sum(j.cost_usd_mean for j in self.jobs) + sum(s.cost_usd for s in self.plan.serving)

    @property
    def all_deadlines_probability(self) -> float:
        if not self.jobs:
            return 1.0
        met = np.logical_and.reduce([j.meets_deadline for j in self.jobs])
        return float(np.mean(met))

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "replicas": self.replicas,
            "seed": self.seed,
            "planned_cost_usd": self.plan.cost_usd,
            "cost_usd_mean": self.cost_usd_mean,
            "all_deadlines_probability": self.all_deadlines_probability,
            "jobs": [j.to_dict() for j in self.jobs],
            "not_simulated": self.not_simulated,
            "assumptions": [
                "each job runs on its planned allocation from its planned start; knock-on "
                "delays between jobs sharing capacity are not modelled",
                "a per-use tier's cost grows with the wall time; a reservation's does not",
                *(self.jobs[0].result.assumptions[:2] if self.jobs else []),
                *(
                    ["serving lines are not simulated: held as planned, at their planned cost"]
                    if self.plan.serving
                    else []
                ),
            ],
        }

    def to_dataframe(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame.from_records(
            [{k: v for k, v in j.to_dict().items() if not isinstance(v, dict)} for j in self.jobs]
        )


def simulate_plan(
    scenario: str | Path,
    *,
    replicas: int = 1000,
    seed: int = 0,
    checkpoint_interval: float | str | None = None,
    asynchronous_checkpoint: bool = False,
    hot_spare_nodes: int | None = None,
    catalog: Catalog | str | Path | None = None,
) -> PlanSimulation:
    """Plan ``scenario`` (a planner scenario file, see `chipmix.planning.portfolio.schema`) and
    simulate each job where the plan puts it."""
    from chipmix.planning.portfolio.planner import plan
    from chipmix.planning.portfolio.scenario_file import load_scenario

    cat = catalog if isinstance(catalog, Catalog) else load_catalog(catalog)
    sc = load_scenario(scenario, cat)
    result = plan(sc, catalog=cat, sensitivity=False, single_vendor=False)
    jobs = {j.name: j for j in sc.jobs}
    out = []
    for index, a in enumerate(result.allocations):
        job = jobs[a.job].job
        deadline = None
        if a.deadline is not None:
            end = datetime.combine(a.deadline, time()) + timedelta(days=1)
            deadline = (end - a.start).total_seconds() / 86400.0
        layout: dict[str, Any] = a.layout.as_dict()  # the planner's layout, kept
        sim = simulate(
            job.model,
            a.system,
            a.chips,
            tokens=a.tokens,
            checkpoint_interval=checkpoint_interval,
            asynchronous_checkpoint=asynchronous_checkpoint,
            replicas=replicas,
            seed=seed + index,
            deadline_days=deadline if deadline and deadline > 0 else None,
            price_tier=a.tier,
            hot_spare_nodes=hot_spare_nodes,
            catalog=cat,
            mode=job.mode,
            seq_len=job.seq_len,
            global_batch=job.global_batch,
            precision=job.precision,
            stack=job.stack,
            lora_rank=job.lora_rank,
            **layout,
        )
        out.append(PlanJobSimulation(a, sim, deadline))
    return PlanSimulation(sc.name, result, out, replicas, seed)
