"""The work of one transformer layer for one micro-batch on one chip: FLOPs and bytes per op.

Shapes follow Megatron-LM tensor parallelism with sequence parallelism (Shoeybi et al. 2019,
arXiv 1909.08053; Korthikanti et al. 2022, arXiv 2205.05198): projections are split over
``tp`` along heads / the intermediate size, norms and residuals along the sequence. Context
parallelism splits the sequence over ``cp``. Every count is for the *forward* pass; the
backward pass costs 2× the forward GEMMs (input and weight gradients; Narayanan et al. 2021,
arXiv 2104.04473 §5.1) and 2.5× the forward attention core (FlashAttention-2, Dao 2023,
arXiv 2307.08691 §3.1: five matmuls backward against two forward).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from chipmix.perf.layout import LayoutBatch, expert_tp
from chipmix.workload.model import ModelSpec

__all__ = ["ACT_BYTES", "Gemm", "LayerWork", "layer_work", "logits_work"]

Array = NDArray[np.float64]
ACT_BYTES = 2.0
"""Bytes per activation element (bf16; fp8 recipes keep bf16 activations between ops)."""


@dataclass(frozen=True, slots=True)
class Gemm:
    """``count`` GEMMs of ``(m × k) · (k × n)`` on one chip."""

    name: str
    m: Array
    k: Array | float
    n: Array | float
    count: Array | float = 1.0

    @property
    def flops(self) -> Array:
        return np.asarray(2.0 * self.m * self.k * self.n * self.count)


@dataclass(frozen=True, slots=True)
class LayerWork:
    """Forward work of one layer, one micro-batch, one chip."""

    gemms: list[Gemm]
    attention_flops: Array
    """Useful FLOPs of the attention core (QKᵀ and PV), causal mask applied."""
    elementwise_bytes: Array
    """HBM traffic of norms, residuals, activations, rotary, routing permutations."""
    elementwise_parts: dict[str, Array] = field(default_factory=dict)
    """The same traffic by op (``norm``, ``rope``, ``act``, ``moe_act``, ``dropout``), so a
    recomputation policy can re-run some of them."""
    adapter_gemms: list[Gemm] = field(default_factory=list)
    """LoRA adapter GEMMs (trained), when the base weights are frozen."""
    attention_score_bytes: Array | float = 0.0
    """HBM traffic of the attention scores in the forward pass where the stack materializes
    them (no flash attention; `attention_score_bytes`), else 0."""


def layer_work(
    model: ModelSpec,
    seq_len: int,
    batch: LayoutBatch,
    *,
    moe_layer: bool,
    lora_rank: int | None = None,
    materialized_attention: bool = False,
) -> LayerWork:
    """FLOPs and bytes of one layer's forward pass for one micro-batch on one chip
    (``materialized_attention``: the stack writes the attention scores to HBM)."""
    t = batch.tp.astype(np.float64)
    s_local = seq_len / batch.cp.astype(np.float64)
    tokens = batch.micro_batch * s_local  # tokens this chip's micro-batch holds
    h = float(model.hidden_size)

    gemms = _attention_gemms(model, tokens, t)
    if moe_layer and model.moe is not None:
        gemms += _moe_gemms(model, tokens, t, batch.ep.astype(np.float64), expert_tp(batch))
    else:
        gemms += _mlp_gemms(model, model.ffn_hidden_size, tokens, t, "mlp")

    # Attention core. Each query of the local chunk attends on average to half the
    # sequence (causal mask; CP load-balances chunks so every rank sees the mean); sliding-
    # window layers to their window, taken as the mean over the model's layers
    # (`ModelSpec.attention_span`).
    qk_dim = (
        model.mla.qk_nope_head_dim + model.mla.qk_rope_head_dim if model.mla else model.head_dim
    )
    v_dim = model.mla.v_head_dim if model.mla else model.head_dim
    heads_local = model.num_heads / t
    span = model.attention_span(seq_len)
    attention_flops = 2.0 * tokens * (seq_len / 2.0) * span * heads_local * (qk_dim + v_dim)

    # Elementwise traffic per token, in elements (read + write), split over tp by SP.
    parts_per_token = {
        "norm": 4.0 * h + 6.0 * h,  # two norms (read, write) and two residual adds (2 r, 1 w)
        "rope": 2.0 * (model.q_dim + model.kv_dim),  # rotary embedding of q and k
        "act": 0.0,
        "moe_act": 0.0,
        "dropout": 6.0 * h if model.dropout else 0.0,  # two dropouts: read, write, mask
    }
    if moe_layer and model.moe is not None:
        moe = model.moe
        routed = moe.top_k * (
            _act_elements(model, moe.expert_ffn_hidden_size) + _token_copy_elements(h)
        )
        shared = moe.num_shared_experts * _act_elements(model, moe.expert_ffn_hidden_size)
        parts_per_token["moe_act"] = routed
        parts_per_token["act"] = shared
    else:
        parts_per_token["act"] = _act_elements(model, model.ffn_hidden_size)
    parts = {k: np.asarray(ACT_BYTES * tokens * v / t) for k, v in parts_per_token.items()}
    elementwise_bytes = ACT_BYTES * tokens * sum(parts_per_token.values()) / t

    adapters: list[Gemm] = []
    if lora_rank is not None:
        adapters = _lora_gemms(gemms, float(lora_rank))
    scores: Array | float = 0.0
    if materialized_attention:
        scores = attention_score_bytes(batch.micro_batch * heads_local, s_local, float(seq_len),
                                       dropout=model.dropout)  # fmt: skip
    return LayerWork(
        gemms,
        np.asarray(attention_flops),
        np.asarray(elementwise_bytes),
        elementwise_parts=parts,
        adapter_gemms=adapters,
        attention_score_bytes=scores,
    )


def attention_score_bytes(
    heads: Array, queries: Array | float, keys: float, *, dropout: bool
) -> Array:
    """Forward HBM traffic of an attention core that materializes its ``heads × queries ×
    keys`` score matrix (Megatron-LM's attention before flash attention: QKᵀ as a batched
    GEMM, FusedScaleMaskSoftmax, dropout, then P·V): QKᵀ writes the bf16 scores, the
    softmax reads them and writes its output, P·V reads it (8 bytes per score); attention
    dropout adds a read, a write and a 1-byte mask (5 more). These are the tensors
    Korthikanti et al. 2022 (arXiv 2205.05198, §4.1) count as ``5·a·s²·b`` bytes of
    activations; flash attention (Dao et al. 2022, arXiv 2205.14135) never writes them. The
    backward pass moves them again in the ratio the attention core's backward takes
    (`chipmix.perf.step`). The whole score matrix is written (the causal mask is applied
    to it, not skipped)."""
    per_score = 8.0 + (5.0 if dropout else 0.0)
    return np.asarray(per_score * heads * queries * keys)


def logits_work(model: ModelSpec, seq_len: int, batch: LayoutBatch) -> tuple[Gemm, Array]:
    """The output projection GEMM and the cross-entropy traffic (fp32 logits, forward and
    backward together) for one micro-batch on the last pipeline stage."""
    t = batch.tp.astype(np.float64)
    tokens = batch.micro_batch * seq_len / batch.cp.astype(np.float64)
    vocab_local = model.vocab_size / t
    gemm = Gemm("logits", tokens, float(model.hidden_size), vocab_local)
    # Fused vocab-parallel cross-entropy: read logits, write softmax, read it back for the
    # gradient and write the gradient: four passes of fp32.
    cross_entropy_bytes = 16.0 * tokens * vocab_local
    return gemm, np.asarray(cross_entropy_bytes)


# -- pieces ------------------------------------------------------------------------------
def _act_elements(model: ModelSpec, ffn: int) -> float:
    """Elementwise traffic of the MLP activation per token: SwiGLU reads gate and up and
    writes their product (3f); GeLU/ReLU² read and write f (2f)."""
    return 3.0 * ffn if model.mlp == "swiglu" else 2.0 * ffn


TOKEN_COPY_PASSES = 4.0
"""Tensors of ``top_k × hidden`` a routed token's copies pass through outside the expert
GEMMs, each written once and read once, forward: the copies as dispatched to the expert's
rank, the copies grouped by local expert (the grouped GEMM's input), the expert outputs
restored to dispatch order, and the copies returned by the combine before their weighted
sum. Megatron-Core's token dispatchers (megatron/core/transformer/moe/token_dispatcher.py)
run exactly these hand-offs: ``alltoall`` as permute → all-to-all → sort_chunks_by_idxs →
experts → unsort → all-to-all → unpermute; ``flex`` as the DeepEP dispatch → permute by
expert → experts → unpermute → DeepEP combine. Their cost grows with ``top_k · hidden``
while the experts' FLOPs grow with ``top_k · hidden · expert_ffn``, so fine-grained experts
(narrow ``expert_ffn``, large ``top_k``) spend a large share of their time here (MegaBlocks,
Gale et al. 2022, arXiv 2211.15841: the gather and scatter around the expert GEMMs).
Ignores the router's top-k over the expert logits (``E`` elements per token, small)."""


def _token_copy_elements(hidden: float) -> float:
    """HBM elements (read + write) one routed copy of a token moves outside the expert
    GEMMs in the forward pass: `TOKEN_COPY_PASSES` tensors of ``hidden``, each written and
    read once."""
    return 2.0 * TOKEN_COPY_PASSES * hidden


def _attention_gemms(model: ModelSpec, tokens: Array, t: Array) -> list[Gemm]:
    h = float(model.hidden_size)
    if model.mla is None:
        # tp above the KV-head count replicates KV heads (Megatron-Core, NeuronX): each rank
        # still projects at least one whole head of K and V.
        kv_local = np.maximum(model.kv_dim / t, float(model.head_dim))
        return [
            Gemm("qkv", tokens, h, model.q_dim / t + 2.0 * kv_local),
            Gemm("attn_out", tokens, model.q_dim / t, h),
        ]
    m = model.mla
    heads = model.num_heads / t
    qk = m.qk_nope_head_dim + m.qk_rope_head_dim
    gemms = []
    if m.q_lora_rank:
        # Down-projections are small and replicated across tp ranks (DeepSeek-V3 in
        # Megatron-Core); up-projections are split by heads.
        gemms += [
            Gemm("q_down", tokens, h, float(m.q_lora_rank)),
            Gemm("q_up", tokens, float(m.q_lora_rank), heads * qk),
        ]
    else:
        gemms.append(Gemm("q", tokens, h, heads * qk))
    gemms += [
        Gemm("kv_down", tokens, h, float(m.kv_lora_rank + m.qk_rope_head_dim)),
        Gemm("kv_up", tokens, float(m.kv_lora_rank), heads * (m.qk_nope_head_dim + m.v_head_dim)),
        Gemm("attn_out", tokens, heads * m.v_head_dim, h),
    ]
    return gemms


def _mlp_gemms(model: ModelSpec, ffn: int, tokens: Array, t: Array, name: str) -> list[Gemm]:
    h = float(model.hidden_size)
    width_in = (2 * ffn if model.mlp == "swiglu" else ffn) / t
    return [Gemm(f"{name}_in", tokens, h, width_in), Gemm(f"{name}_out", tokens, ffn / t, h)]


def _moe_gemms(model: ModelSpec, tokens: Array, t: Array, ep: Array, etp: Array) -> list[Gemm]:
    """Router, shared experts and routed experts with balanced routing: each of the
    ``E/ep`` local experts sees ``tokens · ep · top_k / E`` tokens of the ep group, split
    over the expert tensor-parallel degree ``etp`` (= tp, or 1 when folded: each rank then
    routes its own ``tokens / tp`` and holds whole experts)."""
    assert model.moe is not None
    moe = model.moe
    h = float(model.hidden_size)
    f = moe.expert_ffn_hidden_size
    gemms = [Gemm("router", tokens, h, float(moe.num_experts))]
    if moe.num_shared_experts:
        width_in = (2 * f if model.mlp == "swiglu" else f) * moe.num_shared_experts / t
        gemms += [
            Gemm("shared_in", tokens, h, width_in),
            Gemm("shared_out", tokens, f * moe.num_shared_experts / t, h),
        ]
    local_experts = moe.num_experts / ep
    per_expert = tokens * (etp / t) * ep * moe.top_k / moe.num_experts
    width_in = (2 * f if model.mlp == "swiglu" else f) / etp
    gemms += [
        Gemm("experts_in", per_expert, h, width_in, local_experts),
        Gemm("experts_out", per_expert, f / etp, h, local_experts),
    ]
    return gemms


def _lora_gemms(gemms: list[Gemm], rank: float) -> list[Gemm]:
    """LoRA (Hu et al. 2021, arXiv 2106.09685): each adapted projection W (k × n) gains
    A (k × r) and B (r × n); the router is not adapted."""
    out = []
    for g in gemms:
        if g.name == "router":
            continue
        out.append(Gemm(f"{g.name}_lora_a", g.m, g.k, rank, g.count))
        out.append(Gemm(f"{g.name}_lora_b", g.m, rank, g.n, g.count))
    return out
