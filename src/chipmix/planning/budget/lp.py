"""The budget LP (formulated in `chipmix.planning.budget.budget`), solved with HiGHS, and
why it has no answer when it has none."""

from __future__ import annotations

from typing import Any

import numpy as np

from chipmix.catalog.catalog import Catalog
from chipmix.errors import InfeasibleError
from chipmix.planning.budget.options import Option, vendor_of

__all__ = ["solve_lp"]


def solve_lp(
    options: list[Option],
    direction: str,
    usd: float | None,
    runs: float | None,
    tokens: float | None,
    caps: dict[str, float],
    groups: list[tuple[str, float, list[int]]],
    cat: Catalog,
) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Chip-hours per option (the LP of the module docstring).

    Scaled for HiGHS's tolerances: the variables are millions of chip-hours, so prices are
    $M per million chip-hours (= $/chip-hour, near 1-20) and values are relative to the
    best offer's (at most 1)."""
    from chipmix.planning.portfolio.solver import highspy_module, new_highs

    highspy = highspy_module()
    n = len(options)
    unit = 1e6  # chip-hours per variable unit
    price = np.array([o.price for o in options])  # $M per million chip-hours
    value = np.array([o.value for o in options])
    scale = float(value.max()) or 1.0
    value = value / scale
    h = new_highs(highspy)
    inf = highspy.kHighsInf
    lower = np.zeros(n)
    upper = np.array(
        [inf if o.cap_chip_hours is None else o.cap_chip_hours / unit for o in options]
    )
    cost = -value if direction == "forward" else price
    h.addVars(n, lower, upper)
    h.changeColsCost(n, np.arange(n, dtype=np.int32), cost)
    idx = np.arange(n, dtype=np.int32)

    def row(lo: float, hi: float, cols: Any, vals: Any) -> None:
        cols = np.asarray(cols, dtype=np.int32)
        h.addRow(lo, hi, len(cols), cols, np.asarray(vals, dtype=np.float64))

    if direction == "forward":
        assert usd is not None
        row(-inf, usd / 1e6, idx, price)  # (1) budget
    else:
        assert runs is not None
        assert tokens is not None
        row(runs * tokens / (scale * unit), inf, idx, value)  # (1') goal
    by_offer: dict[str, list[int]] = {}
    for i, o in enumerate(options):
        by_offer.setdefault(o.offer.id, []).append(i)
    for members in by_offer.values():  # (2) availability, shared by an offer's tiers
        cap = options[members[0]].cap_chip_hours
        if cap is not None and len(members) > 1:
            row(-inf, cap / unit, members, np.ones(len(members)))
    for vendor, kappa in caps.items():  # (3) vendor caps
        mine = np.array([vendor_of(cat, o.offer) == vendor for o in options], dtype=np.float64)
        row(-inf, 0.0, idx, price * (mine - kappa))
    for _, share, members in groups:  # (4) mix
        mine = np.zeros(n)
        mine[members] = 1.0
        row(0.0, 0.0, idx, price * (mine - share))
    h.run()
    status = h.getModelStatus()
    if status != highspy.HighsModelStatus.kOptimal:
        word = h.modelStatusToString(status)
        raise InfeasibleError(why_not(direction, usd, runs, tokens, options, caps, groups, word))
    values = np.array(h.getSolution().col_value, dtype=np.float64)
    return np.maximum(values, 0.0) * unit


def why_not(
    direction: str,
    usd: float | None,
    runs: float | None,
    tokens: float | None,
    options: list[Option],
    caps: dict[str, float],
    groups: list[tuple[str, float, list[int]]],
    word: str,
) -> str:
    if direction == "reverse" and runs is not None and tokens is not None:
        capped = all(o.cap_chip_hours is not None for o in options)
        if capped:
            best: dict[str, float] = {}
            for o in options:
                assert o.cap_chip_hours is not None
                assert o.tokens_per_chip_hour is not None
                best[o.offer.id] = max(
                    best.get(o.offer.id, 0.0), o.cap_chip_hours * o.tokens_per_chip_hour
                )
            most = sum(best.values())
            return (
                f"{runs:g} runs of {tokens:.3g} tokens need {runs * tokens:.3g} tokens; the "
                f"offers' capacity holds at most {most:.3g} ({most / tokens:.3g} runs) in the "
                "period; raise max_chips or years, or add offers"
            )
    if groups:
        return f"the mix cannot be met by the offers allowed (HiGHS: {word})"
    if caps:
        return f"the vendor caps cannot be met by the offers allowed (HiGHS: {word})"
    return f"no purchase meets the request (HiGHS: {word})"
