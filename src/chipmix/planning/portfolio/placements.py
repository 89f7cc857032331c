"""Candidate placements: the ways each job of a scenario can run.

A placement is one job on one offer, in one price tier, on one chip count, with the best
layout the layout search finds there (`chipmix.layouts.best.search`; nothing here models
performance). Its duration, chip-hours and energy come from `chipmix.pricing.run_cost`
(``time = tokens / tokens_per_s``, ``chip-hours = chips × time``, ``energy = chip-hours ×
W per chip``); its price is ``chip-hours × $/chip-hour`` of the offer's tier after the
scenario's discount. Compute is counted in H100-equivalent chip-hours: ``chip-hours ×
peak(chip) / peak(H100 SXM)``, dense bf16 peaks from the catalog.

Chip counts per job and system (unless the job lists its own ``chip_counts``) come from the
ladder of `chipmix.planning.comparison.sizing.ladder` (whole nodes, neighbours at most 1/8
apart): the fewest chips whose best layout finishes within the job's window — found by doubling from
the 100 %-MFU bound ``chips ≥ tokens × FLOPs/token ÷ (peak × window)``, then bisecting —
and then twice and four times that (``sizes_per_system`` counts), while more chips still
speed the run up by `MIN_GAIN`. Bigger counts buy time under contention; smaller ones miss
the window and are never candidates.

The search depends on the job's shape but not on its tokens, so `SearchCache` keeps one
result per (model, mode, shape, precision, stack, system, chips) for every job and every
scenario that repeats it. Within one (job, offer, tier) a count is dropped when another
needs no more chips, no more time and no more money (dominance). Big scenarios then keep a
shortlist per job (``solver.placements_per_job``, default 32): its cheapest placements,
each vendor's four cheapest pay-per-use and reserved ones, and its four fastest. The MILP
is optimal over the shortlist; a job rarely needs its 33rd-cheapest placement, but it
could when capacity is short everywhere cheaper (0 keeps every placement).
"""

from __future__ import annotations

import bisect
import math
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from chipmix.catalog.catalog import Catalog
from chipmix.catalog.offer import PriceTier
from chipmix.catalog.system import ResolvedSystem
from chipmix.errors import InfeasibleError
from chipmix.perf.step import model_flops_per_token
from chipmix.planning.comparison.sizing import MAX_CHIPS, MIN_GAIN, ladder
from chipmix.planning.portfolio.scenario import RESERVED_TIERS, PlanJob, PlanOffer, Scenario
from chipmix.planning.portfolio.search_store import SearchStore
from chipmix.planning.portfolio.serving import ServingOption
from chipmix.pricing import run_cost
from chipmix.results import Estimate
from chipmix.workload.job import Job

__all__ = [
    "REFERENCE_CHIP",
    "Candidates",
    "Placement",
    "SearchCache",
    "candidates",
    "reference_peak",
]

REFERENCE_CHIP = "h100-sxm"
"""Compute is counted in chip-hours of this chip's dense bf16 peak (H100-equivalents)."""


@dataclass(frozen=True, slots=True)
class Placement:
    """One way to run one job: offer, tier, chip count and the best layout there."""

    job: int
    """Index into the scenario's jobs."""
    offer: int
    """Index into the scenario's offers."""
    tier: PriceTier
    chips: int
    estimate: Estimate
    """The best layout on ``chips`` chips of the offer's system (step time, tokens/s, MFU)."""
    duration_h: float
    chip_hours: float
    usd: float
    """chip-hours × the tier's $/chip-hour. For a reserved tier this is the share of the
    reservation the run uses; the plan pays for the reservation instead."""
    energy_mwh: float
    h100_hours: float
    """Compute: chip-hours in H100-equivalents (dense bf16 peak ratio)."""
    power_mw: float
    """Wall power of the chips while running."""

    @property
    def reserved(self) -> bool:
        return self.tier in RESERVED_TIERS


@dataclass
class Candidates:
    """Every placement of every job, and why a job has none on a system."""

    placements: list[Placement] = field(default_factory=list)
    reasons: dict[int, list[str]] = field(default_factory=dict)
    """Per job index: why systems were left out (no layout fits, too slow for the window)."""
    searches: int = 0
    """Searches run for this scenario (cache misses)."""
    cache_hits: int = 0
    dropped: int = 0
    """Placements left off the jobs' shortlists (``solver.placements_per_job``)."""
    serving: list[ServingOption] = field(default_factory=list)
    """The serving entries' options (`chipmix.planning.portfolio.serving`)."""

    def of_job(self, job: int) -> list[Placement]:
        return [p for p in self.placements if p.job == job]


class SearchCache:
    """The best layout per (job shape, system, chips), shared by every job that repeats it,
    and by every system that runs a job exactly as fast (`_machine`): the cloud instances
    built on one board and the board itself get one search, its estimate relabelled. A
    search an earlier run made is read from the user's cache folder (`search_store`)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.found: dict[tuple[str, str, int], Estimate | InfeasibleError] = {}
        self.by_machine: dict[tuple[str, tuple[object, ...], int], Estimate] = {}
        self.kept: SearchStore | None = None
        """The searches of earlier runs (`search_store`), read on the first miss."""
        self.hits = 0
        self.misses = 0

    @staticmethod
    def shared(catalog: Catalog) -> SearchCache:
        """The process-wide cache of ``catalog`` (kept while the catalog lives)."""
        entry = _SHARED.get(id(catalog))
        if entry is not None and entry[0]() is catalog:
            return entry[1]
        cache = SearchCache(catalog)
        _SHARED[id(catalog)] = (weakref.ref(catalog), cache)
        return cache

    def best(self, job: Job, system: ResolvedSystem, chips: int) -> Estimate | InfeasibleError:
        """The search's best layout, or the `InfeasibleError` saying why there is none."""
        shape = _shape_key(job)
        key = (shape, system.id, chips)
        if key in self.found:
            self.hits += 1
            return self.found[key]
        same = self.by_machine.get((shape, _machine(system), chips))
        if same is not None:  # the same figures: the same search, on this system
            self.hits += 1
            self.found[key] = relabelled = replace(same, system=system)
            return relabelled
        if self.kept is None:
            self.kept = SearchStore(self.catalog.calibration.model_dump_json())
        kept_key = self.kept.key(shape, system, chips)
        earlier = self.kept.get(kept_key, system)
        if earlier is not None:  # searched by an earlier run
            self.hits += 1
            self.found[key] = self.by_machine[(shape, _machine(system), chips)] = earlier
            return earlier
        self.misses += 1
        from chipmix.layouts.best import search

        result: Estimate | InfeasibleError
        try:
            best = search(
                job.model, system.id, chips, top=1, catalog=self.catalog, prune=True, mode=job.mode,
                seq_len=job.seq_len, global_batch=job.global_batch, precision=job.precision,
                stack=job.stack, lora_rank=job.lora_rank,
            ).best  # fmt: skip
        except InfeasibleError as exc:
            result = exc  # not shared: the reason names the system
        else:
            result = self.by_machine[(shape, _machine(system), chips)] = best
            self.kept.put(kept_key, best)
        self.found[key] = result
        return result

    def save(self) -> None:
        """Keep the searches run so far for later runs (`search_store`)."""
        if self.kept is not None:
            self.kept.save()


def _machine(system: ResolvedSystem) -> tuple[object, ...]:
    """Every figure of ``system`` the layout search and the job-size check read: two systems
    with the same are searched once. Exact values: a search is shared only where its answer
    is the same to the last bit."""
    own = system.system
    multislice = own.multislice_max_chips.value if own.multislice_max_chips else None
    return (
        system.chip.id,
        system.scaleup_domain_chips,
        system.scaleup_bytes_per_s,
        system.scaleout_bytes_per_s,
        own.max_chips,
        multislice,
    )


_SHARED: dict[int, tuple[weakref.ref[Catalog], SearchCache]] = {}
_SHAPE_KEYS: dict[int, tuple[Job, str]] = {}


def _shape_key(job: Job) -> str:
    """What the search depends on: the job without its tokens."""
    known = _SHAPE_KEYS.get(id(job))
    if known is not None and known[0] is job:
        return known[1]
    key = job.model_copy(update={"tokens": None}).model_dump_json()
    if len(_SHAPE_KEYS) > 10_000:
        _SHAPE_KEYS.clear()
    _SHAPE_KEYS[id(job)] = (job, key)
    return key


def candidates(scenario: Scenario, cache: SearchCache) -> Candidates:
    """Every placement of every job of ``scenario``."""
    before_hits, before_misses = cache.hits, cache.misses
    out = Candidates()
    caps = {o.id: _largest_cap(scenario, o) for o in scenario.offers}
    index = {o.id: i for i, o in enumerate(scenario.offers)}
    reference = reference_peak(cache.catalog)
    for j, pj in enumerate(scenario.jobs):
        release = scenario.release_h(pj)
        window_h = scenario.deadline_h(pj) - release
        by_system: dict[str, list[PlanOffer]] = {}
        for offer_id in pj.offers:
            offer = scenario.offers[index[offer_id]]
            if caps[offer.id] != 0:
                by_system.setdefault(offer.system.id, []).append(offer)
        reasons = out.reasons.setdefault(j, [])
        if window_h <= 0:
            reasons.append("its window is empty")
            continue
        for offers in by_system.values():
            system = offers[0].system
            limit = _limit(cache.catalog, system, [caps[o.id] for o in offers])
            sized, why = _sizes(pj, system, limit, window_h, scenario, cache)
            if why:
                reasons.append(f"{system.id}: {why}")
            for offer in offers:
                cap = caps[offer.id]
                usable = [(n, e) for n, e in sized if cap is None or n <= cap]
                out.placements.extend(
                    _priced(
                        cache.catalog, reference, j, pj, index[offer.id], offer, usable, release
                    )
                )
    out.searches = cache.misses - before_misses
    out.cache_hits = cache.hits - before_hits
    cache.save()
    keep = scenario.solver.placements_per_job
    if keep:
        listed = [p for j in range(len(scenario.jobs)) for p in _shortlist(out.of_job(j), keep)]
        out.dropped = len(out.placements) - len(listed)
        out.placements = listed
    return out


SHORTLIST_PER_VENDOR = 4
SHORTLIST_FASTEST = 4


def _shortlist(options: list[Placement], keep: int) -> list[Placement]:
    """A job's ``keep`` cheapest placements, each vendor's `SHORTLIST_PER_VENDOR` cheapest
    pay-per-use and reserved ones (for share caps and the vendor minimum) and its
    `SHORTLIST_FASTEST` fastest (for contention near a deadline), in their original order."""
    if len(options) <= keep:
        return options
    by_cost = sorted(range(len(options)), key=lambda i: (options[i].usd, options[i].duration_h))
    chosen = set(by_cost[:keep])
    per_vendor: dict[tuple[str, bool], int] = {}
    for i in by_cost:
        key = (options[i].estimate.system.chip.vendor, options[i].reserved)
        if per_vendor.get(key, 0) < SHORTLIST_PER_VENDOR:
            per_vendor[key] = per_vendor.get(key, 0) + 1
            chosen.add(i)
    by_time = sorted(range(len(options)), key=lambda i: (options[i].duration_h, options[i].usd))
    chosen |= set(by_time[:SHORTLIST_FASTEST])
    return [options[i] for i in sorted(chosen)]


def _largest_cap(scenario: Scenario, offer: PlanOffer) -> int | None:
    """The most chips the offer holds in any period of the horizon (None: no cap)."""
    caps = []
    for t in range(scenario.num_periods):
        first = scenario.day_at(t * scenario.period_h)
        last = scenario.day_at(min((t + 1) * scenario.period_h, scenario.horizon_h) - 1e-6)
        cap = offer.chips_between(first, last)
        if cap is None:
            return None
        caps.append(cap)
    return max(caps, default=0)


def _limit(cat: Catalog, system: ResolvedSystem, caps: Iterable[int | None]) -> int:
    """The most chips a job may use on ``system``: its job limit (`Catalog.job_limit`, TPU
    Multislice included), and the largest cap of its offers when every one is capped."""
    limit = cat.job_limit(system) or MAX_CHIPS
    listed = list(caps)
    finite = [c for c in listed if c is not None]
    if len(finite) == len(listed) and finite:
        limit = min(limit, max(finite))
    return limit


def _meets(result: Estimate | InfeasibleError, tokens: float, window_h: float) -> bool:
    return isinstance(result, Estimate) and tokens / result.tokens_per_s / 3600.0 <= window_h


def _sizes(
    pj: PlanJob,
    system: ResolvedSystem,
    limit: int,
    window_h: float,
    scenario: Scenario,
    cache: SearchCache,
) -> tuple[list[tuple[int, Estimate]], str]:
    """The chip counts to offer the MILP on ``system``, each with its best layout; or why
    there are none."""
    job, tokens = pj.job, pj.tokens
    if pj.chip_counts is not None:
        found = []
        slow: list[str] = []
        for n in pj.chip_counts:
            if n > limit:
                continue
            problem = cache.catalog.job_size_problem(system, n)
            if problem is not None:
                slow.append(problem)
                continue
            e = cache.best(job, system, n)
            if _meets(e, tokens, window_h):
                assert isinstance(e, Estimate)
                found.append((n, e))
            elif isinstance(e, Estimate):
                slow.append(f"{n:,} chips take {_days(tokens / e.tokens_per_s / 3600)}")
            else:
                slow.append(f"{n:,} chips: {e}")
        why = "" if found else "; ".join(slow) or f"every listed count exceeds {limit:,} chips"
        return found, why
    node = system.system.chips_per_node
    rungs = ladder(limit // node) if limit >= node else []
    rungs = [r for r in rungs if cache.catalog.job_size_problem(system, r * node) is None]
    if not rungs:
        return [], f"holds fewer than one node ({limit} < {node} chips)"

    def at(i: int) -> Estimate | InfeasibleError:
        return cache.best(job, system, rungs[i] * node)

    def up(i: int) -> int:
        return min(bisect.bisect_left(rungs, 2 * rungs[i]), len(rungs) - 1)

    peak = system.chip.peak_flops(job.precision)
    bound = tokens * model_flops_per_token(job) / (peak * window_h * 3600.0)
    last = len(rungs) - 1
    i = min(bisect.bisect_left(rungs, bound / node), last)
    bad, previous = i - 1, None
    while not _meets(at(i), tokens, window_h):
        current = at(i)
        if isinstance(current, Estimate):
            stalled = (
                previous is not None and previous.tokens_per_s * MIN_GAIN > current.tokens_per_s
            )
            if stalled or i == last:
                fastest = max(current, previous or current, key=lambda e: e.tokens_per_s)
                why = "more chips stop helping" if stalled else "the most chips it holds"
                return [], (
                    f"too slow for its window of {_days(window_h)}: the fastest plan found, "
                    f"{fastest.chips:,} chips, takes {_days(tokens / fastest.tokens_per_s / 3600)}"
                    f" ({why})"
                )
            previous = current
        elif i == last:
            return [], str(current)
        bad, i = i, up(i)
    while i - bad > 1:  # the fewest chips that meet the window
        mid = (bad + i) // 2
        if _meets(at(mid), tokens, window_h):
            i = mid
        else:
            bad = mid
    first = at(i)
    assert isinstance(first, Estimate)
    sizes = [(rungs[i] * node, first)]
    while len(sizes) < scenario.solver.sizes_per_system and i < last:
        i = up(i)
        e = at(i)
        if not isinstance(e, Estimate) or e.tokens_per_s < sizes[-1][1].tokens_per_s * MIN_GAIN:
            break
        sizes.append((rungs[i] * node, e))
    return sizes, ""


def _days(hours: float) -> str:
    return f"{hours / 24:,.1f} days"


def _priced(
    cat: Catalog,
    reference: float,
    j: int,
    pj: PlanJob,
    o: int,
    offer: PlanOffer,
    sized: list[tuple[int, Estimate]],
    release_h: float,
) -> list[Placement]:
    cat_system = offer.system
    out: list[Placement] = []
    for tier, usd_per_chip_hour in offer.usd_per_chip_hour.items():
        term_h = offer.term_days.get(tier, math.inf) * 24.0
        options = []
        for n, e in sized:
            run = run_cost(cat, cat_system, n, e.tokens_per_s, pj.job.tokens_per_step, pj.tokens)
            if tier in RESERVED_TIERS and release_h + run.time_to_train_h > term_h:
                continue  # cannot finish within the commitment's term
            options.append(
                Placement(
                    job=j,
                    offer=o,
                    tier=tier,
                    chips=n,
                    estimate=e,
                    duration_h=run.time_to_train_h,
                    chip_hours=run.chip_hours,
                    usd=run.chip_hours * usd_per_chip_hour,
                    energy_mwh=run.energy_mwh,
                    h100_hours=run.chip_hours * cat_system.chip.peak_flops("bf16") / reference,
                    power_mw=n * cat_system.power_w_per_chip / 1e6,
                )
            )
        out.extend(_undominated(options))
    return out


def _undominated(options: list[Placement]) -> list[Placement]:
    keep = []
    for p in options:
        dominated = any(
            q is not p
            and q.chips <= p.chips
            and q.duration_h <= p.duration_h
            and q.usd <= p.usd
            and (q.chips, q.duration_h, q.usd) != (p.chips, p.duration_h, p.usd)
            for q in options
        )
        if not dominated:
            keep.append(p)
    return keep


def reference_peak(catalog: Catalog) -> float:
    """Dense bf16 FLOP/s of one H100-equivalent (`REFERENCE_CHIP`)."""
    return catalog.chip(REFERENCE_CHIP).peak_flops("bf16")
