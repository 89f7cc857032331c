"""Attention that materializes its scores (Megatron-LM before Megatron-Core) against the
closed form: 8 bytes per score forward (QKᵀ writes bf16 scores, the softmax reads them and
writes its output, P·V reads it), 5 more with attention dropout (Korthikanti et al. 2022,
arXiv 2205.05198, §4.1: the 5·a·s²·b bytes those tensors hold), backward in the attention
core's 2.5× ratio; and which published rows run it."""

from __future__ import annotations

import numpy as np
import pytest

from chipmix.catalog.catalog import load_catalog
from chipmix.perf.layout import Layout, LayoutBatch
from chipmix.perf.ops import attention_score_bytes
from chipmix.perf.step import evaluate
from chipmix.validate.cases import MEGATRON_CORE_WORDS, read_cases
from chipmix.workload.make import make_job


def test_score_traffic_is_eight_bytes_per_score_and_five_more_with_dropout() -> None:
    heads, s = np.array([24.0]), 2048.0
    assert float(attention_score_bytes(heads, s, s, dropout=False)[0]) == 8.0 * 24 * s * s
    assert float(attention_score_bytes(heads, s, s, dropout=True)[0]) == 13.0 * 24 * s * s


def test_the_step_pays_the_score_traffic_forward_and_backward() -> None:
    """Same job, calibration and layout; only the stack's attention differs: the step's
    attention grows by layers × micro-batches × 3.5 × the forward score traffic (tp 2
    splits the heads) at the chip's streaming rate."""
    cat = load_catalog()
    stack_cal = cat.calibration.for_stack("megatron")
    system = cat.system("a100-80gb")
    batch = LayoutBatch.of([Layout(tp=2, dp=4, micro_batch=2, recompute="none")])

    def attention(stack: str) -> float:
        job = make_job("gpt3-13b", seq_len=2048, global_batch=64, stack=stack)
        return float(evaluate(job, system, cat.calibration, batch, stack_cal=stack_cal)
                     .breakdown.attention[0])  # fmt: skip

    job = make_job("gpt3-13b", seq_len=2048, global_batch=64)
    model = job.model
    heads = np.array([2.0 * model.num_heads / 2])  # micro-batch 2, heads over tp 2
    scores = float(attention_score_bytes(heads, 2048.0, 2048.0, dropout=model.dropout)[0])
    rate = system.chip.hbm_bytes_per_s * cat.calibration.for_chip("a100-80gb").memory_efficiency
    expected = model.num_layers * (64 / (4 * 2)) * 3.5 * scores / rate
    assert attention("megatron-lm") - attention("megatron") == pytest.approx(expected, rel=1e-9)


def test_megatron_lm_rows_without_megatron_core_run_the_unfused_attention() -> None:
    seen = set()
    for case in read_cases():
        text = case.row.framework.lower()
        if case.row.stack != "megatron" or "megatron-lm" not in text:
            continue
        core = any(word in text for word in MEGATRON_CORE_WORDS)
        assert (case.stack == "megatron-lm") != core, case.id
        seen.add(core)
    assert seen == {True, False}  # the shipped rows hold both kinds
