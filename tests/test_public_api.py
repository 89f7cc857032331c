"""The public surface of `chipmix`: what `import chipmix` exports, and that its results
convert to dicts and DataFrames. Adding or removing a public name is a decision: update
the list here in the same change (httpx ``tests/test_exported_members.py``)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import chipmix

EXPORTED = [
    "BudgetResult",
    "ChipmixError",
    "Comparison",
    "ComparisonRow",
    "Estimate",
    "FileFormatError",
    "InfeasibleError",
    "InputError",
    "Job",
    "Layout",
    "LayoutError",
    "ModelSpec",
    "PlanResult",
    "SearchResult",
    "ServeComparison",
    "ServeEstimate",
    "ServeRequest",
    "ServeSearchResult",
    "SimulationResult",
    "UnknownNameError",
    "budget",
    "compare",
    "estimate",
    "load_catalog",
    "load_model",
    "make_job",
    "plan",
    "preset_names",
    "search",
    "serve_compare",
    "serve_estimate",
    "serve_search",
    "simulate",
]


def test_all_is_pinned_and_sorted() -> None:
    assert chipmix.__all__ == EXPORTED
    assert chipmix.__all__ == sorted(chipmix.__all__)


def test_every_exported_name_exists_and_is_documented() -> None:
    for name in chipmix.__all__:
        member = getattr(chipmix, name)
        assert member.__doc__, name


def test_public_names_are_the_exported_ones() -> None:
    public = {n for n in dir(chipmix) if not n.startswith("_")}  # loaded or not yet
    modules = {n for n in public if type(getattr(chipmix, n)).__name__ == "module"}
    assert public - modules == set(EXPORTED)


def test_error_tree() -> None:
    assert issubclass(chipmix.InputError, chipmix.ChipmixError)
    assert issubclass(chipmix.UnknownNameError, chipmix.InputError)
    assert issubclass(chipmix.FileFormatError, chipmix.InputError)
    assert issubclass(chipmix.LayoutError, chipmix.InfeasibleError)
    assert issubclass(chipmix.InfeasibleError, chipmix.ChipmixError)


@pytest.fixture(scope="module")
def estimate() -> chipmix.Estimate:
    return chipmix.estimate(
        "llama3-70b", "h100-sxm", 64, tp=4, pp=4, dp=4, seq_len=8192, global_batch=128,
        tokens=1e12,
    )  # fmt: skip


def test_estimate_to_dict(estimate: chipmix.Estimate) -> None:
    out = estimate.to_dict()
    assert out["layout"] == estimate.layout.as_dict()
    assert out["mfu"] == estimate.mfu
    assert out["fits"] is True
    assert out["cost_usd"] == estimate.cost_usd
    json.dumps(out)  # plain data


def test_estimate_to_dataframe(estimate: chipmix.Estimate) -> None:
    frame = estimate.to_dataframe()
    assert isinstance(frame, pd.DataFrame)
    assert len(frame) == 1
    row = frame.iloc[0]
    assert row["step_time_s"] == estimate.step_time_s
    assert row["layout_tp"] == 4
    assert row["breakdown_pipeline_bubble"] == estimate.breakdown["pipeline_bubble"]


def test_search_to_dict_and_dataframe() -> None:
    result = chipmix.search("llama3-8b", "h100-sxm", 8, top=3, seq_len=4096, global_batch=64)
    assert len(result.top) == 3
    assert result.best is result.top[0]
    speeds = [e.tokens_per_s for e in result.top]
    assert speeds == sorted(speeds, reverse=True)
    out = result.to_dict()
    assert out["feasible"] >= 3
    assert out["tried"] >= out["feasible"]
    frame = result.to_dataframe()
    assert len(frame) == 3
    assert list(frame["tokens_per_s"]) == speeds


def test_estimate_takes_a_model_spec_and_a_job_builder() -> None:
    spec = chipmix.load_model("llama3-8b")
    job = chipmix.make_job(spec, seq_len=2048, global_batch=16)
    assert job.tokens_per_step == 2048 * 16
    e = chipmix.estimate(spec, "trn2", 16, seq_len=2048, global_batch=16)
    assert e.chips == 16
    assert e.layout.chips == 16


def test_bad_input_raises_the_documented_errors() -> None:
    with pytest.raises(chipmix.UnknownNameError, match="Did you mean"):
        chipmix.estimate("llama3-70b", "h100-sxn", 8)
    with pytest.raises(chipmix.InputError, match="seq_len"):
        chipmix.make_job("llama3-8b", seq_len=0)
    with pytest.raises(chipmix.LayoutError, match="≠ chips"):
        chipmix.estimate(
            "llama3-8b", "h100-sxm", 8, tp=2, pp=1, dp=2, cp=1, ep=1, vpp=1,
            micro_batch=1, zero=1, recompute="none",
        )  # fmt: skip
