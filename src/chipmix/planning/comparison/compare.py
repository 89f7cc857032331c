"""One job across many systems: which chips, how long, how much.

Every system gets its best layout from the layout search (`chipmix.api.search`, which
prices the run with `chipmix.planning.cost`); this module only decides *how many* chips each
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

import bisect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from chipmix.catalog.catalog import Catalog, load_catalog
from chipmix.catalog.chip import Precision
from chipmix.catalog.offer import PRICE_TIERS, PriceTier
from chipmix.catalog.system import ResolvedSystem
from chipmix.errors import InfeasibleError, InputError, UnknownNameError
from chipmix.perf.step import model_flops_per_token
from chipmix.planning.cost import cheapest_offers
from chipmix.results import Estimate
from chipmix.workload.job import Job, Mode
from chipmix.workload.model import ModelSpec

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DEFAULT_CHIPS",
    "MAX_CHIPS",
    "Comparison",
    "ComparisonRow",
    "Sizing",
    "compare",
    "ladder",
]

Sizing = Literal["chips", "deadline", "budget"]

DEFAULT_CHIPS = 1024
"""Chip count used when none of chips, deadline or budget is given."""
MAX_CHIPS = 1 << 20
"""Largest count the deadline and budget modes try on a system without a ``max_chips``."""
MIN_GAIN = 1.02
"""Doubling the chips must speed the run up by at least this factor, or sizing stops: more
chips no longer help (the global batch caps data parallelism)."""


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
        }
        e = self.estimate
        if e is None or e.run is None:
            return out
        run = e.run
        return out | {
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
            "energy_mwh": run.energy_mwh,
            "energy_is_estimated": run.power_is_estimated,
            "breakdown": e.breakdown,
        }


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
) -> Comparison:
    """Train ``model`` on ``tokens`` (or ``steps`` optimizer steps) on each of ``systems``.

    Size each system's run by ``chips``, ``deadline_days`` or ``budget_usd`` (at most one;
    none means ``chips=DEFAULT_CHIPS``). ``systems`` is None (every chip's reference
    system, one row per chip, priced by the cheapest current offer of that chip), ``"all"``
    (every system in the catalog), or system ids / chip ids (a list, or one comma-separated
    string). Bad input raises `InputError`; a system that cannot do the job gets a row with
    its reason rather than an error.
    """
    from chipmix.api import make_job

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
    size = {"chips": _size_chips, "deadline": _size_deadline, "budget": _size_budget}[sizing]
    rows = [size(_Prober(cat, job, s, tier), target) for s in chosen]
    return Comparison(job, sizing, target, is_default, tier, _rank(rows))


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
        chosen = [s for s in cat.systems.values() if s.reference]
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


# -- probing one system at one chip count --------------------------------------------------
def ladder(max_nodes: int) -> list[int]:
    """The node counts deadline and budget sizing choose from: those with at most four
    significant binary digits (1 … 16, 18, 20, … 30, 32, 36, …), plus ``max_nodes``.
    Neighbours differ by at most 1/8, and each count is a power of two times one odd factor
    below 16, which the pipeline absorbs (tp, dp and cp stay powers of two)."""
    counts = {m << e for m in range(1, 16) for e in range(max(max_nodes.bit_length(), 1))}
    return sorted({n for n in counts if n <= max_nodes} | {max_nodes})


class _Prober:
    """Searches one system at a chip count, remembering every count already searched."""

    def __init__(self, cat: Catalog, job: Job, system: ResolvedSystem, tier: PriceTier):
        self.cat, self.job, self.system, self.tier = cat, job, system, tier
        self.node = system.system.chips_per_node
        self.max_nodes = (system.system.max_chips or MAX_CHIPS) // self.node
        self.ladder = ladder(self.max_nodes) if self.max_nodes >= 1 else []
        self.seen: dict[int, Estimate | InfeasibleError] = {}

    def __call__(self, chips: int) -> Estimate | InfeasibleError:
        if chips not in self.seen:
            self.seen[chips] = self._search(chips)
        return self.seen[chips]

    def _search(self, chips: int) -> Estimate | InfeasibleError:
        from chipmix.api import search

        job = self.job
        try:
            return search(
                job.model, self.system.id, chips, top=1, catalog=self.cat, price_tier=self.tier,
                mode=job.mode, seq_len=job.seq_len, global_batch=job.global_batch,
                precision=job.precision, tokens=job.tokens, stack=job.stack,
                lora_rank=job.lora_rank,
            ).best  # fmt: skip
        except InfeasibleError as exc:
            return exc

    def rung(self, i: int) -> Estimate | InfeasibleError:
        """The plan on the ``i``-th count of the ladder."""
        return self(self.ladder[i] * self.node)

    def up(self, i: int) -> int:
        """The ladder index of twice the ``i``-th count (or the last one)."""
        return min(bisect.bisect_left(self.ladder, 2 * self.ladder[i]), len(self.ladder) - 1)

    def row(self, result: Estimate | InfeasibleError, note: str = "") -> ComparisonRow:
        if isinstance(result, InfeasibleError):
            return self.fail(str(result))
        return ComparisonRow(self.system, result, note=note, counts_searched=len(self.seen))

    def fail(self, reason: str) -> ComparisonRow:
        return ComparisonRow(self.system, None, reason=reason, counts_searched=len(self.seen))

    def ideal_time_s(self, chips: float) -> float:
        """Training time at 100 % MFU: a bound no layout beats."""
        job = self.job
        assert job.tokens is not None
        peak = self.system.chip.peak_flops(job.precision)
        return job.tokens * model_flops_per_token(job) / (chips * peak)

    def price(self) -> float | None:
        offers = cheapest_offers(self.cat, self.system)
        return offers[self.tier][1] if self.tier in offers else None


def _time_s(e: Estimate) -> float:
    assert e.run is not None
    return e.run.time_to_train_h * 3600.0


def _cost(e: Estimate) -> float:
    cost = e.cost_usd
    assert cost is not None  # budget mode prices every system before sizing it
    return cost


def _days(seconds: float) -> str:
    return f"{seconds / 86400:.1f} days"


def _est(result: Estimate | InfeasibleError) -> Estimate:
    assert isinstance(result, Estimate)
    return result


def _first_good(good: Callable[[int], bool], bad: int, ok: int) -> int:
    """Bisection: the smallest index in (bad, ok] where ``good`` holds, given it holds at
    ``ok`` and not at ``bad`` (assuming it is monotone in between)."""
    while ok - bad > 1:
        mid = (bad + ok) // 2
        if good(mid):
            ok = mid
        else:
            bad = mid
    return ok


def _last_good(good: Callable[[int], bool], ok: int, bad: int) -> int:
    """Bisection: the largest index in [ok, bad) where ``good`` holds, given it holds at
    ``ok`` and not at ``bad``."""
    while bad - ok > 1:
        mid = (ok + bad) // 2
        if good(mid):
            ok = mid
        else:
            bad = mid
    return ok


# -- the three sizings -----------------------------------------------------------------------
def _size_chips(probe: _Prober, target: float) -> ComparisonRow:
    chips = int(target)
    limit = probe.system.system.max_chips
    if limit is not None and limit < chips:
        return probe.fail(
            f"{probe.system.id} scales to at most {limit:,} chips (max_chips); asked for {chips:,}"
        )
    return probe.row(probe(chips))


def _size_deadline(probe: _Prober, days: float) -> ComparisonRow:
    deadline_s = days * 86400.0
    if not probe.ladder:
        return probe.fail(f"{probe.system.id} scales to fewer chips than one node")

    def meets(i: int) -> bool:
        e = probe.rung(i)
        return isinstance(e, Estimate) and _time_s(e) <= deadline_s

    # No count below the 100 %-MFU bound meets the deadline: start doubling there.
    lower = probe.ideal_time_s(probe.node) / deadline_s
    last = len(probe.ladder) - 1
    i = min(bisect.bisect_left(probe.ladder, lower), last)
    bad = i - 1  # fails by the bound (or -1: nothing below)
    previous: Estimate | None = None
    while not meets(i):
        current = probe.rung(i)
        if isinstance(current, Estimate):
            stalled = previous is not None and _time_s(previous) < MIN_GAIN * _time_s(current)
            if stalled or i == last:
                why = "more chips stop helping" if stalled else "the system's chip limit"
                fastest = min(current, previous or current, key=_time_s)
                return probe.fail(
                    f"cannot meet {days:g} days: the fastest plan found, {fastest.chips:,} "
                    f"chips, takes {_days(_time_s(fastest))} ({why})"
                )
            previous = current
        elif previous is not None:
            return probe.fail(
                f"cannot meet {days:g} days: the fastest plan found, {previous.chips:,} chips, "
                f"takes {_days(_time_s(previous))} (more chips fit no layout)"
            )
        elif i == last:
            return probe.row(current)  # no count fits: the search's reason
        bad, i = i, probe.up(i)
    best = _first_good(meets, bad, i)
    if best == 0:
        note = "fewer chips cannot meet it even at 100% MFU"
    else:
        below = probe.rung(best - 1)
        what = f"take {_days(_time_s(below))}" if isinstance(below, Estimate) else "fit no layout"
        note = f"{probe.ladder[best - 1] * probe.node:,} chips {what}"
    return probe.row(probe.rung(best), note)


def _size_budget(probe: _Prober, budget: float) -> ComparisonRow:
    price = probe.price()
    if price is None:
        return probe.fail(f"no {probe.tier} price for {probe.system.chip.id} in the catalog")
    floor = probe.ideal_time_s(1.0) / 3600.0 * price
    if floor > budget:
        return probe.fail(
            f"costs at least ${floor:,.0f} even at 100% MFU (${price:.2f}/chip-h), over the "
            f"${budget:,.0f} budget"
        )
    if not probe.ladder:
        return probe.fail(f"{probe.system.id} scales to fewer chips than one node")

    def within(i: int) -> bool:
        e = probe.rung(i)
        return isinstance(e, Estimate) and _cost(e) <= budget

    # A count that fits and is within budget: double from one node while plans get cheaper.
    last = len(probe.ladder) - 1
    i, cheapest = 0, None
    while not within(i):
        e = probe.rung(i)
        if isinstance(e, Estimate):
            if cheapest is not None and _cost(e) >= _cost(cheapest):
                break  # dearer with more chips: no count is within budget
            cheapest = e
        if i == last:
            break
        i = probe.up(i)
    if not within(i):
        if cheapest is None:
            return probe.row(probe.rung(i))  # nothing fits: the search's reason
        return probe.fail(
            f"the cheapest plan found, {cheapest.chips:,} chips, costs "
            f"${_cost(cheapest):,.0f}, over the ${budget:,.0f} budget"
        )
    # Then double while within budget and still getting faster, and bisect the edge.
    while i < last:
        j = probe.up(i)
        if not within(j):
            _last_good(within, i, j)
            break
        gain = _time_s(_est(probe.rung(i))) / _time_s(_est(probe.rung(j)))
        i = j
        if gain < MIN_GAIN:
            break  # more chips stop helping
    plans = [e for e in probe.seen.values() if isinstance(e, Estimate) and _cost(e) <= budget]
    fastest = min(plans, key=_time_s)
    return probe.row(fastest, _above(probe, fastest, budget))


def _above(probe: _Prober, chosen: Estimate, budget: float) -> str:
    """Why not more chips (budget mode): what the next larger count searched gives."""
    larger = sorted((n, e) for n, e in probe.seen.items() if n > chosen.chips)
    if not larger:
        return f"{_usd(_cost(chosen))} of {_usd(budget)}; the system's chip limit"
    n, e = larger[0]
    if isinstance(e, InfeasibleError):
        what = "fit no layout"
    elif _cost(e) > budget:
        what = f"cost {_usd(_cost(e))}"
    else:
        what = f"take {_days(_time_s(e))}, no faster"
    return f"{_usd(_cost(chosen))} of {_usd(budget)}; {n:,} chips {what}"


def _usd(x: float) -> str:
    for bound, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if x >= bound:
            return f"${x / bound:.3g}{suffix}"
    return f"${x:,.0f}"


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
