"""Typed results of the public functions; each converts to a dict and a pandas DataFrame."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chipmix.catalog.offer import PriceTier
from chipmix.catalog.system import ResolvedSystem
from chipmix.perf.layout import Layout
from chipmix.perf.step import StepResult
from chipmix.pricing import RunCost
from chipmix.uncertainty.evidence import EvidenceClass
from chipmix.uncertainty.interval import ErrorDistribution, Interval
from chipmix.workload.job import Job

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Estimate", "SearchResult"]


@dataclass(frozen=True)
class Estimate:
    """The prediction for one job, one system, one layout."""

    job: Job
    system: ResolvedSystem
    layout: Layout
    chips: int
    step_time_s: float
    tokens_per_s: float
    mfu: float
    hfu: float
    memory_gib: dict[str, float]
    memory_capacity_gib: float
    breakdown: dict[str, float]
    run: RunCost | None
    price_tier: PriceTier
    stack: str | None = None
    """The stack whose calibration the prediction used (the chip vendor's reference stack
    when the job names none)."""
    evidence: EvidenceClass | None = None
    """Where the prediction's parameters came from."""
    error: ErrorDistribution | None = None
    """The distribution of actual ÷ predicted throughput for that evidence class."""

    @staticmethod
    def from_step(
        job: Job,
        system: ResolvedSystem,
        result: StepResult,
        i: int,
        run: RunCost | None,
        price_tier: PriceTier,
        stack: str | None = None,
    ) -> Estimate:
        layout = result.batch.layout(i)
        return Estimate(
            job=job, system=system, layout=layout, chips=layout.chips,
            step_time_s=float(result.step_time_s[i]),
            tokens_per_s=float(result.tokens_per_s[i]),
            mfu=float(result.mfu[i]), hfu=float(result.hfu[i]),
            memory_gib=result.memory.as_gib(i),
            memory_capacity_gib=result.memory_capacity_bytes / 2**30,
            breakdown=result.breakdown_row(i),
            run=run, price_tier=price_tier, stack=stack,
        )  # fmt: skip

    @property
    def tokens_per_s_per_chip(self) -> float:
        return self.tokens_per_s / self.chips

    @property
    def memory_gib_per_chip(self) -> float:
        return self.memory_gib["total"]

    @property
    def fits(self) -> bool:
        return self.memory_gib_per_chip <= self.memory_capacity_gib

    @property
    def cost_usd(self) -> float | None:
        if self.run is None:
            return None
        return self.run.cost_usd.get(self.price_tier)

    @property
    def usd_per_million_tokens(self) -> float | None:
        cost = self.cost_usd
        return None if cost is None or self.run is None else cost / self.run.tokens * 1e6

    @property
    def interval(self) -> Interval | None:
        """p10–p90 of throughput and of every figure derived from it (None without an
        error model)."""
        if self.error is None:
            return None
        throughput = {
            "tokens_per_s": self.tokens_per_s,
            "tokens_per_s_per_chip": self.tokens_per_s_per_chip,
            "mfu": self.mfu,
        }
        inverse: dict[str, float | None] = {"step_time_s": self.step_time_s}
        if self.run is not None:
            run = self.run
            inverse |= {
                "time_to_train_h": run.time_to_train_h,
                "time_to_train_days": run.time_to_train_h / 24.0,
                "chip_hours": run.chip_hours,
                "cost_usd": self.cost_usd,
                "usd_per_million_tokens": self.usd_per_million_tokens,
                "energy_mwh": run.energy_mwh,
            }
        return Interval.of(self.error, throughput, inverse)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": self.job.model.name,
            "system": self.system.id,
            "chip": self.system.chip.id,
            "chips": self.chips,
            "mode": self.job.mode,
            "stack": self.stack,
            "precision": self.job.precision,
            "seq_len": self.job.seq_len,
            "global_batch": self.job.global_batch,
            "step_time_s": self.step_time_s,
            "tokens_per_s": self.tokens_per_s,
            "tokens_per_s_per_chip": self.tokens_per_s_per_chip,
            "mfu": self.mfu,
            "hfu": self.hfu,
            "memory_gib_per_chip": self.memory_gib_per_chip,
            "memory_capacity_gib": self.memory_capacity_gib,
            "fits": self.fits,
            "memory_gib": self.memory_gib,
            "layout": self.layout.as_dict(),
            "breakdown": self.breakdown,
        }
        if self.run is not None:
            run = self.run
            out |= {
                "tokens": run.tokens,
                "steps": run.steps,
                "time_to_train_h": run.time_to_train_h,
                "time_to_train_days": run.time_to_train_h / 24.0,
                "chip_hours": run.chip_hours,
                "price_tier": self.price_tier,
                "cost_usd": self.cost_usd,
                "cost_usd_by_tier": run.cost_usd,
                "usd_per_chip_hour": run.usd_per_chip_hour,
                "offer_by_tier": run.offer_by_tier,
                "offer_date_by_tier": run.offer_date_by_tier,
                "price_flag_by_tier": run.price_flag_by_tier,
                "chip_flags": self.system.chip.flags,
                "energy_mwh": run.energy_mwh,
                "energy_is_estimated": run.power_is_estimated,
                "pue": run.pue,
                "facility_energy_mwh": run.facility_energy_mwh,
            }
        interval = self.interval
        if interval is not None and self.evidence is not None and self.error is not None:
            out["interval"] = interval.to_dict()
            out["evidence"] = self.evidence.to_list()
            out["evidence_class"] = self.evidence.to_dict() | {"error": self.error.to_dict()}
        return out

    def to_dataframe(self) -> pd.DataFrame:
        import pandas as pd

        flat = {k: v for k, v in self.to_dict().items() if not isinstance(v, dict)}
        flat |= {f"layout_{k}": v for k, v in self.layout.as_dict().items()}
        flat |= {f"breakdown_{k}": v for k, v in self.breakdown.items()}
        return pd.DataFrame([flat])


@dataclass(frozen=True)
class SearchResult:
    """The best layouts the search found, and what it rejected and why."""

    top: list[Estimate]
    tried: int
    feasible: int
    rejected: dict[str, int]
    layouts: StepResult | None = None
    """Predictions for every feasible layout, best first (``top`` are the first of them):
    what the search's plots draw. None when the result was built without them."""

    @property
    def best(self) -> Estimate:
        return self.top[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "tried": self.tried,
            "feasible": self.feasible,
            "rejected": self.rejected,
            "top": [e.to_dict() for e in self.top],
        }

    def to_dataframe(self) -> pd.DataFrame:
        import pandas as pd

        return pd.concat([e.to_dataframe() for e in self.top], ignore_index=True)
