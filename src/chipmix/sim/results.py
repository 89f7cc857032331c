"""The typed result of `chipmix.simulate`: summaries that render to a dict and per-replica rows
that render to a DataFrame."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from chipmix.sim.failures import CAUSES
from chipmix.sim.montecarlo import IntervalSweep, Outcome
from chipmix.sim.scenario import ContinuityScenario
from chipmix.sim.timeline import SystemRun

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CheckpointPolicy", "SimulationResult"]


@dataclass(frozen=True, slots=True)
class CheckpointPolicy:
    """The interval used, the formulas' optima beside it, and the simulated optimum."""

    interval_s: float
    chosen_by: str
    """``daly``, ``young`` or ``given``."""
    young_interval_s: float
    daly_interval_s: float
    mtbf_lossy_h: float
    """Mean time between interruptions that lose work: M in the formulas."""
    sweep: IntervalSweep | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "interval_s": self.interval_s,
            "chosen_by": self.chosen_by,
            "young_interval_s": self.young_interval_s,
            "daly_interval_s": self.daly_interval_s,
            "mtbf_lossy_h": self.mtbf_lossy_h,
        }
        if self.sweep is not None:
            out |= self.sweep.to_dict()
        return out


@dataclass(frozen=True)
class SimulationResult:
    """Monte Carlo of one training run under failures, reclaims, maintenance and outages."""

    model: str
    primary: SystemRun
    outcome: Outcome
    """The run as planned: with migration when the scenario names a second system."""
    without_migration: Outcome | None
    """The same scenario handled without the second system (None without one)."""
    policy: CheckpointPolicy
    tokens: float | None
    duration_days: float | None
    deadline_days: float | None
    replicas: int
    seed: int
    scenario: ContinuityScenario | None
    assumptions: list[str] = field(default_factory=list)

    # -- headline numbers -------------------------------------------------------------------
    @property
    def summary(self) -> dict[str, Any]:
        return self.outcome.summary()

    @property
    def ettr_mean(self) -> float:
        return float(self.summary["ettr_mean"])

    @property
    def interruptions_mean(self) -> float:
        return float(self.summary["interruptions_mean"])

    @property
    def migration_gain_days_p50(self) -> float | None:
        """Median completion without migration minus with it (positive: migration helps)."""
        if self.without_migration is None or self.tokens is None:
            return None
        a = self.without_migration.summary()["completion_days_p50"]
        b = self.summary["completion_days_p50"]
        return None if a is None or b is None else float(a - b)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": self.model,
            "system": self.primary.estimate.system.id,
            "chip": self.primary.estimate.system.chip.id,
            "chips": self.primary.chips,
            "layout": self.primary.estimate.layout.as_dict(),
            "tokens_per_s": self.primary.tokens_per_s,
            "price_tier": self.primary.price_tier,
            "mode": "duration" if self.tokens is None else "tokens",
            "tokens": self.tokens,
            "duration_days": self.duration_days,
            "ideal_days": (
                self.tokens / self.primary.tokens_per_s / 86400 if self.tokens else None
            ),
            "deadline_days": self.deadline_days,
            "replicas": self.replicas,
            "seed": self.seed,
        }
        out |= {k: v for k, v in self.summary.items() if k != "label"}
        out["checkpoint"] = self.primary.checkpoint.as_dict()
        out["checkpoint_policy"] = self.policy.to_dict()
        out["runs"] = [r.describe() for r in self.outcome.timeline.runs]
        out["phases"] = [
            {"label": p.label, "start_day": p.start_s / 86400, "end_day": p.end_s / 86400,
             "entry_down_s": p.entry_down_s, "sudden": p.entry_sudden}
            for p in self.outcome.timeline.phases
        ]  # fmt: skip
        if self.without_migration is not None:
            base = self.without_migration.summary()
            out["without_migration"] = {k: v for k, v in base.items() if k != "label"}
            out["migration_gain_days_p50"] = self.migration_gain_days_p50
        if self.scenario is not None:
            out["scenario"] = self.scenario.model_dump()
        out["assumptions"] = self.assumptions
        return out

    def to_dataframe(self) -> pd.DataFrame:
        """One row per replica and variant."""
        import pandas as pd

        frames = []
        for outcome in (self.outcome, self.without_migration):
            if outcome is None:
                continue
            a = outcome.arrays
            cols: dict[str, Any] = {
                "variant": outcome.label,
                "replica": np.arange(a.wall_s.size),
                "completion_days": outcome.completion_days,
                "finished": a.finished,
                "ettr": a.ettr,
                "tokens": a.tokens,
                "interruptions": a.interruptions,
                "lost_work_h": a.lost_work_s / 3600,
                "checkpoint_h": a.checkpoint_s / 3600,
                "restart_h": a.downtime_s / 3600,
                "waiting_h": a.waiting_s / 3600,
                "cost_usd": a.cost_usd,
                "wasted_cost_usd": a.cost_usd - a.productive_cost_usd,
            }
            cols |= {f"interruptions_{c}": a.counts[:, i] for i, c in enumerate(CAUSES)}
            frames.append(pd.DataFrame(cols))
        return pd.concat(frames, ignore_index=True)
