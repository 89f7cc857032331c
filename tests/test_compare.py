"""`chipmix compare` (issue 3): one job on every system, sized by chips, deadline or
budget, ranked by cost; the Python API and the CLI."""

from __future__ import annotations

import itertools
import json
import math
import sys
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

import chipmix
from chipmix.cli import app, main
from chipmix.planning.comparison.compare import DEFAULT_CHIPS, compare
from chipmix.planning.comparison.result import Comparison
from chipmix.planning.comparison.sizing import ladder

runner = CliRunner()

# The bundled example (README, scripts/demo): Llama 3 70B on 15T tokens.
JOB: dict[str, Any] = {"seq_len": 8192, "global_batch": 2048}
DEMO = [
    "compare", "--model", "llama3-70b", "--tokens", "15e12", "--seq-len", "8192",
    "--global-batch", "2048",
]  # fmt: skip
SUBSET = "h100-sxm,trn2,tpu-v5p,mi300x,gaudi3"


@pytest.fixture(scope="module")
def every_chip() -> Comparison:
    return compare("llama3-70b", tokens=15e12, **JOB)


def test_llama3_70b_lists_ten_chips_of_four_vendors(every_chip: Comparison) -> None:
    c = every_chip
    assert c.sizing == "chips"
    assert c.sizing_is_default
    assert c.target == DEFAULT_CHIPS
    timed = [r for r in c.feasible if r.time_to_train_h and r.time_to_train_h > 0]
    priced = [r for r in timed if r.cost_usd is not None and r.cost_usd > 0]
    assert len({r.system.chip.id for r in timed}) >= 10
    assert len({r.system.chip.vendor for r in timed}) >= 4
    assert len({r.system.chip.id for r in priced}) >= 10
    # NVIDIA, AWS, Google and AMD (Azure ND MI300X v5) chips are priced; Intel rows carry
    # time and energy, and "—" for cost.
    assert len({r.system.chip.vendor for r in priced}) >= 4


def test_one_row_per_chip_and_none_dropped(every_chip: Comparison) -> None:
    cat = chipmix.load_catalog()
    # Every training chip one can rent or buy; announced and inference-only parts only when
    # named (issue 15).
    trained = [c.id for c in cat.chips.values() if c.status == "available" and c.use == "training"]
    assert sorted(r.system.chip.id for r in every_chip.rows) == sorted(trained)
    for r in every_chip.infeasible:
        assert r.reason
        assert r.rank is None
    # TPU v5e / v6e slices hold 256 chips; 1,024 is four of them joined over DCN (Multislice,
    # issue 15), while TPU7x's 256-chip pod has no Multislice and says so.
    v5e = next(r for r in every_chip.rows if r.system.chip.id == "tpu-v5e")
    assert v5e.feasible
    assert v5e.chips == 1024
    row = compare("llama3-70b", tokens=15e12, chips=1024, systems="tpu-v7-256", **JOB).rows[0]
    assert not row.feasible
    assert row.reason is not None
    assert "max_chips" in row.reason
    assert "256" in row.reason


def test_ranked_by_cost_with_fastest_and_cheapest_marked(every_chip: Comparison) -> None:
    rows = every_chip.rows
    priced = [r for r in rows if r.cost_usd is not None]
    costs = [r.cost_usd for r in priced]
    assert costs == sorted(costs)
    assert rows[: len(priced)] == priced, "priced plans come first"
    assert [r.rank for r in every_chip.feasible] == list(range(1, len(every_chip.feasible) + 1))
    assert sum(r.fastest for r in rows) == 1
    assert sum(r.cheapest for r in rows) == 1
    fastest, cheapest = every_chip.fastest, every_chip.cheapest
    assert fastest is not None
    assert cheapest is not None
    assert cheapest is priced[0]
    assert fastest.time_to_train_h == min(r.time_to_train_h or math.inf for r in rows)


def test_rows_agree_with_estimate_row_by_row(every_chip: Comparison) -> None:
    for r in every_chip.feasible:
        e = chipmix.estimate("llama3-70b", r.system.id, r.chips, tokens=15e12, **JOB)
        assert r.estimate is not None
        assert e.layout == r.estimate.layout, r.system.id
        assert e.tokens_per_s == pytest.approx(r.estimate.tokens_per_s, rel=1e-12)
        if r.cost_usd is None:
            assert e.cost_usd is None
        else:
            assert e.cost_usd == pytest.approx(r.cost_usd, rel=1e-12)
        assert e.run is not None
        assert e.run.time_to_train_h == pytest.approx(r.time_to_train_h, rel=1e-12)


def test_dollars_per_million_tokens_and_energy(every_chip: Comparison) -> None:
    for r in every_chip.feasible:
        assert r.estimate is not None
        assert r.estimate.run is not None
        assert r.estimate.run.energy_mwh > 0
        if r.cost_usd is not None:
            assert r.usd_per_million_tokens == pytest.approx(r.cost_usd / 15e6)


def test_to_dict_and_dataframe(every_chip: Comparison) -> None:
    out = every_chip.to_dict()
    json.dumps(out)
    assert out["tokens"] == 15e12
    assert out["sizing_is_default"] is True
    assert len(out["rows"]) == len(every_chip.rows)
    first = out["rows"][0]
    for key in ("system", "chip", "vendor", "chips", "layout", "tokens_per_s", "mfu",
                "time_to_train_h", "cost_usd", "cost_usd_by_tier", "usd_per_million_tokens",
                "energy_mwh", "fastest", "cheapest"):  # fmt: skip
        assert key in first, key
    assert set(first["layout"]) == {"tp", "pp", "dp", "cp", "ep", "vpp", "micro_batch", "zero",
                                    "recompute", "offload"}  # fmt: skip
    left_out = [row for row in out["rows"] if not row["feasible"]]
    assert all(row["reason"] for row in left_out)
    frame = every_chip.to_dataframe()
    assert isinstance(frame, pd.DataFrame)
    assert len(frame) == len(every_chip.rows)
    assert {"chip", "vendor", "cost_usd", "layout_tp", "cost_usd_spot", "reason"} <= set(frame)


def test_steps_is_tokens_over_tokens_per_step() -> None:
    by_steps = compare("llama3-8b", steps=1000, systems="h100-sxm", chips=64, **JOB)
    by_tokens = compare("llama3-8b", tokens=1000 * 8192 * 2048, systems="h100-sxm", chips=64, **JOB)
    assert by_steps.tokens == by_tokens.tokens
    assert by_steps.rows[0].time_to_train_h == pytest.approx(by_tokens.rows[0].time_to_train_h)


def test_systems_all_and_explicit_lists() -> None:
    cat = chipmix.load_catalog()
    every = compare("llama3-8b", tokens=1e11, systems="all", chips=8, global_batch=256)
    assert sorted(r.system.id for r in every.rows) == sorted(cat.systems)
    mixed = compare("llama3-8b", tokens=1e11, systems=["trn2", "p5.48xlarge", "trn2"], chips=16)
    assert [r.system.id for r in mixed.rows].count("trn2.48xlarge") == 1
    assert {r.system.id for r in mixed.rows} == {"trn2.48xlarge", "p5.48xlarge"}


def test_nothing_fits_every_row_says_why() -> None:
    c = compare("llama3.1-405b", tokens=1e12, chips=8, systems="h100-sxm,mi300x", **JOB)
    assert not c.feasible
    assert c.fastest is None
    assert c.cheapest is None
    for r in c.rows:
        assert r.reason is not None
        assert "TiB" in r.reason


# -- deadline and budget ---------------------------------------------------------------------
def test_ladder_steps_are_at_most_an_eighth() -> None:
    rungs = ladder(10_000)
    assert rungs[:16] == list(range(1, 17))
    assert rungs[-1] == 10_000
    assert all(b / a <= 1.125 + 1e-12 for a, b in itertools.pairwise(rungs[16:]))
    assert ladder(1) == [1]


@pytest.fixture(scope="module")
def deadline() -> Comparison:
    return compare("llama3-70b", tokens=15e12, deadline_days=30, systems=SUBSET, **JOB)


def test_deadline_picks_counts_that_meet_it(deadline: Comparison) -> None:
    assert deadline.sizing == "deadline"
    assert len(deadline.feasible) >= 3
    for r in deadline.feasible:
        assert r.time_to_train_h is not None
        assert r.time_to_train_h <= 30 * 24
        assert r.chips is not None
        assert r.chips % r.system.system.chips_per_node == 0


def test_fewer_chips_would_not_meet_the_deadline(deadline: Comparison) -> None:
    for r in deadline.feasible:
        assert r.chips is not None
        node = r.system.system.chips_per_node
        rungs = ladder(1 << 20)
        k = rungs.index(r.chips // node)
        # the next smaller count of the ladder, and half the count
        for fewer in {rungs[k - 1] * node, r.chips // 2}:
            if fewer < node:
                continue
            try:
                e = chipmix.estimate("llama3-70b", r.system.id, fewer, tokens=15e12, **JOB)
            except chipmix.InfeasibleError:
                continue  # fewer chips fit no layout: they cannot meet it either
            assert e.run is not None
            assert e.run.time_to_train_h > 30 * 24, (r.system.id, fewer)
        assert r.note  # says what the next smaller count would take


def test_unreachable_deadline_says_how_close_it_gets() -> None:
    c = compare("llama3-70b", tokens=15e12, deadline_days=2, systems="tpu-v7-256", **JOB)
    (row,) = c.rows
    assert not row.feasible
    assert row.reason is not None
    assert "cannot meet 2 days" in row.reason
    assert "chip limit" in row.reason
    # with Multislice (v5e: up to 50,944 chips) the limit is the global batch instead
    c = compare("llama3-70b", tokens=15e12, deadline_days=2, systems="tpu-v5e", **JOB)
    reason = c.rows[0].reason
    assert reason is not None
    assert "cannot meet 2 days" in reason


def test_budget_picks_the_fastest_plan_within_it() -> None:
    c = compare("llama3-70b", tokens=15e12, budget_usd=30e6, systems=SUBSET + ",gaudi2", **JOB)
    assert c.sizing == "budget"
    assert len(c.feasible) >= 2
    for r in c.feasible:
        assert r.cost_usd is not None
        assert r.cost_usd <= 30e6
    # chips without a price in the tier cannot be budgeted: they say so
    gaudi = next(r for r in c.rows if r.system.chip.id == "gaudi2")
    assert gaudi.reason is not None
    assert "no on-demand price" in gaudi.reason
    # a budget below the cost at 100 % MFU is out of reach on every system
    poor = compare("llama3-70b", tokens=15e12, budget_usd=1e5, systems="h100-sxm", **JOB)
    assert poor.rows[0].reason is not None
    assert "100% MFU" in poor.rows[0].reason


# -- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"tokens": 1e12, "steps": 10}, ["exactly one", "both"]),
        ({}, ["exactly one of tokens"]),
        ({"tokens": 1e12, "deadline_days": 0}, ["deadline_days", "positive"]),
        ({"tokens": 1e12, "budget_usd": -5}, ["budget_usd", "positive"]),
        ({"tokens": 1e12, "chips": 64, "budget_usd": 1e6}, ["at most one"]),
        ({"tokens": 1e12, "systems": "h100-sxn"}, ["Did you mean", "h100-sxm"]),
        ({"tokens": 1e12, "price_tier": "cheap"}, ["unknown price tier"]),
        ({"tokens": 1e12, "chips": 0}, ["chips (--chips) must be"]),
    ],
)
def test_bad_input_raises_input_error(kwargs: dict[str, Any], words: list[str]) -> None:
    with pytest.raises(chipmix.InputError) as info:
        compare("llama3-8b", **kwargs)
    for word in words:
        assert word in str(info.value)


# -- the CLI ---------------------------------------------------------------------------------
def test_demo_command_prints_the_ranking() -> None:
    result = runner.invoke(app, DEMO)
    assert result.exit_code == 0, (result.output, result.exception)
    out = result.stdout
    assert "1,024 chips on each system (the default" in out
    assert "cheapest" in out
    assert "fastest" in out
    assert "Traceback" not in out


def test_cli_json_matches_the_api() -> None:
    args = [*DEMO, "--systems", "h100-sxm,trn2", "--chips", "512", "--price-tier", "spot"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    out = json.loads(result.stdout)
    api = compare("llama3-70b", tokens=15e12, chips=512, systems="h100-sxm,trn2",
                  price_tier="spot", **JOB)  # fmt: skip
    assert out["price_tier"] == "spot"
    assert [row["system"] for row in out["rows"]] == [r.system.id for r in api.rows]
    assert [row.get("cost_usd") for row in out["rows"]] == [r.cost_usd for r in api.rows]


def test_cli_deadline_table_explains_the_counts() -> None:
    result = runner.invoke(
        app, [*DEMO, "--deadline-days", "60", "--systems", "h100-sxm,b200,tpu-v7-256"]
    )
    assert result.exit_code == 0, (result.output, result.exception)
    assert "why this many" in result.stdout
    assert "cannot meet 60 days" in result.stdout


def run_main(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["chipmix", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), captured.out, captured.err


BASE = ["compare", "--model", "llama3-70b"]
BAD_CLI = [
    ([*BASE, "--tokens", "1e12", "--systems", "h100-sxm,mi300z"], ["'mi300z'", "Did you mean"],
     "unknown system, with a did-you-mean"),
    ([*BASE, "--tokens", "1e12", "--steps", "100"], ["exactly one", "both"],
     "both --tokens and --steps"),
    ([*BASE], ["exactly one of tokens"], "neither --tokens nor --steps"),
    ([*BASE, "--tokens", "1e12", "--deadline-days", "0"], ["deadline_days", "positive"],
     "deadline of zero days"),
    ([*BASE, "--tokens", "1e12", "--deadline-days", "-3"], ["deadline_days"],
     "negative deadline"),
    ([*BASE, "--tokens", "1e12", "--budget-usd", "0"], ["budget_usd", "positive"],
     "budget of zero"),
    ([*BASE, "--tokens", "1e12", "--chips", "64", "--deadline-days", "9"], ["at most one"],
     "two sizings at once"),
    ([*BASE, "--tokens", "1e12", "--price-tier", "cheap"], ["unknown price tier"],
     "unknown price tier"),
    ([*BASE, "--tokens", "-1"], ["tokens", "positive"], "negative tokens"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "words"), [(a, w) for a, w, _ in BAD_CLI], ids=[why for _, _, why in BAD_CLI]
)
def test_bad_cli_input_is_one_line_and_exit_2(
    args: list[str],
    words: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_main(args, monkeypatch, capsys)
    assert code == 2
    assert out == ""
    assert "Traceback" not in out + err
    assert err.startswith("error: ")
    assert err.count("\n") == 1, "one line"
    for word in words:
        assert word in err
