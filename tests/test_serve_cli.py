"""`chipmix serve` end to end, the public serving functions, and their bad-input lines."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

import chipmix
from chipmix.cli import app, main

runner = CliRunner()

# issue 14, "Must show"
MUST_SHOW = [
    "serve", "compare", "--model", "llama3-70b", "--input-len", "2000", "--output-len", "300",
    "--ttft-p99-ms", "2000", "--tpot-p99-ms", "100",
]  # fmt: skip


def invoke_json(args: list[str]) -> Any:
    result = runner.invoke(app, [*args, "--json"])
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


@pytest.fixture(scope="module")
def compared() -> Any:
    return invoke_json([*MUST_SHOW, "--tokens-per-day", "1e10"])


def test_compare_lists_four_vendors_with_throughput_and_price(compared: Any) -> None:
    priced = [
        r for r in compared["rows"]
        if r.get("estimate") and r["estimate"]["usd_per_million_output_tokens"].get("on-demand")
    ]  # fmt: skip
    vendors = {r["vendor"] for r in priced}
    assert len(vendors) >= 4, vendors
    for r in priced:
        assert r["estimate"]["tokens_per_s_per_chip"] > 0
        assert r["estimate"]["ttft_p99_ms"] <= 2000
        assert r["estimate"]["tpot_p99_ms"] <= 100
        assert r["chips_for_demand"] > 0
    costs = [r["estimate"]["usd_per_million_output_tokens"]["on-demand"] for r in priced]
    assert costs == sorted(costs)


def test_compare_agrees_with_estimate_row_by_row(compared: Any) -> None:
    rows = [r for r in compared["rows"] if r.get("estimate")][:4]
    for r in rows:
        one = invoke_json(
            ["serve", "estimate", "--model", "llama3-70b", "--system", r["system"], "--chips",
             "64", "--input-len", "2000", "--output-len", "300", "--ttft-p99-ms", "2000",
             "--tpot-p99-ms", "100"]
        )  # fmt: skip
        assert one["tokens_per_s_per_chip"] == pytest.approx(r["estimate"]["tokens_per_s_per_chip"])
        assert one["layout"] == r["estimate"]["layout"]
        assert one["usd_per_million_output_tokens"] == pytest.approx(
            r["estimate"]["usd_per_million_output_tokens"]
        )


def test_compare_tables_and_report(tmp_path: Path) -> None:
    out = tmp_path / "serve.html"
    result = runner.invoke(
        app, [*MUST_SHOW, "--systems", "h100-sxm,mi300x,trn2,tpu-v6e", "--report", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "mi300x" in result.stdout
    page = out.read_text(encoding="utf-8")
    assert "Throughput against latency" in page
    assert "$ per million output tokens" in page


def test_search_and_estimate_commands(tmp_path: Path) -> None:
    found = invoke_json(
        ["serve", "search", "--model", "llama3-70b", "--system", "h100-sxm", "--chips", "64",
         "--ttft-p99-ms", "2000", "--tpot-p99-ms", "100", "--top", "3"]
    )  # fmt: skip
    assert 1 <= len(found["top"]) <= 3
    assert found["top"][0]["chips"] == 64
    one = invoke_json(
        ["serve", "estimate", "--model", "llama3-8b", "--system", "h100-sxm", "--chips", "8",
         "--tp", "2", "--pp", "1", "--batch", "16", "--precision", "fp8"]
    )  # fmt: skip
    assert one["layout"] == {"tp": 2, "pp": 1, "ep": 1, "replicas": 4, "batch": 16}
    assert one["kv_precision"] == "fp8"
    out = tmp_path / "one.html"
    result = runner.invoke(
        app, ["serve", "estimate", "--model", "llama3-8b", "--system", "h200", "--report", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert out.exists()


def test_unmeetable_target_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_main(
        ["serve", "search", "--model", "llama3-70b", "--system", "h100-sxm", "--chips", "8",
         "--tpot-p99-ms", "2"], monkeypatch, capsys,
    )  # fmt: skip
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert "p99 TPOT target of 2 ms rules out every layout" in err
    assert "× the target" in err


def test_model_that_fits_nowhere_says_what_it_needs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_main(
        ["serve", "estimate", "--model", "llama3.1-405b", "--system", "h100-sxm", "--chips", "1"],
        monkeypatch, capsys,
    )  # fmt: skip
    assert code == 2
    assert "needs" in err
    assert "GiB of bf16 weights" in err


def test_bad_precision_is_one_line_with_choices(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_main(
        ["serve", "estimate", "--model", "llama3-8b", "--system", "h100-sxm", "--precision",
         "fp9"], monkeypatch, capsys,
    )  # fmt: skip
    assert code == 2
    assert "fp8" in err


def test_public_functions_return_typed_results() -> None:
    e = chipmix.serve_estimate("llama3-8b", "h200", 8, input_len=512, output_len=128)
    assert isinstance(e, chipmix.ServeEstimate)
    assert e.to_dict()["output_tokens_per_s"] == e.output_tokens_per_s
    assert isinstance(e.to_dataframe(), pd.DataFrame)
    s = chipmix.serve_search("llama3-8b", "h200", 8, input_len=512, output_len=128, top=2)
    assert isinstance(s, chipmix.ServeSearchResult)
    assert len(s.to_dataframe()) == len(s.top)
    c = chipmix.serve_compare("llama3-8b", systems=["h200", "mi300x"], chips=8)
    assert isinstance(c, chipmix.ServeComparison)
    assert set(c.to_dataframe()["chip"]) == {"h200", "mi300x"}


def test_validate_reads_the_serving_schema() -> None:
    from chipmix.validate.serve_cases import DEFAULT_SERVE_CASES

    card = invoke_json(["validate", "--cases", str(DEFAULT_SERVE_CASES)])
    assert len(card["rows"]) == 44
    assert card["summary"]["median_abs_error"] <= 0.12
    assert {r["metric"] for r in card["rows"]} >= {"output_tokens_per_s", "tpot_ms", "ttft_ms"}
