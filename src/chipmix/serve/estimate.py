"""Serving predictions for users: one layout, the best layouts, every chip side by side.

These functions take a catalog and a serving calibration and return typed results; the
public façade (``chipmix.serve_estimate`` …) and the CLI call them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from chipmix.catalog.catalog import Catalog
from chipmix.catalog.offer import PriceTier
from chipmix.catalog.system import ResolvedSystem
from chipmix.errors import InfeasibleError, InputError
from chipmix.serve.batching import ServeMetrics, disaggregated_ratio, evaluate_serving
from chipmix.serve.calibration import ServeCalibration
from chipmix.serve.forward import ServeSetup, serve_setup
from chipmix.serve.job import ServeJob
from chipmix.serve.layout import ReplicaBatch
from chipmix.serve.prices import chip_hour_prices
from chipmix.serve.results import (
    CurvePoint,
    ServeComparison,
    ServeComparisonRow,
    ServeEstimate,
    ServeSearchResult,
)
from chipmix.serve.search import ServeOutcome, Targets, run_serve_search
from chipmix.uncertainty.evidence import evidence_for
from chipmix.uncertainty.interval import UNSEEN_FLAG_WIDENING, serving_error_model

__all__ = ["compare_serving", "estimate_serving", "search_serving", "targets_ms"]

PINNABLE = ("tp", "pp", "ep", "batch")


def targets_ms(ttft_p99_ms: float | None, tpot_p99_ms: float | None) -> Targets:
    return Targets(
        None if ttft_p99_ms is None else ttft_p99_ms / 1e3,
        None if tpot_p99_ms is None else tpot_p99_ms / 1e3,
    )


def _pins(pins: dict[str, int | None]) -> dict[str, int]:
    out = {}
    for axis, value in pins.items():
        if value is None:
            continue
        if axis not in PINNABLE:
            raise InputError(f"unknown serving layout axis {axis!r}; valid: {', '.join(PINNABLE)}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"serving layout {axis} must be a whole number ≥ 1 (got {value!r})")
        out[axis] = value
    return out


def _curve(outcome: ServeOutcome, i: int) -> list[CurvePoint]:
    m, best = outcome.all_metrics, outcome.metrics.layouts.layout(i)
    lay = m.layouts
    same = (lay.tp == best.tp) & (lay.pp == best.pp) & (lay.ep == best.ep) & m.fits
    index = np.flatnonzero(same)
    index = index[np.argsort(lay.batch[index])]
    return [
        CurvePoint(int(lay.batch[j]), float(m.tokens_per_s_per_chip[j]),
                   float(m.ttft_p99_s[j]) * 1e3, float(m.tpot_p99_s[j]) * 1e3)
        for j in index
    ]  # fmt: skip


def _estimate(
    s: ServeSetup, cat: Catalog, serving: ServeCalibration, outcome: ServeOutcome, i: int
) -> ServeEstimate:
    m: ServeMetrics = outcome.metrics
    one = m.layouts.take(np.array([i]))
    ratio = float(disaggregated_ratio(s, one)[0])
    stack = serving.stack_name(s.job.stack, s.system.chip.vendor)
    prices = chip_hour_prices(cat, s.system)
    est = ServeEstimate.from_metrics(
        s.job, s.system, stack, m, i, ratio, prices, _curve(outcome, i)
    )
    return _with_error(est, cat)


def _with_error(est: ServeEstimate, cat: Catalog) -> ServeEstimate:
    """The estimate with its evidence and p10–p90: the serving error model's distribution
    for its evidence class (held-out errors of published serving rows)."""
    model = serving_error_model()
    evidence = evidence_for(
        model.envelope, cat.calibration, chip=est.system.chip.id, stack=est.stack,
        precision=est.job.precision, chips=est.chips, mode="serving",
    )  # fmt: skip
    error = model.for_evidence(evidence)
    held = sum(r.split == "source" and "serving" in r.flags for r in model.residuals)
    basis = (
        f"measured: leave-one-source-out errors of {held} published serving rows, "
        f"class {error.level} ({error.rows} rows of its own)"
        if held
        else "assumed: training errors widened (no serving residuals in the data file)"
    )
    if held and error.assumed:
        basis += f"; widened ×{UNSEEN_FLAG_WIDENING} per flag no serving row carried (assumed)"
    return replace(est, evidence=evidence, error=error, error_basis=basis)


def _setup(
    cat: Catalog, serving: ServeCalibration, job: ServeJob, system: str | ResolvedSystem
) -> ServeSetup:
    resolved = system if isinstance(system, ResolvedSystem) else cat.system(system)
    return serve_setup(job, resolved, cat.calibration, serving)


def search_serving(
    cat: Catalog,
    serving: ServeCalibration,
    job: ServeJob,
    system: str | ResolvedSystem,
    chips: int,
    *,
    targets: Targets = Targets(),
    pins: dict[str, int | None] | None = None,
    top: int = 5,
) -> ServeSearchResult:
    """The best replica layouts and batches on ``chips`` chips under ``targets``."""
    if isinstance(chips, bool) or not isinstance(chips, int) or not 1 <= chips <= 10**6:
        raise InputError(f"chips must be a whole number between 1 and 1,000,000 (got {chips!r})")
    s = _setup(cat, serving, job, system)
    outcome = run_serve_search(s, chips, targets, _pins(pins or {}))
    count = min(top, outcome.feasible)
    return ServeSearchResult(
        [_estimate(s, cat, serving, outcome, i) for i in range(count)],
        outcome.tried, outcome.feasible, outcome.rejected,
        None if targets.ttft_p99_s is None else targets.ttft_p99_s * 1e3,
        None if targets.tpot_p99_s is None else targets.tpot_p99_s * 1e3,
    )  # fmt: skip


def estimate_serving(
    cat: Catalog,
    serving: ServeCalibration,
    job: ServeJob,
    system: str | ResolvedSystem,
    chips: int,
    *,
    targets: Targets = Targets(),
    pins: dict[str, int | None] | None = None,
) -> ServeEstimate:
    """One prediction: the given layout (all of tp, pp, batch pinned) or the best one."""
    return search_serving(cat, serving, job, system, chips, targets=targets, pins=pins, top=1).best


def compare_serving(
    cat: Catalog,
    serving: ServeCalibration,
    job: ServeJob,
    *,
    systems: Sequence[str] | None = None,
    chips: int = 64,
    targets: Targets = Targets(),
    price_tier: PriceTier = "on-demand",
    tokens_per_day: float | None = None,
) -> ServeComparison:
    """Every chip's reference system (or ``systems``) serving ``job`` on ``chips`` chips:
    the row of each is what `estimate_serving` gives for it."""
    if tokens_per_day is not None and not tokens_per_day > 0:
        raise InputError(f"tokens per day must be > 0 (got {tokens_per_day!r})")
    names = (  # announced parts only when named: nobody serves on them yet
        list(systems)
        if systems
        else sorted(
            c
            for c, chip in cat.chips.items()
            if chip.vendor != "cpu" and chip.status != "announced"
        )
    )
    rows = []
    for name in names:
        resolved = cat.system(name)
        try:
            est = estimate_serving(cat, serving, job, resolved, chips, targets=targets)
        except (InfeasibleError, InputError) as exc:
            rows.append(ServeComparisonRow(resolved, None, str(exc)))
            continue
        need = est.chips_for(tokens_per_day) if tokens_per_day else None
        rows.append(ServeComparisonRow(resolved, est, None, need))

    def rank(r: ServeComparisonRow) -> tuple[int, float]:
        e = r.estimate
        if e is None:
            return (2, 0.0)
        price = e.usd_per_million_tokens.get(price_tier)
        return (0, price) if price is not None else (1, -e.tokens_per_s_per_chip)

    rows.sort(key=rank)
    return ServeComparison(rows, price_tier, tokens_per_day)


def evaluate_layouts(s: ServeSetup, layouts: ReplicaBatch) -> ServeMetrics:
    """Predictions for given layouts, fitting or not (the validation's fixed-layout path)."""
    return evaluate_serving(s, layouts)
