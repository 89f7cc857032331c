"""A way to rent or own a system: prices per hour by tier, with region, date and source."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from chipmix.common.files import NoBoolNumbers

__all__ = ["PRICE_TIERS", "Offer", "OfferStatus", "PriceTier"]

PriceTier = Literal["on-demand", "spot", "committed-1y", "committed-3y", "owned"]
PRICE_TIERS: tuple[PriceTier, ...] = ("on-demand", "spot", "committed-1y", "committed-3y", "owned")
OfferStatus = Literal["listed", "unverified", "estimated"]


class Offer(NoBoolNumbers):
    """Hourly prices for one system in one region over one period."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.\-_]*$")
    system: str
    """Catalog id of the system priced."""
    cloud: str
    region: str
    chips_per_unit: int = Field(gt=0)
    """Chips in one priced unit (an instance of 8 GPUs, one TPU chip, ...)."""
    usd_per_unit_hour: dict[PriceTier, Annotated[float, Field(ge=1e-4)]]
    """Price of one unit for one hour, per tier (at least $0.0001: a zero price would
    divide a budget by nothing)."""
    valid_from: str = Field(pattern=r"^\d{4}-\d{2}(-\d{2})?$")
    """First date the prices held (or the snapshot date)."""
    valid_to: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}(-\d{2})?$")
    """Last date they held; None while current."""
    source: str
    """Key into the file's ``sources`` table."""
    status: OfferStatus = "listed"
    """``listed``: read from a price list (the cloud's or a snapshot of it); ``unverified``:
    a third-party or single-sighting figure nobody has checked against the cloud's list;
    ``estimated``: no public list price, every tier derived as ``estimated`` says."""
    estimated: dict[PriceTier, str] = Field(default_factory=dict)
    """Tiers whose price is our estimate, each with how it was estimated."""
    note: str = ""

    @model_validator(mode="after")
    def _estimates_name_priced_tiers(self) -> Offer:
        unpriced = sorted(set(self.estimated) - set(self.usd_per_unit_hour))
        if unpriced:
            raise ValueError(f"estimated names tiers without a price: {unpriced}")
        if self.status == "estimated":
            missing = sorted(set(self.usd_per_unit_hour) - set(self.estimated))
            if missing:
                raise ValueError(
                    f"status 'estimated' needs, per priced tier, how it was estimated "
                    f"(estimated: {{tier: how}}); missing: {missing}"
                )
        return self

    def usd_per_chip_hour(self, tier: PriceTier) -> float | None:
        price = self.usd_per_unit_hour.get(tier)
        return None if price is None else price / self.chips_per_unit

    @property
    def current(self) -> bool:
        return self.valid_to is None

    def flag(self, tier: PriceTier) -> str:
        """``estimated``, ``unverified`` or ``""`` for the price of ``tier`` (shown beside it)."""
        if tier in self.estimated or self.status == "estimated":
            return "estimated"
        return "unverified" if self.status == "unverified" else ""

    def how(self, tier: PriceTier) -> str:
        """How the price of ``tier`` was obtained, when it is not a listed price."""
        return self.estimated.get(tier, "") or (self.note if self.status != "listed" else "")
