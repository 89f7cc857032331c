"""Cost, time and energy of a whole training run, from its step time and the offers.

``time = tokens / tokens_per_s``; ``chip-hours = chips × time``; cost per price tier is
chip-hours × the cheapest current $/chip-hour of an offer of the system the speed was
computed on, or of a system with the same figures (`Catalog.pricing_offers`: a reference
HGX board is priced by the instances built on it, never by a slower machine of the same
chip). Each tier keeps its offer, the offer's date and its flag (estimated / unverified).
IT energy is chip-hours × the chip's share of its system's IT power (accelerator + host +
network, `System.power_w_per_chip`); facility energy is IT energy × the site's PUE, applied
once, here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chipmix.catalog.catalog import Catalog
from chipmix.catalog.offer import PRICE_TIERS, Offer, PriceTier
from chipmix.catalog.system import ResolvedSystem

__all__ = ["RunCost", "cheapest_offers", "run_cost"]


@dataclass(frozen=True, slots=True)
class RunCost:
    """What training ``tokens`` tokens takes on ``chips`` chips of one system."""

    tokens: float
    steps: float
    time_to_train_h: float
    chip_hours: float
    energy_mwh: float
    power_is_estimated: bool
    usd_per_chip_hour: dict[PriceTier, float] = field(default_factory=dict)
    offer_by_tier: dict[PriceTier, str] = field(default_factory=dict)
    """The offer each tier's price comes from."""
    offer_date_by_tier: dict[PriceTier, str] = field(default_factory=dict)
    """The date the offer's prices hold from (``valid_from``)."""
    price_flag_by_tier: dict[PriceTier, str] = field(default_factory=dict)
    """``estimated`` or ``unverified`` where the price is not a listed one ("" otherwise)."""
    pue: float = 1.0
    """Facility / IT power of the site, applied once to the IT energy."""

    @property
    def facility_energy_mwh(self) -> float:
        """IT energy × PUE: what the site draws, cooling and power conversion included."""
        return self.energy_mwh * self.pue

    @property
    def cost_usd(self) -> dict[PriceTier, float]:
        return {tier: self.chip_hours * p for tier, p in self.usd_per_chip_hour.items()}


def cheapest_offers(
    catalog: Catalog, system: ResolvedSystem
) -> dict[PriceTier, tuple[Offer, float]]:
    """Per tier, the cheapest current offer of the system or of a system with the same
    figures (`Catalog.pricing_offers`)."""
    offers = catalog.pricing_offers(system)
    out: dict[PriceTier, tuple[Offer, float]] = {}
    for tier in PRICE_TIERS:
        priced = [(o, p) for o in offers if (p := o.usd_per_chip_hour(tier)) is not None]
        if priced:
            out[tier] = min(priced, key=lambda op: op[1])
    return out


def run_cost(
    catalog: Catalog,
    system: ResolvedSystem,
    chips: int,
    tokens_per_s: float,
    tokens_per_step: int,
    tokens: float,
) -> RunCost:
    seconds = tokens / tokens_per_s
    hours = seconds / 3600.0
    chip_hours = chips * hours
    prices = cheapest_offers(catalog, system)
    return RunCost(
        tokens=tokens,
        steps=tokens / tokens_per_step,
        time_to_train_h=hours,
        chip_hours=chip_hours,
        energy_mwh=chip_hours * system.power_w_per_chip / 1e6,
        power_is_estimated=system.power_is_estimated,
        usd_per_chip_hour={tier: p for tier, (_, p) in prices.items()},
        offer_by_tier={tier: o.id for tier, (o, _) in prices.items()},
        offer_date_by_tier={tier: o.valid_from for tier, (o, _) in prices.items()},
        price_flag_by_tier={tier: o.flag(tier) for tier, (o, _) in prices.items()},
        pue=system.pue,
    )
