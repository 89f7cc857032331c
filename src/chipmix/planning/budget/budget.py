"""What a commitment buys, and what a goal costs: the budget view.

Forward (``usd`` given): spend a budget of B dollars over Y years on the offers and tiers
allowed, to maximize the tokens of model M trained (with ``model`` and ``tokens``) or the
peak compute bought (without). Reverse (``runs`` given): the least budget that trains K
runs of T tokens of M within Y years. Both are one linear program (HiGHS):

Sets and data
    O × K        the offers and their allowed price tiers
    π_{o,k}      effective $/chip-hour. Per-use tiers: the listed price. Reserved tiers:
                 price × billed hours ÷ (Y × 8766): commitments are renewed for Y years
                 and the last term is billed whole
    v_o          value per chip-hour: tokens/chip-hour of M on the offer's system at
                 ``chips`` chips (the layout search's best layout), or PFLOP-hours of the
                 chip's dense bf16 peak when no model is given
    cap_o        chips the offer can hold (``max_chips``; None: unlimited)

Variables
    z_{o,k} ≥ 0  chip-hours bought of offer o in tier k over the Y years

Forward:  max Σ v_o z_{o,k}                 Reverse:  min Σ π_{o,k} z_{o,k}
    (1) budget       Σ π z ≤ B                    (1') goal   Σ v_o z ≥ K·T
    (2) availability Σ_k z_{o,k} ≤ cap_o · Y · 8766          ∀ capped o
    (3) vendor caps  Σ_{o of v} π z ≤ κ_v · Σ π z               ∀ capped v
    (4) mix          Σ_{o in g} π z = μ_g · Σ π z               ∀ group g of the mix

The answer is per offer and tier: spend, chip-hours, average chips held (chip-hours ÷ Y
years), PFLOP-days (chip-hours × dense bf16 peak), tokens and runs of M. What it ignores:
when within the Y years the chips are used (no deadlines: that is `plan`'s job), failures
and restarts (`sim`), price changes over the years (today's catalog prices hold).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from chipmix.catalog.catalog import Catalog, load_catalog
from chipmix.catalog.chip import Precision
from chipmix.catalog.offer import PRICE_TIERS, Offer, PriceTier
from chipmix.errors import InfeasibleError, InputError, UnknownNameError
from chipmix.planning.budget.lp import solve_lp
from chipmix.planning.budget.options import (
    HOURS_PER_YEAR,
    Option,
    buy_options,
    vendor_of,
)
from chipmix.planning.budget.result import BudgetLine, BudgetResult, with_serving
from chipmix.planning.budget.serving import ServeRequest, serving_options
from chipmix.workload.job import Mode
from chipmix.workload.model import ModelSpec

__all__ = ["HOURS_PER_YEAR", "BudgetLine", "BudgetResult", "budget"]

DEFAULT_RUN_CHIPS = 4096
"""Chips per training run when throughput is looked up (clipped to a system's limit)."""


def budget(
    usd: float | None = None,
    years: float = 1.0,
    *,
    offers: Sequence[str] | None = None,
    mix: Mapping[str, float] | None = None,
    vendor_caps: Mapping[str, float] | None = None,
    tiers: Sequence[str] | None = None,
    max_chips: int | None = None,
    model: str | ModelSpec | None = None,
    tokens: float | None = None,
    runs: float | None = None,
    chips: int = DEFAULT_RUN_CHIPS,
    mode: Mode = "pretrain",
    seq_len: int = 4096,
    global_batch: int = 1024,
    precision: Precision = "bf16",
    stack: str | None = None,
    catalog: Catalog | str | Path | None = None,
    serve: ServeRequest | None = None,
) -> BudgetResult:
    """What ``usd`` buys over ``years`` (forward), or what ``runs`` runs of ``tokens``
    tokens of ``model`` cost (reverse; give ``runs`` instead of ``usd``).

    ``offers``: catalog offer ids, or system/chip ids meaning every current offer of them
    (default: every current offer). ``mix``: fixed spend shares by vendor, cloud or offer
    id (e.g. ``{"nvidia": 0.5, "google": 0.3}``; exclusive with ``offers``).
    ``vendor_caps``: largest spend share per vendor. ``tiers``: price tiers allowed
    (default: every priced tier but spot). ``max_chips``: chips each offer can hold.
    ``serve``: what the budget buys in served output tokens (`ServeRequest`; forward only;
    with a training model too, its ``share`` of the spend goes to serving).
    """
    started = time.perf_counter()
    cat = catalog if isinstance(catalog, Catalog) else load_catalog(catalog)
    direction = _direction(usd, runs, model, tokens, years)
    if offers is not None and mix is not None:
        raise InputError("give offers or a mix, not both (a mix names the offers' groups)")
    if max_chips is not None and max_chips < 1:
        raise InputError(f"max_chips must be at least 1 (got {max_chips})")
    if chips < 1:
        raise InputError(f"chips must be at least 1 (got {chips})")
    chosen_tiers = _tiers(tiers)
    pool = _offers(cat, offers)
    caps = _shares("vendor cap", vendor_caps or {}, _vendors(cat), allow_full=True)
    job = None
    if model is not None:
        from chipmix.workload.make import make_job

        job = make_job(
            model, mode=mode, seq_len=seq_len, global_batch=global_batch, precision=precision,
            stack=stack, tokens=tokens,
        )  # fmt: skip
    hours = years * HOURS_PER_YEAR
    skipped: dict[str, str] = {}
    options = buy_options(cat, pool, chosen_tiers, job, chips, max_chips, hours, skipped)
    serving: list[Option] = []
    if serve is not None:
        if direction != "forward":
            raise InputError("serving needs a budget (usd): what it buys in served tokens")
        if job is not None and serve.share is None:
            raise InputError(
                "give the serving share of the budget (serve_share, 0-1) with both a "
                "training model and a serving model"
            )
        serving = serving_options(cat, pool, chosen_tiers, max_chips, hours, serve, skipped)
        if job is None:
            options = []
        else:  # both blocks' values relative to their best offer
            best = max(o.value for o in options) if options else 1.0
            top = max(o.value for o in serving)
            serving = [replace(o, value=o.value / top * best) for o in serving]
    options = options + serving
    if not options:
        raise InfeasibleError(
            "no offer can be bought: " + "; ".join(f"{k}: {v}" for k, v in sorted(skipped.items()))
        )
    groups = _mix_groups(cat, mix or {}, options)
    if serve is not None and job is not None and serve.share is not None:
        first = len(options) - len(serving)
        groups.append(("serving", serve.share, list(range(first, len(options)))))
    z = solve_lp(options, direction, usd, runs, tokens, caps, groups, cat)
    result = _result(
        cat, options, z, direction, usd, years, job, chips, tokens, caps, mix, skipped,
        time.perf_counter() - started,
    )  # fmt: skip
    return result if serve is None else with_serving(result, serve)


# -- input -----------------------------------------------------------------------------------
def _direction(
    usd: float | None,
    runs: float | None,
    model: str | ModelSpec | None,
    tokens: float | None,
    years: float,
) -> str:
    if not (isinstance(years, int | float) and 0 < years <= 30 and math.isfinite(years)):
        raise InputError(f"years must be a number in (0, 30] (got {years!r})")
    if (usd is None) == (runs is None):
        raise InputError(
            "give a budget (usd: what it buys) or a number of runs (runs: the budget they "
            "need), exactly one" + (" — both were given" if usd is not None else "")
        )
    if (model is None) != (tokens is None):
        raise InputError("give model and tokens together (tokens per training run of model)")
    if usd is not None and not (math.isfinite(usd) and usd > 0):
        raise InputError(f"usd must be a positive number of dollars (got {usd!r})")
    if runs is not None:
        if model is None:
            raise InputError("runs needs a model and its tokens per run (model=…, tokens=…)")
        if not (math.isfinite(runs) and runs > 0):
            raise InputError(f"runs must be a positive number (got {runs!r})")
    if tokens is not None and not (math.isfinite(tokens) and tokens > 0):
        raise InputError(f"tokens must be a positive number (got {tokens!r})")
    return "forward" if usd is not None else "reverse"


def _tiers(tiers: Sequence[str] | None) -> tuple[PriceTier, ...]:
    if tiers is None:
        return tuple(t for t in PRICE_TIERS if t != "spot")
    out: list[PriceTier] = []
    for name in tiers:
        match = next((t for t in PRICE_TIERS if t == name), None)
        if match is None:
            raise UnknownNameError("price tier", name, PRICE_TIERS)
        out.append(match)
    return tuple(dict.fromkeys(out))


def _vendors(cat: Catalog) -> list[str]:
    return sorted({c.vendor for c in cat.chips.values()})


def _offers(cat: Catalog, names: Sequence[str] | None) -> list[Offer]:
    current = [o for o in cat.offers.values() if o.current]
    if names is None:  # training answers: inference-only and announced chips when named only
        return [o for o in current if cat.chips[cat.systems[o.system].chip].use == "training"]
    out: dict[str, Offer] = {}
    valid = sorted(set(cat.offers) | set(cat.systems) | set(cat.chips))
    for name in names:
        if name in cat.offers:
            out[name] = cat.offers[name]
            continue
        matched = [o for o in current if o.system == name or cat.systems[o.system].chip == name]
        if not matched:
            if name in cat.systems or name in cat.chips:
                raise InputError(f"no current offer rents {name!r} in the catalog")
            raise UnknownNameError("offer, system or chip", name, valid)
        out |= {o.id: o for o in matched}
    return list(out.values())


def _shares(
    kind: str, shares: Mapping[str, float], valid: Sequence[str], *, allow_full: bool
) -> dict[str, float]:
    out = {}
    for name, share in shares.items():
        if name not in valid:
            raise UnknownNameError(kind.split()[0], name, valid)
        if not (0 < share <= 1 if allow_full else 0 <= share <= 1):
            raise InputError(f"{kind} of {name} must be in (0, 1] (got {share!r})")
        out[name] = float(share)
    return out


def _mix_groups(
    cat: Catalog, mix: Mapping[str, float], options: list[Option]
) -> list[tuple[str, float, list[int]]]:
    """Each mix key (vendor, cloud or offer id) with its share and the options it covers."""
    if not mix:
        return []
    vendors = _vendors(cat)
    clouds = sorted({o.cloud for o in cat.offers.values()})
    valid = sorted(set(vendors) | set(clouds) | set(cat.offers))
    total = 0.0
    out = []
    for key, share in mix.items():
        if key not in valid:
            raise UnknownNameError("mix key (vendor, cloud or offer)", key, valid)
        if not 0 <= share <= 1:
            raise InputError(f"mix share of {key} must be in [0, 1] (got {share!r})")
        members = [
            i
            for i, opt in enumerate(options)
            if key in (opt.offer.id, opt.offer.cloud, vendor_of(cat, opt.offer))
        ]
        if share > 0 and not members:
            raise InputError(f"mix names {key!r} but no priced offer of it can be bought")
        total += share
        out.append((key, float(share), members))
    if total > 1 + 1e-9:
        shown = ", ".join(f"{k} {s:.0%}" for k, s in mix.items())
        raise InputError(f"the mix's shares sum to {total:.0%} ({shown}); they must not pass 100%")
    return out


def _result(
    cat: Catalog,
    options: list[Option],
    z: np.ndarray[Any, np.dtype[np.float64]],
    direction: str,
    usd: float | None,
    years: float,
    job: Any,
    chips: int,
    tokens: float | None,
    caps: dict[str, float],
    mix: Mapping[str, float] | None,
    skipped: dict[str, str],
    seconds: float,
) -> BudgetResult:
    hours = years * HOURS_PER_YEAR
    spend_total = float(sum(o.price * z[i] for i, o in enumerate(options)))
    lines = []
    vendor_spend: dict[str, float] = {}
    for i, o in enumerate(options):
        if z[i] <= 1e-6:
            continue
        offer = o.offer
        system = cat.systems[offer.system]
        vendor = vendor_of(cat, offer)
        spend = o.price * float(z[i])
        vendor_spend[vendor] = vendor_spend.get(vendor, 0.0) + spend
        line_tokens = None if o.tokens_per_chip_hour is None else o.tokens_per_chip_hour * z[i]
        runs = None if line_tokens is None or not tokens else float(line_tokens) / tokens
        lines.append(
            BudgetLine(
                offer=offer.id,
                cloud=offer.cloud,
                region=offer.region,
                system=offer.system,
                chip=system.chip,
                vendor=vendor,
                tier=o.tier,
                usd_per_chip_hour=o.price,
                spend_usd=spend,
                share=spend / spend_total if spend_total else 0.0,
                chip_hours=float(z[i]),
                chips_held=float(z[i]) / hours,
                pflop_days=float(z[i]) * o.pflop_hours_per_chip_hour / 24.0,
                tokens=None if line_tokens is None else float(line_tokens),
                runs=runs,
                run_days=o.run_days,
                runs_p10=None if runs is None or o.factors is None else runs * o.factors[0],
                runs_p90=None if runs is None or o.factors is None else runs * o.factors[1],
                evidence=o.evidence,
                extrapolated=o.extrapolated,
                run_chips=o.run_chips,
                price_flag=offer.flag(o.tier),
                offer_date=offer.valid_from,
                served_tokens=None
                if o.served_tokens_per_chip_hour is None
                else o.served_tokens_per_chip_hour * float(z[i]),
                replica=o.replica,
            )
        )
    lines.sort(key=lambda line: -line.spend_usd)
    total_tokens = None if job is None else sum(line.tokens or 0.0 for line in lines)
    return BudgetResult(
        direction=direction,
        usd=usd if usd is not None else spend_total,
        years=years,
        lines=lines,
        spend_usd=spend_total,
        chip_hours=sum(line.chip_hours for line in lines),
        pflop_days=sum(line.pflop_days for line in lines),
        model=None if job is None else job.model.name,
        tokens_per_run=tokens,
        chips_per_run=None if job is None else chips,
        tokens=total_tokens,
        runs=None if total_tokens is None or not tokens else total_tokens / tokens,
        vendor_spend=vendor_spend,
        vendor_caps=caps,
        mix=dict(mix or {}),
        skipped=skipped,
        status="optimal",
        solve_s=seconds,
    )
