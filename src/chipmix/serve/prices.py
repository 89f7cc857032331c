"""Prices for serving: the cheapest current $/chip-hour per tier, and $ per million tokens.

``$ / M output tokens = ($/chip-hour) / (3600 · output tokens/s per chip) · 10⁶``.
"""

from __future__ import annotations

from chipmix.catalog.catalog import Catalog
from chipmix.catalog.offer import PRICE_TIERS, PriceTier
from chipmix.catalog.system import ResolvedSystem

__all__ = ["chip_hour_prices", "usd_per_million_tokens"]


def chip_hour_prices(catalog: Catalog, system: ResolvedSystem) -> dict[PriceTier, float]:
    """Per tier, the cheapest current $/chip-hour of an offer of the system or of a system
    with the same figures (`Catalog.pricing_offers`): never of a slower machine of the chip."""
    offers = catalog.pricing_offers(system)
    out: dict[PriceTier, float] = {}
    for tier in PRICE_TIERS:
        prices = [p for o in offers if (p := o.usd_per_chip_hour(tier)) is not None]
        if prices:
            out[tier] = min(prices)
    return out


def usd_per_million_tokens(usd_per_chip_hour: float, tokens_per_s_per_chip: float) -> float:
    return usd_per_chip_hour / (3600.0 * tokens_per_s_per_chip) * 1e6
