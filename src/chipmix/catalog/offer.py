"""A way to rent or own a system: prices per hour by tier, with region, date and source."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["PRICE_TIERS", "Offer", "PriceTier"]

PriceTier = Literal["on-demand", "spot", "committed-1y", "committed-3y", "owned"]
PRICE_TIERS: tuple[PriceTier, ...] = ("on-demand", "spot", "committed-1y", "committed-3y", "owned")


class Offer(BaseModel):
    """Hourly prices for one system in one region over one period."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.\-_]*$")
    system: str
    """Catalog id of the system priced."""
    cloud: str
    region: str
    chips_per_unit: int = Field(gt=0)
    """Chips in one priced unit (an instance of 8 GPUs, one TPU chip, ...)."""
    usd_per_unit_hour: dict[PriceTier, float]
    """Price of one unit for one hour, per tier."""
    valid_from: str = Field(pattern=r"^\d{4}-\d{2}(-\d{2})?$")
    """First date the prices held (or the snapshot date)."""
    valid_to: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}(-\d{2})?$")
    """Last date they held; None while current."""
    source: str
    """Key into the file's ``sources`` table."""
    note: str = ""

    def usd_per_chip_hour(self, tier: PriceTier) -> float | None:
        price = self.usd_per_unit_hour.get(tier)
        return None if price is None else price / self.chips_per_unit

    @property
    def current(self) -> bool:
        return self.valid_to is None
