"""Typed results of serving predictions; each converts to a dict and a pandas DataFrame."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chipmix.catalog.offer import PriceTier
from chipmix.catalog.system import ResolvedSystem
from chipmix.serve.batching import ServeMetrics
from chipmix.serve.job import ServeJob
from chipmix.serve.layout import ReplicaLayout
from chipmix.serve.memory import GIB
from chipmix.serve.prices import usd_per_million_tokens
from chipmix.uncertainty.evidence import EvidenceClass
from chipmix.uncertainty.interval import ErrorDistribution, Interval

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CurvePoint", "ServeComparison", "ServeEstimate", "ServeSearchResult"]


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """One batch of one replica layout: the throughput–latency trade-off."""

    batch: int
    tokens_per_s_per_chip: float
    ttft_p99_ms: float
    tpot_p99_ms: float

    def to_dict(self) -> dict[str, float]:
        return {"batch": self.batch, "tokens_per_s_per_chip": self.tokens_per_s_per_chip,
                "ttft_p99_ms": self.ttft_p99_ms, "tpot_p99_ms": self.tpot_p99_ms}  # fmt: skip


@dataclass(frozen=True)
class ServeEstimate:
    """The prediction for one serving job on one system with one layout and batch."""

    job: ServeJob
    system: ResolvedSystem
    layout: ReplicaLayout
    stack: str | None
    ttft_ms: float
    ttft_p99_ms: float
    tpot_ms: float
    tpot_p99_ms: float
    output_tokens_per_s: float
    """All chips together, offline (continuous batching at the layout's batch)."""
    server_tokens_per_s: float
    """What the same layout sustains under Poisson arrivals (MLPerf Server)."""
    memory_gib_per_chip: float
    memory_capacity_gib: float
    weights_gib_per_chip: float
    max_batch: int
    iteration_breakdown_ms: dict[str, float]
    prefill_breakdown_ms: dict[str, float]
    prefill_replicas_per_decode_replica: float
    """For disaggregated serving: prefill replicas one decode replica needs."""
    usd_per_chip_hour: dict[PriceTier, float] = field(default_factory=dict)
    curve: list[CurvePoint] = field(default_factory=list)
    """Throughput against latency over batches, same tp/pp/ep."""
    evidence: EvidenceClass | None = None
    """The published serving rows behind the prediction (chip, stack, precision, chips)."""
    error: ErrorDistribution | None = None
    """How far off serving predictions of this evidence class were, held out."""
    error_basis: str = ""
    """Where ``error`` comes from, in words (measured held-out serving errors)."""

    @staticmethod
    def from_metrics(
        job: ServeJob,
        system: ResolvedSystem,
        stack: str | None,
        m: ServeMetrics,
        i: int,
        disaggregated: float,
        prices: dict[PriceTier, float],
        curve: list[CurvePoint],
    ) -> ServeEstimate:
        ms = {k: v * 1e3 for k, v in m.decode.row(i).items()}
        return ServeEstimate(
            job=job, system=system, layout=m.layouts.layout(i), stack=stack,
            ttft_ms=float(m.ttft_s[i]) * 1e3, ttft_p99_ms=float(m.ttft_p99_s[i]) * 1e3,
            tpot_ms=float(m.tpot_s[i]) * 1e3, tpot_p99_ms=float(m.tpot_p99_s[i]) * 1e3,
            output_tokens_per_s=float(m.output_tokens_per_s[i]),
            server_tokens_per_s=float(m.server_tokens_per_s[i]),
            memory_gib_per_chip=float(m.memory_bytes[i]) / GIB,
            memory_capacity_gib=m.memory_capacity_bytes / GIB,
            weights_gib_per_chip=float(m.weights_bytes[i]) / GIB,
            max_batch=int(m.max_batch[i]),
            iteration_breakdown_ms=ms,
            prefill_breakdown_ms={k: v * 1e3 for k, v in m.prefill.row(i).items()},
            prefill_replicas_per_decode_replica=disaggregated,
            usd_per_chip_hour=prices, curve=curve,
        )  # fmt: skip

    @property
    def chips(self) -> int:
        return self.layout.chips

    @property
    def tokens_per_s_per_chip(self) -> float:
        return self.output_tokens_per_s / self.chips

    @property
    def requests_per_s(self) -> float:
        return self.output_tokens_per_s / self.job.output_len

    @property
    def usd_per_million_tokens(self) -> dict[PriceTier, float]:
        """$ per million output tokens per price tier, at the offline throughput."""
        return {t: usd_per_million_tokens(p, self.tokens_per_s_per_chip)
                for t, p in self.usd_per_chip_hour.items()}  # fmt: skip

    @property
    def interval(self) -> Interval | None:
        """p10–p90 of the throughput figures and of those that move with its reciprocal
        (latencies, $ per million tokens), from the serving error model."""
        if self.error is None:
            return None
        usd = {f"usd_per_million_tokens_{t}": v for t, v in self.usd_per_million_tokens.items()}
        return Interval.of(
            self.error,
            {"output_tokens_per_s": self.output_tokens_per_s,
             "tokens_per_s_per_chip": self.tokens_per_s_per_chip,
             "server_tokens_per_s": self.server_tokens_per_s},
            {"ttft_ms": self.ttft_ms, "tpot_ms": self.tpot_ms, **usd},
        )  # fmt: skip

    def chips_for(self, tokens_per_day: float) -> int:
        """Chips (whole replicas) that serve ``tokens_per_day`` output tokens a day."""
        per_replica = self.output_tokens_per_s / self.layout.replicas * 86400.0
        return math.ceil(tokens_per_day / per_replica) * self.layout.replica_chips

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.job.model.name,
            "system": self.system.id,
            "chip": self.system.chip.id,
            "vendor": self.system.chip.vendor,
            "chips": self.chips,
            "stack": self.stack,
            "precision": self.job.precision,
            "kv_precision": self.job.kv_precision,
            "input_len": self.job.input_len,
            "output_len": self.job.output_len,
            "layout": self.layout.as_dict(),
            "ttft_ms": self.ttft_ms,
            "ttft_p99_ms": self.ttft_p99_ms,
            "tpot_ms": self.tpot_ms,
            "tpot_p99_ms": self.tpot_p99_ms,
            "output_tokens_per_s": self.output_tokens_per_s,
            "tokens_per_s_per_chip": self.tokens_per_s_per_chip,
            "server_tokens_per_s": self.server_tokens_per_s,
            "requests_per_s": self.requests_per_s,
            "memory_gib_per_chip": self.memory_gib_per_chip,
            "memory_capacity_gib": self.memory_capacity_gib,
            "weights_gib_per_chip": self.weights_gib_per_chip,
            "max_batch": self.max_batch,
            "iteration_breakdown_ms": self.iteration_breakdown_ms,
            "prefill_breakdown_ms": self.prefill_breakdown_ms,
            "prefill_replicas_per_decode_replica": self.prefill_replicas_per_decode_replica,
            "usd_per_chip_hour": self.usd_per_chip_hour,
            "usd_per_million_output_tokens": self.usd_per_million_tokens,
            "curve": [p.to_dict() for p in self.curve],
            "interval": None if self.interval is None else self.interval.to_dict(),
            "evidence": self._evidence_dict(),
        }

    def _evidence_dict(self) -> dict[str, Any] | None:
        if self.evidence is None:
            return None
        out = self.evidence.to_dict() | {"scopes": self.evidence.to_list()}
        if self.error is not None:
            out |= {"error": self.error.to_dict(), "interval_basis": self.error_basis}
        return out

    def flat(self) -> dict[str, Any]:
        """One flat row (for tables and DataFrames)."""
        d = self.to_dict()
        row = {k: v for k, v in d.items() if not isinstance(v, dict | list)}
        row |= {f"layout_{k}": v for k, v in self.layout.as_dict().items()}
        row |= {f"usd_per_m_tokens_{k}": v for k, v in self.usd_per_million_tokens.items()}
        return row

    def to_dataframe(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame([self.flat()])


@dataclass(frozen=True)
class ServeSearchResult:
    """The best serving layouts under the targets, best first, and what was rejected."""

    top: list[ServeEstimate]
    tried: int
    feasible: int
    rejected: dict[str, int]
    ttft_p99_target_ms: float | None = None
    tpot_p99_target_ms: float | None = None

    @property
    def best(self) -> ServeEstimate:
        return self.top[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "tried": self.tried, "feasible": self.feasible, "rejected": self.rejected,
            "ttft_p99_target_ms": self.ttft_p99_target_ms,
            "tpot_p99_target_ms": self.tpot_p99_target_ms,
            "top": [e.to_dict() for e in self.top],
        }  # fmt: skip

    def to_dataframe(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame([e.flat() for e in self.top])


@dataclass(frozen=True)
class ServeComparisonRow:
    """One system: its best serving estimate, or why it cannot serve the model."""

    system: ResolvedSystem
    estimate: ServeEstimate | None
    reason: str | None = None
    chips_for_demand: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"system": self.system.id, "chip": self.system.chip.id,
                               "vendor": self.system.chip.vendor, "reason": self.reason,
                               "chips_for_demand": self.chips_for_demand}  # fmt: skip
        if self.estimate is not None:
            out["estimate"] = self.estimate.to_dict()
        return out


@dataclass(frozen=True)
class ServeComparison:
    """Every system that can serve the model, ranked by $ per million output tokens at the
    price tier (systems without a price after, by tokens/s per chip); then those that
    cannot, with the reason."""

    rows: list[ServeComparisonRow]
    price_tier: PriceTier
    tokens_per_day: float | None = None

    @property
    def feasible(self) -> list[ServeComparisonRow]:
        return [r for r in self.rows if r.estimate is not None]

    @property
    def infeasible(self) -> list[ServeComparisonRow]:
        return [r for r in self.rows if r.estimate is None]

    def to_dict(self) -> dict[str, Any]:
        return {"price_tier": self.price_tier, "tokens_per_day": self.tokens_per_day,
                "rows": [r.to_dict() for r in self.rows]}  # fmt: skip

    def to_dataframe(self) -> pd.DataFrame:
        import pandas as pd

        rows = []
        for r in self.rows:
            row: dict[str, Any] = {"system": r.system.id, "chip": r.system.chip.id,
                                   "vendor": r.system.chip.vendor, "reason": r.reason,
                                   "chips_for_demand": r.chips_for_demand}  # fmt: skip
            if r.estimate is not None:
                row |= {k: v for k, v in r.estimate.flat().items() if k not in row}
            rows.append(row)
        return pd.DataFrame(rows)
