"""issue 7, "Must show" on an accelerator (``pytest -m gpu``; skipped in CI): bf16 matmul at
8192³ above 650 TFLOP/s on an H100, and the end-to-end step of a ~1B-parameter model
(Llama 3.2 1B) predicted within 10% of measured after calibrating from the quick suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from chipmix.bench.commands import calibrate_from_bench, run_bench, run_check
from chipmix.bench.detect import Device, detect
from chipmix.bench.micro import TimingConfig, matmul, matmul_fp8
from chipmix.catalog import load_catalog

pytestmark = pytest.mark.gpu
torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def gpu() -> Device:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA/ROCm device")
    return detect("cuda", known=load_catalog().chips)


STEADY = TimingConfig(warmup=10, repeats=20, min_sample_s=0.05)


def test_h100_bf16_matmul_8192_cubed_above_650_tflops(gpu: Device) -> None:
    if not gpu.chip.startswith("h100"):
        pytest.skip(f"the bound is for an H100 (this is {gpu.chip})")
    result = matmul(gpu, 8192, 8192, 8192, cfg=STEADY)
    assert result.flops_per_s > 650e12, f"{result.flops_per_s / 1e12:.0f} TFLOP/s"


def test_fp8_matmul_outruns_bf16_where_supported(gpu: Device) -> None:
    fp8 = matmul_fp8(gpu, 8192, 8192, 8192, cfg=STEADY)
    if fp8 is None:
        pytest.skip(f"{gpu.name}: no fp8 matmul")
    assert fp8.flops_per_s > matmul(gpu, 8192, 8192, 8192, cfg=STEADY).flops_per_s


def test_1b_model_step_within_10_percent_after_calibration(gpu: Device, tmp_path: Path) -> None:
    db = tmp_path / "bench.sqlite"
    run = run_bench(model="llama3.2-1b", suite="quick", device="cuda", db=db)
    assert {r.kind for r in run.results} >= {"matmul", "attention", "copy", "e2e"}
    calibrate_from_bench(db=db, out=tmp_path / "catalog")
    _, check = run_check(
        model="llama3.2-1b", suite="quick", device="cuda", db=db, catalog=tmp_path / "catalog"
    )
    assert check.params > 0.9e9  # the unscaled ~1B model
    assert abs(check.error) < 0.10, check.to_dict()
