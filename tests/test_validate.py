"""Validation against published runs (issue 4): accuracy bounds, isolation of calibration,
reproducibility of the shipped fit, the case-file schema and the CLI contract."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import chipmix
from chipmix.catalog import load_catalog
from chipmix.catalog.calibration import Calibration, ChipCalibration
from chipmix.catalog.catalog import DATA_DIR, FITTED_CALIBRATION
from chipmix.cli import app, main
from chipmix.errors import FileFormatError
from chipmix.validate.cases import (
    CALIBRATION_CASES,
    DEFAULT_CASES,
    EXTRA_CASES,
    _case,
    read_case_files,
    read_cases,
    recipe_from_detail,
)
from chipmix.validate.crossval import cross_validate, leave_one_source_out, source_key
from chipmix.validate.fit import FitResult, fit_calibration
from chipmix.validate.score import predict_case, score_cases
from chipmix.workload import load_model

CATALOG = load_catalog()
CASES = read_cases()
EVIDENCE = read_case_files(CALIBRATION_CASES)
"""Every row the shipped calibration is fitted on (`CALIBRATION_CASES`)."""


@pytest.fixture(scope="module")
def in_sample() -> dict:
    return score_cases(CASES, CATALOG).summary()


# Issue 12 asks for in-sample median <= 7% / p90 <= 18%, leave-one-source-out median
# <= 10% / p90 <= 25% and leave-one-chip-out median <= 15% over the 91 published rows,
# at most 3 of them refused. Measured today: 4.8% / 15.0% in sample (the shipped fit is on
# both published files; 4.7% / 14.9% fitted on the base file alone), 9.1% / 24.5% leave
# one source out, 12.3% leave one chip out, every row predicted: every target met. The
# bounds sit just above the measurements so a regression fails.
def test_median_error_at_most_7_percent(in_sample: dict) -> None:
    assert in_sample["median_abs_error"] <= 0.05  # measured 4.8 %; issue 12 target: 0.07


def test_p90_error_at_most_18_percent(in_sample: dict) -> None:
    assert in_sample["p90_abs_error"] <= 0.155  # measured 15.0 %; issue 12 target: 0.18


def test_every_chip_with_three_rows_within_15_percent(in_sample: dict) -> None:
    # Chips with 5+ predicted rows hold 15 %. B200 and B300 reach 3-4 rows only since the
    # memory model admits Megatron-Bridge's DeepSeek-V3 and GPT-OSS runs, whose errors
    # (B200: -46 % and +19 % before the refit) set B200's median; measured 9.1 % now.
    for chip, stats in in_sample["per_chip"].items():
        if stats["count"] >= 3:
            limit = 0.15 if stats["count"] >= 5 else 0.16
            assert stats["median_abs_error"] <= limit, chip


def test_unpredicted_rows_say_why() -> None:
    card = score_cases(CASES, CATALOG)
    assert all(r.reason for r in card.unpredicted)
    assert len(card.rows) == len(CASES)  # nothing skipped silently
    assert not card.unpredicted  # every published run fits as it ran (issue 12: <= 3 refused)


@pytest.mark.slow
def test_leave_one_source_out_median_at_most_15_percent() -> None:
    summary = leave_one_source_out(CASES, CATALOG).summary()
    assert summary["median_abs_error"] <= 0.095  # measured 9.1 %; issue 12 target: 0.10
    assert summary["p90_abs_error"] <= 0.25  # measured 24.5 % on 91 rows; issue 12: 0.25


@pytest.mark.slow
def test_leave_one_chip_out_median_at_most_15_percent() -> None:
    card = cross_validate(CASES, CATALOG, "chip")
    assert len(card.rows) == len(CASES)
    # Measured 12.3 % on all 91 rows (13.7 % before the MoE token copies and Megatron-LM's
    # unfused attention, 14.6 % before Trillium's prior and Gemma 3's sliding windows,
    # 15.3 % before the regularization was chosen by cross-validation inside each fold);
    # issue 12 target: 0.15.
    assert card.summary()["median_abs_error"] <= 0.13


def test_no_code_constant_names_a_run_or_a_source() -> None:
    """Generalize, don't fit: no module of the library spells a case id or a source."""
    code = "\n".join(
        p.read_text(encoding="utf-8") for p in Path(chipmix.__file__).parent.rglob("*.py")
    )
    rows = read_case_files([DEFAULT_CASES, EXTRA_CASES])
    names = {c.id for c in rows} | {source_key(c) for c in rows}
    assert not [n for n in names if len(n) > 6 and n in code]


def test_a_chip_without_runs_borrows_from_its_family() -> None:
    """trn2, trn3 and Gaudi 3 have no published row: their efficiencies come from their
    family's fit on its datasheet priors, never from the vendor-blind default (tpu-v7 was
    such a chip until its published rows joined the shipped fit)."""
    for chip in ("trn2", "trn3", "gaudi3"):
        evidence = CATALOG.calibration.evidence_for("chip", chip, "matmul_efficiency")
        assert evidence is not None, chip
        assert evidence.basis == "family", chip
        assert evidence.rows == 0
        assert evidence.pooled
    fitted = CATALOG.calibration.evidence_for("chip", "h100-sxm", "matmul_efficiency")
    assert fitted is not None
    assert fitted.basis == "fitted"
    assert fitted.rows >= 2
    inherited = CATALOG.calibration.evidence_for("stack", "nemo", "compute_efficiency")
    assert inherited is not None
    assert inherited.basis == "parent"


@pytest.mark.parametrize(
    ("detail", "precision", "recipe"),
    [
        ("MXFP8 (fp8_mx: bf16_with_mxfp8_mixed)", "fp8", "mxfp8"),
        ("NVFP4 (bf16_with_nvfp4_mixed)", "fp4", "nvfp4"),
        ("FP8 current scaling (fp8_cs: bf16_with_fp8_current_scaling_mixed)", "fp8",
         "fp8-tensorwise"),
        ("FP8 hybrid, delayed scaling (FP8=True)", "fp8", "fp8-delayed"),
        ("INT8 AQT quantized training (quantization=int8)", "int8", "aqt-int8"),
        ("FP8 (Transformer Engine hybrid)", "fp8", None),
    ],
)  # fmt: skip
def test_precision_detail_names_the_recipe(detail: str, precision: str, recipe: str) -> None:
    assert recipe_from_detail(precision, detail) == recipe


def test_unknown_precision_recipe_names_the_valid_ones(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["estimate", "--model", "llama3-8b", "--system", "h100-sxm", "--chips", "8"]
    monkeypatch.setattr(sys, "argv", ["chipmix", *args, "--precision-recipe", "fp9"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown precision recipe 'fp9'" in err
    assert "mxfp8" in err
    assert "nvfp4" in err


def test_fp8_speedup_on_a_small_model_comes_from_the_physics() -> None:
    """fp8 doubles the H100's dense peak, but a 1B model gains far less: its GEMMs are
    small, the casts cost memory traffic and attention, norms and logits stay in bf16."""
    tokens = {}
    for precision in ("bf16", "fp8"):
        result = CliRunner().invoke(app, ["estimate", "--model", "llama3.2-1b", "--system",
                                          "h100-sxm", "--chips", "8", "--seq-len", "4096",
                                          "--global-batch", "64", "--precision", precision,
                                          "--tp", "1", "--pp", "1", "--json"])  # fmt: skip
        assert result.exit_code == 0, result.output
        tokens[precision] = json.loads(result.stdout)["tokens_per_s"]
    assert 0.9 <= tokens["fp8"] / tokens["bf16"] <= 1.5


def test_fp4_is_a_training_precision() -> None:
    result = CliRunner().invoke(app, ["estimate", "--model", "llama3-8b", "--system", "gb200",
                                      "--chips", "8", "--precision", "fp4", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["tokens_per_s"] > 0


@pytest.fixture(scope="module")
def refit() -> FitResult:
    """What `chipmix calibrate` fits by default (`CALIBRATION_CASES`)."""
    return fit_calibration(EVIDENCE, CATALOG)


def test_shipped_calibration_is_what_calibrate_produces(refit: FitResult) -> None:
    shipped = yaml.safe_load((DATA_DIR / FITTED_CALIBRATION).read_text(encoding="utf-8"))
    fitted = {(p["scope"], p["key"], p["name"]): p["fitted"] for p in refit.parameters}
    assert {(p["scope"], p["key"], p["name"]) for p in shipped["parameters"]} == set(fitted)
    for p in shipped["parameters"]:
        assert p["fitted"] == pytest.approx(fitted[(p["scope"], p["key"], p["name"])], rel=1e-3)


def test_no_parameter_is_fitted_from_a_single_row(refit: FitResult) -> None:
    assert all(p["rows"] >= 2 for p in refit.parameters)


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
        pytest.param({"precision": "fp6"}, "precision", id="unsupported precision is named"),
    ],
)
def test_malformed_case_rows_name_line_and_column(
    tmp_path: Path, edit: dict[str, str], expected: str
) -> None:
    with pytest.raises(FileFormatError) as info:
        read_cases(_write_cases(tmp_path, edit))
    assert "line 2" in str(info.value)
    assert expected in str(info.value)


def test_a_row_naming_an_mla_preset_takes_its_latent_attention() -> None:
    """The columns cannot express MLA (their kv_heads/head_dim are the decompressed K/V):
    a row whose ``model`` names an MLA preset it agrees with is counted as that preset
    (DeepSeek-V3: 671B parameters, arXiv 2412.19437), a row that disagrees keeps its own."""
    by_id = {c.id: c for c in CASES}
    dsv3 = load_model("deepseek-v3")
    case = by_id["mbridge260401_DGX-GB300_DeepSeekV3_256_MXFP8"]
    assert case.model.mla == dsv3.mla
    assert case.model.num_params() == dsv3.num_params()
    other = case.row.model_dump() | {"layers": 60}
    assert _case(other).model.mla is None


def test_vocab_tiles_and_published_batches_are_read() -> None:
    """loss_tiles carries MaxText's num_vocab_tiling; Korthikanti et al. §6.3 states the
    2240-GPU batch (280 per model instance × 8-way data parallelism)."""
    by_id = {c.id: c for c in CASES}
    assert by_id["tpurecipes_v6e_Gemma3-12B-MaxText_256c_2"].row.loss_tiles == 16
    assert by_id["korthikanti22_530B_2240_selective"].row.global_batch_seqs == 2240


def test_maxtext_rows_without_their_tiling_still_fit_and_score_the_same() -> None:
    """A published run without the loss_tiles column (the shared schema has none) is not
    refused: the search takes the fewest vocabulary tiles that fit, and tiling costs no
    step time, so the Gemma 3 rows (num_vocab_tiling 16 in their recipes) score as stated."""
    from dataclasses import replace

    tiled = [c for c in CASES if c.row.loss_tiles is not None]
    assert len(tiled) >= 3
    for case in tiled:
        stated = predict_case(case, CATALOG)
        unstated = predict_case(
            replace(case, row=case.row.model_copy(update={"loss_tiles": None})), CATALOG
        )
        assert stated.error is not None, stated.reason
        assert unstated.error is not None, unstated.reason
        assert unstated.error == pytest.approx(stated.error, abs=0.01)


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
