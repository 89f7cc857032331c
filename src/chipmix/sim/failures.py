"""Interruption rates of a job, per cause: component failures, planned maintenance, reclaims.

Each cause is a Poisson process; the job's interruptions are their superposition, with rate
``Λ = Σ_c chips · λ_c + nodes · ρ_tier`` (``λ_c`` per chip-hour for component class ``c``
and planned maintenance, ``ρ`` the provider's reclaims per node-hour). The time to the next
interruption is then exponential with mean ``1/Λ`` and its cause is ``c`` with probability
``chips · λ_c / Λ`` (superposition and thinning of Poisson processes).

Per-chip rates come from the reference fleet's counts (Llama 3, arXiv 2407.21783, Table 5):
``λ_c = count_c / (chips × hours)``, then scaled to the chip at hand by the rule the
reliability file names for the class (``tdp_w``: board power / the reference's; ``hbm_gib``:
HBM capacity / the reference's; ``none``). What it ignores: infant mortality and wear-out
(rates are constant), failures that are correlated (a switch taking several nodes down is
one interruption), and differences between data centres.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from chipmix.catalog.chip import Chip
from chipmix.catalog.offer import PriceTier
from chipmix.catalog.reliability import FAILURE_CLASSES, FailureClass, Reliability, ScalingRule
from chipmix.catalog.system import ResolvedSystem
from chipmix.errors import InputError

__all__ = [
    "CAUSES",
    "HARDWARE_CAUSES",
    "Cause",
    "ChipRates",
    "JobRates",
    "chip_rates",
    "job_rates",
]

Cause = Literal["accelerator", "hbm", "host", "network", "software", "planned", "spot_reclaim"]
CAUSES: tuple[Cause, ...] = (*FAILURE_CLASSES, "planned", "spot_reclaim")
"""Every cause of an interruption the simulator knows, in the order of its arrays."""
HARDWARE_CAUSES: frozenset[Cause] = frozenset({"accelerator", "hbm", "host", "network"})
"""Causes that take a node out of the job: it is swapped for a hot spare or replaced."""

HOURS_PER_MONTH = 730.0  # 8,760 h / 12


@dataclass(frozen=True, slots=True)
class ChipRates:
    """Per chip-hour rates for one chip, with how each was obtained."""

    failures_per_chip_hour: dict[FailureClass, float]
    planned_per_chip_hour: float
    assumptions: list[str] = field(default_factory=list)


def _scale(rule: ScalingRule, chip: Chip, ref: Chip) -> tuple[float, str]:
    if rule == "tdp_w":
        if chip.tdp_w is None or ref.tdp_w is None or ref.tdp_w.value <= 0:
            return 1.0, "no published TDP: same per-chip rate as the reference"
        return chip.tdp_w.value / ref.tdp_w.value, (
            f"× TDP {chip.tdp_w.value:.0f} W / {ref.tdp_w.value:.0f} W"
        )
    if rule == "hbm_gib":
        return chip.hbm_gib.value / ref.hbm_gib.value, (
            f"× HBM {chip.hbm_gib.value:.0f} GiB / {ref.hbm_gib.value:.0f} GiB"
        )
    return 1.0, "same per-chip rate as the reference"


def chip_rates(rel: Reliability, chip: Chip, reference: Chip) -> ChipRates:
    """Per chip-hour rates of each component class and of planned maintenance for ``chip``.

    An explicit entry for the chip in the reliability file wins; otherwise the reference
    fleet's rate of each class is scaled by the class's rule.
    """
    ref = rel.reference
    hours = ref.chip_hours
    planned = ref.planned_interruptions.value / hours
    override = rel.chip_override(chip.id)
    if override is not None:
        given = override.failures_per_million_chip_hours
        rates = {c: given[c].value / 1e6 for c in FAILURE_CLASSES if c in given}
        missing = [c for c in FAILURE_CLASSES if c not in rates]
        if missing:
            raise InputError(f"reliability entry for chip {chip.id!r} lacks classes {missing}")
        if override.planned_per_million_chip_hours is not None:
            planned = override.planned_per_million_chip_hours.value / 1e6
        return ChipRates(rates, planned, [f"{chip.id}: rates given per chip in the file"])
    rates = {}
    notes = []
    for c in FAILURE_CLASSES:
        count = ref.interruptions[c].value if c in ref.interruptions else 0.0
        factor, how = (
            (1.0, "reference chip")
            if chip.id == reference.id
            else _scale(rel.scaling.get(c, "none"), chip, reference)
        )
        rates[c] = count / hours * factor
        if chip.id != reference.id:
            notes.append(f"{c}: {reference.id} rate {how}")
    return ChipRates(rates, planned, notes)


@dataclass(frozen=True, slots=True)
class JobRates:
    """Interruptions per hour of a whole job, by cause (order of `CAUSES`)."""

    per_hour: dict[Cause, float]
    chips: int
    nodes: int
    assumptions: list[str]

    @property
    def total_per_hour(self) -> float:
        return sum(self.per_hour.values())

    @property
    def mtbf_h(self) -> float:
        """Mean time between interruptions of any cause, hours."""
        total = self.total_per_hour
        return float("inf") if total <= 0 else 1.0 / total

    def lossy_per_hour(self, spot_saved: bool) -> float:
        """Rate of interruptions that lose the work since the last checkpoint: failures,
        and reclaims unless their warning leaves time to checkpoint."""
        lossy = sum(v for c, v in self.per_hour.items() if c not in ("planned", "spot_reclaim"))
        return lossy + (0.0 if spot_saved else self.per_hour["spot_reclaim"])


def job_rates(
    rel: Reliability,
    system: ResolvedSystem,
    reference: Chip,
    chips: int,
    tier: PriceTier,
    *,
    multiplier: float = 1.0,
) -> JobRates:
    """Every cause's rate for ``chips`` chips of ``system`` rented in ``tier``.

    ``multiplier`` scales the component failure rates (not maintenance or reclaims): a
    what-if knob for a less or more reliable fleet.
    """
    if multiplier < 0:
        raise InputError(f"failure rate multiplier must be >= 0 (got {multiplier})")
    per_chip = chip_rates(rel, system.chip, reference)
    nodes = -(-chips // system.system.chips_per_node)
    reclaim = rel.reclaims_per_node_month.get(tier)
    per_node_hour = 0.0 if reclaim is None else reclaim.value / HOURS_PER_MONTH
    per_hour: dict[Cause, float] = {
        c: chips * per_chip.failures_per_chip_hour[c] * multiplier for c in FAILURE_CLASSES
    }
    per_hour["planned"] = chips * per_chip.planned_per_chip_hour
    per_hour["spot_reclaim"] = nodes * per_node_hour
    notes = list(per_chip.assumptions)
    if per_node_hour > 0:
        notes.append(
            f"{tier} reclaims: {reclaim.value if reclaim else 0:g} per node-month over "
            f"{nodes} nodes of {system.system.chips_per_node} chips"
        )
    return JobRates(per_hour, chips, nodes, notes)
