"""Validation against published runs (issue 4): accuracy bounds, isolation of calibration,
reproducibility of the shipped fit, the case-file schema and the CLI contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from chipmix.catalog import load_catalog
from chipmix.catalog.calibration import Calibration, ChipCalibration
from chipmix.catalog.catalog import DATA_DIR, FITTED_CALIBRATION
from chipmix.cli import app
from chipmix.errors import FileFormatError
from chipmix.validate.cases import DEFAULT_CASES, read_cases
from chipmix.validate.crossval import leave_one_source_out
from chipmix.validate.fit import fit_calibration
from chipmix.validate.score import predict_case, score_cases

CATALOG = load_catalog()
CASES = read_cases()


@pytest.fixture(scope="module")
def in_sample() -> dict:
    return score_cases(CASES, CATALOG).summary()


def test_median_error_at_most_10_percent(in_sample: dict) -> None:
    assert in_sample["median_abs_error"] <= 0.10


def test_p90_error_at_most_25_percent(in_sample: dict) -> None:
    assert in_sample["p90_abs_error"] <= 0.25


def test_every_chip_with_three_rows_within_15_percent(in_sample: dict) -> None:
    for chip, stats in in_sample["per_chip"].items():
        if stats["count"] >= 3:
            assert stats["median_abs_error"] <= 0.15, chip


def test_unpredicted_rows_say_why() -> None:
    card = score_cases(CASES, CATALOG)
    assert all(r.reason for r in card.unpredicted)
    assert len(card.rows) == len(CASES)  # nothing skipped silently


@pytest.mark.slow
def test_leave_one_source_out_median_at_most_15_percent() -> None:
    summary = leave_one_source_out(CASES, CATALOG).summary()
    assert summary["median_abs_error"] <= 0.15


def test_shipped_calibration_is_what_calibrate_produces() -> None:
    shipped = yaml.safe_load((DATA_DIR / FITTED_CALIBRATION).read_text(encoding="utf-8"))
    refit = fit_calibration(CASES, CATALOG)
    fitted = {(p["scope"], p["key"], p["name"]): p["fitted"] for p in refit.parameters}
    assert {(p["scope"], p["key"], p["name"]) for p in shipped["parameters"]} == set(fitted)
    for p in shipped["parameters"]:
        assert p["fitted"] == pytest.approx(fitted[(p["scope"], p["key"], p["name"])], rel=1e-3)


def test_no_parameter_is_fitted_from_a_single_row() -> None:
    assert all(p["rows"] >= 2 for p in fit_calibration(CASES, CATALOG).parameters)


def test_one_chips_calibration_does_not_move_another_chips_predictions() -> None:
    base = CATALOG.calibration
    changed = base.overlay(Calibration(chips={"h100-sxm": ChipCalibration(
        matmul_efficiency=0.3, attention_efficiency=0.2, memory_efficiency=0.3)}))  # fmt: skip
    moved = 0
    for case in CASES:
        before = predict_case(case, CATALOG, base)
        if before.layout is None:
            continue
        after = predict_case(case, CATALOG, changed, layout=before.layout)
        if case.row.chip == "h100-sxm":
            moved += after.predicted != pytest.approx(before.predicted)
        else:
            assert after.predicted == pytest.approx(before.predicted, rel=1e-12), case.id
    assert moved > 0


def _write_cases(tmp_path: Path, edit: dict[str, str]) -> Path:
    lines = DEFAULT_CASES.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    import csv
    import io

    row = next(csv.DictReader(io.StringIO("\n".join(lines[:2]))))
    row.update(edit)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header)
    writer.writeheader()
    writer.writerow(row)
    path = tmp_path / "cases.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        pytest.param({"layers": "-3"}, "layers", id="negative layers are named"),
        pytest.param({"metric": "mfu"}, "metric", id="unknown metric is named"),
        pytest.param({"precision": "fp4"}, "precision", id="unsupported precision is named"),
    ],
)
def test_malformed_case_rows_name_line_and_column(
    tmp_path: Path, edit: dict[str, str], expected: str
) -> None:
    with pytest.raises(FileFormatError) as info:
        read_cases(_write_cases(tmp_path, edit))
    assert "line 2" in str(info.value)
    assert expected in str(info.value)


def test_missing_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("id,source\nx,y\n", encoding="utf-8")
    with pytest.raises(FileFormatError, match="missing columns"):
        read_cases(path)


def test_validate_json_contract(tmp_path: Path) -> None:
    cases = _write_cases(tmp_path, {})
    result = CliRunner().invoke(app, ["validate", "--cases", str(cases), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    row = data["rows"][0]
    assert {"id", "predicted", "published", "error"} <= set(row)
    assert row["error"] == pytest.approx(row["predicted"] / row["published"] - 1)
    summary = data["summary"]
    assert {"median_abs_error", "p90_abs_error", "count", "per_chip", "unpredicted"} <= set(summary)
