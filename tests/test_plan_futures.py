"""Plans over sampled futures (issue 17): the sources' checks, reproducible futures, the
robust first stage checked by enumeration, the same answer serially and on Ray, the CLI.

The scenario is small (Llama 3.2 1B, two jobs, three offers, one owned tier of at most four
units) so each recourse MILP solves in a fraction of a second.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from chipmix.catalog import load_catalog
from chipmix.cli import app, main
from chipmix.errors import FileFormatError, UnknownNameError
from chipmix.planning.futures.analysis import futures
from chipmix.planning.futures.parallel import ray_available
from chipmix.planning.futures.recourse import FirstStage, recourse
from chipmix.planning.futures.robust import summarize
from chipmix.planning.futures.sample import sample_futures
from chipmix.planning.futures.sources import FuturesSpec
from chipmix.planning.portfolio.placements import SearchCache, candidates
from chipmix.planning.portfolio.problem import Problem
from chipmix.planning.portfolio.scenario_file import parse_scenario

CAT = load_catalog()
SHAPE = {"model": "llama3.2-1b", "seq_len": 4096, "global_batch": 256, "chip_counts": [16, 32]}
SOURCES: list[dict[str, Any]] = [
    {"kind": "capacity", "vendor": "aws", "dist": "uniform", "low": 0.0, "high": 1.0,
     "source": "assumption: test"},
    {"kind": "delay", "vendor": "amd", "probability": 0.5, "dist": "uniform", "low": 7,
     "high": 21, "source": "assumption: test"},
    {"kind": "price", "family": "aws", "dist": "lognormal", "sigma": 0.2,
     "source": "assumption: test"},
]  # fmt: skip
SMALL: dict[str, Any] = {
    "name": "small-futures",
    "start": date(2026, 1, 5),
    "end": date(2026, 2, 15),
    "offers": [
        {"id": "lab", "system": "dgx-h100", "cloud": "on-prem", "region": "lab",
         "chips_per_unit": 8, "usd_per_unit_hour": {"owned": 20.0}, "max_chips": 32,
         "source": "assumption: test"},
        {"catalog": "aws-trn2.48xlarge-us-east-2-2024-12", "max_chips": 32,
         "tiers": ["on-demand"]},
        {"catalog": "azure-nd-mi300x-v5-2026-04", "max_chips": 16, "tiers": ["on-demand"]},
    ],
    "jobs": [
        {"name": "a", **SHAPE, "tokens": 7.5e11, "deadline": date(2026, 1, 25)},
        {"name": "b", **SHAPE, "tokens": 7.5e11, "start": date(2026, 1, 12),
         "deadline": date(2026, 2, 8)},
    ],
    "solver": {"gap": 0.0, "single_vendor_baseline": False, "sensitivity": False},
    "futures": {"target": 0.8, "sources": SOURCES},
}  # fmt: skip


def _spec(**futures: Any) -> dict[str, Any]:
    return {**SMALL, "futures": {**SMALL["futures"], **futures}}


def _problem() -> Problem:
    sc = parse_scenario(SMALL, catalog=CAT)
    return Problem.of(sc, candidates(sc, SearchCache.shared(CAT)))


# -- sources ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("source", "words"),
    [
        ({"kind": "capacity", "vendor": "aws", "dist": "uniform", "low": 0.5, "high": 1.5},
         ["capacity source (vendor aws)", "high = 1.5", "[0, 1]"]),
        ({"kind": "price", "dist": "lognormal", "sigma": -0.1},
         ["price source (every offer)", "sigma = -0.1", "[0, 2]"]),
        ({"kind": "price", "dist": "lognormal", "median": 0, "sigma": 0.1},
         ["price source", "median = 0", "(0, ∞)"]),
        ({"kind": "delay", "vendor": "amd", "dist": "triangular", "low": 5, "mode": 2,
          "high": 9}, ["delay source (vendor amd)", "mode = 2", "[5, 9]"]),
        ({"kind": "outage", "cloud": "azure", "rate_per_year": 1, "dist": "uniform",
          "low": 0, "high": 3}, ["outage source (cloud azure)", "low = 0", "(0, 3650]"]),
        ({"kind": "capacity", "vendor": "aws", "dist": "lognormal", "sigma": 0.1},
         ["capacity source", "dist", "uniform, triangular or fixed"]),
        ({"kind": "delay", "vendor": "amd", "dist": "uniform", "low": 1},
         ["delay source", "high", "a number is required"]),
    ],
)  # fmt: skip
def test_impossible_parameters_name_source_parameter_and_range(
    source: dict[str, Any], words: list[str]
) -> None:
    """Each impossible distribution names its source, the parameter and the valid range."""
    bad = {"sources": [{**source, "source": "assumption: test"}]}
    with pytest.raises(FileFormatError) as err:
        parse_scenario(_spec(**bad), catalog=CAT)
    message = str(err.value)
    for word in words:
        assert word in message, (word, message)


def test_unknown_vendor_has_did_you_mean() -> None:
    pb = _problem()
    spec = FuturesSpec.model_validate(
        {
            "sources": [
                {"kind": "capacity", "vendor": "amdd", "dist": "fixed", "value": 0.5, "source": "x"}
            ]
        }
    )
    with pytest.raises(UnknownNameError, match="Did you mean 'amd'"):
        sample_futures(pb, spec, CAT, 2, 0)


# -- sampling --------------------------------------------------------------------------------
def test_futures_are_reproducible_and_independent_of_their_count() -> None:
    """Future i comes from the i-th spawned seed: the same with 3 or 5 futures drawn."""
    pb = _problem()
    spec = FuturesSpec.model_validate(SMALL["futures"])
    three = sample_futures(pb, spec, CAT, 3, seed=7)
    five = sample_futures(pb, spec, CAT, 5, seed=7)
    for a, b in zip(three, five[:3], strict=True):
        assert np.array_equal(a.time_factor, b.time_factor)
        assert np.array_equal(a.capacity, b.capacity)
        assert np.array_equal(a.delay_h, b.delay_h)
    other = sample_futures(pb, spec, CAT, 3, seed=8)
    assert not np.array_equal(three[0].time_factor, other[0].time_factor)
    aws = [o for o, offer in enumerate(pb.scenario.offers) if offer.vendor == "aws"]
    assert all(0.0 <= f.capacity[aws[0]] <= 1.0 for f in five)
    assert all(f.capacity[0] == 1.0 for f in five)  # the owned offer is not aws


# -- the robust plan -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small() -> Any:
    return futures(SMALL, 12, seed=3, catalog=CAT)


def test_robust_first_stage_is_the_enumerated_optimum(small: Any) -> None:
    """Every owned reservation 0 … 4 units (the offer's 32 chips), each evaluated in every
    future: the robust plan is the cheapest in expectation among those at least as reliable
    as max(target, deterministic), and never less reliable than the deterministic plan."""
    pb = _problem()
    spec = FuturesSpec.model_validate(SMALL["futures"])
    drawn = sample_futures(pb, spec, CAT, 12, seed=3)
    assert len(pb.reservations) == 1
    det = small.stage(small.deterministic)
    det_units = det.reserved[0].chips // 8 if det.reserved else 0
    stats = {}
    for units in range(5):
        stage = FirstStage(f"r={units}", {0: units} if units else {})
        outs = [recourse(pb, f, stage, small.penalty_usd) for f in drawn]
        stats[units] = summarize(outs)
    need = max(small.target, stats[det_units][0])
    feasible = [u for u, (p, _) in stats.items() if p >= need - 1e-12]
    best = min(feasible, key=lambda u: stats[u][1])
    rob = small.stage(small.robust)
    assert rob.p_all_met >= det.p_all_met
    assert rob.p_all_met == pytest.approx(stats[best][0])
    assert rob.cost_mean_usd == pytest.approx(stats[best][1], rel=1e-6)


def test_result_dict(small: Any) -> None:
    data = small.to_dict()
    assert set(data["deterministic"]) == {
        "stage",
        "p_on_time",
        "p_on_time_as_planned",
        "expected_cost_usd",
    }
    assert 0.0 <= data["deterministic"]["p_on_time_as_planned"] <= 1.0
    assert 0.0 <= data["robust"]["p_on_time"] <= 1.0
    assert data["robust"]["p_on_time"] >= data["deterministic"]["p_on_time"]
    assert data["frontier"], data
    costs = [p["cost_mean_usd"] for p in data["frontier"]]
    assert costs == sorted(costs)  # more reliable costs more along the frontier
    kinds = {s["kind"] for s in data["sources"]}
    assert {"capacity", "delay", "price", "performance"} <= kinds
    assert "wall_s" not in json.dumps(data)


@pytest.mark.skipif(not ray_available(), reason="Ray is the optional extra chipmix[scale]")
def test_same_json_serially_and_on_ray() -> None:
    """Same seed → the same result with --workers 1 (no Ray) and on 2 Ray workers."""
    serial = futures(SMALL, 3, seed=11, catalog=CAT, workers=1)
    on_ray = futures(SMALL, 3, seed=11, catalog=CAT, workers=2)
    assert on_ray.mode == "ray"
    assert serial.mode == "serial"
    assert json.dumps(serial.to_dict()) == json.dumps(on_ray.to_dict())


# -- the command line ------------------------------------------------------------------------
def _write(tmp_path: Path, spec: dict[str, Any]) -> str:
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return str(path)


def test_cli_json_and_tables(tmp_path: Path) -> None:
    file = _write(tmp_path, SMALL)
    runner = CliRunner()
    out = runner.invoke(app, ["plan", file, "--futures", "2", "--seed", "1", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["futures"] == 2
    assert data["seed"] == 1
    assert "p_on_time" in data["robust"]
    assert "expected_cost_usd" in data["deterministic"]
    page = tmp_path / "futures.html"
    argv = ["plan", file, "--futures", "2", "--seed", "1", "--report", str(page)]
    out = runner.invoke(app, argv, env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    html = page.read_text(encoding="utf-8")
    assert "Cost against reliability" in html
    assert "Vendor exposure" in html
    for title in ("futures (seed 1)", "frontier", "vendor exposure", "uncertainty sources"):
        assert title in out.output, title


def _main(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(sys, "argv", ["chipmix", *argv])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return int(exit_info.value.code or 0)


def test_cli_bad_distribution_exits_2_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _spec(sources=[{"kind": "capacity", "vendor": "aws", "dist": "uniform", "low": -1,
                          "high": 1, "source": "x"}])  # fmt: skip
    assert _main(["plan", _write(tmp_path, bad), "--futures", "2"], monkeypatch) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert "capacity source (vendor aws): low = -1 is impossible; valid: [0, 1]" in err


def test_cli_workers_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["plan", _write(tmp_path, SMALL), "--futures", "2", "--workers", "0"]
    assert _main(argv, monkeypatch) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err
