"""Prices as of a date: the catalog with the offers that were valid on that day.

Every offer states the period its prices held (``valid_from`` … ``valid_to``; month-only
dates mean the first or the last day of that month). ``prices_as_of`` keeps the offers
valid on the date and makes them the current ones, so every priced command answers with
that day's prices; a date before the oldest vintage or in the future is refused with the
vintages the catalog has.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import replace
from datetime import date

from chipmix.catalog.catalog import Catalog
from chipmix.catalog.offer import Offer
from chipmix.errors import InputError

__all__ = ["parse_date", "prices_as_of", "vintages"]

_DATE = re.compile(r"^(\d{4})-(\d{2})(?:-(\d{2}))?$")


def _day(text: str, *, end: bool) -> date:
    match = _DATE.match(text)
    if match is None:
        raise InputError(f"date {text!r} is not YYYY-MM-DD")
    year, month = int(match[1]), int(match[2])
    if match[3] is not None:
        return date(year, month, int(match[3]))
    return date(year, month, calendar.monthrange(year, month)[1] if end else 1)


def parse_date(text: str) -> date:
    """A ``YYYY-MM-DD`` date, or a clear error."""
    try:
        if _DATE.match(text) is None or text.count("-") != 2:
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(
            f"--prices-as-of must be a date as YYYY-MM-DD, e.g. 2025-05-01 (got {text!r})"
        ) from None


def vintages(catalog: Catalog) -> list[str]:
    """The dates the catalog's prices changed (every offer's ``valid_from``), oldest first."""
    return sorted({o.valid_from for o in catalog.offers.values()})


def _valid_on(offer: Offer, day: date) -> bool:
    start = _day(offer.valid_from, end=False)
    stop = None if offer.valid_to is None else _day(offer.valid_to, end=True)
    return start <= day and (stop is None or day <= stop)


def prices_as_of(catalog: Catalog, when: str | date, *, today: date | None = None) -> Catalog:
    """The catalog with only the offers valid on ``when``, each made current."""
    day = parse_date(when) if isinstance(when, str) else when
    known = vintages(catalog)
    oldest = _day(known[0], end=False) if known else None
    now = today or date.today()
    if oldest is None or day < oldest or day > now:
        why = "is in the future" if day > now else "is before the oldest price in the catalog"
        raise InputError(
            f"--prices-as-of {day.isoformat()} {why}; the catalog's price vintages are "
            f"{', '.join(known)} (any date from {known[0] if known else '—'} to today)"
        )
    offers = {
        k: o.model_copy(update={"valid_to": None})
        for k, o in catalog.offers.items()
        if _valid_on(o, day)
    }
    return replace(catalog, offers=offers)
