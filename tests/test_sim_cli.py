"""`chipmix simulate` end to end, and bad input to the simulator: every mistake is one clear
line (``error: …``, exit status 2) naming the value and the way out.

Good input goes through typer's `CliRunner`; bad input through `chipmix.cli.main`, the
console entry point.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from chipmix.cli import app, main
from chipmix.errors import FileFormatError, InfeasibleError, InputError, UnknownNameError
from chipmix.sim import simulate
from chipmix.sim.scenario import load_scenario, parse_scenario

runner = CliRunner()
SMALL = ["simulate", "--model", "llama3-8b", "--system", "h100-sxm", "--chips", "64"]
CONTRACT = {
    "interruptions_mean",
    "ettr_mean",
    "completion_days_p50",
    "completion_days_p90",
    "cost_usd_mean",
    "deadline_probability",
}


def invoke_json(args: list[str]) -> Any:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


def run_main(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["chipmix", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), captured.out, captured.err


def write(tmp_path: Path, name: str, data: object) -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return str(path)


# -- good input -----------------------------------------------------------------------------
def test_json_has_the_contract_keys() -> None:
    out = invoke_json(
        [*SMALL, "--tokens", "1e11", "--replicas", "50", "--deadline-days", "10", "--json"]
    )
    assert set(out) >= CONTRACT
    assert 0 < out["ettr_mean"] <= 1
    assert out["completion_days_p50"] <= out["completion_days_p90"]
    assert 0 <= out["deadline_probability"] <= 1
    assert out["replicas"] == 50
    assert out["checkpoint_policy"]["chosen_by"] == "daly"


def test_duration_mode_reports_tokens_trained_and_no_deadline() -> None:
    out = invoke_json([*SMALL, "--duration-days", "5", "--replicas", "20", "--json"])
    assert out["mode"] == "duration"
    assert out["tokens_mean"] > 0
    assert "deadline_probability" not in out
    assert out["completion_days_p50"] == pytest.approx(5.0)


def test_tables_with_scenario_and_sweep(tmp_path: Path) -> None:
    scenario = write(
        tmp_path,
        "s.yaml",
        {
            "outages": [{"start_day": 1, "duration_days": 2, "capacity_lost": 1}],
            "migration": {"system": "trn2", "chips": 64},
        },
    )
    result = runner.invoke(
        app,
        [
            *SMALL,
            "--tokens",
            "1e11",
            "--replicas",
            "30",
            "--scenario",
            scenario,
            "--sweep",
            "--checkpoint-interval",
            "30m",
        ],
    )
    assert result.exit_code == 0, (result.output, result.exception)
    for text in (
        "chipmix simulate",
        "outage: with and without migration",
        "phases",
        "interval sweep",
        "Daly",
    ):
        assert text in result.stdout, text


def test_seed_makes_the_cli_reproducible() -> None:
    args = [*SMALL, "--tokens", "1e11", "--replicas", "30", "--seed", "5", "--json"]
    assert invoke_json(args) == invoke_json(args)


# -- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        pytest.param(["--tokens", "1e11", "--replicas", "0"], "replicas must be", id="replicas 0"),
        pytest.param([], "give the run's length", id="no length"),
        pytest.param(["--tokens", "1e11", "--duration-days", "3"], "one of them", id="both"),
        pytest.param(["--tokens", "-5"], "tokens must be", id="negative tokens"),
        pytest.param(
            ["--duration-days", "3", "--deadline-days", "9"],
            "needs a token target",
            id="deadline without tokens",
        ),
        pytest.param(
            ["--tokens", "1e11", "--checkpoint-interval", "30"],
            "with a unit",
            id="interval without unit",
        ),
        pytest.param(
            ["--tokens", "1e11", "--checkpoint-interval", "-3m"], "positive", id="negative interval"
        ),
        pytest.param(["--tokens", "1e11", "--seed", "-1"], "seed must be", id="negative seed"),
        pytest.param(["--tokens", "1e11", "--hot-spares", "-2"], "hot spare", id="spares < 0"),
        pytest.param(
            ["--tokens", "1e11", "--price-tier", "spott"], "Did you mean 'spot'", id="unknown tier"
        ),
    ],
)
def test_bad_arguments_are_one_clear_line(
    extra: list[str],
    needle: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_main([*SMALL, *extra], monkeypatch, capsys)
    assert code == 2
    assert out == ""
    assert err.startswith("error:")
    assert needle in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("scenario", "needles"),
    [
        pytest.param(
            {"outages": [], "migrate": {"system": "trn2"}},
            ["migrate: unknown key", "valid keys here", "migration"],
            id="unknown top-level key",
        ),
        pytest.param(
            {
                "outages": [
                    {
                        "start_day": 1,
                        "duration_days": 2,
                        "capacity_lost": 0.5,
                        "region": "us-east-1",
                    }
                ]
            },
            ["outages.0.region: unknown key", "capacity_lost"],
            id="unknown outage key",
        ),
        pytest.param(
            {"outages": [{"start_day": 1, "duration_days": 2, "capacity_lost": 1.5}]},
            ["capacity_lost", "less than or equal to 1"],
            id="more than all capacity",
        ),
        pytest.param(
            {
                "outages": [
                    {"start_day": 1, "duration_days": 5, "capacity_lost": 1},
                    {"start_day": 3, "duration_days": 1, "capacity_lost": 1},
                ]
            },
            ["outages overlap", "merge them"],
            id="overlapping outages",
        ),
        pytest.param(
            {"reliability": {"failure_rate_multiplier": -1}},
            ["failure_rate_multiplier", "greater than or equal to 0"],
            id="negative rate multiplier",
        ),
        pytest.param(
            {"on_outage": "panic"}, ["on_outage", "'shrink' or 'wait'"], id="unknown outage policy"
        ),
    ],
)
def test_bad_scenario_files_name_the_key(
    scenario: dict[str, object],
    needles: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write(tmp_path, "bad.yaml", scenario)
    with pytest.raises(FileFormatError) as exc:
        load_scenario(path)
    for needle in needles:
        assert needle in str(exc.value), (needle, str(exc.value))
    code, _, err = run_main([*SMALL, "--tokens", "1e11", "--scenario", path], monkeypatch, capsys)
    assert code == 2
    assert path in err


def test_a_job_needs_model_system_and_chips(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_main(
        ["simulate", "--model", "llama3-8b", "--tokens", "1e9"], monkeypatch, capsys
    )
    assert code == 2
    assert "give --model, --system and --chips (or --plan" in err


def test_missing_scenario_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_scenario(tmp_path / "nope.yaml")


def test_unknown_migration_system_suggests_names() -> None:
    scen = parse_scenario(
        {
            "outages": [{"start_day": 1, "duration_days": 1, "capacity_lost": 1}],
            "migration": {"system": "trn22"},
        }
    )
    with pytest.raises(UnknownNameError, match="Did you mean"):
        simulate("llama3-8b", "h100-sxm", 64, tokens=1e11, replicas=5, scenario=scen)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        pytest.param(
            {"reference": {"interruptions": {"hbm": {"value": -3, "source": "llama3-paper"}}}},
            "greater than or equal to 0",
            id="negative failure count",
        ),
        pytest.param(
            {"reclaims_per_node_month": {"spot": {"value": -0.1, "source": "aws-spot-advisor"}}},
            "reclaims_per_node_month.spot.value",
            id="negative reclaim rate",
        ),
        pytest.param(
            {"restart": {"warmup_s": {"value": 60, "source": "my-guess"}}},
            "source 'my-guess' is not defined",
            id="undefined source",
        ),
        pytest.param({"scaling": {"hbm": "stacks"}}, "scaling.hbm", id="unknown scaling rule"),
        pytest.param(
            {"restart": {"warmup_min": {"value": 5, "source": "chipmix-assumption"}}},
            "warmup_min",
            id="unknown restart key",
        ),
    ],
)
def test_bad_reliability_overlay_is_a_file_format_error(
    data: dict[str, object], needle: str, tmp_path: Path
) -> None:
    write(tmp_path, "reliability.yaml", data)
    with pytest.raises(FileFormatError) as exc:
        simulate("llama3-8b", "h100-sxm", 64, tokens=1e11, replicas=5, catalog=tmp_path)
    assert needle in str(exc.value)
    assert "reliability.yaml" in str(exc.value)


def test_negative_multiplier_in_the_api_is_an_input_error() -> None:
    with pytest.raises(InputError, match="multiplier must be >= 0"):
        simulate("llama3-8b", "h100-sxm", 64, tokens=1e11, replicas=5, failure_rate_multiplier=-1)


def test_a_run_that_could_not_finish_is_refused_with_the_numbers() -> None:
    with pytest.raises(InfeasibleError, match=r"would not finish: .* interruption every .* h"):
        simulate("llama3-70b", "h100-sxm", 4096, tokens=1e12, replicas=5,
                 failure_rate_multiplier=200)  # fmt: skip
