"""The serving model: closed forms (KV bytes, memory-bound decode, compute-bound prefill),
continuous batching, the layout search under targets, and its bad-input messages."""

from __future__ import annotations

import numpy as np
import pytest

from chipmix.catalog import load_catalog
from chipmix.errors import InfeasibleError, InputError
from chipmix.perf.roofline import gemm_efficiency
from chipmix.serve.batching import evaluate_serving
from chipmix.serve.calibration import load_serve_calibration
from chipmix.serve.estimate import compare_serving, estimate_serving, search_serving, targets_ms
from chipmix.serve.forward import (
    ServeSetup,
    decode_time,
    distinct_experts,
    prefill_time,
    serve_setup,
)
from chipmix.serve.job import ServeJob
from chipmix.serve.layout import ReplicaBatch, ReplicaLayout
from chipmix.serve.memory import kv_bytes_per_token, replica_memory
from chipmix.serve.precision import weight_bytes
from chipmix.workload.model import ModelSpec
from chipmix.workload.registry import load_model

ONE = np.array([1.0])


def _setup(model: str = "llama3-70b", chip: str = "h200", **job: object) -> ServeSetup:
    cat = load_catalog()
    spec = load_model(model)
    full = {"input_len": 1000, "output_len": 200} | job
    return serve_setup(
        ServeJob(model=spec, **full),  # type: ignore[arg-type]
        cat.system(chip),
        cat.calibration,
        load_serve_calibration(),
    )


# -- KV cache: closed forms ----------------------------------------------------------------
def test_kv_bytes_gqa_llama3_70b() -> None:
    # 2 (K and V) × 80 layers × 8 KV heads × 128 × 2 bytes (bf16)
    assert kv_bytes_per_token(load_model("llama3-70b")) == 2 * 80 * 8 * 128 * 2
    assert kv_bytes_per_token(load_model("llama3-70b"), "fp8") == 2 * 80 * 8 * 128


def test_kv_bytes_mha() -> None:
    m = load_model("llama2-7b")  # 32 heads, 32 KV heads, d 128
    assert m.num_kv_heads == m.num_heads
    assert kv_bytes_per_token(m) == 2 * 32 * 32 * 128 * 2


def test_kv_bytes_mla_deepseek_v3() -> None:
    m = load_model("deepseek-v3")
    assert m.mla is not None
    # one latent (512) + one decoupled rotary key (64) per layer, 61 layers, bf16
    assert kv_bytes_per_token(m) == 61 * (512 + 64) * 2


def test_kv_heads_are_replicated_beyond_kv_heads() -> None:
    s = _setup()
    mem = replica_memory(s.job, np.array([8.0, 16.0]), np.array([1.0, 1.0]), 1e12, 0.0)
    assert mem.kv_per_token[0] == mem.kv_per_token[1]  # 8 KV heads: one per chip at tp 8+


# -- decode and prefill: roofline limits -----------------------------------------------------
def test_decode_batch_one_is_memory_bound() -> None:
    """At batch 1 the decode GEMMs' time ≈ weight bytes / achieved bandwidth."""
    s = _setup(precision="fp8")
    t = decode_time(s, ONE, ONE, ONE, ONE, s.job.mean_context)
    weights = s.job.model.num_params() * weight_bytes("fp8")
    expected = weights / s.gemm.memory_rate
    assert float(t.matmul[0]) == pytest.approx(expected, rel=0.05)
    assert float(t.tp_comm[0]) == 0.0


def test_decode_time_grows_slowly_with_batch_while_memory_bound() -> None:
    s = _setup(precision="fp8")
    t1 = decode_time(s, ONE, ONE, ONE, ONE, 1000).total[0]
    t16 = decode_time(s, ONE, ONE, ONE, np.array([16.0]), 1000).total[0]
    assert t16 < 1.3 * t1


def test_prefill_is_compute_bound_at_long_inputs() -> None:
    s = _setup(input_len=16384)
    t = prefill_time(s, ONE, ONE, ONE, 16384)
    n = s.job.model.matmul_params_per_token()
    efficiency = float(gemm_efficiency(8192.0, s.gemm.chip)) * s.gemm.compute_scale  # min(k, n)
    compute = 2.0 * n * 16384 / (s.gemm.peak_flops * efficiency)
    assert float(t.matmul[0]) == pytest.approx(compute, rel=0.1)
    memory = s.job.model.num_params() * 2.0 / s.gemm.memory_rate
    assert float(t.matmul[0]) > 20 * memory
    # and it scales at least linearly with the prompt
    t2 = prefill_time(s, ONE, ONE, ONE, 8192)
    assert float(t.total[0]) > 1.9 * float(t2.total[0])


def test_moe_decode_with_expert_parallelism_pays_all_to_all() -> None:
    s = _setup("mixtral-8x7b", precision="fp8")
    eight = np.array([8.0])
    with_ep = decode_time(s, eight, ONE, eight, np.array([64.0]), 500)
    without = decode_time(s, eight, ONE, ONE, np.array([64.0]), 500)
    assert float(with_ep.ep_comm[0]) > 0.0
    assert float(without.ep_comm[0]) == 0.0
    # batch 1 reads only the top-2 experts' weights: far less than all 8
    b1 = decode_time(s, ONE, ONE, ONE, ONE, 500).matmul[0]
    b256 = decode_time(s, ONE, ONE, ONE, np.array([256.0]), 500).matmul[0]
    assert b256 > 2.0 * b1


def test_distinct_experts_closed_form() -> None:
    """E · (1 − (1 − k/E)^T): the expected experts T tokens routed top-k out of E touch."""
    # one token touches exactly its k experts
    assert float(distinct_experts(1.0, 8, 2)) == pytest.approx(2.0)
    # two tokens, top-2 of 8: 8 · (1 − (6/8)²) = 3.5
    assert float(distinct_experts(2.0, 8, 2)) == pytest.approx(3.5)
    # 64 tokens, top-8 of 256 (DeepSeek-V3's routing): 256 · (1 − (248/256)^64)
    assert float(distinct_experts(64.0, 256, 8)) == pytest.approx(256 * (1 - (248 / 256) ** 64))
    # a large batch touches every expert; never fewer than one
    assert float(distinct_experts(4096.0, 8, 2)) == pytest.approx(8.0)
    assert float(distinct_experts(0.0, 8, 2)) == 1.0
    np.testing.assert_allclose(
        distinct_experts(np.array([1.0, 2.0, 3.0]), 8, 2), 8 * (1 - 0.75 ** np.array([1, 2, 3]))
    )


def test_moe_decode_batch_one_reads_only_the_routed_experts() -> None:
    """Batch-1 MoE decode ≈ (shared weights + k experts' weights) / achieved bandwidth."""
    s = _setup("mixtral-8x7b", precision="fp8")
    moe = s.job.model.moe
    assert moe is not None
    t = decode_time(s, ONE, ONE, ONE, ONE, s.job.mean_context)
    h, f, layers = s.job.model.hidden_size, moe.expert_ffn_hidden_size, s.job.model.num_layers
    expert = 3 * h * f  # gated MLP: gate, up and down projections
    untouched = layers * (moe.num_experts - moe.top_k) * expert
    read = (s.job.model.num_params() - untouched) * weight_bytes("fp8")
    assert float(t.matmul[0]) == pytest.approx(read / s.gemm.memory_rate, rel=0.05)


# -- continuous batching ---------------------------------------------------------------------
def test_batch_is_limited_by_kv_memory() -> None:
    s = _setup(precision="fp8", kv_precision="fp8")
    lay = ReplicaBatch.of([ReplicaLayout(tp=2, batch=b) for b in (1, 64, 100000)])
    m = evaluate_serving(s, lay)
    assert m.fits.tolist() == [True, True, False]
    per_request = kv_bytes_per_token(s.job.model, "fp8") / 2 * s.job.mean_context
    free = m.memory_capacity_bytes - float(m.weights_bytes[0])
    assert float(m.max_batch[0]) < free / per_request


def test_throughput_rises_and_latency_grows_with_batch() -> None:
    s = _setup(precision="fp8")
    lay = ReplicaBatch.of([ReplicaLayout(tp=4, batch=b) for b in (1, 8, 64)])
    m = evaluate_serving(s, lay)
    assert np.all(np.diff(m.output_tokens_per_s) > 0)
    assert np.all(np.diff(m.tpot_s) > 0)
    assert np.all(m.ttft_p99_s >= m.ttft_s)


def test_single_stream_ttft_is_the_prefill() -> None:
    s = _setup()
    m = evaluate_serving(s, ReplicaBatch.of([ReplicaLayout(tp=8, batch=1)]))
    assert float(m.ttft_s[0]) == pytest.approx(float(m.prefill.total[0]))


# -- the search under targets ----------------------------------------------------------------
def test_search_meets_targets_and_offline_is_at_least_as_fast() -> None:
    cat, cal = load_catalog(), load_serve_calibration()
    job = ServeJob(model=load_model("llama3-70b"), input_len=2000, output_len=300)
    slo = search_serving(cat, cal, job, "h100-sxm", 64, targets=targets_ms(2000, 50))
    free = search_serving(cat, cal, job, "h100-sxm", 64)
    assert all(e.ttft_p99_ms <= 2000 and e.tpot_p99_ms <= 50 for e in slo.top)
    assert free.best.tokens_per_s_per_chip >= slo.best.tokens_per_s_per_chip
    per_chip = [e.tokens_per_s_per_chip for e in slo.top]
    assert per_chip == sorted(per_chip, reverse=True)
    assert slo.best.chips == 64


def test_pinned_layout_is_evaluated_as_given() -> None:
    cat, cal = load_catalog(), load_serve_calibration()
    job = ServeJob(model=load_model("llama3-8b"), input_len=512, output_len=128)
    e = estimate_serving(cat, cal, job, "h100-sxm", 8, pins={"tp": 2, "pp": 1, "batch": 16})
    assert (e.layout.tp, e.layout.pp, e.layout.replicas, e.layout.batch) == (2, 1, 4, 16)


def test_unmeetable_tpot_names_the_target_and_the_gap() -> None:
    cat, cal = load_catalog(), load_serve_calibration()
    job = ServeJob(model=load_model("llama3-70b"), input_len=2000, output_len=300)
    with pytest.raises(InfeasibleError, match=r"p99 TPOT target of 1 ms rules out every layout"):
        search_serving(cat, cal, job, "h100-sxm", 8, targets=targets_ms(None, 1))
    with pytest.raises(InfeasibleError, match=r"TTFT target of 1 ms .* [0-9.]+× the target"):
        search_serving(cat, cal, job, "h100-sxm", 8, targets=targets_ms(1, None))


def test_model_that_fits_no_replica_says_how_much_memory_it_needs() -> None:
    cat, cal = load_catalog(), load_serve_calibration()
    job = ServeJob(model=load_model("llama3.1-405b"), input_len=2000, output_len=300)
    with pytest.raises(InfeasibleError, match=r"needs [0-9.]+ GiB of bf16 weights"):
        search_serving(cat, cal, job, "h100-sxm", 2)


def test_bad_job_values_are_input_errors() -> None:
    spec = load_model("llama3-8b")
    with pytest.raises(InputError, match="input_len"):
        ServeJob(model=spec, input_len=0, output_len=10)
    with pytest.raises(InputError, match="weight precision"):
        ServeJob(model=spec, input_len=1, output_len=1, precision="fp2")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="ep"):
        ReplicaLayout(tp=2, ep=4)


def test_disaggregated_ratio_is_positive() -> None:
    cat, cal = load_catalog(), load_serve_calibration()
    job = ServeJob(model=load_model("llama3-70b"), input_len=2000, output_len=300)
    e = estimate_serving(cat, cal, job, "h200", 8)
    assert e.prefill_replicas_per_decode_replica > 0
    assert e.to_dict()["layout"]["tp"] == e.layout.tp


def test_compare_covers_four_vendors_and_agrees_with_estimate() -> None:
    cat, cal = load_catalog(), load_serve_calibration()
    job = ServeJob(model=load_model("llama3-70b"), input_len=2000, output_len=300)
    c = compare_serving(cat, cal, job, targets=targets_ms(2000, 100), tokens_per_day=1e10)
    vendors = {r.system.chip.vendor for r in c.feasible}
    assert len(vendors) >= 4
    priced = [r for r in c.feasible if r.estimate and "on-demand" in r.estimate.usd_per_chip_hour]
    costs = [r.estimate.usd_per_million_tokens["on-demand"] for r in priced if r.estimate]
    assert costs == sorted(costs)
    for row in c.feasible[:3]:
        assert row.estimate is not None
        alone = estimate_serving(cat, cal, job, row.system, 64, targets=targets_ms(2000, 100))
        assert alone.tokens_per_s_per_chip == pytest.approx(row.estimate.tokens_per_s_per_chip)
        assert row.chips_for_demand is not None
        assert row.chips_for_demand > 0


def test_custom_model_without_preset() -> None:
    spec = ModelSpec(name="tiny", num_layers=2, hidden_size=256, ffn_hidden_size=512,
                     num_heads=4, num_kv_heads=2, head_dim=64, vocab_size=1000)  # fmt: skip
    assert kv_bytes_per_token(spec) == 2 * 2 * 2 * 64 * 2
