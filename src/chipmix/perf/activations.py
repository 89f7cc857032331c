"""Activation memory of one layer and one micro-batch, by recomputation policy.

Bytes per token of each tensor a layer saves for its backward pass follow Korthikanti et
al. 2022 (arXiv 2205.05198, §4.1): ``sbh(34 + 5as/h)`` for a GPT layer with no
recomputation, of which ``34·sbh`` are the tensors below (bf16 activations, 1-byte dropout
masks) and ``5·as²b`` the attention scores, softmax and its dropout mask. Flash attention
(Dao et al. 2022, arXiv 2205.14135) keeps none of the ``a·s²`` terms, only the fp32
log-sum-exp per query and head. The widths are the model's own (GQA, SwiGLU, MoE, MLA);
with tensor and sequence parallelism every tensor is split over ``tp`` (ibid. §4.2.2).
Key-value heads replicated beyond their count (tp > kv heads) are stored once per rank.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from chipmix.perf.layout import LayoutBatch, distinct
from chipmix.perf.recompute import TENSORS, Policy, policy_by_code
from chipmix.workload.model import ModelSpec

__all__ = ["LayerActivations", "layer_activations", "tensor_bytes_per_token"]

Array = NDArray[np.float64]
_SPLIT_BY_TP = frozenset(TENSORS) - {"q_lat", "kv_lat"}
"""MLA latents come from down-projections replicated across tp (Megatron-Core MLA)."""


GEMM_INPUTS = frozenset({"n1", "ctx", "n2", "g", "e_in", "e_g", "s_g"})
"""Saved tensors that are inputs of a linear layer: under an fp8 or fp4 recipe Transformer
Engine keeps them in the low-precision copy its weight-gradient GEMM reads (TE docs,
"Using FP8 with Transformer Engine": the FP8-cast input is saved for backward), not bf16."""


def tensor_bytes_per_token(
    model: ModelSpec, moe_layer: bool, input_bytes: float = 2.0
) -> dict[str, float]:
    """Bytes per token each saved tensor of one layer takes, before any parallel split;
    ``input_bytes`` per element for the GEMM inputs (2 = bf16, 1 = fp8)."""
    h = float(model.hidden_size)
    drop = 1.0 if model.dropout else 0.0

    def act_in(f: float) -> float:
        return 2.0 * (2 * f if model.mlp == "swiglu" else f)

    out = dict.fromkeys(TENSORS, 0.0)
    out |= {
        "x": 2 * h, "n1": 2 * h, "q": 2.0 * model.q_dim, "k": 2.0 * model.kv_dim,
        "v": 2.0 * model.kv_dim, "ctx": 2.0 * model.q_dim, "lse": 4.0 * model.num_heads,
        "attn_out": 2 * h, "x2": 2 * h, "n2": 2 * h, "masks": 2 * drop * h,
    }  # fmt: skip
    if model.mla is not None:
        m = model.mla
        out["v"] = 2.0 * model.num_heads * m.v_head_dim
        out["ctx"] = 2.0 * model.num_heads * m.v_head_dim
        out["q_lat"] = 2.0 * (m.q_lora_rank or 0)
        out["kv_lat"] = 2.0 * (m.kv_lora_rank + m.qk_rope_head_dim)
    if moe_layer and model.moe is not None:
        moe = model.moe
        f = float(moe.expert_ffn_hidden_size)
        out |= {
            "router": 4.0 * moe.num_experts,
            "e_in": moe.top_k * 2 * h,
            "e_a": moe.top_k * act_in(f),
            "e_g": moe.top_k * 2 * f,
            "s_a": moe.num_shared_experts * act_in(f),
            "s_g": moe.num_shared_experts * 2 * f,
        }
    else:
        f = float(model.ffn_hidden_size)
        out |= {"a": act_in(f), "g": 2 * f}
    for name in GEMM_INPUTS:
        out[name] *= input_bytes / 2.0
    return out


@dataclass(frozen=True, slots=True)
class LayerActivations:
    """Bytes of one layer, one micro-batch, on one chip, per layout."""

    device: Array
    """Kept in device memory until the backward pass."""
    host: Array
    """Offloaded to host memory by the policy."""
    working: Array
    """Regenerated while the layer's backward runs (what the policy recomputes)."""


@lru_cache(maxsize=1024)
def _coefficients(
    model: ModelSpec, moe_layer: bool, code: int, input_bytes: float
) -> NDArray[np.float64]:
    """Bytes per token of one policy as a 3 × 3 table: rows device / host / recomputed,
    columns split over tp, split over tp but replicated with the KV heads, not split.
    Kept per (model, layer kind, policy, input width): the searches ask for the same few
    (read-only)."""
    sizes = tensor_bytes_per_token(model, moe_layer, input_bytes)
    policy: Policy = policy_by_code(code)
    rows = {"device": 0, "offload": 1, "remat": 2}
    out = np.zeros((3, 3))
    for name, size in sizes.items():
        state = policy.states[name]
        if not size or state == "unused":
            continue
        kv = name in ("k", "v") and model.mla is None
        column = 1 if kv else (0 if name in _SPLIT_BY_TP else 2)
        out[rows[state], column] += size
    out.flags.writeable = False
    return out


def layer_activations(
    model: ModelSpec, tokens: Array, batch: LayoutBatch, moe_layer: bool, input_bytes: float = 2.0
) -> LayerActivations:
    """Each layout's per-layer activation bytes under its recomputation policy
    (``input_bytes`` per element of the saved GEMM inputs)."""
    tp = batch.tp.astype(np.float64)
    codes = np.asarray(batch.recompute)
    if len(codes) == 0:
        return LayerActivations(tp, tp, tp)
    present = np.flatnonzero(np.bincount(codes, minlength=1))
    table = np.stack([_coefficients(model, moe_layer, int(c), input_bytes) for c in present])
    # Bytes per token depend on the policy and tp alone: found per (policy, tp) present and
    # looked up per layout (the same operations on the same values).
    found, at = distinct(batch.tp)
    degrees = found.astype(np.float64)
    copies = np.maximum(degrees, model.num_kv_heads) / model.num_kv_heads
    by_tp, kv_by_tp, plain = table[:, None, :, 0], table[:, None, :, 1], table[:, None, :, 2]
    per_pair = (by_tp + kv_by_tp * copies[None, :, None]) / degrees[None, :, None] + plain
    per_token = per_pair[np.searchsorted(present, codes), at]
    bytes_ = per_token * np.asarray(tokens, dtype=np.float64).reshape(-1, 1)
    return LayerActivations(bytes_[:, 0], bytes_[:, 1], bytes_[:, 2])
