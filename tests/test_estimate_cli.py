"""`chipmix estimate` and the listing commands, end to end through the CLI.

Good input through typer's `CliRunner` on `chipmix.cli.app`; bad input through
`chipmix.cli.main` (the console entry point, which turns a `ChipmixError` into one line
``error: …`` on stderr and exit status 2), in-process for speed, plus the installed
``chipmix`` executable in a subprocess for the real thing.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from chipmix.cli import app, main

runner = CliRunner()

# issue 2, "Must show": Llama 3 70B on 64 chips, tp4 pp4 dp4, 8k sequences, 128 per step.
MUST_SHOW = [
    "estimate", "--model", "llama3-70b", "--chips", "64", "--tp", "4", "--pp", "4",
    "--dp", "4", "--seq-len", "8192", "--global-batch", "128", "--json",
]  # fmt: skip
DESIGN_CHIP_IDS = (
    "a100-40gb a100-80gb h100-sxm h100-pcie h800 h200 b200 gb200 b300 gb300 trn1 trn2 trn3 "
    "inf2 tpu-v4 tpu-v5e tpu-v5p tpu-v6e tpu-v7 mi250x mi300x mi325x mi350x mi355x gaudi2 "
    "gaudi3"
).split()
LAYOUT_KEYS = {"tp", "pp", "dp", "cp", "ep", "vpp", "micro_batch", "zero", "recompute", "offload"}
CONTRACT = {
    "step_time_s", "tokens_per_s", "tokens_per_s_per_chip", "mfu", "memory_gib_per_chip",
    "fits", "layout", "breakdown",
}  # fmt: skip
RUN_CONTRACT = {"time_to_train_h", "chip_hours", "cost_usd", "energy_mwh"}


def invoke_json(args: list[str]) -> Any:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


# -- the "must show" command on four vendors ------------------------------------------------
@pytest.mark.parametrize(
    "system",
    [
        pytest.param("h100-sxm", id="nvidia h100-sxm"),
        pytest.param("trn2", id="aws trn2"),
        pytest.param("tpu-v5p", id="google tpu-v5p"),
        pytest.param("mi300x", id="amd mi300x"),
    ],
)
def test_llama3_70b_on_64_chips_is_sane(system: str) -> None:
    out = invoke_json([*MUST_SHOW, "--system", system])
    assert out["fits"] is True
    # MaxText publishes 61-70% MFU on TPU v5e (README table, 16B-128B), and the TPU family
    # fitted to those runs carries it to v5p: up to 0.75 is the published range there.
    assert 0.25 <= out["mfu"] <= 0.75, f"MFU {out['mfu']:.3f} on {system}"
    assert out["memory_gib_per_chip"] <= out["memory_capacity_gib"]
    assert {k: out["layout"][k] for k in ("tp", "pp", "dp")} == {"tp": 4, "pp": 4, "dp": 4}
    assert out["chips"] == 64


def test_json_carries_the_design_contract() -> None:
    out = invoke_json([*MUST_SHOW, "--system", "h100-sxm"])
    assert set(out) >= CONTRACT
    assert not RUN_CONTRACT & set(out), "run figures only with --tokens"
    assert set(out["layout"]) == LAYOUT_KEYS
    breakdown = out["breakdown"]
    for term in ("tp_comm", "cp_comm", "ep_comm", "dp_comm", "pipeline_bubble", "optimizer"):
        assert term in breakdown
    assert all(isinstance(v, float) and v >= 0.0 for v in breakdown.values())
    assert sum(breakdown.values()) == pytest.approx(out["step_time_s"], rel=1e-9)
    tokens_per_step = 8192 * 128
    assert out["tokens_per_s"] == pytest.approx(tokens_per_step / out["step_time_s"])
    assert out["tokens_per_s_per_chip"] == pytest.approx(out["tokens_per_s"] / 64)


def test_json_with_tokens_adds_time_cost_and_energy() -> None:
    out = invoke_json([*MUST_SHOW, "--system", "h100-sxm", "--tokens", "1e12"])
    assert set(out) >= CONTRACT | RUN_CONTRACT
    hours = 1e12 / out["tokens_per_s"] / 3600
    assert out["time_to_train_h"] == pytest.approx(hours)
    assert out["chip_hours"] == pytest.approx(hours * 64)
    assert out["cost_usd"] > 0
    assert out["energy_mwh"] > 0


def test_price_tier_picks_the_cost() -> None:
    base = [*MUST_SHOW, "--system", "h100-sxm", "--tokens", "1e12"]
    on_demand = invoke_json(base)
    spot = invoke_json([*base, "--price-tier", "spot"])
    assert spot["cost_usd"] == pytest.approx(on_demand["cost_usd_by_tier"]["spot"])
    assert spot["cost_usd"] < on_demand["cost_usd"]


def test_table_output_and_explain() -> None:
    result = runner.invoke(app, [*MUST_SHOW[:-1], "--system", "h100-sxm", "--explain"])
    assert result.exit_code == 0, result.output
    for word in ("step time", "MFU", "pipeline_bubble", "optimizer", "activations"):
        assert word in result.stdout


def test_full_layout_is_kept_as_given() -> None:
    layout = {"tp": 4, "pp": 4, "dp": 4, "cp": 1, "ep": 1, "vpp": 5, "micro_batch": 1,
              "zero": 2, "recompute": "selective"}  # fmt: skip
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in layout.items()]
    out = invoke_json([*MUST_SHOW, "--system", "h100-sxm", *flags])
    assert out["layout"] == layout | {"offload": "none"}


def test_loss_tiles_keep_one_tile_of_logits() -> None:
    """MaxText num_vocab_tiling: 16 tiles keep 1/16 of the whole logits (4 B per logit)."""
    args = ["estimate", "--model", "llama3-8b", "--system", "tpu-v6e", "--chips", "64",
            "--stack", "maxtext", "--seq-len", "8192", "--global-batch", "320", "--dp", "64",
            "--micro-batch", "5", "--recompute", "full", "--json"]  # fmt: skip
    whole = 4.0 * 5 * 8192 * 128256 / 2**30
    out = invoke_json([*args, "--loss-tiles", "16"])
    assert out["memory_gib"]["logits"] == pytest.approx(whole / 16)


def test_unstated_loss_tiles_on_maxtext_take_the_fewest_that_fit(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Whole logits (19.6 GiB) do not fit beside this layout on a 32 GiB v6e: stated as 1
    the run is refused, unstated the estimate takes 2 tiles (the fewest that fit)."""
    args = ["estimate", "--model", "llama3-8b", "--system", "tpu-v6e", "--chips", "64",
            "--stack", "maxtext", "--seq-len", "8192", "--global-batch", "320", "--dp", "64",
            "--micro-batch", "5", "--recompute", "full"]  # fmt: skip
    whole = 4.0 * 5 * 8192 * 128256 / 2**30
    out = invoke_json([*args, "--json"])
    assert out["memory_gib"]["logits"] == pytest.approx(whole / 2)
    assert out["memory_gib"]["total"] <= 32.0
    code, _, err = run_main([*args, "--loss-tiles", "1"], monkeypatch, capsys)
    assert code == 2
    assert "logits" in err


def test_loss_tiles_below_one_is_an_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_main([*LLAMA, "--chips", "8", "--loss-tiles", "0"], monkeypatch, capsys)
    assert code == 2
    assert "--loss-tiles" in err
    assert "Traceback" not in err


# -- bad input --------------------------------------------------------------------------------
def run_main(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    """`chipmix ARGS` through the console entry point: (exit status, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["chipmix", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), captured.out, captured.err


LLAMA = ["estimate", "--model", "llama3-70b", "--system", "h100-sxm"]
FULL_8 = ["--chips", "8", "--tp", "8", "--pp", "1", "--dp", "1", "--cp", "1", "--ep", "1",
          "--vpp", "1", "--micro-batch", "1", "--zero", "0", "--recompute", "none"]  # fmt: skip


def model_file(tmp: Path, name: str, text: str) -> str:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return str(path)


MODEL_FIELDS = (
    "name: tiny\nnum_layers: 2\nhidden_size: 64\nffn_hidden_size: 256\nnum_heads: 4\n"
    "head_dim: 16\nvocab_size: 1000\n"
)
MODEL_FILES = {
    "broken.yaml": ("name: tiny\nnum_layers: [\n", ["not valid YAML", "line"]),
    "incomplete.yaml": ("name: tiny\nnum_layers: 2\nhidden_size: 64\n", ["num_heads", "required"]),
    "list.yaml": ("- 1\n- 2\n", ["expected a mapping"]),
    "empty.yaml": ("", ["expected a mapping"]),
    "truncated.json": ('{"name": "x", ', ["not valid JSON"]),
    "kv-groups.yaml": (MODEL_FIELDS + "num_kv_heads: 3\n", ["num_kv_heads (3)"]),
    "zero-layers.yaml": (
        MODEL_FIELDS.replace("num_layers: 2", "num_layers: 0") + "num_kv_heads: 2\n",
        ["num_layers", "greater than 0"],
    ),
    "unknown-key.yaml": (MODEL_FIELDS + "num_kv_heads: 2\nheads_typo: 4\n", ["heads_typo"]),
}

BAD_INPUT = [
    # (args, words the message must contain, reason)
    (["estimate", "--model", "llama3-70b", "--system", "h100-sxn", "--chips", "8"],
     ["'h100-sxn'", "Did you mean", "'h100-sxm'"], "unknown system, close to a chip id"),
    (["estimate", "--model", "llama3-70b", "--system", "mi300", "--chips", "8"],
     ["'mi300'", "Did you mean", "'mi300x'"], "unknown chip, close to a chip id"),
    (["estimate", "--model", "llama3-7b", "--system", "h100-sxm", "--chips", "8"],
     ["unknown model 'llama3-7b'", "Did you mean", "'llama3-8b'"], "unknown model preset"),
    ([*LLAMA, "--chips", "64", "--tp", "4", "--pp", "4", "--dp", "2", "--cp", "1"],
     ["tp(4) × pp(4) × dp(2) × cp(1) = 32 ≠ chips(64)"], "degrees multiply to 32, not 64"),
    ([*LLAMA, *FULL_8[:2], "--tp", "4", *FULL_8[4:]],
     ["= 4 ≠ chips(8)"], "full layout multiplies to 4, not 8"),
    ([*LLAMA, "--chips", "16", "--tp", "16", "--pp", "1", "--dp", "1", "--stack", "maxtext"],
     ["tp=16", "8 key-value heads", "maxtext does not replicate KV heads", "Megatron-Core"],
     "tp divides the 64 heads, not the 8 kv heads, on a stack that does not replicate them"),
    ([*LLAMA, "--chips", "3", "--tp", "3", "--pp", "1", "--dp", "1"],
     ["tp=3", "64 attention heads"], "tp does not divide the heads"),
    ([*LLAMA, *FULL_8, "--seq-len", "8192", "--global-batch", "8"],
     ["does not fit", "GiB more than the 80 GiB", "optimizer"],
     "full layout out of memory: by how much and the dominant term"),
    ([*LLAMA, "--chips", "8"], ["needs", "TiB", "at least"],
     "no layout fits: weights and optimizer alone exceed 8 chips"),
    ([*LLAMA, "--chips", "64", "--tp", "4", "--pp", "1", "--dp", "16", "--cp", "1", "--vpp", "2"],
     ["vpp=2", "needs pp > 1"], "interleaving without a pipeline"),
    ([*LLAMA, "--chips", "64", "--ep", "2"], ["ep=2", "dense model"], "ep on a dense model"),
    ([*LLAMA, "--chips", "0"], ["chips", "(got 0)"], "zero chips"),
    ([*LLAMA, "--chips", "-8"], ["chips", "(got -8)"], "negative chips"),
    ([*LLAMA, "--chips", "100000000"], ["chips", "10,000,000"], "absurd chip count"),
    ([*LLAMA, "--chips", "8", "--seq-len", "-5"], ["seq_len", "(got -5)"], "negative seq len"),
    ([*LLAMA, "--chips", "8", "--seq-len", "100000000"], ["seq_len", "2097152"],
     "absurd sequence length"),
    ([*LLAMA, "--chips", "8", "--global-batch", "0"], ["global_batch", "(got 0)"],
     "zero global batch"),
    ([*LLAMA, "--chips", "8", "--tokens", "-1"], ["tokens", "(got -1.0)"], "negative tokens"),
    ([*LLAMA, "--chips", "8", "--tokens", "1e30"], ["tokens", "(got 1e+30)"], "absurd tokens"),
    ([*LLAMA, "--chips", "8", "--tokens", "nan"], ["tokens", "(got nan)"], "NaN tokens"),
    ([*LLAMA, "--chips", "64", "--tp", "0"], ["layout tp", "(got 0)"], "zero tp"),
    ([*LLAMA, "--chips", "64", "--micro-batch", "0"], ["micro_batch", "(got 0)"],
     "zero micro-batch"),
    ([*LLAMA, "--chips", "64", "--zero", "5"], ["zero", "between 0 and 3", "(got 5)"],
     "ZeRO stage 5"),
    ([*LLAMA, "--chips", "64", "--recompute", "partial"],
     ["unknown recompute policy 'partial'", "selective", "core_attn", "custom"],
     "unknown recompute policy"),
    ([*LLAMA, "--chips", "64", "--recompute", "selectve"],
     ["unknown recompute policy 'selectve'", "Did you mean 'selective'"], "misspelt policy"),
    ([*LLAMA, "--chips", "8", "--precision", "fp6"],
     ["unknown precision 'fp6'", "Did you mean 'fp8'", "bf16"], "unknown precision"),
    ([*LLAMA, "--chips", "8", "--mode", "pretrian"],
     ["unknown mode 'pretrian'", "Did you mean 'pretrain'", "lora"], "misspelt mode"),
    ([*LLAMA, "--chips", "8", "--price-tier", "cheap", "--tokens", "1e12"],
     ["unknown price tier 'cheap'", "spot", "on-demand"],
     "unknown price tier, reported before any search (8 chips could not fit anyway)"),
    (["estimate", "--model", "/nonexistent/model.yaml", "--system", "h100-sxm", "--chips", "8"],
     ["does not exist"], "model file that is not there"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "words"), [(a, w) for a, w, _ in BAD_INPUT],
                         ids=[reason for _, _, reason in BAD_INPUT])  # fmt: skip
def test_bad_input_is_one_clear_error(
    args: list[str],
    words: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_main(args, monkeypatch, capsys)
    assert code == 2
    assert out == "", "no number is printed for an impossible case"
    assert "Traceback" not in out + err
    assert err.startswith("error: ")
    assert err.count("\n") == 1, "one line"
    for word in words:
        assert word in err


@pytest.mark.parametrize("name", list(MODEL_FILES), ids=lambda n: f"malformed model file {n}")
def test_malformed_model_file(
    name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    text, words = MODEL_FILES[name]
    path = model_file(tmp_path, name, text)
    code, out, err = run_main(
        ["estimate", "--model", path, "--system", "h100-sxm", "--chips", "8"], monkeypatch, capsys
    )
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    assert err.startswith(f"error: {path}")
    for word in words:
        assert word in err


def test_usage_errors_from_typer_are_not_tracebacks(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_main([*LLAMA, "--chips", "many"], monkeypatch, capsys)
    assert code == 2
    assert "Traceback" not in out + err
    assert "--chips" in err


def test_installed_command_exit_status_and_stderr() -> None:
    """The real executable: an impossible request exits 2 with one line on stderr and
    prints nothing on stdout; a possible one prints JSON and exits 0."""
    exe = Path(sys.executable).with_name("chipmix")
    if not exe.exists():
        pytest.skip("chipmix is not installed in this environment")
    bad = subprocess.run(
        [str(exe), "estimate", "--model", "llama3-70b", "--system", "h100-sxn", "--chips", "8"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert bad.stderr.startswith("error: unknown system or chip 'h100-sxn'. Did you mean")
    assert "Traceback" not in bad.stderr
    good = subprocess.run(
        [str(exe), *MUST_SHOW, "--system", "h100-sxm"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert good.returncode == 0, good.stderr
    assert math.isfinite(json.loads(good.stdout)["step_time_s"])


# -- listings ---------------------------------------------------------------------------------
def test_catalog_chips_lists_every_design_chip() -> None:
    rows = invoke_json(["catalog", "chips", "--json"])
    ids = {row["id"] for row in rows}
    assert set(DESIGN_CHIP_IDS) <= ids
    h100 = next(row for row in rows if row["id"] == "h100-sxm")
    assert h100["peak_tflops_dense"]["bf16"]["value"] > 0
    assert h100["peak_tflops_dense"]["bf16"]["source"]


def test_catalog_systems_has_a_reference_system_per_chip() -> None:
    rows = invoke_json(["catalog", "systems", "--json"])
    referenced = {row["chip"] for row in rows if row["reference"]}
    assert set(DESIGN_CHIP_IDS) <= referenced
    assert all(row["scaleup_domain_chips"] >= 1 for row in rows)


def test_catalog_offers_are_priced_and_dated() -> None:
    rows = invoke_json(["catalog", "offers", "--json"])
    assert rows
    for row in rows:
        assert row["usd_per_chip_hour"], row["id"]
        assert all(price > 0 for price in row["usd_per_chip_hour"].values())
        assert row["as_of"]
        assert row["source"]
    everything = invoke_json(["catalog", "offers", "--json", "--all-vintages"])
    assert len(everything) >= len(rows)


def test_catalog_tables_render() -> None:
    for kind in ("chips", "systems", "offers"):
        result = runner.invoke(app, ["catalog", kind])
        assert result.exit_code == 0, result.output
        assert result.stdout.strip()


def test_catalog_unknown_kind_is_a_usage_error() -> None:
    result = runner.invoke(app, ["catalog", "gpus"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_models_lists_the_presets() -> None:
    rows = invoke_json(["models", "--json"])
    names = {row["name"] for row in rows}
    assert {"llama3-70b", "gpt3-175b", "deepseek-v3", "mixtral-8x7b"} <= names
    llama = next(row for row in rows if row["name"] == "llama3-70b")
    assert llama["params"] == pytest.approx(70.6e9, rel=0.01)
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0
    assert "llama3-70b" in result.stdout
