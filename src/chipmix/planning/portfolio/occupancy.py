"""A plan being edited, period by period: chips per offer and per reservation, and power.

`Occupancy` answers whether a run fits at a start (the capacity (2), reservation (3) and
power (8) constraints of `chipmix.planning.portfolio.formulation`, one run at a time) and
lets runs move; the planner uses it to start runs as early as they fit and to repair a
plan for the vendor minimum (`repair_vendors`).
"""

from __future__ import annotations

import math

import numpy as np

from chipmix.planning.portfolio.problem import Problem

__all__ = ["Occupancy", "compact", "repair_vendors", "starts"]


class Occupancy:
    """Chips per offer, per reservation and MW per period of a plan being edited: whether a
    run fits at a start, and moving runs."""

    def __init__(
        self, pb: Problem, units: dict[int, int], replicas: dict[int, int] | None = None
    ) -> None:
        self.pb = pb
        self.offer: dict[tuple[int, int], float] = {}
        self.reserved: dict[tuple[int, int], float] = {}
        self.power: dict[int, float] = {}
        self.held: dict[int, float] = {}
        """Chips reserved per reservation index."""
        for k, u in units.items():
            o = pb.reservations[k][0]
            self.held[k] = u * pb.scenario.offers[o].chips_per_unit
        z = pb.serving
        for i, n in (replicas or {}).items():  # serving replicas stay where they are
            assert z is not None
            t, k, chips = int(z.period[i]), int(z.tier_key[i]), n * float(z.chips[i])
            key = (k, t) if k >= 0 else (int(z.offer[i]), t)
            table = self.reserved if k >= 0 else self.offer
            table[key] = table.get(key, 0.0) + chips
            self.power[t] = self.power.get(t, 0.0) + n * float(z.power_mw[i])

    def _periods(self, p: int, s: int) -> range:
        return range(s, s + self.pb.span(p, s)[2])

    def put(self, p: int, s: int, sign: int) -> None:
        pb = self.pb
        n = float(pb.chips[p]) * sign
        k = int(pb.tier_key[p])
        for t in self._periods(p, s):
            if k >= 0:
                self.reserved[(k, t)] = self.reserved.get((k, t), 0.0) + n
            else:
                key = (int(pb.offer[p]), t)
                self.offer[key] = self.offer.get(key, 0.0) + n
            self.power[t] = self.power.get(t, 0.0) + float(pb.power_mw[p]) * sign

    def _reserved_on(self, o: int, t: int) -> float:
        pb = self.pb
        total = 0.0
        for k, chips in self.held.items():
            offer, _, _, term_h = pb.reservations[k]
            if offer == o and (not math.isfinite(term_h) or t < math.ceil(term_h / pb.period_h)):
                total += chips
        return total

    def fits(self, p: int, s: int) -> bool:
        pb = self.pb
        n = float(pb.chips[p])
        k = int(pb.tier_key[p])
        o = int(pb.offer[p])
        for t in self._periods(p, s):
            if k >= 0:
                if self.reserved.get((k, t), 0.0) + n > self.held.get(k, 0.0) + 1e-6:
                    return False
            else:
                cap = float(pb.cap[o, min(t, pb.cap.shape[1] - 1)])
                if self.offer.get((o, t), 0.0) + self._reserved_on(o, t) + n > cap + 1e-6:
                    return False
            if (
                pb.power_cap_mw is not None
                and self.power.get(t, 0.0) + float(pb.power_mw[p]) > pb.power_cap_mw + 1e-9
            ):
                return False
        return True


def starts(pb: Problem, p: int) -> list[int]:
    """The start periods where placement p meets its release, deadline, the horizon and
    its reservation's term (capacity not checked)."""
    out = []
    j = int(pb.job[p])
    key = int(pb.tier_key[p])
    term_h = pb.reservations[key][3] if key >= 0 else math.inf
    for s in range(int(pb.release_period[j]), pb.num_periods):
        _, end, length = pb.span(p, s)
        if end > pb.deadline_h[j] + 1e-6 or s + length > pb.num_periods:
            break
        if end <= term_h + 1e-6 and (pb.max_end_h is None or end <= pb.max_end_h + 1e-6):
            out.append(s)
    return out


def repair_vendors(
    pb: Problem,
    chosen: list[tuple[int, int]],
    units: dict[int, int],
    replicas: dict[int, int] | None = None,
) -> list[tuple[int, int]] | None:
    """A plan using at least ``min_vendors`` vendors, made from ``chosen`` by moving, one
    at a time, the job whose move to an unused vendor costs least (where capacity and power
    allow): a warm start for the model with the vendor minimum. None if no move is found."""
    need = pb.min_vendors or 0
    plan = list(chosen)
    usage = Occupancy(pb, units, replicas)
    for p, s in plan:
        usage.put(p, s, +1)
    z = pb.serving
    served = {int(z.vendor[i]) for i in replicas or {}} if z is not None else set()
    while len({int(pb.vendor[p]) for p, _ in plan} | served) < need:
        count: dict[int, int] = {}
        for p, _ in plan:
            count[int(pb.vendor[p])] = count.get(int(pb.vendor[p]), 0) + 1
        best: tuple[float, int, int, int] | None = None
        for i, (p, s) in enumerate(plan):
            if count[int(pb.vendor[p])] < 2:
                continue  # moving its only job would lose that vendor
            usage.put(p, s, -1)
            j = int(pb.job[p])
            others = np.flatnonzero((pb.job == j) & ~np.isin(pb.vendor, list(count)))
            for q in others.tolist():
                if pb.reserved[q] or (best is not None and pb.usd[q] - pb.usd[p] >= best[0]):
                    continue
                for t in starts(pb, q):
                    if usage.fits(q, t):
                        best = (float(pb.usd[q] - pb.usd[p]), i, q, t)
                        break
            usage.put(p, s, +1)
        if best is None:
            return None
        _, i, moved, start = best
        usage.put(*plan[i], -1)
        usage.put(moved, start, +1)
        plan[i] = (moved, start)
    return plan


# -- moving runs earlier ---------------------------------------------------------------------
def compact(
    pb: Problem,
    chosen: list[tuple[int, int]],
    units: dict[int, int],
    replicas: dict[int, int] | None = None,
) -> list[tuple[int, int]]:
    """Start every run as early as its release, the offers' caps (with the reservations),
    the reservations' cover and the power cap allow, earliest runs first. Cost, deadlines
    and shares do not change. Serving replicas stay in their periods."""
    usage = Occupancy(pb, units, replicas)
    for p, s in chosen:
        usage.put(p, s, +1)
    out = []
    for p, s in sorted(chosen, key=lambda ps: (ps[1], ps[0])):
        usage.put(p, s, -1)
        best = s
        for earlier in range(int(pb.release_period[pb.job[p]]), s):
            if usage.fits(p, earlier):
                best = earlier
                break
        usage.put(p, best, +1)
        out.append((p, best))
    return sorted(out)
