"""The scenario file's schema (pydantic): what a user may write, each key documented.

A scenario names the jobs to run, the offers to rent them from and the constraints::

    name: lab-2026
    start: 2026-01-01          # first day of the horizon
    end: 2026-12-31            # last day (default: the latest deadline)
    objective: min-cost        # min-cost | min-makespan | max-tokens
    offers:
      - catalog: aws-p5.48xlarge-us-east-1-2025-06     # a catalog offer by id
        max_chips: 8192                                # availability cap (chips)
        tiers: [on-demand]
      - select: {cloud: gcp, chip: tpu-v5p}            # every current catalog offer matching
        max_chips: 6144
      - id: azure-mi300x-eastus                        # an offer of the user's own
        system: azure-nd-mi300x-v5
        region: eastus
        chips_per_unit: 8
        usd_per_unit_hour: {on-demand: 48.0}
        source: "quote of 2026-01, assumption"
    jobs:
      - {name: pretrain-70b, model: llama3-70b, tokens: 15e12, deadline: 2026-06-30}
    serving:                   # demand to serve on the same offers (optional)
      - name: chat-70b
        model: llama3-70b
        tokens_per_day:        # output tokens a day: a figure, or steps by day
          - {from: 2026-01-01, tokens_per_day: 2e10}
          - {from: 2026-07-01, tokens_per_day: 5e10}
        input_len: 2000        # mean prompt tokens; output_len: mean generated tokens
        output_len: 300
        ttft_p99_ms: 2000
        tpot_p99_ms: 100
    constraints:
      budget_usd: 2.0e9
      vendor_caps: {nvidia: 60%}
      cap_basis: spend         # spend | compute (H100-equivalent chip-hours)
      min_vendors: 2
      power_cap_mw: 60

Dates are days: a job may start at 00:00 of its ``start`` and must finish by the end of its
``deadline`` day. Structure only: `chipmix.planning.portfolio.resolve` resolves the names and
checks the dates and caps. Every model here rejects unknown keys, naming the valid ones.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    model_validator,
)
from pydantic_core import PydanticCustomError

from chipmix.catalog.offer import PriceTier
from chipmix.common.files import NoBoolNumbers
from chipmix.planning.futures.sources import FuturesSpec
from chipmix.workload.job import Mode

__all__ = [
    "OBJECTIVES",
    "CapBasis",
    "CapacityStep",
    "CatalogOfferSpec",
    "ConstraintsSpec",
    "DemandStep",
    "InlineOfferSpec",
    "JobSpec",
    "Objective",
    "OfferOptions",
    "OfferSpec",
    "ScenarioSpec",
    "SelectOfferSpec",
    "SelectSpec",
    "ServingSpec",
    "SolverOptions",
]

Objective = Literal["min-cost", "min-makespan", "max-tokens"]
Presolve = Literal["light", "full", "off"]
OBJECTIVES: tuple[Objective, ...] = ("min-cost", "min-makespan", "max-tokens")
CapBasis = Literal["spend", "compute"]


# -- the file's schema ----------------------------------------------------------------------
def _percent(value: Any) -> Any:
    """``"60%"`` → 0.6; numbers pass through (0.6 means 60 %)."""
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            return float(value.strip()[:-1]) / 100.0
        except ValueError:
            return value
    return value


Share = Annotated[float, BeforeValidator(_percent), Field(gt=0, le=1)]
Fraction = Annotated[float, BeforeValidator(_percent), Field(ge=0, lt=1)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9.\-_]*$", max_length=100)]


class _Strict(NoBoolNumbers):
    """Frozen, and every unknown key is an error naming the key and the valid ones."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            valid = set(cls.model_fields)
            valid |= {f.alias for f in cls.model_fields.values() if f.alias}
            unknown = [str(k) for k in data if k not in valid]
            if unknown:
                raise PydanticCustomError(
                    "unknown_key",
                    "unknown keys {keys}",
                    {"keys": unknown, "valid": sorted(_public_keys(cls))},
                )
        return data


def _public_keys(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


class CapacityStep(_Strict):
    """From this day on, the offer holds this many chips."""

    from_: date = Field(alias="from")
    chips: int = Field(ge=0)


class OfferOptions(_Strict):
    tiers: list[PriceTier] | None = None
    """Price tiers to consider (default: every priced tier but spot)."""
    discount: Fraction | dict[PriceTier, Fraction] = 0.0
    """Negotiated discount off the listed price, for every tier or per tier."""
    max_chips: int | None = Field(default=None, gt=0)
    """Availability cap: chips this offer can hold at once (None: unlimited)."""
    capacity: list[CapacityStep] | None = None
    """A schedule of caps in chips, by day; overrides ``max_chips`` from its first day."""
    available_from: date | None = None
    available_to: date | None = None
    term_days: dict[PriceTier, float] = Field(default_factory=dict)
    """Commitment term per reserved tier (default 365 days for 1y, 1095 for 3y)."""


class CatalogOfferSpec(OfferOptions):
    catalog: str
    """Catalog offer id."""


class SelectSpec(_Strict):
    cloud: str | list[str] | None = None
    region: str | list[str] | None = None
    chip: str | list[str] | None = None
    system: str | list[str] | None = None
    vendor: str | list[str] | None = None


class SelectOfferSpec(OfferOptions):
    select: SelectSpec
    """Every current catalog offer matching all the fields given."""


class InlineOfferSpec(OfferOptions):
    id: Name
    system: str
    cloud: str | None = None
    """Default: the system's provider."""
    region: str = "any"
    chips_per_unit: int | None = Field(default=None, gt=0)
    """Chips per priced unit (default: the system's chips per node)."""
    usd_per_unit_hour: dict[PriceTier, Annotated[float, Field(gt=0)]]
    source: str = Field(min_length=1)
    """Where the price comes from: a quote, a URL, or "assumption" and why."""
    as_of: date | str | None = None


def _offer_kind(value: Any) -> str:
    if isinstance(value, dict):
        if "catalog" in value:
            return "catalog-offer"
        if "select" in value:
            return "selected-offers"
    return "inline-offer"


OfferSpec = Annotated[
    Annotated[CatalogOfferSpec, Tag("catalog-offer")]
    | Annotated[SelectOfferSpec, Tag("selected-offers")]
    | Annotated[InlineOfferSpec, Tag("inline-offer")],
    Discriminator(_offer_kind),
]


class JobSpec(_Strict):
    name: Name
    model: str
    """Preset id, or a model file (relative to the scenario file)."""
    mode: Mode = "pretrain"
    tokens: float | None = Field(default=None, gt=0, le=1e16)
    steps: float | None = Field(default=None, gt=0)
    seq_len: int = Field(default=4096, gt=0)
    global_batch: int = Field(default=1024, gt=0)
    precision: Literal["bf16", "fp8", "int8", "fp4"] = "bf16"
    stack: str | None = None
    lora_rank: int = Field(default=16, gt=0)
    start: date | None = None
    """Earliest start (default: the scenario's start)."""
    deadline: date | None = None
    """Finish by the end of this day (default: the end of the horizon)."""
    priority: float = Field(default=1.0, gt=0)
    """Weight of the job's tokens in the max-tokens objective."""
    required: bool | None = None
    """Must run (default: yes, except under max-tokens)."""
    systems: list[str] | None = None
    """Chip or system ids the job may run on (default: any)."""
    vendors: list[str] | None = None
    offers: list[str] | None = None
    """Scenario offer ids the job may use (default: any)."""
    chip_counts: list[Annotated[int, Field(gt=0)]] | None = None
    """Chip counts to consider (default: sized from the job's window)."""


class DemandStep(_Strict):
    """From this day on, the demand is this many output tokens a day."""

    from_: date = Field(alias="from")
    tokens_per_day: float = Field(ge=0, le=1e18)


class ServingSpec(_Strict):
    """Serving demand planned beside the jobs, on the same offers and caps."""

    name: Name
    model: str
    """Preset id, or a model file (relative to the scenario file)."""
    tokens_per_day: Annotated[float, Field(gt=0, le=1e18)] | list[DemandStep]
    """Output tokens a day: one figure, or steps by day (``[{from: 2026-01-01,
    tokens_per_day: 2e10}, ...]``; before the first step, none)."""
    input_len: int = Field(default=2000, gt=0)
    """Mean prompt tokens per request."""
    output_len: int = Field(default=300, gt=0)
    """Mean generated tokens per request."""
    precision: Literal["bf16", "fp8", "int8", "fp4"] = "bf16"
    kv_precision: Literal["bf16", "fp8"] | None = None
    stack: str | None = None
    ttft_p99_ms: float | None = Field(default=None, gt=0)
    tpot_p99_ms: float | None = Field(default=None, gt=0)
    start: date | None = None
    """First day served (default: the scenario's start)."""
    end: date | None = None
    """Last day served (default: the horizon's end)."""
    systems: list[str] | None = None
    """Chip or system ids that may serve (default: any)."""
    vendors: list[str] | None = None
    offers: list[str] | None = None
    search_chips: int = Field(default=64, gt=0, le=100_000)
    """Chips the replica-layout search spreads over (`chipmix serve search`'s chips): the
    largest replica it considers."""


class ConstraintsSpec(_Strict):
    budget_usd: float | None = Field(default=None, gt=0)
    vendor_caps: dict[str, Share] = Field(default_factory=dict)
    """Largest share of spend (or compute) per chip vendor."""
    cloud_caps: dict[str, Share] = Field(default_factory=dict)
    cap_basis: CapBasis = "spend"
    min_vendors: int | None = Field(default=None, ge=1)
    power_cap_mw: float | None = Field(default=None, gt=0)
    """Largest power of the running chips at any time, MW (IT load, no PUE)."""


class SolverOptions(_Strict):
    """How the plan is solved and explained."""

    period_days: float = Field(default=7.0, gt=0, le=92)
    """Length of one time period of the MILP."""
    gap: float = Field(default=1e-4, ge=0, le=0.2)
    """Relative MIP gap at which HiGHS stops (1e-4 = optimal to 0.01 %). A scenario with
    serving demand defaults to 1e-3: whole replicas make the last 0.1 % slow to prove."""
    time_limit_s: float = Field(default=60.0, gt=0)
    """Per solve."""
    sizes_per_system: int = Field(default=3, ge=1, le=8)
    """Chip counts per job and system: the fewest that meet the window, then ×2, ×4…"""
    placements_per_job: int = Field(default=32, ge=0)
    """Shortlist per job: its cheapest placements, plus each vendor's 4 cheapest per-use and
    reserved ones and the 4 fastest (0: keep every placement). The plan is optimal over the
    shortlist."""
    single_vendor_baseline: bool = True
    """Also solve with each single vendor's offers, to say what the mix saves."""
    sensitivity: bool = True
    """Find the binding constraints and their marginal value by re-solving."""
    max_sensitivity_solves: int = Field(default=16, ge=0)
    pareto_points: int = Field(default=6, ge=2, le=40)
    cap_step: Share = 0.10
    """Step of a share cap for its marginal value (percentage points)."""
    deadline_step_days: float = Field(default=7.0, gt=0)
    capacity_step: Share = 0.10
    """Relative step of an offer's capacity, the budget and the power cap."""
    threads: int = Field(default=1, ge=0)
    """HiGHS threads (0: its default, a pool sized by the cores). Its branch and bound runs
    on one thread either way; on 2 cores the pool's other workers made the training
    example's 12 solves take 0.9 s instead of 0.6 s."""
    presolve: Presolve = "light"
    """HiGHS's MIP presolve: ``light`` (its initial sweep and light reductions,
    ``presolve_mode`` 2), ``full`` (HiGHS's default, probing and the rest) or ``off``. A
    scenario with serving demand defaults to ``full``. On the training example the full
    presolve took half of each solve (0.2 s of a 1,000-column model's 0.4 s) for the same
    optimum; ``benchmarks/plan_scaling.py --presolve`` compares them on large plans."""


class ScenarioSpec(_Strict):
    name: str = Field(min_length=1)
    description: str = ""
    start: date
    end: date | None = None
    objective: Objective = "min-cost"
    offers: list[OfferSpec] = Field(min_length=1)
    jobs: list[JobSpec] = Field(default_factory=list)
    """Training jobs (none: a serving-only scenario)."""
    serving: list[ServingSpec] = Field(default_factory=list)
    """Serving demand (`chipmix.planning.portfolio.serving`)."""
    constraints: ConstraintsSpec = Field(default_factory=ConstraintsSpec)
    solver: SolverOptions = Field(default_factory=SolverOptions)
    futures: FuturesSpec | None = None
    """Uncertainty sources for ``chipmix plan --futures N`` (`chipmix.planning.futures`)."""
