"""What `compare` returns: one row per system (`ComparisonRow`), ranked (`Comparison`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from chipmix.catalog.offer import PriceTier
from chipmix.catalog.system import ResolvedSystem
from chipmix.results import Estimate
from chipmix.workload.job import Job

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Comparison", "ComparisonRow", "Sizing"]

Sizing = Literal["chips", "deadline", "budget"]
_UNCERTAINTY = ("interval", "evidence", "evidence_class")


@dataclass(frozen=True, slots=True)
class ComparisonRow:
    """One system's answer: its plan, or why it has none."""

    system: ResolvedSystem
    estimate: Estimate | None
    """The best layout on the chosen chip count, with its run's time and cost."""
    reason: str | None = None
    """Why the system cannot do the job (None when it can)."""
    note: str = ""
    """How the chip count was chosen (deadline and budget modes)."""
    counts_searched: int = 0
    """Chip counts the sizing searched on this system."""
    rank: int | None = None
    """1 = cheapest in the chosen tier; None for systems that cannot do the job."""
    fastest: bool = False
    cheapest: bool = False
    distinguishable_from_best: bool | None = None
    """False when this plan's p10–p90 interval of the ranking figure (cost, or time when
    unpriced) overlaps the first-ranked plan's: not distinguishable at this evidence."""
    relative_price_performance: tuple[float, float, float] | None = None
    """Tokens per dollar relative to the baseline (``--baseline``): predicted, p10, p90;
    1.3 means 30 % better price-performance than the baseline."""

    @property
    def feasible(self) -> bool:
        return self.estimate is not None

    @property
    def chips(self) -> int | None:
        return None if self.estimate is None else self.estimate.chips

    @property
    def time_to_train_h(self) -> float | None:
        run = None if self.estimate is None else self.estimate.run
        return None if run is None else run.time_to_train_h

    @property
    def cost_usd(self) -> float | None:
        """Cost in the comparison's price tier (None without a price in that tier)."""
        return None if self.estimate is None else self.estimate.cost_usd

    @property
    def usd_per_million_tokens(self) -> float | None:
        cost = self.cost_usd
        run = None if self.estimate is None else self.estimate.run
        return None if cost is None or run is None else cost / run.tokens * 1e6

    @property
    def extrapolated(self) -> bool:
        """The chip has no published run of its own, or the job leaves what they cover."""
        e = self.estimate
        return e is not None and e.evidence is not None and e.evidence.extrapolated

    def rank_interval(self) -> tuple[float, float] | None:
        """p10–p90 of the figure rows are ranked by (cost, else time to train)."""
        e = self.estimate
        interval = None if e is None else e.interval
        if interval is None:
            return None
        key = "cost_usd" if self.cost_usd is not None else "time_to_train_h"
        return interval.figures.get(key)

    def to_dict(self) -> dict[str, Any]:
        chip = self.system.chip
        out: dict[str, Any] = {
            "rank": self.rank,
            "system": self.system.id,
            "chip": chip.id,
            "chip_name": chip.name,
            "vendor": chip.vendor,
            "feasible": self.feasible,
            "reason": self.reason,
            "fastest": self.fastest,
            "cheapest": self.cheapest,
            "note": self.note,
            "counts_searched": self.counts_searched,
            "extrapolated": self.extrapolated,
            "distinguishable_from_best": self.distinguishable_from_best,
        }
        if self.relative_price_performance is not None:
            mid, lo, hi = self.relative_price_performance
            out["relative_price_performance"] = {"predicted": mid, "p10": lo, "p90": hi}
        e = self.estimate
        if e is None or e.run is None:
            return out
        run = e.run
        return (
            out
            | {
                "chips": e.chips,
                "layout": e.layout.as_dict(),
                "step_time_s": e.step_time_s,
                "tokens_per_s": e.tokens_per_s,
                "tokens_per_s_per_chip": e.tokens_per_s_per_chip,
                "mfu": e.mfu,
                "memory_gib_per_chip": e.memory_gib_per_chip,
                "time_to_train_h": run.time_to_train_h,
                "time_to_train_days": run.time_to_train_h / 24.0,
                "chip_hours": run.chip_hours,
                "cost_usd": self.cost_usd,
                "usd_per_million_tokens": self.usd_per_million_tokens,
                "cost_usd_by_tier": run.cost_usd,
                "usd_per_chip_hour": run.usd_per_chip_hour,
                "offer_by_tier": run.offer_by_tier,
                "offer_date_by_tier": run.offer_date_by_tier,
                "price_flag_by_tier": run.price_flag_by_tier,
                "chip_flags": chip.flags,
                "pue": run.pue,
                "facility_energy_mwh": run.facility_energy_mwh,
                "energy_mwh": run.energy_mwh,
                "energy_is_estimated": run.power_is_estimated,
                "breakdown": e.breakdown,
            }
            | {k: v for k, v in e.to_dict().items() if k in _UNCERTAINTY}
        )


@dataclass(frozen=True, slots=True)
class Comparison:
    """One job on many systems, ranked by cost; every system asked for has a row."""

    job: Job
    sizing: Sizing
    target: float
    """The chip count, the deadline in days or the budget in US dollars."""
    sizing_is_default: bool
    """True when no sizing was given and `DEFAULT_CHIPS` was used."""
    price_tier: PriceTier
    rows: list[ComparisonRow]
    """Ranked: priced plans by cost, unpriced plans by time, then systems without a plan."""
    baseline: str | None = None
    """The system (or offer) price-performance is measured against (``--baseline``)."""

    @property
    def feasible(self) -> list[ComparisonRow]:
        return [r for r in self.rows if r.feasible]

    @property
    def infeasible(self) -> list[ComparisonRow]:
        return [r for r in self.rows if not r.feasible]

    @property
    def fastest(self) -> ComparisonRow | None:
        return next((r for r in self.rows if r.fastest), None)

    @property
    def cheapest(self) -> ComparisonRow | None:
        return next((r for r in self.rows if r.cheapest), None)

    @property
    def tokens(self) -> float:
        assert self.job.tokens is not None  # compare always sets it
        return self.job.tokens

    def to_dict(self) -> dict[str, Any]:
        job = self.job
        return {
            "model": job.model.name,
            "mode": job.mode,
            "precision": job.precision,
            "seq_len": job.seq_len,
            "global_batch": job.global_batch,
            "tokens": self.tokens,
            "steps": self.tokens / job.tokens_per_step,
            "sizing": self.sizing,
            "target": self.target,
            "sizing_is_default": self.sizing_is_default,
            "price_tier": self.price_tier,
            "baseline": self.baseline,
            "indistinguishable_from_best": [
                r.system.id for r in self.rows if r.distinguishable_from_best is False
            ],
            "rows": [r.to_dict() for r in self.rows],
        }

    def to_dataframe(self) -> pd.DataFrame:
        """One row per system; layout axes and per-tier costs as their own columns."""
        import pandas as pd

        records = []
        for row in self.rows:
            flat = {k: v for k, v in row.to_dict().items() if not isinstance(v, dict)}
            e = row.estimate
            if e is not None and e.run is not None:
                flat |= {f"layout_{k}": v for k, v in e.layout.as_dict().items()}
                flat |= {f"cost_usd_{t}": c for t, c in e.run.cost_usd.items()}
            records.append(flat)
        return pd.DataFrame.from_records(records)
