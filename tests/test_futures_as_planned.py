"""`plan`'s P(every deadline met) and `plan --futures` sample one error model: each
placement's prediction-error distribution (`chipmix.uncertainty`), one draw per chip. With
the model's error as the only source, the futures' deterministic plan held as planned meets
its deadlines as often as `plan` says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chipmix.catalog.catalog import load_catalog
from chipmix.planning.futures.as_planned import as_planned, plan_runs
from chipmix.planning.futures.sample import model_errors, sample_futures
from chipmix.planning.futures.sources import FuturesSpec
from chipmix.planning.portfolio.placements import SearchCache, candidates
from chipmix.planning.portfolio.planner import plan
from chipmix.planning.portfolio.problem import Problem
from chipmix.planning.portfolio.scenario_file import load_scenario

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "frontier-lab-2026.yaml"


def test_plan_and_futures_agree_on_the_example() -> None:
    cat = load_catalog()
    sc = load_scenario(EXAMPLE, catalog=cat)
    result = plan(sc, catalog=cat, sensitivity=False, single_vendor=False)
    assert result.deadline_probability is not None
    pb = Problem.of(sc, candidates(sc, SearchCache.shared(cat)))
    runs = plan_runs(pb, result)
    assert len(runs) == len(result.allocations)
    drawn = sample_futures(pb, FuturesSpec(), cat, 4000, seed=0)
    p = as_planned(pb, runs, drawn)
    assert p == pytest.approx(result.deadline_probability, abs=0.03)
    # the futures' error is each placement's own, as the plan's is
    log_m, log_s = model_errors(pb, cat)
    for (i, _), a in zip(runs, result.allocations, strict=True):
        err = pb.candidates.placements[i].estimate.error
        assert err is not None
        assert (log_m[i], log_s[i]) == (err.log_median, err.log_sigma)
        assert a.deadline_probability is not None
    # nothing drawn but the model's error: a future's factor is exp(−(m + s·z_chip))
    factor = drawn[0].time_factor[[i for i, _ in runs]]
    assert np.all(factor > 0)
