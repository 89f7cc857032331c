"""Work the planner does not repeat (issue 16): one layout search for every system with the
same figures, searches kept for later runs, and no sensitivity re-solve whose answer is
implied. None of them changes a plan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chipmix.catalog import load_catalog
from chipmix.common.cache import CACHE_ENV
from chipmix.layouts.best import search
from chipmix.planning.portfolio.objective import solve_objective
from chipmix.planning.portfolio.occupancy import compact
from chipmix.planning.portfolio.placements import SearchCache, candidates
from chipmix.planning.portfolio.problem import Problem
from chipmix.planning.portfolio.scenario_file import parse_scenario
from chipmix.planning.portfolio.search_store import SearchStore
from chipmix.planning.portfolio.sensitivity import binding_constraints
from chipmix.workload.make import make_job
from three_jobs import three_jobs

CAT = load_catalog()


@pytest.fixture
def no_kept_searches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache folder: no search of an earlier run is found."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    return tmp_path


def test_systems_with_the_same_figures_share_one_search(no_kept_searches: Path) -> None:
    # An AWS p5, an Azure ND H100 v5, an on-prem DGX H100 and the reference HGX H100 board:
    # the same chip, the same links.
    cache = SearchCache(CAT)
    job = make_job("llama3.2-1b", seq_len=4096, global_batch=256)
    first = cache.best(job, CAT.system("p5.48xlarge"), 16)
    for other in ("azure-nd-h100-v5", "dgx-h100", "hgx-h100"):
        shared = cache.best(job, CAT.system(other), 16)
        direct = search(
            "llama3.2-1b", other, 16, top=1, catalog=CAT, seq_len=4096, global_batch=256
        ).best
        assert shared.system.id == other
        assert shared.to_dict() == direct.to_dict()
        assert shared.tokens_per_s == first.tokens_per_s
    assert (cache.misses, cache.hits) == (1, 3)
    cache.best(job, CAT.system("p5.48xlarge"), 32)  # another chip count, another chip:
    cache.best(job, CAT.system("mi300x"), 16)  # a search each
    assert cache.misses == 3


def test_searches_are_kept_for_later_runs(no_kept_searches: Path) -> None:
    job = make_job("llama3.2-1b", seq_len=4096, global_batch=256)
    first = SearchCache(CAT)
    found = first.best(job, CAT.system("p5.48xlarge"), 16)
    assert first.misses == 1
    first.save()
    later = SearchCache(CAT)  # another run: nothing in memory, the folder kept the search
    again = later.best(job, CAT.system("p5.48xlarge"), 16)
    shared = later.best(job, CAT.system("azure-nd-h100-v5"), 16)
    assert (later.misses, later.hits) == (0, 2)
    assert again.to_dict() == found.to_dict()
    assert shared.system.id == "azure-nd-h100-v5"
    later.best(job, CAT.system("p5.48xlarge"), 32)  # not searched before: a search
    assert later.misses == 1


def test_a_kept_search_is_found_only_for_the_same_calibration_and_figures() -> None:
    p5, trn2 = CAT.system("p5.48xlarge"), CAT.system("trn2.48xlarge")
    kept = SearchStore(CAT.calibration.model_dump_json())
    other = SearchStore(CAT.calibration.model_dump_json() + " ")
    shape = "llama3.2-1b"
    assert kept.key(shape, p5, 16) != other.key(shape, p5, 16)
    assert kept.key(shape, p5, 16) != kept.key(shape, trn2, 16)
    assert kept.key(shape, p5, 16) != kept.key(shape, p5, 32)
    assert kept.key(shape, p5, 16) != kept.key("llama3-8b", p5, 16)


@pytest.mark.parametrize(
    ("constraints", "why"),
    [
        ({"vendor_caps": {"nvidia": 0.2}}, "a binding vendor cap: its removal and step re-run"),
        ({"vendor_caps": {"nvidia": 0.9}, "min_vendors": 2, "power_cap_mw": 50.0},
         "caps, a vendor minimum and a power cap the plan keeps unasked: all implied"),
        ({}, "capacity and deadlines only: steps implied by their removals"),
    ],
)  # fmt: skip
def test_skipping_implied_re_solves_reports_the_same_binding_constraints(
    constraints: dict[str, Any], why: str
) -> None:
    sc = parse_scenario(three_jobs(constraints), catalog=CAT)
    pb = Problem.of(sc, candidates(sc, SearchCache.shared(CAT)))
    base = solve_objective(pb, sc.objective)
    runs = compact(pb, base.chosen, base.reserved_units)
    skipped, solved = binding_constraints(pb, base, runs)
    every, all_solved = binding_constraints(pb, base, runs, skip_implied=False)
    assert [b.message for b in skipped] == [b.message for b in every], why
    assert [b.gain for b in skipped] == pytest.approx([b.gain for b in every], rel=1e-9)
    assert solved <= all_solved, why
    if "power_cap_mw" in constraints:
        assert base.joined == frozenset(), why
        assert solved < all_solved, why
