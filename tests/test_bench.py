"""issue 7, the bench's parts without a device: chip matching, CPU peaks, timing, the
results store (concurrent writers), the fitter recovering known parameters, model scaling
and workload shapes, and that nothing outside ``chipmix.bench`` imports torch."""

from __future__ import annotations

import math
import multiprocessing
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from chipmix.bench.detect import CHIP_PATTERNS, CpuInfo, Device, match_chip
from chipmix.bench.e2e import scale_model
from chipmix.bench.fit import fit_chip, write_overlay
from chipmix.bench.runner import workload_gemms
from chipmix.bench.store import Result, RunInfo, Store, StoredResult
from chipmix.bench.timing import CUDA_EVENTS, HOST_TIMER, input_sets, measure
from chipmix.catalog import load_catalog
from chipmix.catalog.calibration import ChipCalibration, StackCalibration
from chipmix.errors import FileFormatError, InputError
from chipmix.perf.roofline import ChipRates
from chipmix.workload.registry import load_model

CATALOG = load_catalog()


@pytest.mark.parametrize(
    ("name", "chip"),
    [
        ("NVIDIA H100 80GB HBM3", "h100-sxm"),  # SXM5 as nvidia-smi names it
        ("NVIDIA H100 PCIe", "h100-pcie"),
        ("NVIDIA H100 NVL", "h100-pcie"),  # the PCIe-form NVL card
        ("NVIDIA H200", "h200"),
        ("NVIDIA A100-SXM4-80GB", "a100-80gb"),
        ("NVIDIA A100-SXM4-40GB", "a100-40gb"),
        ("NVIDIA B200", "b200"),
        ("NVIDIA GB200", "gb200"),  # not b200: most specific pattern first
        ("AMD Instinct MI300X gfx942", "mi300x"),
        ("AMD Instinct MI325X", "mi325x"),
        ("trn2.48xlarge", "trn2"),  # AWS DMI product name
        ("v5litepod-8", "tpu-v5e"),  # TPU_ACCELERATOR_TYPE
        ("v5p-8", "tpu-v5p"),
    ],
)
def test_device_names_match_catalog_chips(name: str, chip: str) -> None:
    assert match_chip(name, CATALOG.chips) == chip


def test_unknown_device_name_matches_nothing() -> None:
    assert match_chip("Some Future Accelerator", CATALOG.chips) is None


def test_every_pattern_names_a_catalog_chip() -> None:
    assert {chip for _, chip in CHIP_PATTERNS} <= set(CATALOG.chips)


def test_cpu_peak_is_derived_from_isa_clock_and_threads() -> None:
    info = CpuInfo(
        model_name="x", threads=2, ghz=2.5, flags=("avx2", "avx512_bf16", "avx512f"),
        memory_bytes=1e9,
    )  # fmt: skip
    peaks = info.derived_peak_flops()
    assert peaks["fp32"] == pytest.approx(2 * 2.5e9 * 64)  # 2 × 512-bit FMA × 16 lanes × 2
    assert peaks["bf16"] == pytest.approx(2 * 2.5e9 * 128)  # VDPBF16PS
    plain = CpuInfo(model_name="x", threads=1, ghz=1.0, flags=("avx2",), memory_bytes=0.0)
    assert plain.derived_peak_flops()["bf16"] == plain.derived_peak_flops()["fp32"] == 32e9


def test_host_timing_makes_inputs_once_and_takes_the_median() -> None:
    made: list[int] = []
    used: list[int] = []
    durations = iter([0.0, 0.0, 3.0, 1.0, 2.0])  # two warm-ups, then three samples

    def make() -> int:
        made.append(len(made))
        return len(made)

    clock = {"t": 0.0}

    def run(inputs: int) -> None:
        used.append(inputs)
        clock["t"] += next(durations)

    import chipmix.bench.timing as timing

    real = timing.time.perf_counter
    timing.time.perf_counter = lambda: clock["t"]  # type: ignore[assignment]
    try:
        t = measure(run, make, lambda: None, warmup=2, repeats=3, buffers=2)
    finally:
        timing.time.perf_counter = real  # type: ignore[assignment]
    assert (t.median_s, t.min_s, t.max_s) == (2.0, 1.0, 3.0)
    assert t.method == HOST_TIMER
    assert len(made) == 2  # made up front, never inside the timed loop
    assert used == [1, 2, 1, 2, 1]  # the sets are rotated


class _FakeEvent:
    """A device event whose elapsed times are scripted; counts the host's waits."""

    clock = 0.0
    waits = 0

    def __init__(self) -> None:
        self.at = 0.0

    def record(self) -> None:
        self.at = _FakeEvent.clock

    def synchronize(self) -> None:
        _FakeEvent.waits += 1

    def elapsed_time(self, end: _FakeEvent) -> float:
        return (end.at - self.at) * 1e3  # milliseconds, as CUDA events report


def test_event_timing_queues_every_sample_and_waits_once() -> None:
    syncs = {"n": 0}
    steps = iter([0.0, 0.0, 0.003, 0.001, 0.002])  # two warm-ups, three samples

    def run(_: None) -> None:
        _FakeEvent.clock += next(steps)

    def sync() -> None:
        syncs["n"] += 1

    _FakeEvent.waits = 0
    t = measure(run, lambda: None, sync, warmup=2, repeats=3, event=_FakeEvent, min_sample_s=0.0)
    assert t.method == CUDA_EVENTS
    assert (t.median_s, t.min_s, t.max_s) == pytest.approx((0.002, 0.001, 0.003))
    assert _FakeEvent.waits == 1  # one wait after every sample was queued
    assert syncs["n"] == 1 + 2 + 1  # after making inputs, after each warm-up, before timing


def test_input_sets_state_the_l2() -> None:
    l2 = 50 * 2**20
    assert input_sets(256 * 2**20, l2)[0] == 1  # operands outsize twice the L2
    n, said = input_sets(8 * 2**20, l2)
    assert n * 8 * 2**20 >= 2 * l2
    assert "rotated" in said
    assert input_sets(8 * 2**20, None) == (1, "one input set; L2 size unknown")


def _info(chip: str = "h100-sxm") -> RunInfo:
    return RunInfo(
        device_kind="cuda", device_name="NVIDIA H100 80GB HBM3", chip=chip, suite="quick",
        versions={"torch": "2.13.0", "cuda": "12.8", "driver": "570.1"},
        device={"memory_bytes": 80e9},
    )  # fmt: skip


def _matmul(m: int, k: int, n: int, seconds: float) -> Result:
    return Result(
        kind="matmul", name="square", dtype="bf16", shape={"m": m, "k": k, "n": n},
        median_s=seconds, min_s=seconds, repeats=5, flops=2.0 * m * k * n,
    )  # fmt: skip


def test_store_round_trip_keeps_versions_shapes_and_dates(tmp_path: Path) -> None:
    with Store(tmp_path / "r.sqlite") as store:
        run = store.start_run(_info())
        store.add(run, _matmul(1024, 2048, 4096, 1e-3))
        store.finish_run(run)
        [stored] = store.results(chip="h100-sxm")
        assert store.chips() == ["h100-sxm"]
        assert store.runs()[0]["finished"] is not None
    assert stored.versions["driver"] == "570.1"
    assert stored.result.shape == {"m": 1024, "k": 2048, "n": 4096}
    assert stored.result.dtype == "bf16"
    assert stored.created[:4].isdigit()
    assert stored.result.flops_per_s == pytest.approx(2 * 1024 * 2048 * 4096 / 1e-3)


def test_store_is_in_wal_mode(tmp_path: Path) -> None:
    Store(tmp_path / "r.sqlite").close()
    mode = sqlite3.connect(tmp_path / "r.sqlite").execute("PRAGMA journal_mode").fetchone()
    assert mode[0] == "wal"


def test_a_file_that_is_not_a_store_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sqlite"
    bad.write_text("not a database at all, just text " * 100)
    with pytest.raises(FileFormatError, match="not a chipmix results file"):
        Store(bad)


def _writer(path: str, count: int) -> None:
    with Store(path) as store:
        run = store.start_run(_info())
        for i in range(count):
            store.add(run, _matmul(64 + i, 64, 64, 1e-4))


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "r.sqlite")
    Store(path).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, 40)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with Store(path) as store:
        assert len(store.results()) == 120
        assert len(store.runs()) == 3


def _stored(results: list[Result], chip: str = "h100-sxm") -> list[StoredResult]:
    return [
        StoredResult(
            id=i, run_id=1, created="2026-01-01", chip=chip, device_kind="cuda",
            device_name="NVIDIA H100 80GB HBM3", versions={"torch": "2.13.0"}, device={},
            result=r,
        )
        for i, r in enumerate(results)
    ]  # fmt: skip


def test_fit_recovers_known_matmul_and_memory_parameters(tmp_path: Path) -> None:
    """Results made by the model itself with known parameters come back out of the fit."""
    chip = CATALOG.chip("h100-sxm")
    truth = ChipCalibration(matmul_efficiency=0.7, matmul_half_dim=600.0, memory_efficiency=0.9)
    rates = ChipRates(chip.peak_flops("bf16"), chip.hbm_bytes_per_s, truth,
                      StackCalibration(compute_efficiency=1.0), 2.0)  # fmt: skip
    shapes = [(d, d, d) for d in (256, 512, 1024, 2048, 4096, 8192)] + [(8192, 4096, 14336)]
    results = [
        _matmul(m, k, n, float(rates.gemm_time(np.array(m, float), k, n))) for m, k, n in shapes
    ]
    copy_bytes = 2.0 * 2**31
    copy = Result(kind="copy", name="copy", dtype="fp32", shape={"bytes": 2**31},
                  median_s=copy_bytes / (0.9 * chip.hbm_bytes_per_s), min_s=0.0, repeats=5,
                  bytes=copy_bytes)  # fmt: skip
    results.append(copy)
    fit = fit_chip("h100-sxm", _stored(results), CATALOG)
    cal = fit.calibration
    assert cal.memory_efficiency == pytest.approx(0.9, rel=1e-6)
    assert cal.matmul_efficiency == pytest.approx(0.7, rel=0.02)
    assert cal.matmul_half_dim == pytest.approx(600.0, rel=0.05)
    assert max(abs(e) for e in fit.residuals.values()) < 0.02
    assert cal.model_fields_set >= {"matmul_efficiency", "matmul_half_dim", "source"}
    assert "scaleup_efficiency" not in cal.model_fields_set  # nothing measured it


def test_fit_overlay_changes_only_the_measured_chip(tmp_path: Path) -> None:
    results = [_matmul(d, d, d, 2.0 * d**3 / 400e12) for d in (1024, 4096, 8192)]
    fit = fit_chip("h100-sxm", _stored(results), CATALOG)
    from chipmix.bench.fit import BenchFit

    write_overlay(BenchFit([fit], "r.sqlite"), tmp_path / "cat")
    overlaid = load_catalog(tmp_path / "cat")
    assert overlaid.calibration.for_chip("h100-sxm").matmul_efficiency == pytest.approx(
        fit.calibration.matmul_efficiency
    )
    for other in ("b200", "mi300x", "trn2"):
        assert overlaid.calibration.for_chip(other) == CATALOG.calibration.for_chip(other)


def test_fit_without_usable_results_says_what_to_run() -> None:
    e2e_only = Result(kind="e2e", name="train_step", dtype="bf16", shape={}, median_s=1.0,
                      min_s=1.0, repeats=3)  # fmt: skip
    with pytest.raises(InputError, match="no copy, matmul"):
        fit_chip("h100-sxm", _stored([e2e_only]), CATALOG)
    with pytest.raises(InputError, match="chipmix bench --device cpu"):
        fit_chip("cpu", _stored([e2e_only], chip="cpu"), CATALOG)


def test_scale_model_keeps_the_architecture_and_fits_the_budget() -> None:
    big = load_model("llama3.2-1b")
    small = scale_model(big, max_params=16e6, max_vocab=16384)
    assert small.num_params() <= 16e6
    assert small.name == "llama3.2-1b-bench"
    assert (small.mlp, small.norm, small.head_dim, small.tied_embeddings) == (
        big.mlp, big.norm, big.head_dim, big.tied_embeddings
    )  # fmt: skip
    assert small.num_heads // small.num_kv_heads == big.num_heads // big.num_kv_heads
    assert scale_model(big, max_params=2e9) is big
    moe = scale_model(load_model("mixtral-8x7b"), max_params=50e6, max_vocab=4096)
    assert moe.moe is not None
    assert moe.num_params() <= 50e6


def test_workload_gemms_are_the_models_shapes() -> None:
    model = load_model("llama3-8b")
    gemms = {name: (m, k, n) for name, m, k, n in workload_gemms(model, 4096, 1)}
    h, f = model.hidden_size, model.ffn_hidden_size
    assert gemms["qkv"] == (4096, h, model.q_dim + 2 * model.kv_dim)
    assert gemms["mlp_in"] == (4096, h, 2 * f)
    assert gemms["mlp_out"] == (4096, f, h)
    assert gemms["logits"] == (4096, h, model.vocab_size)


def test_device_info_is_plain_data() -> None:
    device = Device(kind="cpu", torch_device="cpu", name="x", chip="cpu")
    assert device.info()["chip"] == "cpu"


def test_chipmix_never_imports_torch_outside_the_bench() -> None:
    code = (
        "import sys, chipmix, chipmix.cli, chipmix.bench, chipmix.bench.commands\n"
        "chipmix.estimate('llama3-8b', 'h100-sxm', 8, seq_len=2048, global_batch=64)\n"
        "from typer.testing import CliRunner\n"
        "assert CliRunner().invoke(chipmix.cli.app, ['bench', '--help']).exit_code == 0\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_math_of_attention_flops_matches_perf_ops() -> None:
    from chipmix.bench.micro import attention_flops
    from chipmix.perf.layout import Layout, LayoutBatch
    from chipmix.perf.ops import layer_work

    model = load_model("llama3-8b")
    work = layer_work(model, 4096, LayoutBatch.of([Layout(micro_batch=2)]), moe_layer=False)
    expected = attention_flops(2, model.num_heads, 4096, model.head_dim)
    assert math.isclose(float(work.attention_flops[0]), expected)
