"""The hardware and price catalog: chips, systems, offers, calibration (data + typed loader)."""

from chipmix.catalog.calibration import Calibration, ChipCalibration, StackCalibration
from chipmix.catalog.catalog import Catalog, load_catalog
from chipmix.catalog.chip import PRECISIONS, Chip, Precision
from chipmix.catalog.figure import Figure, Source
from chipmix.catalog.offer import PRICE_TIERS, Offer, PriceTier
from chipmix.catalog.system import ResolvedSystem, System

__all__ = [
    "PRECISIONS",
    "PRICE_TIERS",
    "Calibration",
    "Catalog",
    "Chip",
    "ChipCalibration",
    "Figure",
    "Offer",
    "Precision",
    "PriceTier",
    "ResolvedSystem",
    "Source",
    "StackCalibration",
    "System",
    "load_catalog",
]
