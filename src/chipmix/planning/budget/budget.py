"""What a commitment buys, and what a goal costs: the budget view.

Forward (``usd`` given): spend a budget of B dollars over Y years on the offers and tiers
allowed, to maximize the tokens of model M trained (with ``model`` and ``tokens``) or the
peak compute bought (without). Reverse (``runs`` given): the least budget that trains K
runs of T tokens of M within Y years. Both are one linear program (HiGHS):

Sets and data
    O × K        the offers and their allowed price tiers
    π_{o,k}      effective $/chip-hour. Per-use tiers: the listed price. Reserved tiers:
                 price × billed hours ÷ (Y × 8766): commitments are renewed for Y years
                 and the last term is billed whole
    v_o          value per chip-hour: tokens/chip-hour of M on the offer's system at
                 ``chips`` chips (the layout search's best layout), or PFLOP-hours of the
                 chip's dense bf16 peak when no model is given
    cap_o        chips the offer can hold (``max_chips``; None: unlimited)

Variables
    z_{o,k} ≥ 0  chip-hours bought of offer o in tier k over the Y years

Forward:  max Σ v_o z_{o,k}                 Reverse:  min Σ π_{o,k} z_{o,k}
    (1) budget       Σ π z ≤ B                    (1') goal   Σ v_o z ≥ K·T
    (2) availability Σ_k z_{o,k} ≤ cap_o · Y · 8766          ∀ capped o
    (3) vendor caps  Σ_{o of v} π z ≤ κ_v · Σ π z               ∀ capped v
    (4) mix          Σ_{o in g} π z = μ_g · Σ π z               ∀ group g of the mix

The answer is per offer and tier: spend, chip-hours, average chips held (chip-hours ÷ Y
years), PFLOP-days (chip-hours × dense bf16 peak), tokens and runs of M. What it ignores:
when within the Y years the chips are used (no deadlines: that is `plan`'s job), failures
and restarts (`sim`), price changes over the years (today's catalog prices hold).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from chipmix.catalog.catalog import Catalog, load_catalog
from chipmix.catalog.chip import Precision
from chipmix.catalog.offer import PRICE_TIERS, Offer, PriceTier
from chipmix.catalog.system import ResolvedSystem
from chipmix.errors import InfeasibleError, InputError, UnknownNameError
from chipmix.planning.portfolio.placements import SearchCache, reference_peak
from chipmix.planning.portfolio.results import hhi
from chipmix.workload.job import Mode
from chipmix.workload.model import ModelSpec

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["HOURS_PER_YEAR", "BudgetLine", "BudgetResult", "budget"]

HOURS_PER_YEAR = 8766.0
"""365.25 days."""
TERM_YEARS: dict[PriceTier, float] = {"committed-1y": 1.0, "committed-3y": 3.0}
"""Commitment terms; other tiers are paid per hour (owned: assumed amortized per hour)."""
DEFAULT_RUN_CHIPS = 4096
"""Chips per training run when throughput is looked up (clipped to a system's limit)."""


@dataclass(frozen=True, slots=True)
class BudgetLine:
    """What one offer in one tier contributes."""

    offer: str
    cloud: str
    region: str
    system: str
    chip: str
    vendor: str
    tier: PriceTier
    usd_per_chip_hour: float
    """Effective: a commitment's price × billed hours ÷ hours used."""
    spend_usd: float
    share: float
    """Of the total spend."""
    chip_hours: float
    chips_held: float
    """chip-hours ÷ (years × 8766): the average number of chips running."""
    pflop_days: float
    """chip-hours × dense bf16 peak, in PFLOP/s-days."""
    tokens: float | None
    runs: float | None
    run_days: float | None
    """Days one run takes on this offer at the run's chip count."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BudgetResult:
    """A budget's purchases (forward) or a goal's budget (reverse)."""

    direction: str
    """``forward`` (what ``usd`` buys) or ``reverse`` (what ``runs`` need)."""
    usd: float
    """The budget given (forward) or needed (reverse)."""
    years: float
    lines: list[BudgetLine]
    """Offers and tiers with a purchase, largest spend first."""
    spend_usd: float
    chip_hours: float
    pflop_days: float
    model: str | None
    tokens_per_run: float | None
    chips_per_run: int | None
    tokens: float | None
    runs: float | None
    vendor_spend: dict[str, float]
    vendor_caps: dict[str, float]
    mix: dict[str, float]
    skipped: dict[str, str]
    """Offers left out, with the reason (no price in the tiers, no layout fits, …)."""
    status: str
    solve_s: float
    """Seconds for the whole request (searches included)."""

    @property
    def vendor_shares(self) -> dict[str, float]:
        total = sum(self.vendor_spend.values()) or 1.0
        return {v: s / total for v, s in self.vendor_spend.items()}

    @property
    def hhi(self) -> float:
        return hhi(list(self.vendor_shares.values()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "direction": self.direction,
            "usd": self.usd,
            "years": self.years,
            "spend_usd": self.spend_usd,
            "chip_hours": self.chip_hours,
            "pflop_days": self.pflop_days,
            "model": self.model,
            "tokens_per_run": self.tokens_per_run,
            "chips_per_run": self.chips_per_run,
            "tokens": self.tokens,
            "runs": self.runs,
            "vendor_spend": self.vendor_spend,
            "vendor_shares": self.vendor_shares,
            "hhi": self.hhi,
            "vendor_caps": self.vendor_caps,
            "mix": self.mix,
            "lines": [line.to_dict() for line in self.lines],
            "skipped": self.skipped,
            "status": self.status,
            "solve_s": self.solve_s,
        }

    def to_dataframe(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame.from_records([line.to_dict() for line in self.lines])


@dataclass(frozen=True, slots=True)
class _Option:
    offer: Offer
    tier: PriceTier
    price: float
    value: float
    cap_chip_hours: float | None
    pflop_hours_per_chip_hour: float
    tokens_per_chip_hour: float | None
    run_days: float | None


def budget(
    usd: float | None = None,
    years: float = 1.0,
    *,
    offers: Sequence[str] | None = None,
    mix: Mapping[str, float] | None = None,
    vendor_caps: Mapping[str, float] | None = None,
    tiers: Sequence[str] | None = None,
    max_chips: int | None = None,
    model: str | ModelSpec | None = None,
    tokens: float | None = None,
    runs: float | None = None,
    chips: int = DEFAULT_RUN_CHIPS,
    mode: Mode = "pretrain",
    seq_len: int = 4096,
    global_batch: int = 1024,
    precision: Precision = "bf16",
    stack: str | None = None,
    catalog: Catalog | str | Path | None = None,
) -> BudgetResult:
    """What ``usd`` buys over ``years`` (forward), or what ``runs`` runs of ``tokens``
    tokens of ``model`` cost (reverse; give ``runs`` instead of ``usd``).

    ``offers``: catalog offer ids, or system/chip ids meaning every current offer of them
    (default: every current offer). ``mix``: fixed spend shares by vendor, cloud or offer
    id (e.g. ``{"nvidia": 0.5, "google": 0.3}``; exclusive with ``offers``).
    ``vendor_caps``: largest spend share per vendor. ``tiers``: price tiers allowed
    (default: every priced tier but spot). ``max_chips``: chips each offer can hold.
    """
    started = time.perf_counter()
    cat = catalog if isinstance(catalog, Catalog) else load_catalog(catalog)
    direction = _direction(usd, runs, model, tokens, years)
    if offers is not None and mix is not None:
        raise InputError("give offers or a mix, not both (a mix names the offers' groups)")
    if max_chips is not None and max_chips < 1:
        raise InputError(f"max_chips must be at least 1 (got {max_chips})")
    if chips < 1:
        raise InputError(f"chips must be at least 1 (got {chips})")
    chosen_tiers = _tiers(tiers)
    pool = _offers(cat, offers)
    caps = _shares("vendor cap", vendor_caps or {}, _vendors(cat), allow_full=True)
    job = None
    if model is not None:
        from chipmix.api import make_job

        job = make_job(
            model, mode=mode, seq_len=seq_len, global_batch=global_batch, precision=precision,
            stack=stack, tokens=tokens,
        )  # fmt: skip
    hours = years * HOURS_PER_YEAR
    skipped: dict[str, str] = {}
    options = _options(cat, pool, chosen_tiers, job, chips, max_chips, hours, skipped)
    if not options:
        raise InfeasibleError(
            "no offer can be bought: " + "; ".join(f"{k}: {v}" for k, v in sorted(skipped.items()))
        )
    groups = _mix_groups(cat, mix or {}, options)
    z = _solve(options, direction, usd, runs, tokens, caps, groups, cat)
    return _result(
        cat, options, z, direction, usd, years, job, chips, tokens, caps, mix, skipped,
        time.perf_counter() - started,
    )  # fmt: skip


# -- input -----------------------------------------------------------------------------------
def _direction(
    usd: float | None,
    runs: float | None,
    model: str | ModelSpec | None,
    tokens: float | None,
    years: float,
) -> str:
    if not (isinstance(years, int | float) and 0 < years <= 30 and math.isfinite(years)):
        raise InputError(f"years must be a number in (0, 30] (got {years!r})")
    if (usd is None) == (runs is None):
        raise InputError(
            "give a budget (usd: what it buys) or a number of runs (runs: the budget they "
            "need), exactly one" + (" — both were given" if usd is not None else "")
        )
    if (model is None) != (tokens is None):
        raise InputError("give model and tokens together (tokens per training run of model)")
    if usd is not None and not (math.isfinite(usd) and usd > 0):
        raise InputError(f"usd must be a positive number of dollars (got {usd!r})")
    if runs is not None:
        if model is None:
            raise InputError("runs needs a model and its tokens per run (model=…, tokens=…)")
        if not (math.isfinite(runs) and runs > 0):
            raise InputError(f"runs must be a positive number (got {runs!r})")
    if tokens is not None and not (math.isfinite(tokens) and tokens > 0):
        raise InputError(f"tokens must be a positive number (got {tokens!r})")
    return "forward" if usd is not None else "reverse"


def _tiers(tiers: Sequence[str] | None) -> tuple[PriceTier, ...]:
    if tiers is None:
        return tuple(t for t in PRICE_TIERS if t != "spot")
    out: list[PriceTier] = []
    for name in tiers:
        match = next((t for t in PRICE_TIERS if t == name), None)
        if match is None:
            raise UnknownNameError("price tier", name, PRICE_TIERS)
        out.append(match)
    return tuple(dict.fromkeys(out))


def _vendors(cat: Catalog) -> list[str]:
    return sorted({c.vendor for c in cat.chips.values()})


def _offers(cat: Catalog, names: Sequence[str] | None) -> list[Offer]:
    current = [o for o in cat.offers.values() if o.current]
    if names is None:
        return current
    out: dict[str, Offer] = {}
    valid = sorted(set(cat.offers) | set(cat.systems) | set(cat.chips))
    for name in names:
        if name in cat.offers:
            out[name] = cat.offers[name]
            continue
        matched = [o for o in current if o.system == name or cat.systems[o.system].chip == name]
        if not matched:
            if name in cat.systems or name in cat.chips:
                raise InputError(f"no current offer rents {name!r} in the catalog")
            raise UnknownNameError("offer, system or chip", name, valid)
        out |= {o.id: o for o in matched}
    return list(out.values())


def _shares(
    kind: str, shares: Mapping[str, float], valid: Sequence[str], *, allow_full: bool
) -> dict[str, float]:
    out = {}
    for name, share in shares.items():
        if name not in valid:
            raise UnknownNameError(kind.split()[0], name, valid)
        if not (0 < share <= 1 if allow_full else 0 <= share <= 1):
            raise InputError(f"{kind} of {name} must be in (0, 1] (got {share!r})")
        out[name] = float(share)
    return out


def _mix_groups(
    cat: Catalog, mix: Mapping[str, float], options: list[_Option]
) -> list[tuple[str, float, list[int]]]:
    """Each mix key (vendor, cloud or offer id) with its share and the options it covers."""
    if not mix:
        return []
    vendors = _vendors(cat)
    clouds = sorted({o.cloud for o in cat.offers.values()})
    valid = sorted(set(vendors) | set(clouds) | set(cat.offers))
    total = 0.0
    out = []
    for key, share in mix.items():
        if key not in valid:
            raise UnknownNameError("mix key (vendor, cloud or offer)", key, valid)
        if not 0 <= share <= 1:
            raise InputError(f"mix share of {key} must be in [0, 1] (got {share!r})")
        members = [
            i
            for i, opt in enumerate(options)
            if key in (opt.offer.id, opt.offer.cloud, _vendor(cat, opt.offer))
        ]
        if share > 0 and not members:
            raise InputError(f"mix names {key!r} but no priced offer of it can be bought")
        total += share
        out.append((key, float(share), members))
    if total > 1 + 1e-9:
        shown = ", ".join(f"{k} {s:.0%}" for k, s in mix.items())
        raise InputError(f"the mix's shares sum to {total:.0%} ({shown}); they must not pass 100%")
    return out


def _vendor(cat: Catalog, offer: Offer) -> str:
    return cat.chips[cat.systems[offer.system].chip].vendor


def _options(
    cat: Catalog,
    pool: list[Offer],
    tiers: tuple[PriceTier, ...],
    job: Any,
    chips: int,
    max_chips: int | None,
    hours: float,
    skipped: dict[str, str],
) -> list[_Option]:
    cache = SearchCache.shared(cat)
    ref = reference_peak(cat)
    out = []
    for offer in sorted(pool, key=lambda o: o.id):
        system = cat.resolve(cat.systems[offer.system])
        priced = [(t, p) for t in tiers if (p := offer.usd_per_chip_hour(t)) is not None]
        if not priced:
            skipped[offer.id] = f"no price in {', '.join(tiers)}"
            continue
        peak = system.chip.peak_flops("bf16")
        tokens_per_chip_hour = run_days = None
        if job is not None:
            n = _run_chips(system, chips)
            found = cache.best(job, system, n)
            if isinstance(found, InfeasibleError):
                skipped[offer.id] = f"{job.model.name} on {n:,} chips: {found}"
                continue
            tokens_per_chip_hour = found.tokens_per_s * 3600.0 / n
            run_days = job.tokens / found.tokens_per_s / 86400.0
        for tier, price in priced:
            effective = price * _billed_fraction(tier, hours)
            value = tokens_per_chip_hour if tokens_per_chip_hour is not None else peak / ref
            out.append(
                _Option(
                    offer=offer,
                    tier=tier,
                    price=effective,
                    value=value,
                    cap_chip_hours=None if max_chips is None else max_chips * hours,
                    pflop_hours_per_chip_hour=peak / 1e15,
                    tokens_per_chip_hour=tokens_per_chip_hour,
                    run_days=run_days,
                )
            )
    return out


def _run_chips(system: ResolvedSystem, chips: int) -> int:
    """The run's chip count on ``system``: ``chips`` in whole nodes, within its limit."""
    node = system.system.chips_per_node
    limit = system.system.max_chips or chips
    n = min(chips, limit)
    return max(node, n // node * node)


def _billed_fraction(tier: PriceTier, hours: float) -> float:
    """Billed hours ÷ hours used: commitments renew for the whole period, the last term
    billed whole."""
    term_years = TERM_YEARS.get(tier)
    if term_years is None:
        return 1.0
    term = term_years * HOURS_PER_YEAR
    return math.ceil(hours / term - 1e-9) * term / hours


# -- the LP ----------------------------------------------------------------------------------
def _solve(
    options: list[_Option],
    direction: str,
    usd: float | None,
    runs: float | None,
    tokens: float | None,
    caps: dict[str, float],
    groups: list[tuple[str, float, list[int]]],
    cat: Catalog,
) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Chip-hours per option (the LP of the module docstring).

    Scaled for HiGHS's tolerances: the variables are millions of chip-hours, so prices are
    $M per million chip-hours (= $/chip-hour, near 1-20) and values are relative to the
    best offer's (at most 1)."""
    from chipmix.planning.portfolio.solver import highspy_module

    highspy = highspy_module()
    n = len(options)
    unit = 1e6  # chip-hours per variable unit
    price = np.array([o.price for o in options])  # $M per million chip-hours
    value = np.array([o.value for o in options])
    scale = float(value.max()) or 1.0
    value = value / scale
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    inf = highspy.kHighsInf
    lower = np.zeros(n)
    upper = np.array(
        [inf if o.cap_chip_hours is None else o.cap_chip_hours / unit for o in options]
    )
    cost = -value if direction == "forward" else price
    h.addVars(n, lower, upper)
    h.changeColsCost(n, np.arange(n, dtype=np.int32), cost)
    idx = np.arange(n, dtype=np.int32)

    def row(lo: float, hi: float, cols: Any, vals: Any) -> None:
        cols = np.asarray(cols, dtype=np.int32)
        h.addRow(lo, hi, len(cols), cols, np.asarray(vals, dtype=np.float64))

    if direction == "forward":
        assert usd is not None
        row(-inf, usd / 1e6, idx, price)  # (1) budget
    else:
        assert runs is not None
        assert tokens is not None
        row(runs * tokens / (scale * unit), inf, idx, value)  # (1') goal
    by_offer: dict[str, list[int]] = {}
    for i, o in enumerate(options):
        by_offer.setdefault(o.offer.id, []).append(i)
    for members in by_offer.values():  # (2) availability, shared by an offer's tiers
        cap = options[members[0]].cap_chip_hours
        if cap is not None and len(members) > 1:
            row(-inf, cap / unit, members, np.ones(len(members)))
    for vendor, kappa in caps.items():  # (3) vendor caps
        mine = np.array([_vendor(cat, o.offer) == vendor for o in options], dtype=np.float64)
        row(-inf, 0.0, idx, price * (mine - kappa))
    for _, share, members in groups:  # (4) mix
        mine = np.zeros(n)
        mine[members] = 1.0
        row(0.0, 0.0, idx, price * (mine - share))
    h.run()
    status = h.getModelStatus()
    if status != highspy.HighsModelStatus.kOptimal:
        word = h.modelStatusToString(status)
        raise InfeasibleError(_why_not(direction, usd, runs, tokens, options, caps, groups, word))
    values = np.array(h.getSolution().col_value, dtype=np.float64)
    return np.maximum(values, 0.0) * unit


def _why_not(
    direction: str,
    usd: float | None,
    runs: float | None,
    tokens: float | None,
    options: list[_Option],
    caps: dict[str, float],
    groups: list[tuple[str, float, list[int]]],
    word: str,
) -> str:
    if direction == "reverse" and runs is not None and tokens is not None:
        capped = all(o.cap_chip_hours is not None for o in options)
        if capped:
            best: dict[str, float] = {}
            for o in options:
                assert o.cap_chip_hours is not None
                assert o.tokens_per_chip_hour is not None
                best[o.offer.id] = max(
                    best.get(o.offer.id, 0.0), o.cap_chip_hours * o.tokens_per_chip_hour
                )
            most = sum(best.values())
            return (
                f"{runs:g} runs of {tokens:.3g} tokens need {runs * tokens:.3g} tokens; the "
                f"offers' capacity holds at most {most:.3g} ({most / tokens:.3g} runs) in the "
                "period; raise max_chips or years, or add offers"
            )
    if groups:
        return f"the mix cannot be met by the offers allowed (HiGHS: {word})"
    if caps:
        return f"the vendor caps cannot be met by the offers allowed (HiGHS: {word})"
    return f"no purchase meets the request (HiGHS: {word})"


def _result(
    cat: Catalog,
    options: list[_Option],
    z: np.ndarray[Any, np.dtype[np.float64]],
    direction: str,
    usd: float | None,
    years: float,
    job: Any,
    chips: int,
    tokens: float | None,
    caps: dict[str, float],
    mix: Mapping[str, float] | None,
    skipped: dict[str, str],
    seconds: float,
) -> BudgetResult:
    hours = years * HOURS_PER_YEAR
    spend_total = float(sum(o.price * z[i] for i, o in enumerate(options)))
    lines = []
    vendor_spend: dict[str, float] = {}
    for i, o in enumerate(options):
        if z[i] <= 1e-6:
            continue
        offer = o.offer
        system = cat.systems[offer.system]
        vendor = _vendor(cat, offer)
        spend = o.price * float(z[i])
        vendor_spend[vendor] = vendor_spend.get(vendor, 0.0) + spend
        line_tokens = None if o.tokens_per_chip_hour is None else o.tokens_per_chip_hour * z[i]
        lines.append(
            BudgetLine(
                offer=offer.id,
                cloud=offer.cloud,
                region=offer.region,
                system=offer.system,
                chip=system.chip,
                vendor=vendor,
                tier=o.tier,
                usd_per_chip_hour=o.price,
                spend_usd=spend,
                share=spend / spend_total if spend_total else 0.0,
                chip_hours=float(z[i]),
                chips_held=float(z[i]) / hours,
                pflop_days=float(z[i]) * o.pflop_hours_per_chip_hour / 24.0,
                tokens=None if line_tokens is None else float(line_tokens),
                runs=None if line_tokens is None or not tokens else float(line_tokens) / tokens,
                run_days=o.run_days,
            )
        )
    lines.sort(key=lambda line: -line.spend_usd)
    total_tokens = None if job is None else sum(line.tokens or 0.0 for line in lines)
    return BudgetResult(
        direction=direction,
        usd=usd if usd is not None else spend_total,
        years=years,
        lines=lines,
        spend_usd=spend_total,
        chip_hours=sum(line.chip_hours for line in lines),
        pflop_days=sum(line.pflop_days for line in lines),
        model=None if job is None else job.model.name,
        tokens_per_run=tokens,
        chips_per_run=None if job is None else chips,
        tokens=total_tokens,
        runs=None if total_tokens is None or not tokens else total_tokens / tokens,
        vendor_spend=vendor_spend,
        vendor_caps=caps,
        mix=dict(mix or {}),
        skipped=skipped,
        status="optimal",
        solve_s=seconds,
    )
