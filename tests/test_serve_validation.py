"""Serving predictions against published measurements (issue 14): every row predicted or
refused with its reason, in sample and leave-one-source-out, and the residuals that
prediction intervals use."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from chipmix.catalog import load_catalog
from chipmix.errors import FileFormatError
from chipmix.validate.cases import DEFAULT_CASES
from chipmix.validate.score import Scorecard
from chipmix.validate.serve_cases import (
    DEFAULT_SERVE_CASES,
    ServeCase,
    is_serving_file,
    read_serve_cases,
)
from chipmix.validate.serve_crossval import serve_leave_one_source_out, serving_residuals
from chipmix.validate.serve_score import score_serve_cases

IN_SAMPLE_MEDIAN = 0.12
"""Issue 14's in-sample target, met."""
LOSO_MEDIAN, LOSO_P90 = 0.17, 0.69
"""What leave-one-source-out reaches today (14.6%, 65.9%); the issue asks 20% (met) and 45%
(not met) — see README, "Accuracy against published serving measurements", for the rows
that miss."""
IN_SAMPLE_P90 = 0.24
"""In-sample p90 today: 21.6%."""


@pytest.fixture(scope="module")
def cases() -> list[ServeCase]:
    return read_serve_cases()


@pytest.fixture(scope="module")
def cross(cases: list[ServeCase]) -> Scorecard:
    return serve_leave_one_source_out(cases, load_catalog())


def test_schema_is_detected() -> None:
    assert is_serving_file(DEFAULT_SERVE_CASES)
    assert not is_serving_file(DEFAULT_CASES)


def test_every_row_is_predicted_or_refused_with_a_reason(cases: list[ServeCase]) -> None:
    assert len(cases) == 44
    card = score_serve_cases(cases, load_catalog())
    assert len(card.unpredicted) <= 4
    assert all(r.reason for r in card.unpredicted)
    assert card.summary()["median_abs_error"] <= IN_SAMPLE_MEDIAN
    assert card.summary()["p90_abs_error"] <= IN_SAMPLE_P90


def test_leave_one_source_out_bounds(cross: Scorecard) -> None:
    s = cross.summary()
    assert s["median_abs_error"] <= LOSO_MEDIAN
    assert s["p90_abs_error"] <= LOSO_P90
    assert len(cross.unpredicted) <= 4


def test_residuals_are_the_cross_validated_log_errors(
    cases: list[ServeCase], cross: Scorecard
) -> None:
    res = serving_residuals(cases, load_catalog(), cross)
    assert len(res) == len(cross.predicted)
    by_id = {r.id: r for r in cross.rows}
    for r in res:
        row = by_id[r.id]
        assert row.predicted is not None
        assert r.log_error == pytest.approx(math.log(row.predicted / row.published))
        assert r.chip == row.chip
        assert r.stack == row.stack
    assert np.isfinite([r.log_error for r in res]).all()
    assert {"chip", "stack", "scenario", "log_error"} <= set(res[0].to_dict())


def test_missing_column_is_a_file_error(tmp_path: Path) -> None:
    text = DEFAULT_SERVE_CASES.read_text(encoding="utf-8").splitlines()
    header = text[0].replace("scenario,", "")
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([header, *text[1:3]]), encoding="utf-8")
    with pytest.raises(FileFormatError, match="missing columns"):
        read_serve_cases(bad)


def test_a_finite_prompt_set_ends_in_a_part_filled_round(cases: list[ServeCase]) -> None:
    """N prompts with B in flight take ⌈N / B⌉ rounds (the Ironwood recipe: 320 prompts,
    at most 135 running)."""
    from chipmix.validate.serve_score import finite_run_share

    assert finite_run_share(None, 135) == 1.0
    assert finite_run_share(270, 135) == 1.0
    assert finite_run_share(320, 135) == pytest.approx((320 / 135) / 3)
    ironwood = [c for c in cases if c.row.chip == "tpu-v7"]
    assert ironwood
    assert all(c.row.num_prompts == 320 for c in ironwood)
    assert all(c.row.concurrency_or_batch == 135 for c in ironwood)


def test_assumptions_are_stated(cases: list[ServeCase]) -> None:
    mlperf = [c for c in cases if c.row.input_len is None]
    assert mlperf
    assert all(c.job.input_len == c.job.output_len for c in mlperf)
    assert all(any("input length" in a for a in c.assumptions) for c in mlperf)


def test_both_schemas_read_the_architecture_columns_alike(cases: list[ServeCase]) -> None:
    """Training and serving rows share one typed base for the model-architecture columns."""
    from chipmix.validate.case_columns import ArchitectureColumns, model_from_columns
    from chipmix.validate.cases import CaseRow
    from chipmix.validate.serve_cases import ServeCaseRow

    assert issubclass(CaseRow, ArchitectureColumns)
    assert issubclass(ServeCaseRow, ArchitectureColumns)
    moe = next(c for c in cases if c.row.moe_experts)
    assert model_from_columns(moe.row) == moe.job.model
    assert moe.job.model.moe is not None
    assert moe.job.model.moe.num_experts == moe.row.moe_experts
