"""The cost, time and energy of one run: moved to `chipmix.pricing` (below `layouts/`, which
prices every `Estimate` with it); these names stay importable from here."""

from __future__ import annotations

from chipmix.pricing import RunCost, cheapest_offers, run_cost

__all__ = ["RunCost", "cheapest_offers", "run_cost"]
