"""Figures that must agree across catalog files, checked when the catalog loads.

One convention per figure (see ``data/systems/reference.yaml``):

- **Link bandwidth** (``scaleup_gb_s_per_direction``) is a property of the chip: every
  system of the chip states the same per-direction figure, or says in ``differs_from_chip``
  why its links differ (a Trn2 UltraServer adds inter-instance links).
- **Scale-up domain and scale-out network** are properties of a system; the chip's figures
  describe its *reference* system, so those two must agree (other systems may differ).
- **Power**: a system's ``power_w_per_chip`` is the chip's share of the system's IT power,
  so it cannot be below the accelerator's own board power (``tdp_w``).
- **Offers**: an offer's unit is one chip or whole nodes of its system; its committed and
  spot prices are not above its on-demand price, nor 3-year above 1-year.

A figure that contradicts another beyond `TOLERANCE` refuses the catalog with one line per
contradiction naming both files and both values.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Protocol

from chipmix.catalog.chip import Chip
from chipmix.catalog.figure import Figure
from chipmix.catalog.offer import Offer
from chipmix.catalog.system import System
from chipmix.errors import FileFormatError

__all__ = ["TOLERANCE", "check_consistency", "contradictions"]

TOLERANCE = 0.10
"""Relative difference two statements of one figure may have (rounding, GiB vs GB)."""


class Catalog(Protocol):
    """What the checks read of a `chipmix.catalog.catalog.Catalog` (which calls them)."""

    @property
    def chips(self) -> Mapping[str, Chip]: ...
    @property
    def systems(self) -> Mapping[str, System]: ...
    @property
    def offers(self) -> Mapping[str, Offer]: ...
    @property
    def origin(self) -> Mapping[str, str]: ...


_LINK = "scaleup_gb_s_per_direction"
_REFERENCE_FIGURES = ("scaleup_domain_chips", "scaleout_gbit_s_per_chip")
_UNITS = {
    "scaleup_gb_s_per_direction": "GB/s",
    "scaleup_domain_chips": "chips",
    "scaleout_gbit_s_per_chip": "Gbit/s",
}


def check_consistency(catalog: Catalog) -> None:
    """Raise `FileFormatError` listing every contradiction (none: return quietly)."""
    found = list(contradictions(catalog))
    head = f"catalog figures contradict each other (tolerance {TOLERANCE:.0%})"
    if len(found) == 1:
        raise FileFormatError(f"{head}: {found[0]}")
    if found:
        raise FileFormatError(f"{head}:\n" + "\n".join(f"  {line}" for line in found))


def contradictions(catalog: Catalog) -> Iterator[str]:
    """One line per contradiction, naming both files and both values."""
    for system in catalog.systems.values():
        yield from _system(catalog, system)
    for offer in catalog.offers.values():
        where = f"{catalog.origin.get(f'offers:{offer.id}', '?')} [offers id={offer.id}]"
        priced = catalog.systems.get(offer.system)
        units = offer.chips_per_unit
        if priced is not None and units > 1 and units % priced.chips_per_node:
            yield (
                f"{where} chips_per_unit = {units} contradicts "
                f"{_at(catalog, 'systems', priced.id)} chips_per_node = "
                f"{priced.chips_per_node}: a priced unit is one chip or whole nodes"
            )
        prices = offer.usd_per_unit_hour
        for low, high in (
            ("spot", "on-demand"),
            ("committed-1y", "on-demand"),
            ("committed-3y", "on-demand"),
            ("committed-3y", "committed-1y"),
        ):
            if low in prices and high in prices and prices[low] > prices[high] * (1 + TOLERANCE):
                yield (
                    f"{where} {low} = {prices[low]:g} $/h is above its {high} = "
                    f"{prices[high]:g} $/h"
                )


def _system(catalog: Catalog, system: System) -> Iterator[str]:
    chip = catalog.chips.get(system.chip)
    if chip is None:
        return
    names = [_LINK, *(_REFERENCE_FIGURES if system.reference else ())]
    for name in names:
        mine: Figure | None = getattr(system, name)
        theirs: Figure | None = getattr(chip, name)
        if mine is None or theirs is None or name in system.differs_from_chip:
            continue
        if _differ(mine.value, theirs.value):
            unit = _UNITS[name]
            yield (
                f"{_at(catalog, 'systems', system.id)} {name} = {mine.value:,g} {unit} "
                f"contradicts {_at(catalog, 'chips', chip.id)} {name} = "
                f"{theirs.value:,g} {unit} ({_rel(mine.value, theirs.value):.0%} apart); "
                f"correct one, or say why in the system's differs_from_chip.{name}"
            )
    power, tdp = system.power_w_per_chip, chip.tdp_w
    if power is not None and tdp is not None and power.value < tdp.value * (1 - TOLERANCE):
        yield (
            f"{_at(catalog, 'systems', system.id)} power_w_per_chip = {power.value:,g} W is "
            f"below {_at(catalog, 'chips', chip.id)} tdp_w = {tdp.value:,g} W: a chip's "
            f"share of its system's IT power includes the accelerator itself"
        )


def _at(catalog: Catalog, kind: str, ident: str) -> str:
    return f"{catalog.origin.get(f'{kind}:{ident}', '?')} [{kind} id={ident}]"


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


def _differ(a: float, b: float) -> bool:
    return _rel(a, b) > TOLERANCE
