"""Typed results of `chipmix.plan`: the allocation, totals, shares, the binding constraints
with their marginal value, the Pareto front; each converts to a dict and a DataFrame.
Infeasible scenarios raise `PlanInfeasibleError` carrying the conflicts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from chipmix.catalog.offer import PriceTier
from chipmix.errors import InfeasibleError
from chipmix.perf.layout import Layout

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Allocation",
    "Baseline",
    "Binding",
    "Conflict",
    "ParetoPoint",
    "PlanInfeasibleError",
    "PlanResult",
    "Reservation",
    "ServingEntry",
    "ServingLine",
    "Share",
    "SolveStats",
    "hhi",
]


def hhi(shares: list[float]) -> float:
    """Herfindahl–Hirschman index of shares in [0, 1]: ``Σ share²`` (1 = one supplier;
    1/n = n equal ones). The US DOJ reads > 0.25 as highly concentrated."""
    return sum(s * s for s in shares)


@dataclass(frozen=True, slots=True)
class Allocation:
    """One job's run: where, in which tier, on how many chips, with which layout, when."""

    job: str
    model: str
    mode: str
    tokens: float
    offer: str
    cloud: str
    region: str
    system: str
    chip: str
    vendor: str
    tier: PriceTier
    chips: int
    layout: Layout
    tokens_per_s: float
    mfu: float
    start: datetime
    end: datetime
    duration_h: float
    cost_usd: float
    """chip-hours × $/chip-hour; for a reserved tier, the share of the reservation it uses."""
    energy_mwh: float
    h100_hours: float
    """Compute in H100-equivalent chip-hours (dense bf16 peak ratio)."""
    deadline: date | None
    slack_h: float | None
    """Hours between the end of the run and the end of its deadline day."""
    deadline_probability: float | None = None
    """P(the run meets its deadline) under the model's error (`planning.portfolio.odds`)."""
    evidence: list[dict[str, Any]] = field(default_factory=list)
    """Where the throughput prediction's parameters came from (`chipmix.uncertainty`)."""
    evidence_summary: str = ""
    extrapolated: bool = False
    """No published run of the chip, or the job leaves what its runs cover."""
    price_flag: str = ""
    """``estimated`` or ``unverified`` where the tier's catalog price is not a listed one."""

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__slots__}
        out["layout"] = self.layout.as_dict()
        out["layout_text"] = str(self.layout)
        out["start"] = self.start.isoformat()
        out["end"] = self.end.isoformat()
        out["deadline"] = None if self.deadline is None else self.deadline.isoformat()
        out["duration_days"] = self.duration_h / 24.0
        return out


@dataclass(frozen=True, slots=True)
class ServingLine:
    """One serving entry on one offer and tier: replicas held per period, their cost and
    the output tokens they serve."""

    serving: str
    model: str
    offer: str
    cloud: str
    system: str
    chip: str
    vendor: str
    tier: PriceTier
    layout: str
    """The replica layout (tp, pp, ep, batch) the serving search finds best at the SLO."""
    replica_chips: int
    tokens_per_s_per_chip: float
    ttft_p99_ms: float
    tpot_p99_ms: float
    chips: list[int]
    """Chips held per period of the plan."""
    peak_chips: int
    chip_hours: float
    cost_usd: float
    """chip-hours × $/chip-hour; for a reserved tier, the share of the reservation it uses."""
    energy_mwh: float
    output_tokens: float
    """Output tokens served (its share of the demand)."""
    usd_per_million_tokens: float | None
    price_flag: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


@dataclass(frozen=True, slots=True)
class ServingEntry:
    """One serving entry's totals over the plan."""

    serving: str
    model: str
    slo: str
    output_tokens: float
    """Output tokens asked (and served) over its window."""
    peak_tokens_per_day: float
    peak_chips: int
    cost_usd: float
    usd_per_million_tokens: float | None
    """$ per million output tokens achieved: its lines' cost ÷ its tokens."""

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


@dataclass(frozen=True, slots=True)
class Reservation:
    """Chips reserved in a committed or owned tier, paid for the whole term."""

    offer: str
    tier: PriceTier
    chips: int
    term_days: float
    cost_usd: float
    """The whole term."""
    beyond_horizon_usd: float
    """The part of ``cost_usd`` for days after the horizon's end."""
    utilization: float
    """Chip-hours run ÷ chip-hours reserved within the horizon."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Share:
    """One vendor's or cloud's part of the plan."""

    name: str
    spend_usd: float
    """Spend on its runs: chip-hours × $/chip-hour (a reserved run counts its share of the
    reservation; idle reserved hours count toward no one's share)."""
    spend_share: float
    h100_hours: float
    compute_share: float
    cap: float | None
    """The scenario's cap on its share (of spend or compute), if any."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Binding:
    """A constraint that holds the plan back, and what removing it (``relaxed`` is
    ``"removed"``) or relaxing it by one step gains."""

    constraint: str
    """``vendor-cap``, ``cloud-cap``, ``deadline``, ``capacity``, ``budget``, ``power``,
    ``min-vendors``."""
    subject: str
    """The vendor, cloud, job or offer it is about ("" for plan-wide ones)."""
    now: str
    relaxed: str
    gain: float
    """Objective improvement: dollars saved (min-cost), hours sooner (min-makespan) or
    tokens gained (max-tokens)."""
    gain_unit: str
    message: str
    fraction: float | None = None
    """``gain`` ÷ the plan's own objective value: the one basis of every percentage."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ParetoPoint:
    """The cheapest plan that finishes every job by ``makespan_h``."""

    makespan_h: float
    completion: datetime
    cost_usd: float
    status: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "makespan_h": self.makespan_h,
            "makespan_days": self.makespan_h / 24.0,
            "completion": self.completion.isoformat(),
            "cost_usd": self.cost_usd,
            "status": self.status,
        }


@dataclass(frozen=True, slots=True)
class Baseline:
    """The cheapest plan using one vendor's offers alone (no share caps, no budget)."""

    vendor: str
    cost_usd: float | None
    status: str
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class SolveStats:
    """How big the MILP was and how long it took."""

    status: str
    gap: float
    placements: int
    columns: int
    rows: int
    nonzeros: int
    searches: int
    """Layout searches run (cache misses)."""
    cache_hits: int
    candidates_s: float
    """Seconds to find the placements (searches included)."""
    solve_s: float
    """Seconds in HiGHS for the plan itself (both stages of a lexicographic objective)."""
    extra_solves: int
    """Re-solves for the binding constraints, baselines and Pareto front."""
    total_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PlanResult:
    """A portfolio plan: who runs where and when, what it costs, what binds it."""

    scenario: str
    objective: str
    horizon_start: date
    horizon_end: date
    allocations: list[Allocation]
    reservations: list[Reservation]
    unplaced: list[str]
    """Optional jobs left out (max-tokens)."""
    cost_usd: float
    energy_mwh: float
    tokens: float
    makespan_h: float
    completion: datetime
    vendors: list[Share]
    clouds: list[Share]
    cap_basis: str
    binding: list[Binding]
    baselines: list[Baseline]
    pareto: list[ParetoPoint] | None
    stats: SolveStats
    notes: list[str] = field(default_factory=list)
    deadline_probability: float | None = None
    """P(every run with a deadline meets it) under the model's error, sampled with the
    errors of runs on one chip shared (`planning.portfolio.odds`)."""
    serving: list[ServingLine] = field(default_factory=list)
    """Serving replicas per entry, offer and tier (empty: the scenario serves nothing)."""
    serving_entries: list[ServingEntry] = field(default_factory=list)
    period_days: float = 7.0
    """Length of one period of ``ServingLine.chips``."""

    @property
    def hhi_spend(self) -> float:
        return hhi([v.spend_share for v in self.vendors])

    @property
    def hhi_compute(self) -> float:
        return hhi([v.compute_share for v in self.vendors])

    @property
    def best_single_vendor(self) -> Baseline | None:
        priced = [b for b in self.baselines if b.cost_usd is not None]
        return min(priced, key=lambda b: b.cost_usd or 0.0, default=None)

    @property
    def savings_vs_single_vendor(self) -> float | None:
        """(best single-vendor cost − plan cost) ÷ plan cost: like every percentage of a
        plan, a share of the plan's own cost."""
        best = self.best_single_vendor
        if best is None or best.cost_usd is None or best.cost_usd <= 0:
            return None
        return (best.cost_usd - self.cost_usd) / self.cost_usd if self.cost_usd > 0 else None

    def allocation(self, job: str) -> Allocation:
        for a in self.allocations:
            if a.job == job:
                return a
        raise KeyError(job)

    def to_dict(self) -> dict[str, Any]:
        best = self.best_single_vendor
        return {
            "scenario": self.scenario,
            "objective": self.objective,
            "status": self.stats.status,
            "horizon": {
                "start": self.horizon_start.isoformat(),
                "end": self.horizon_end.isoformat(),
            },
            "totals": {
                "cost_usd": self.cost_usd,
                "energy_mwh": self.energy_mwh,
                "tokens": self.tokens,
                "makespan_h": self.makespan_h,
                "makespan_days": self.makespan_h / 24.0,
                "completion": self.completion.isoformat(),
                "hhi_spend": self.hhi_spend,
                "hhi_compute": self.hhi_compute,
                "deadline_probability": self.deadline_probability,
            },
            "allocations": [a.to_dict() for a in self.allocations],
            "reservations": [r.to_dict() for r in self.reservations],
            "unplaced": self.unplaced,
            "cap_basis": self.cap_basis,
            "vendors": [v.to_dict() for v in self.vendors],
            "clouds": [c.to_dict() for c in self.clouds],
            "binding": [b.to_dict() for b in self.binding],
            "single_vendor": {
                "baselines": [b.to_dict() for b in self.baselines],
                "best": None if best is None else best.vendor,
                "best_cost_usd": None if best is None else best.cost_usd,
                "savings_usd": None
                if best is None or best.cost_usd is None
                else best.cost_usd - self.cost_usd,
                "savings_fraction": self.savings_vs_single_vendor,
            },
            "pareto": None if self.pareto is None else [p.to_dict() for p in self.pareto],
            **self._serving_dict(),
            "stats": self.stats.to_dict(),
            "notes": self.notes,
        }

    def _serving_dict(self) -> dict[str, Any]:
        if not self.serving_entries:
            return {}
        return {
            "serving": {
                "period_days": self.period_days,
                "entries": [e.to_dict() for e in self.serving_entries],
                "lines": [s.to_dict() for s in self.serving],
            }
        }

    def to_dataframe(self) -> pd.DataFrame:
        """One row per allocation; layout axes as their own columns."""
        import pandas as pd

        rows = []
        for a in self.allocations:
            flat = {k: v for k, v in a.to_dict().items() if not isinstance(v, dict)}
            flat |= {f"layout_{k}": v for k, v in a.layout.as_dict().items()}
            rows.append(flat)
        return pd.DataFrame.from_records(rows)


@dataclass(frozen=True, slots=True)
class Conflict:
    """One way a scenario's constraints cannot all hold, with the numbers."""

    group: str
    """``capacity``, ``deadlines``, ``budget``, ``vendor-caps``, ``cloud-caps``,
    ``vendors``, ``power`` or ``placements`` (a job that no offer can run in time)."""
    message: str
    amount: float = 0.0
    """How far over (chips, hours, dollars, share points, vendors or MW)."""
    alone: bool = False
    """True when relaxing this group alone, by ``amount``, makes the scenario feasible."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class PlanInfeasibleError(InfeasibleError):
    """No plan meets every constraint; ``conflicts`` say which ones clash and by how much."""

    def __init__(self, scenario: str, conflicts: list[Conflict], summary: str) -> None:
        lines = [f"scenario {scenario!r} is infeasible: {summary}"]
        lines += [f"  - {c.message}" for c in conflicts]
        super().__init__("\n".join(lines))
        self.scenario = scenario
        self.conflicts = conflicts
        self.summary = summary

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "status": "infeasible",
            "summary": self.summary,
            "conflicts": [c.to_dict() for c in self.conflicts],
        }
