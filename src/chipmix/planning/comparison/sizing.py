"""Sizing one system for a job: how many chips meet the chip count, the deadline or the
budget (the rules are described in `chipmix.planning.comparison.compare`)."""

from __future__ import annotations

import bisect
from collections.abc import Callable

from chipmix.catalog.catalog import Catalog
from chipmix.catalog.offer import PriceTier
from chipmix.catalog.system import ResolvedSystem
from chipmix.errors import InfeasibleError
from chipmix.perf.step import model_flops_per_token
from chipmix.planning.comparison.result import ComparisonRow
from chipmix.pricing import cheapest_offers
from chipmix.results import Estimate
from chipmix.workload.job import Job

__all__ = [
    "MAX_CHIPS",
    "MIN_GAIN",
    "Prober",
    "ladder",
    "size_budget",
    "size_chips",
    "size_deadline",
]

MAX_CHIPS = 1 << 20
"""Largest count the deadline and budget modes try on a system without a ``max_chips``."""
MIN_GAIN = 1.02
"""Doubling the chips must speed the run up by at least this factor, or sizing stops: more
chips no longer help (the global batch caps data parallelism)."""


# -- probing one system at one chip count --------------------------------------------------
def ladder(max_nodes: int) -> list[int]:
    """The node counts deadline and budget sizing choose from: those with at most four
    significant binary digits (1 … 16, 18, 20, … 30, 32, 36, …), plus ``max_nodes``.
    Neighbours differ by at most 1/8, and each count is a power of two times one odd factor
    below 16, which the pipeline absorbs (tp, dp and cp stay powers of two)."""
    counts = {m << e for m in range(1, 16) for e in range(max(max_nodes.bit_length(), 1))}
    return sorted({n for n in counts if n <= max_nodes} | {max_nodes})


class Prober:
    """Searches one system at a chip count, remembering every count already searched."""

    def __init__(self, cat: Catalog, job: Job, system: ResolvedSystem, tier: PriceTier):
        self.cat, self.job, self.system, self.tier = cat, job, system, tier
        self.node = system.system.chips_per_node
        self.max_nodes = (cat.job_limit(system) or MAX_CHIPS) // self.node
        rungs = ladder(self.max_nodes) if self.max_nodes >= 1 else []
        # only sizes the system has (beyond one TPU slice: whole slices, Multislice)
        self.ladder = [n for n in rungs if cat.job_size_problem(system, n * self.node) is None]
        self.seen: dict[int, Estimate | InfeasibleError] = {}

    def __call__(self, chips: int) -> Estimate | InfeasibleError:
        if chips not in self.seen:
            self.seen[chips] = self._search(chips)
        return self.seen[chips]

    def _search(self, chips: int) -> Estimate | InfeasibleError:
        from chipmix.layouts.best import search

        job = self.job
        try:
            return search(
                job.model, self.system.id, chips, top=1, catalog=self.cat, price_tier=self.tier,
                prune=True,
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


def _largest_fitting(probe: Prober, i: int) -> Estimate | None:
    """The plan on the largest count below the ``i``-th that fits a layout, halving the
    count each step (None when none does)."""
    while i > 0:
        i = bisect.bisect_left(probe.ladder, probe.ladder[i] // 2)
        found = probe.rung(i)
        if isinstance(found, Estimate):
            return found
        if probe.ladder[i] == 1:
            break
    return None


# -- the three sizings -----------------------------------------------------------------------
def size_chips(probe: Prober, target: float) -> ComparisonRow:
    chips = int(target)
    problem = probe.cat.job_size_problem(probe.system, chips)
    if problem is not None:
        return probe.fail(problem)
    return probe.row(probe(chips))


def size_deadline(probe: Prober, days: float) -> ComparisonRow:
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
            fitting = _largest_fitting(probe, i)
            if fitting is None:
                return probe.row(current)  # no count fits: the search's reason
            return probe.fail(
                f"cannot meet {days:g} days: the fastest plan found, {fitting.chips:,} chips, "
                f"takes {_days(_time_s(fitting))} (more chips fit no layout)"
            )
        bad, i = i, probe.up(i)
    best = _first_good(meets, bad, i)
    if best == 0:
        note = "fewer chips cannot meet it even at 100% MFU"
    else:
        below = probe.rung(best - 1)
        what = f"take {_days(_time_s(below))}" if isinstance(below, Estimate) else "fit no layout"
        note = f"{probe.ladder[best - 1] * probe.node:,} chips {what}"
    return probe.row(probe.rung(best), note)


def size_budget(probe: Prober, budget: float) -> ComparisonRow:
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


def _above(probe: Prober, chosen: Estimate, budget: float) -> str:
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
