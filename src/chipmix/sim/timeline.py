"""The run as phases in wall-clock time: on the job's own system, and during each outage on
the chips left, waiting, or migrated to a second system.

A *run* (`SystemRun`) is the job on one system with one chip count: its throughput from the
layout the search finds there (``chipmix.layouts.best.estimate``), its interruption rates,
checkpoint and restart costs and price. A *phase* says which run is live between two instants, what
entering it costs (``entry_down_s``) and whether entering is sudden (an outage: the work
since the last checkpoint is lost) or planned (a return: a checkpoint is written first).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from chipmix.catalog.offer import PriceTier
from chipmix.results import Estimate
from chipmix.sim.checkpoint import CheckpointSpec
from chipmix.sim.failures import JobRates
from chipmix.sim.restart import RestartPolicy
from chipmix.sim.scenario import ContinuityScenario, Migration

__all__ = ["Move", "Phase", "SystemRun", "Timeline", "build_timeline", "plan_move"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemRun:
    """The job on one system with one chip count."""

    label: str
    estimate: Estimate
    chips: int
    price_tier: PriceTier
    usd_per_chip_hour: float | None
    """Cheapest current offer in the tier; None when the catalog prices none."""
    rates: JobRates
    checkpoint: CheckpointSpec
    restart: RestartPolicy
    interval_s: float
    """Compute time between checkpoints (at least the persist time of an async one)."""
    cloud: str = "default"
    """Where it runs (the cloud of the offer that prices it): egress is priced by it."""

    @property
    def vendor(self) -> str:
        return self.estimate.system.chip.vendor

    @property
    def tokens_per_s(self) -> float:
        return self.estimate.tokens_per_s

    @property
    def chips_per_node(self) -> int:
        return self.estimate.system.system.chips_per_node

    @property
    def held_chips(self) -> int:
        """Chips paid for: the job's and its hot spares'."""
        return self.chips + self.restart.hot_spare_nodes * self.chips_per_node

    @property
    def usd_per_s(self) -> float:
        price = math.nan if self.usd_per_chip_hour is None else self.usd_per_chip_hour
        return self.held_chips * price / 3600.0

    @property
    def spot_saved(self) -> bool:
        return self.restart.spot_checkpoint_fits(self.checkpoint)

    @property
    def lossy_mtbf_s(self) -> float:
        """Mean time between interruptions that lose work (M in Young's and Daly's formula)."""
        rate = self.rates.lossy_per_hour(self.spot_saved)
        return math.inf if rate <= 0 else 3600.0 / rate

    def describe(self) -> dict[str, object]:
        e = self.estimate
        return {
            "label": self.label,
            "system": e.system.id,
            "chip": e.system.chip.id,
            "chips": self.chips,
            "layout": e.layout.as_dict(),
            "tokens_per_s": self.tokens_per_s,
            "mfu": e.mfu,
            "price_tier": self.price_tier,
            "usd_per_chip_hour": self.usd_per_chip_hour,
            "hot_spare_nodes": self.restart.hot_spare_nodes,
            "interruptions_per_day": self.rates.total_per_hour * 24.0,
            "rates_per_day": {c: r * 24.0 for c, r in self.rates.per_hour.items()},
            "mtbf_h": self.rates.mtbf_h,
            "checkpoint": self.checkpoint.as_dict(),
            "checkpoint_interval_s": self.interval_s,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Phase:
    """Which run is live from ``start_s`` to ``end_s``."""

    label: str
    start_s: float
    end_s: float
    run: int
    """Index into `Timeline.runs`; -1 while waiting for capacity."""
    usd_per_s: float
    """Paid while in this phase (a waiting phase pays for the chips it keeps)."""
    entry_down_s: float
    """Time from entering the phase until training resumes."""
    entry_sudden: bool
    """Entered by surprise (an outage): the work since the last checkpoint is lost."""
    entry_usd: float = 0.0
    """Paid once on entering (the checkpoint's egress when the run moves between clouds)."""


@dataclass(frozen=True, slots=True)
class Timeline:
    runs: list[SystemRun]
    phases: list[Phase]
    move: Move | None = None
    """What moving to the migration target takes (None without one)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Move:
    """Moving the run to the migration target: time and money, each part named.

    time = checkpoint transfer over the inter-site link + resharding for the target's layout
    (+ detection, load and warm-up, as any restart); a cold target also waits the longer of
    obtaining its capacity and porting the job to its vendor's stack; egress = checkpoint
    bytes × the source cloud's price per GB, paid each way when the clouds differ."""

    transfer_s: float
    reshard_s: float
    porting_s: float
    """Porting lead time to the target's vendor (cold moves only; a warm standby is ported
    in advance)."""
    capacity_s: float
    """Lead time to obtain the target's capacity (cold moves only)."""
    egress_usd: float
    """Out of the primary's cloud."""
    egress_back_usd: float
    """Out of the target's cloud, when the run returns."""
    standby_usd_per_s: float
    """A warm target's capacity, paid while it is held and idle."""

    @property
    def lead_s(self) -> float:
        return max(self.porting_s, self.capacity_s)


RunMaker = Callable[[str, int, PriceTier, str], SystemRun | None]
"""(system, chips, tier, label) → a run, or None when no layout fits."""


def _switch_cost(target: SystemRun, transfer_s: float, detect: bool, relaunch: bool) -> float:
    r = target.restart
    return (
        (r.detect_s if detect else 0.0)
        + transfer_s
        + (r.relaunch_s if relaunch else 0.0)
        + target.checkpoint.load_s
        + r.warmup_s
    )


def plan_move(
    primary: SystemRun,
    target: SystemRun,
    migration: Migration,
    *,
    transfer_gb_s: float,
    reshard_gb_s: float,
    porting_s: float,
    egress_usd_per_gb: Callable[[str], float],
) -> Move:
    """The parts of moving ``primary`` to ``target`` (see `Move`)."""
    size_gb = primary.checkpoint.size_bytes / 1e9
    other_cloud = primary.cloud != target.cloud
    return Move(
        transfer_s=size_gb / (migration.transfer_gb_s or transfer_gb_s),
        reshard_s=size_gb / reshard_gb_s
        if primary.estimate.layout != target.estimate.layout
        else 0.0,
        porting_s=0.0 if migration.warm else porting_s,
        capacity_s=0.0 if migration.warm else migration.lead_time_h * 3600.0,
        egress_usd=size_gb * egress_usd_per_gb(primary.cloud) if other_cloud else 0.0,
        egress_back_usd=size_gb * egress_usd_per_gb(target.cloud) if other_cloud else 0.0,
        standby_usd_per_s=target.usd_per_s if migration.warm else 0.0,
    )


MoveMaker = Callable[[SystemRun, SystemRun, Migration], Move]
"""(primary, target, migration) → what moving there takes (`plan_move` with the catalog's
figures)."""


def build_timeline(
    primary: SystemRun,
    scenario: ContinuityScenario,
    make_run: RunMaker,
    *,
    migrate: bool,
    horizon_s: float,
    make_move: MoveMaker,
) -> Timeline:
    """Phases from 0 to ``horizon_s``: the primary run, and each outage handled by migrating
    (when ``migrate`` and the scenario names a target), shrinking or waiting. A warm
    target's capacity is paid at its tier's price whenever the run is not on it (a standby
    held for the whole run); moving there costs `Move`'s time and egress."""
    runs: list[SystemRun] = [primary]
    phases: list[Phase] = []
    migration: Migration | None = scenario.migration if migrate else None
    target_index = -1
    if migration is not None:
        target = make_run(
            migration.system,
            migration.chips or primary.chips,
            migration.price_tier or primary.price_tier,
            f"migrated to {migration.system}",
        )
        if target is not None:
            runs.append(target)
            target_index = len(runs) - 1
    move = (
        make_move(primary, runs[target_index], migration)
        if migration is not None and target_index >= 0
        else None
    )
    standby = 0.0 if move is None else move.standby_usd_per_s
    shrink_runs: dict[int, int] = {}

    def add(label: str, start: float, end: float, run: int, usd: float, down: float,
            sudden: bool, entry_usd: float = 0.0) -> None:  # fmt: skip
        if start >= horizon_s:
            return
        held = 0.0 if run == target_index else standby  # the idle standby is paid too
        phases.append(Phase(label=label, start_s=start, end_s=min(end, horizon_s), run=run,
                            usd_per_s=usd + held, entry_down_s=down, entry_sudden=sudden,
                            entry_usd=entry_usd))  # fmt: skip

    def degraded(label: str, start: float, end: float, left: int) -> None:
        """The outage without the second system: shrink onto the chips left, or wait."""
        shrunk = -1
        if scenario.on_outage == "shrink" and left > 0:
            if left not in shrink_runs:
                run = make_run(primary.estimate.system.id, left, primary.price_tier,
                               f"shrunk to {left} chips")  # fmt: skip
                if run is not None:
                    runs.append(run)
                    shrink_runs[left] = len(runs) - 1
            shrunk = shrink_runs.get(left, -1)
        if shrunk >= 0:
            run = runs[shrunk]
            entry = _switch_cost(run, 0.0, detect=True, relaunch=True)
            add(f"{label}: {run.label}", start, end, shrunk, run.usd_per_s, entry, True)
        else:
            keep = left * (primary.usd_per_s / max(primary.held_chips, 1))
            add(f"{label}: waiting for capacity", start, end, -1, keep, 0.0, True)

    move_s = 0.0 if move is None else move.transfer_s + move.reshard_s
    now, down, sudden, entry_usd = 0.0, 0.0, False, 0.0
    stay_away = False
    for outage in scenario.sorted_outages:
        if stay_away:
            break
        add("primary", now, outage.start_s, 0, primary.usd_per_s, down, sudden, entry_usd)
        left = int(primary.chips * (1.0 - outage.capacity_lost))
        left -= left % primary.chips_per_node
        label = outage.name or f"outage from day {outage.start_day:g}"
        lead = 0.0 if move is None else move.lead_s
        if move is not None and migration is not None and lead < outage.duration_days * 86400:
            # A cold second system: carry on as without it until its capacity arrives, then
            # move at a checkpoint (planned); a warm one takes over at once (sudden).
            target = runs[target_index]
            switch = outage.start_s + lead
            if lead > 0:
                degraded(label, outage.start_s, switch, left)
            stay_away = not migration.return_when_restored
            end = horizon_s if stay_away else outage.end_s
            entry = _switch_cost(target, move_s, detect=lead == 0, relaunch=False)
            add(f"{label}: {target.label}", switch, end, target_index, target.usd_per_s, entry,
                lead == 0, move.egress_usd)  # fmt: skip
            back = _switch_cost(primary, move_s, detect=False, relaunch=True)
            back_usd = move.egress_back_usd
        else:
            degraded(label, outage.start_s, outage.end_s, left)
            back = _switch_cost(primary, 0.0, detect=False, relaunch=True)
            back_usd = 0.0
        now, down, sudden, entry_usd = outage.end_s, back, False, back_usd
    if not stay_away:
        add("primary", now, horizon_s, 0, primary.usd_per_s, down, sudden, entry_usd)
    phases = [ph for ph in phases if ph.end_s > ph.start_s or ph is phases[-1]]
    return Timeline(runs, phases, move)
