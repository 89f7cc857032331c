"""One job across many systems: which chips, how long, how much.

Every system gets its best layout from the layout search (`chipmix.layouts.best.search`, which
prices the run with `chipmix.pricing`); this module only decides *how many* chips each
system uses and ranks the answers. Exactly one sizing rule applies to every system:

``chips``
    The same chip count everywhere. A system whose ``max_chips`` is smaller says so.
``deadline``
    The fewest chips, in whole nodes (multiples of the system's ``chips_per_node``), whose
    best layout trains the job within the deadline.
``budget``
    The fastest plan whose cost in the chosen price tier stays within the budget.

Deadline and budget sizing choose among whole-node counts with at most four significant
binary digits (`ladder`: 1 … 16, 18, 20, … 30, 32, 36, …; neighbours at most 1/8 apart).
They rely on the step throughput being roughly monotone in the chip count (more chips, more
tokens/s, higher cost): the count is doubled until the condition flips, then bisected
between the last two counts, so a system costs O(log n) searches rather than n. The
deadline's doubling starts at a bound no plan can beat — the time at 100 % MFU — so it
starts close to the answer. The guarantee is local: in deadline mode the next smaller count
of the ladder misses the deadline (or fits no layout); in budget mode the next larger count
costs too much (or stops being faster).

Rows are ranked by cost in the chosen tier; systems without a price in that tier follow,
fastest first; systems that cannot run the job at all come last, each with its reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from chipmix.catalog.catalog import Catalog, load_catalog
from chipmix.catalog.chip import Chip, Precision
from chipmix.catalog.offer import PRICE_TIERS, PriceTier
from chipmix.catalog.system import ResolvedSystem
from chipmix.errors import InputError, UnknownNameError
from chipmix.planning.comparison.result import Comparison, ComparisonRow, Sizing
from chipmix.planning.comparison.sizing import (
    MAX_CHIPS,
    Prober,
    size_budget,
    size_chips,
    size_deadline,
)
from chipmix.uncertainty.interval import Z90
from chipmix.workload.job import Mode
from chipmix.workload.model import ModelSpec

__all__ = ["DEFAULT_CHIPS", "compare"]

DEFAULT_CHIPS = 1024
"""Chip count used when none of chips, deadline or budget is given."""


# -- the public function -------------------------------------------------------------------
def compare(
    model: str | ModelSpec,
    *,
    tokens: float | None = None,
    steps: float | None = None,
    chips: int | None = None,
    deadline_days: float | None = None,
    budget_usd: float | None = None,
    systems: str | Sequence[str] | None = None,
    price_tier: str = "on-demand",
    catalog: Catalog | str | Path | None = None,
    mode: Mode = "pretrain",
    seq_len: int = 4096,
    global_batch: int = 1024,
    precision: Precision = "bf16",
    stack: str | None = None,
    lora_rank: int = 16,
    baseline: str | None = None,
) -> Comparison:
    """Train ``model`` on ``tokens`` (or ``steps`` optimizer steps) on each of ``systems``.

    Size each system's run by ``chips``, ``deadline_days`` or ``budget_usd`` (at most one;
    none means ``chips=DEFAULT_CHIPS``). ``systems`` is None (every chip's reference
    system, one row per chip, priced by the cheapest current offer of that system or of one
    with the same figures; announced and inference-only chips only when named), ``"all"``
    (every system in the catalog), or system ids / chip ids (a list, or one comma-separated
    string). Bad input raises `InputError`; a system that cannot do the job gets a row with
    its reason rather than an error. ``baseline`` (a system, chip or offer id) adds each
    plan's price-performance relative to the baseline's, with its p10–p90 interval; an
    offer prices its system by that offer alone.
    """
    from chipmix.workload.make import make_job

    cat = catalog if isinstance(catalog, Catalog) else load_catalog(catalog)
    tier = _tier(price_tier)
    sizing, target, is_default = _sizing(chips, deadline_days, budget_usd)
    base = make_job(
        model, mode=mode, seq_len=seq_len, global_batch=global_batch, precision=precision,
        stack=stack, lora_rank=lora_rank,
    )  # fmt: skip
    job = make_job(
        base.model, mode=mode, seq_len=seq_len, global_batch=global_batch, precision=precision,
        stack=stack, lora_rank=lora_rank, tokens=_tokens(tokens, steps, base.tokens_per_step),
    )  # fmt: skip
    chosen = _systems(cat, systems)
    anchor: ResolvedSystem | None = None
    if baseline is not None:
        cat, anchor = _baseline(cat, baseline)
        if anchor.id not in {s.id for s in chosen}:
            chosen.append(anchor)
    size = {"chips": size_chips, "deadline": size_deadline, "budget": size_budget}[sizing]
    rows = _rank([size(Prober(cat, job, s, tier), target) for s in chosen])
    rows = with_intervals(rows, anchor.id if anchor is not None else None)
    return Comparison(job, sizing, target, is_default, tier, rows, baseline)


# -- input -----------------------------------------------------------------------------------
def _tier(price_tier: str) -> PriceTier:
    for tier in PRICE_TIERS:
        if tier == price_tier:
            return tier
    raise UnknownNameError("price tier", price_tier, PRICE_TIERS)


def _positive(name: str, value: float, unit: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InputError(f"{name} must be a positive number of {unit} (got {value!r})")
    if math.isinf(value):
        raise InputError(f"{name} must be finite (got {value!r})")
    return float(value)


def _sizing(
    chips: int | None, deadline_days: float | None, budget_usd: float | None
) -> tuple[Sizing, float, bool]:
    given = {
        k: v
        for k, v in (("chips", chips), ("deadline_days", deadline_days), ("budget_usd", budget_usd))
        if v is not None
    }
    if len(given) > 1:
        raise InputError(
            "give at most one of chips, deadline_days and budget_usd (--chips, "
            f"--deadline-days, --budget-usd); got {', '.join(given)}"
        )
    if chips is not None:
        if isinstance(chips, bool) or not isinstance(chips, int) or not 1 <= chips <= MAX_CHIPS:
            raise InputError(
                f"chips (--chips) must be a whole number from 1 to {MAX_CHIPS:,} (got {chips!r})"
            )
        return "chips", float(chips), False
    if deadline_days is not None:
        return (
            "deadline",
            _positive("deadline_days (--deadline-days)", deadline_days, "days"),
            False,
        )
    if budget_usd is not None:
        return "budget", _positive("budget_usd (--budget-usd)", budget_usd, "US dollars"), False
    return "chips", float(DEFAULT_CHIPS), True


def _tokens(tokens: float | None, steps: float | None, tokens_per_step: int) -> float:
    if (tokens is None) == (steps is None):
        raise InputError(
            "give the length of the run as exactly one of tokens (--tokens, e.g. 15e12) or "
            "steps (--steps)" + (" — both were given" if tokens is not None else "")
        )
    if tokens is not None:
        return _positive("tokens (--tokens)", tokens, "tokens")
    assert steps is not None
    return _positive("steps (--steps)", steps, "steps") * tokens_per_step


def _systems(cat: Catalog, systems: str | Sequence[str] | None) -> list[ResolvedSystem]:
    if systems is None:
        chosen = [
            s for s in cat.systems.values() if s.reference and not _left_out(cat.chips[s.chip])
        ]
        chosen.sort(key=lambda s: s.chip)
        return [cat.resolve(s) for s in chosen]
    names = [n.strip() for n in systems.split(",")] if isinstance(systems, str) else list(systems)
    names = [n for n in names if n]
    if not names:
        raise InputError("systems (--systems) is empty; name system or chip ids, or 'all'")
    if names == ["all"]:
        return [cat.resolve(s) for s in sorted(cat.systems.values(), key=lambda s: s.id)]
    out: dict[str, ResolvedSystem] = {}
    for name in names:
        resolved = cat.system(name)  # UnknownNameError with "did you mean"
        out.setdefault(resolved.id, resolved)
    return list(out.values())


def _left_out(chip: Chip) -> bool:
    """Chips a training answer leaves out unless named: announced parts, inference parts."""
    return chip.status == "announced" or chip.use == "inference"


def _baseline(cat: Catalog, name: str) -> tuple[Catalog, ResolvedSystem]:
    """The baseline's system; an offer id also restricts that system's prices to the offer."""
    if name in cat.offers:
        offer = cat.offers[name]
        offers = {k: o for k, o in cat.offers.items() if o.system != offer.system or k == name}
        return replace(cat, offers=offers), cat.system(offer.system)
    if name in cat.systems or name in cat.chips:
        return cat, cat.system(name)
    valid = set(cat.systems) | set(cat.chips) | {k for k, o in cat.offers.items() if o.current}
    raise UnknownNameError("baseline (system, chip or offer)", name, valid)


# -- intervals -------------------------------------------------------------------------------
def with_intervals(rows: list[ComparisonRow], baseline: str | None) -> list[ComparisonRow]:
    """Mark the plans whose p10–p90 interval of the ranking figure overlaps the first
    plan's (not distinguishable at this evidence), and, with a baseline, each plan's
    tokens per dollar relative to the baseline's.

    The relative figure's interval treats two chips' model errors as independent
    lognormals (`chipmix.uncertainty.interval`): log(ratio) ~ Normal(m_row − m_base,
    √(σ_row² + σ_base²)); a system of the baseline's chip has no spread (the same
    calibration, the same error, only the price differs). Two predictions share
    the stack's and the model's own errors, so independence overstates the spread a little.
    """
    best = next((r for r in rows if r.rank == 1), None)
    best_interval = None if best is None else best.rank_interval()
    base = next((r for r in rows if r.system.id == baseline and r.feasible), None)
    out = []
    for r in rows:
        changes: dict[str, object] = {}
        interval = r.rank_interval()
        if r is not best and interval is not None and best_interval is not None:
            overlap = interval[0] <= best_interval[1] and best_interval[0] <= interval[1]
            changes["distinguishable_from_best"] = not overlap
        relative = _relative(r, base)
        if relative is not None:
            changes["relative_price_performance"] = relative
        out.append(replace(r, **changes) if changes else r)  # type: ignore[arg-type]
    return out


def _relative(row: ComparisonRow, base: ComparisonRow | None) -> tuple[float, float, float] | None:
    if base is None or row.usd_per_million_tokens is None or base.usd_per_million_tokens is None:
        return None
    ratio = base.usd_per_million_tokens / row.usd_per_million_tokens
    if row.system.chip.id == base.system.chip.id:  # one chip, one model error: it cancels
        return ratio, ratio, ratio
    e, b = row.estimate, base.estimate
    if e is None or b is None or e.error is None or b.error is None:
        return None
    m = e.error.log_median - b.error.log_median
    s = math.hypot(e.error.log_sigma, b.error.log_sigma)
    return ratio, ratio * math.exp(m - Z90 * s), ratio * math.exp(m + Z90 * s)


# -- ranking ---------------------------------------------------------------------------------
def _rank(rows: list[ComparisonRow]) -> list[ComparisonRow]:
    def key(r: ComparisonRow) -> tuple[int, float, float]:
        if r.time_to_train_h is None:
            return (2, 0.0, 0.0)
        cost = r.cost_usd
        return (0, cost, r.time_to_train_h) if cost is not None else (1, r.time_to_train_h, 0.0)

    ordered = sorted(rows, key=key)  # stable: infeasible rows keep the systems' order
    feasible = [r for r in ordered if r.feasible]
    priced = [r for r in feasible if r.cost_usd is not None]
    fastest = min(feasible, key=lambda r: r.time_to_train_h or 0.0, default=None)
    cheapest = priced[0] if priced else None
    out = []
    for i, r in enumerate(ordered):
        out.append(
            replace(
                r,
                rank=i + 1 if r.feasible else None,
                fastest=r is fastest,
                cheapest=r is cheapest,
            )
        )
    return out
