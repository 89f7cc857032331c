"""`plan --futures` on serving demand: each future's per-use prices and the performance
sources' run-time factors apply to the serving replicas as to the runs; the demand is held
in every future."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

import chipmix
from chipmix.catalog.catalog import load_catalog
from chipmix.planning.futures.analysis import _nominal, futures
from chipmix.planning.futures.recourse import FirstStage, future_problem, recourse
from chipmix.planning.portfolio.placements import SearchCache, candidates, reference_peak
from chipmix.planning.portfolio.problem import Problem
from chipmix.planning.portfolio.scenario_file import parse_scenario
from chipmix.planning.portfolio.serving import serving_options

CAT = load_catalog()
H100 = "aws-p5.48xlarge-us-east-1-2025-06"
D = 2e9
"""Output tokens a day."""


CHAT = {"name": "chat", "model": "llama3-8b", "input_len": 2000, "output_len": 300,
        "tokens_per_day": D, "ttft_p99_ms": 2000, "tpot_p99_ms": 100}  # fmt: skip


def scenario(*sources: dict[str, Any]) -> dict[str, Any]:
    """Serving only, one offer, four weeks in two periods."""
    return {
        "name": "serve-futures",
        "start": "2026-01-05",
        "end": "2026-02-01",
        "offers": [{"catalog": H100, "tiers": ["on-demand"]}],
        "serving": [CHAT],
        "solver": {"period_days": 14, "single_vendor_baseline": False, "sensitivity": False},
        "futures": {"default_performance": False, "sources": list(sources)},
    }


def problem() -> Problem:
    sc = parse_scenario(scenario(), catalog=CAT)
    cands = candidates(sc, SearchCache.shared(CAT))
    cands.serving = serving_options(sc, CAT, reference_peak(CAT))
    return Problem.of(sc, cands)


def test_a_future_prices_and_slows_the_replicas() -> None:
    pb = problem()
    nominal = _nominal(pb)
    base = recourse(pb, nominal, FirstStage("plan"), penalty_usd=1e12)
    assert base.unserved == 0
    dear = recourse(pb, replace(nominal, price_factor=np.full(1, 2.0)), FirstStage("plan"), 1e12)
    assert dear.cost_usd == pytest.approx(2 * base.cost_usd)
    slow = replace(nominal, perf={"h100-sxm": 2.0})
    z, fz = pb.serving, future_problem(pb, slow, {}).serving
    assert z is not None
    assert fz is not None
    np.testing.assert_allclose(fz.tokens_per_day, z.tokens_per_day / 2)
    best = chipmix.serve_estimate("llama3-8b", "p5.48xlarge", 64, input_len=2000,
                                  output_len=300, ttft_p99_ms=2000, tpot_p99_ms=100)  # fmt: skip
    r = best.layout.replica_chips
    per_replica = best.tokens_per_s_per_chip * r * 86400
    assert fz.upper.tolist() == [math.ceil(2 * D / per_replica - 1e-9)] * len(fz)
    slower = recourse(pb, slow, FirstStage("plan"), 1e12)
    assert slower.unserved == 0
    ratio = math.ceil(2 * D / per_replica - 1e-9) / math.ceil(D / per_replica - 1e-9)
    assert slower.cost_usd == pytest.approx(ratio * base.cost_usd)


def test_plan_futures_carries_the_price_source_to_serving() -> None:
    price = {"kind": "price", "dist": "fixed", "value": 1.5, "source": "assumption: test"}
    result = futures(scenario(price), 2, catalog=CAT)
    planned = chipmix.plan(scenario(), catalog=CAT).cost_usd
    det = result.stage(result.deterministic)
    assert det.cost_mean_usd == pytest.approx(1.5 * planned, rel=1e-6)
    assert det.p_all_met == 1.0


def test_a_replica_serves_only_while_its_offer_is_delivered_and_up() -> None:
    pb = problem()
    nominal = _nominal(pb)
    z = pb.serving
    assert z is not None
    first = z.period == 0
    # Delivered a quarter into the first period: three quarters of its tokens there.
    late = replace(nominal, delay_h=np.full(1, 0.25 * pb.period_h))
    fz = future_problem(pb, late, {}).serving
    assert fz is not None
    np.testing.assert_allclose(fz.tokens_per_day[first], 0.75 * z.tokens_per_day[first])
    np.testing.assert_allclose(fz.tokens_per_day[~first], z.tokens_per_day[~first])
    # Out for the whole second period: nothing served there, the demand left unserved.
    out = replace(nominal, outages=((0, pb.period_h, 2 * pb.period_h),))
    fz = future_problem(pb, out, {}).serving
    assert fz is not None
    assert (fz.tokens_per_day[~first] == 0).all()
    assert (fz.upper[~first] == 0).all()
    short = recourse(pb, out, FirstStage("plan"), penalty_usd=1e12)
    assert short.unserved == pytest.approx(1.0)
    base = recourse(pb, nominal, FirstStage("plan"), penalty_usd=1e12)
    # The unserved period is charged (served late at its cheapest replica's rate), so the
    # outage does not make the future cheaper than the replica-rounded plan by more than
    # the rounding.
    assert 0.9 * base.cost_usd < short.cost_usd <= base.cost_usd
