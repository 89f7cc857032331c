"""Sliding-window attention: the attention work it leaves, and the rows that carry it."""

from __future__ import annotations

import numpy as np
import pytest

from chipmix.catalog.catalog import load_catalog
from chipmix.perf.layout import Layout, LayoutBatch
from chipmix.perf.ops import layer_work
from chipmix.perf.step import model_flops_per_token
from chipmix.validate.cases import read_cases
from chipmix.workload.job import Job
from chipmix.workload.model import ModelSpec
from chipmix.workload.registry import load_model

GEMMA = load_model("gemma3-12b")
FULL = GEMMA.model_copy(update={"sliding_window": None, "sliding_window_pattern": None})


def _mean_keys(seq_len: int, window: int | None) -> float:
    """Keys per query averaged over every position, counted one by one."""
    keys = np.arange(1, seq_len + 1, dtype=np.float64)
    return float(np.mean(keys if window is None else np.minimum(keys, window)))


def test_gemma3_layers_five_local_to_one_global() -> None:
    # Gemma 3 technical report §2.2: 5 local layers per global one; 48 layers -> 8 global.
    assert GEMMA.num_local_layers == 40
    assert FULL.num_local_layers == 0


def test_span_is_the_counted_mean_of_keys_per_query() -> None:
    seq, window = 32768, 1024
    local = _mean_keys(seq, window) / _mean_keys(seq, None)
    expected = (8 + 40 * local) / 48
    assert GEMMA.attention_span(seq) == pytest.approx(expected, rel=1e-3)


def test_span_closed_form_at_32k() -> None:
    x = 1024 / 32768
    assert GEMMA.attention_span(32768) == pytest.approx((8 + 40 * (2 * x - x * x)) / 48)


def test_window_longer_than_the_sequence_changes_nothing() -> None:
    assert GEMMA.attention_span(1024) == 1.0
    assert FULL.attention_span(32768) == 1.0


def test_every_layer_local_without_a_pattern() -> None:
    spec = FULL.model_copy(update={"sliding_window": 4096})
    assert spec.num_local_layers == spec.num_layers
    x = 4096 / 8192
    assert spec.attention_span(8192) == pytest.approx(2 * x - x * x)


def test_layer_attention_work_scales_by_the_span() -> None:
    batch = LayoutBatch.of([Layout()])
    windowed = layer_work(GEMMA, 32768, batch, moe_layer=False).attention_flops
    full = layer_work(FULL, 32768, batch, moe_layer=False).attention_flops
    assert float(windowed[0] / full[0]) == pytest.approx(GEMMA.attention_span(32768))


def test_model_flops_count_the_window() -> None:
    def flops(model: ModelSpec) -> float:
        job = Job(model=model, seq_len=32768, global_batch=256)
        return model_flops_per_token(job)

    attention_full = 12.0 * 48 * FULL.q_dim * 32768
    saved = attention_full * (1.0 - GEMMA.attention_span(32768))
    assert flops(FULL) - flops(GEMMA) == pytest.approx(saved)


# -- published rows ---------------------------------------------------------------------
CASES = {c.id: c for c in read_cases()}


def test_rows_with_gemma3_architecture_take_its_window() -> None:
    gemma_rows = [c for c in CASES.values() if "Gemma3-12B" in c.id]
    assert gemma_rows
    for case in gemma_rows:
        assert case.row.model == "custom"
        assert (case.model.sliding_window, case.model.sliding_window_pattern) == (1024, 6)


def test_other_architectures_keep_full_attention() -> None:
    windowed = {c.id for c in CASES.values() if c.model.sliding_window is not None}
    assert windowed == {c for c in CASES if "Gemma3-12B" in c}


def test_a_row_naming_a_preset_of_another_architecture_keeps_full_attention() -> None:
    from chipmix.validate.cases import _with_preset_window

    other = FULL.model_copy(update={"num_layers": 46})
    assert _with_preset_window(other, "gemma3-12b").sliding_window is None
    assert _with_preset_window(FULL, "gemma3-12b").sliding_window == 1024
    assert _with_preset_window(FULL, "llama3-8b").sliding_window is None


def test_trillium_prior_scales_the_default_by_googles_two_ratios() -> None:
    calibration = load_catalog().prior_calibration
    default = calibration.default_chip.matmul_efficiency
    v6e = calibration.for_chip("tpu-v6e").matmul_efficiency
    assert v6e == pytest.approx(default * 4.0 / 4.7, abs=0.005)
