"""FLOPs per token of the performance model against 6N + attention (PaLM, Chowdhery et al.
2022, arXiv 2204.02311, appendix B).

PaLM counts ``6·N`` for the matmuls (forward 2N, backward 4N) plus ``12·L·H·Q·T`` for the
attention dot products *without* the causal mask. `chipmix.perf.ops` counts what a causal
kernel does: each query sees on average half of the sequence, so its attention core is
half of PaLM's term: ``6·L·H·Q·T`` at the same 3× (forward + backward) convention. The
tests below assert exactly that, per preset family (dense MHA, GQA, MoE, MLA).
"""

from __future__ import annotations

import numpy as np
import pytest

from chipmix.perf.layout import Layout, LayoutBatch
from chipmix.perf.ops import layer_work, logits_work
from chipmix.perf.step import model_flops_per_token
from chipmix.workload import Job, ModelSpec, load_model

SEQ = 4096
ONE_CHIP = LayoutBatch.of([Layout()])  # tp = cp = 1, micro-batch of one sequence

# Tolerance of the GEMM count against 6N: N (ModelSpec.matmul_params_per_token) also holds
# the few weights that are not matmul operands: linear biases (GPT-3) and MLA's two latent
# RMSNorm weights (DeepSeek-V3); they are < 0.01% of N.
REL_6N = 1e-4

PRESETS = {
    "gpt3-175b": "dense MHA, GeLU, biases, tied embeddings",
    "llama2-7b": "dense MHA, SwiGLU, untied embeddings",
    "llama3-70b": "dense GQA (8 key-value heads)",
    "mixtral-8x7b": "MoE top-2 of 8, GQA",
    "qwen3-235b-a22b": "MoE top-8 of 128, GQA with q_dim != hidden",
    "deepseek-v3": "MLA + MoE with a shared expert and 3 leading dense layers",
}


def _per_token(model: ModelSpec, seq_len: int = SEQ) -> tuple[float, float]:
    """(GEMM FLOPs, attention-core FLOPs) per token, forward + backward at PaLM's 3×."""
    tokens = float(seq_len)  # micro-batch 1, cp 1
    gemm = 0.0
    attention = 0.0
    for moe_layer, count in ((False, model.num_dense_layers), (True, model.num_moe_layers)):
        if count == 0:
            continue
        work = layer_work(model, seq_len, ONE_CHIP, moe_layer=moe_layer)
        gemm += count * sum(float(g.flops[0]) for g in work.gemms)
        attention += count * float(work.attention_flops[0])
    logits, _ = logits_work(model, seq_len, ONE_CHIP)
    gemm += float(logits.flops[0])
    return 3.0 * gemm / tokens, 3.0 * attention / tokens


@pytest.mark.parametrize("name", list(PRESETS), ids=[f"{k}: {v}" for k, v in PRESETS.items()])
def test_gemm_flops_per_token_are_6n(name: str) -> None:
    model = load_model(name)
    gemm, _ = _per_token(model)
    assert gemm == pytest.approx(6.0 * model.matmul_params_per_token(), rel=REL_6N)


@pytest.mark.parametrize(
    "name", [n for n in PRESETS if n != "deepseek-v3"], ids=lambda n: f"{n}: {PRESETS[n]}"
)
def test_attention_is_half_of_palm_term_causal(name: str) -> None:
    """Attention core = 12·L·(H·Q)·T / 2: PaLM's term with the causal mask applied."""
    model = load_model(name)
    _, attention = _per_token(model)
    palm = 12.0 * model.num_layers * model.q_dim * SEQ
    assert attention == pytest.approx(palm / 2.0, rel=1e-12)


def test_total_flops_per_token_against_6n_plus_attention() -> None:
    """The whole count for Llama 3 70B at 8k: 6N + 6·L·H·Q·T (causal), to 0.01%."""
    model = load_model("llama3-70b")
    gemm, attention = _per_token(model, seq_len=8192)
    expected = 6.0 * model.matmul_params_per_token() + 6.0 * model.num_layers * 8192 * 8192
    assert gemm + attention == pytest.approx(expected, rel=REL_6N)


def test_mla_attention_uses_qk_and_v_widths() -> None:
    """MLA's dot products are not square: QKᵀ over qk_nope + qk_rope = 192, PV over
    v_head_dim = 128 (DeepSeek-V2, arXiv 2405.04434, §2.1). The causal core per token is
    3 · L · H · (d_qk + d_v) · T / 2 · 2 (two matmuls of 2 FLOPs per multiply-add)."""
    model = load_model("deepseek-v3")
    assert model.mla is not None
    _, attention = _per_token(model)
    d_qk = model.mla.qk_nope_head_dim + model.mla.qk_rope_head_dim
    d_v = model.mla.v_head_dim
    expected = 3.0 * model.num_layers * model.num_heads * (d_qk + d_v) * SEQ
    assert attention == pytest.approx(expected, rel=1e-12)


def test_moe_counts_only_the_experts_a_token_visits() -> None:
    """Raising the number of experts at fixed top-k leaves FLOPs per token unchanged but
    the router (h × E); the routed work is top_k experts per token, whatever ep is."""
    model = load_model("mixtral-8x7b")
    assert model.moe is not None
    more = model.model_copy(update={"moe": model.moe.model_copy(update={"num_experts": 16})})
    router_delta = 3.0 * 2.0 * model.hidden_size * 8 * model.num_layers
    assert _per_token(more)[0] - _per_token(model)[0] == pytest.approx(router_delta, rel=1e-9)
    ep8 = LayoutBatch.of([Layout(dp=8, ep=8)])
    work1 = layer_work(model, SEQ, ONE_CHIP, moe_layer=True)
    work8 = layer_work(model, SEQ, ep8, moe_layer=True)
    experts1 = sum(float(g.flops[0]) for g in work1.gemms if g.name.startswith("experts"))
    experts8 = sum(float(g.flops[0]) for g in work8.gemms if g.name.startswith("experts"))
    assert experts8 == pytest.approx(experts1, rel=1e-12)


@pytest.mark.parametrize("tp", [2, 4, 8])
def test_tensor_parallel_splits_the_work_evenly(tp: int) -> None:
    """Megatron TP (Shoeybi et al. 2019): every split GEMM and the attention core shrink
    by tp; the per-chip sum × tp gives back the one-chip total."""
    model = load_model("llama3-70b")
    one = layer_work(model, SEQ, ONE_CHIP, moe_layer=False)
    split = layer_work(model, SEQ, LayoutBatch.of([Layout(tp=tp)]), moe_layer=False)
    total1 = sum(float(g.flops[0]) for g in one.gemms)
    total_t = sum(float(g.flops[0]) for g in split.gemms)
    assert total_t * tp == pytest.approx(total1, rel=1e-12)
    assert float(split.attention_flops[0]) * tp == pytest.approx(
        float(one.attention_flops[0]), rel=1e-12
    )


def test_context_parallel_splits_the_attention_core() -> None:
    """cp chunks of the sequence, load-balanced (each rank sees the mean causal work)."""
    model = load_model("llama3-8b")
    one = layer_work(model, SEQ, ONE_CHIP, moe_layer=False)
    cp4 = layer_work(model, SEQ, LayoutBatch.of([Layout(cp=4)]), moe_layer=False)
    assert float(cp4.attention_flops[0]) * 4 == pytest.approx(float(one.attention_flops[0]))
    assert np.isclose(
        sum(float(g.flops[0]) for g in cp4.gemms) * 4, sum(float(g.flops[0]) for g in one.gemms)
    )


@pytest.mark.parametrize(
    "name", [n for n in PRESETS if n != "deepseek-v3"], ids=lambda n: f"{n}: {PRESETS[n]}"
)
def test_mfu_numerator_is_palm_6n_plus_12lhqt(name: str) -> None:
    """MFU's model FLOPs (DESIGN.md): PaLM's count, attention *without* the causal mask, so
    exactly the modelled GEMMs plus twice the modelled (causal) attention core."""
    model = load_model(name)
    job = Job(model=model, seq_len=SEQ, global_batch=1)
    palm = 6.0 * model.matmul_params_per_token() + 12.0 * model.num_layers * model.q_dim * SEQ
    assert model_flops_per_token(job) == pytest.approx(palm, rel=1e-12)
    gemm, attention = _per_token(model)
    assert model_flops_per_token(job) == pytest.approx(gemm + 2.0 * attention, rel=REL_6N)


def test_lora_mfu_numerator_drops_the_frozen_weight_gradients() -> None:
    """Frozen base weights: forward 2N and input gradients 2N, no weight gradients."""
    model = load_model("llama3-8b")
    full = Job(model=model, seq_len=SEQ, global_batch=1)
    lora = Job(model=model, seq_len=SEQ, global_batch=1, mode="lora")
    n = model.matmul_params_per_token()
    assert model_flops_per_token(full) - model_flops_per_token(lora) == pytest.approx(2.0 * n)
