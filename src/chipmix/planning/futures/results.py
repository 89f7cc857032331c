"""Typed results of a futures analysis: per first stage, its reliability, cost distribution,
regret and vendor exposure; the cost–reliability frontier; the value of diversification."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["FrontierPoint", "FuturesResult", "Reserved", "SourceUsed", "StageResult"]


@dataclass(frozen=True, slots=True)
class Reserved:
    """Chips a first stage reserves on one offer and tier."""

    offer: str
    tier: str
    chips: int
    cost_usd: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class StageResult:
    """One first stage evaluated over every future."""

    name: str
    group: str
    """``mix`` (every vendor) or the one vendor a single-vendor plan is held to."""
    role: str
    """``deterministic``, ``robust``, ``single-vendor`` (the group's robust choice) or
    ``candidate``."""
    reserved: tuple[Reserved, ...]
    reserved_usd: float
    p_all_met: float
    """P(every deadline met)."""
    p_met: dict[str, float]
    """Per job: P(its deadline met)."""
    cost_mean_usd: float
    cost_p10_usd: float
    cost_p50_usd: float
    cost_p90_usd: float
    regret_mean_usd: float
    """Cost above the cheapest evaluated mix first stage that met as many deadlines, in
    the same future; mean over the futures."""
    regret_p90_usd: float
    migrations: float
    """Mean jobs per future that run on another offer than in the nominal future."""
    vendor_spend_usd: dict[str, float]
    """Expected spend per vendor (exposure)."""
    vendor_spend_p90_usd: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["reserved"] = [r.to_dict() for r in self.reserved]
        return out


@dataclass(frozen=True, slots=True)
class FrontierPoint:
    """The cheapest evaluated first stage reaching a reliability target."""

    target: float
    stage: str
    p_all_met: float
    cost_mean_usd: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class SourceUsed:
    kind: str
    subject: str
    distribution: str
    source: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FuturesResult:
    """Plans over sampled futures: deterministic, robust and single-vendor, side by side.

    ``to_dict`` holds results only (no timing, no worker count): the same seed gives the
    same dict serially and on any number of Ray workers."""

    scenario: str
    futures: int
    seed: int
    target: float
    penalty_usd: float
    sources: tuple[SourceUsed, ...]
    stages: tuple[StageResult, ...]
    deterministic: str
    robust: str
    single_vendor: dict[str, str]
    """Per vendor: the name of its robust single-vendor stage."""
    frontier: tuple[FrontierPoint, ...]
    """Over the mix first stages: the cheapest reaching each reliability target."""
    diversification_usd: float | None
    """Expected cost of the cheapest single-vendor plan at least as reliable as the robust
    mix, minus the robust mix's (None: no single vendor is as reliable)."""
    notes: tuple[str, ...]
    solves: int
    wall_s: float = 0.0
    mode: str = "serial"
    workers: int = 1
    p_as_planned: float | None = None
    """P(every deadline met) of the deterministic plan held as planned, no recourse
    (`chipmix.planning.futures.as_planned`; with only the model's error, `plan`'s figure)."""

    def stage(self, name: str) -> StageResult:
        return next(s for s in self.stages if s.name == name)

    def to_dict(self) -> dict[str, Any]:
        det, rob = self.stage(self.deterministic), self.stage(self.robust)
        return {
            "scenario": self.scenario,
            "futures": self.futures,
            "seed": self.seed,
            "target": self.target,
            "penalty_usd": self.penalty_usd,
            "deterministic": {
                "stage": det.name,
                "p_on_time": det.p_all_met,
                "p_on_time_as_planned": self.p_as_planned,
                "expected_cost_usd": det.cost_mean_usd,
            },
            "robust": {
                "stage": rob.name,
                "p_on_time": rob.p_all_met,
                "expected_cost_usd": rob.cost_mean_usd,
            },
            "single_vendor": dict(self.single_vendor),
            "diversification_usd": self.diversification_usd,
            "frontier": [p.to_dict() for p in self.frontier],
            "stages": [s.to_dict() for s in self.stages],
            "sources": [s.to_dict() for s in self.sources],
            "solves": self.solves,
            "notes": list(self.notes),
        }
