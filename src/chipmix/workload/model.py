"""Transformer architectures: dense, mixture-of-experts, GQA/MQA and MLA attention.

A `ModelSpec` is data: presets are YAML files in ``workload/presets``; users give their own
file of the same schema or a Hugging Face ``config.json``. Parameter counts follow the
architecture exactly (no ``12·L·h²`` shortcut) so that GQA, SwiGLU, MoE and MLA are counted
as built.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from chipmix.common.files import NoBoolNumbers

__all__ = ["MLA", "MLP_KINDS", "MLPKind", "MoE", "ModelSpec"]

MLPKind = Literal["swiglu", "gelu", "relu2"]
MLP_KINDS: tuple[MLPKind, ...] = ("swiglu", "gelu", "relu2")


class MoE(NoBoolNumbers):
    """Mixture-of-experts feed-forward (Shazeer et al. 2017; GShard; DeepSeekMoE).

    Every size has an upper bound far above any published model (a typo, not a design,
    would otherwise overflow or run for minutes)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    num_experts: int = Field(gt=1, le=2**16)
    """Routed experts per MoE layer."""
    top_k: int = Field(gt=0, le=2**16)
    """Routed experts each token visits."""
    expert_ffn_hidden_size: int = Field(gt=0, le=2**22)
    """Intermediate size of one expert."""
    num_shared_experts: int = Field(0, ge=0, le=2**10)
    """Experts every token visits (DeepSeekMoE), each of ``expert_ffn_hidden_size``."""
    num_dense_layers: int = Field(0, ge=0, le=100_000)
    """Leading layers with a dense MLP of ``ffn_hidden_size`` instead of experts."""

    @model_validator(mode="after")
    def _top_k_fits(self) -> MoE:
        if self.top_k > self.num_experts:
            raise ValueError(f"top_k ({self.top_k}) exceeds num_experts ({self.num_experts})")
        return self


class MLA(NoBoolNumbers):
    """Multi-head latent attention (DeepSeek-V2, arXiv 2405.04434, section 2.1)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    q_lora_rank: int | None = Field(None, gt=0, le=2**20)
    """Rank of the query down-projection; None projects queries directly."""
    kv_lora_rank: int = Field(gt=0, le=2**20)
    """Rank of the joint key-value compression (what the KV cache holds)."""
    qk_nope_head_dim: int = Field(gt=0, le=2**16)
    qk_rope_head_dim: int = Field(gt=0, le=2**16)
    v_head_dim: int = Field(gt=0, le=2**16)


class ModelSpec(NoBoolNumbers):
    """A decoder-only transformer, every dimension explicit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9.\-_]*$")
    """Registry id, e.g. ``llama3-70b``."""
    display_name: str = ""
    source: str = ""
    """Where the architecture is published (paper, model card, config file)."""
    params_published: float | None = Field(None, gt=0, le=1e16)
    """Total parameters as the publisher states them (checked against our count in tests)."""
    active_params_published: float | None = Field(None, gt=0, le=1e16)
    """Parameters touched per token (MoE), as published."""
    num_layers: int = Field(gt=0, le=100_000)
    hidden_size: int = Field(gt=0, le=2**20)
    ffn_hidden_size: int = Field(gt=0, le=2**22)
    """Intermediate size of the dense MLP (for MoE models: of the dense layers)."""
    num_heads: int = Field(gt=0, le=2**16)
    num_kv_heads: int = Field(gt=0, le=2**16)
    """Key-value heads: equal to ``num_heads`` for MHA, 1 for MQA, in between for GQA."""
    head_dim: int = Field(gt=0, le=2**16)
    vocab_size: int = Field(gt=0, le=2**24)
    max_seq_len: int = Field(2048, gt=0, le=2**27)
    mlp: MLPKind = "swiglu"
    tied_embeddings: bool = False
    norm: Literal["rmsnorm", "layernorm"] = "rmsnorm"
    linear_bias: bool = False
    """Biases on the attention and MLP projections (GPT-2/3 style)."""
    dropout: bool = False
    """Dropout after attention and MLP (stores masks; GPT-3 era models)."""
    moe: MoE | None = None
    mla: MLA | None = None
    sliding_window: int | None = Field(None, gt=0, le=2**27)
    """Keys a local (sliding-window) attention layer attends to, the query's own position
    and the ``sliding_window − 1`` before it (Beltagy et al. 2020, Longformer, arXiv
    2004.05150; Gemma 3, arXiv 2503.19786 §2.2). None: every layer attends to the whole
    causal prefix."""
    sliding_window_pattern: int | None = Field(None, gt=0, le=100_000)
    """With a window, every ``sliding_window_pattern``-th layer is global (full causal
    attention) and the others local — Gemma 3's 5 local : 1 global is 6 (Hugging Face
    ``sliding_window_pattern``). None with a window: every layer is local."""

    @model_validator(mode="after")
    def _heads_group(self) -> ModelSpec:
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"num_heads ({self.num_heads}) is not a multiple of num_kv_heads "
                f"({self.num_kv_heads}); grouped-query attention needs whole groups"
            )
        return self

    # -- attention span --------------------------------------------------------------------
    @property
    def num_local_layers(self) -> int:
        """Layers with sliding-window attention (the rest attend to the whole prefix)."""
        if self.sliding_window is None:
            return 0
        if self.sliding_window_pattern is None:
            return self.num_layers
        return self.num_layers - self.num_layers // self.sliding_window_pattern

    def attention_span(self, seq_len: int) -> float:
        """Attention work over all layers as a fraction of full causal attention at
        ``seq_len``. A causal query at position i attends to i + 1 keys, T/2 on average; a
        local one to min(i + 1, w), on average ``w − w²/(2T)`` for T ≥ w, so a local layer
        does ``2w/T − (w/T)²`` of a global layer's work (1 when T ≤ w)."""
        local = self.num_local_layers
        if not local or self.sliding_window is None or seq_len <= self.sliding_window:
            return 1.0
        x = self.sliding_window / seq_len
        return (self.num_layers - local + local * (2.0 * x - x * x)) / self.num_layers

    # -- dimensions ----------------------------------------------------------------------
    @property
    def q_dim(self) -> int:
        """Width of all query heads together."""
        if self.mla:
            return self.num_heads * (self.mla.qk_nope_head_dim + self.mla.qk_rope_head_dim)
        return self.num_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        """Width of all key heads (= value heads) together, after any up-projection."""
        if self.mla:
            return self.num_heads * self.mla.qk_nope_head_dim
        return self.num_kv_heads * self.head_dim

    @property
    def num_moe_layers(self) -> int:
        return 0 if self.moe is None else self.num_layers - self.moe.num_dense_layers

    @property
    def num_dense_layers(self) -> int:
        return self.num_layers - self.num_moe_layers

    # -- parameter counts ----------------------------------------------------------------
    def attention_params(self) -> int:
        """Weights of one attention block (projections; biases if any)."""
        h = self.hidden_size
        if self.mla:
            m = self.mla
            qk = m.qk_nope_head_dim + m.qk_rope_head_dim
            if m.q_lora_rank:
                q = h * m.q_lora_rank + m.q_lora_rank + m.q_lora_rank * self.num_heads * qk
            else:
                q = h * self.num_heads * qk
            kv_down = h * (m.kv_lora_rank + m.qk_rope_head_dim) + m.kv_lora_rank
            kv_up = m.kv_lora_rank * self.num_heads * (m.qk_nope_head_dim + m.v_head_dim)
            out = self.num_heads * m.v_head_dim * h
            return q + kv_down + kv_up + out
        qkv = h * (self.q_dim + 2 * self.kv_dim)
        out = self.q_dim * h
        bias = (self.q_dim + 2 * self.kv_dim + h) if self.linear_bias else 0
        return qkv + out + bias

    def mlp_params(self, ffn: int) -> int:
        """Weights of one MLP of intermediate size ``ffn``."""
        h = self.hidden_size
        matrices = 3 if self.mlp == "swiglu" else 2
        bias = ((2 if self.mlp == "swiglu" else 1) * ffn + h) if self.linear_bias else 0
        return matrices * h * ffn + bias

    def norm_params(self) -> int:
        """Two norms per layer (weight, plus bias for LayerNorm)."""
        return 2 * self.hidden_size * (2 if self.norm == "layernorm" else 1)

    def router_params(self) -> int:
        return 0 if self.moe is None else self.hidden_size * self.moe.num_experts

    def embedding_params(self) -> int:
        """Input embedding plus output projection (counted once when tied)."""
        table = self.vocab_size * self.hidden_size
        return table if self.tied_embeddings else 2 * table

    def expert_params_per_layer(self) -> int:
        """Routed experts' weights in one MoE layer."""
        if self.moe is None:
            return 0
        return self.moe.num_experts * self.mlp_params(self.moe.expert_ffn_hidden_size)

    def layer_params(self, moe_layer: bool, active: bool = False) -> int:
        """Weights of one transformer layer; ``active`` counts only what a token touches."""
        base = self.attention_params() + self.norm_params()
        if not moe_layer or self.moe is None:
            return base + self.mlp_params(self.ffn_hidden_size)
        experts = self.moe.top_k if active else self.moe.num_experts
        per_expert = self.mlp_params(self.moe.expert_ffn_hidden_size)
        shared = self.moe.num_shared_experts * per_expert
        return base + self.router_params() + shared + experts * per_expert

    def num_params(self) -> int:
        """Every weight of the model."""
        layers = self.num_dense_layers * self.layer_params(False) + self.num_moe_layers * (
            self.layer_params(True)
        )
        return layers + self.embedding_params() + self.hidden_size  # final norm

    def num_active_params(self) -> int:
        """Weights a token touches in a forward pass (all of them for a dense model)."""
        layers = self.num_dense_layers * self.layer_params(False) + self.num_moe_layers * (
            self.layer_params(True, active=True)
        )
        return layers + self.embedding_params() + self.hidden_size

    def matmul_params_per_token(self) -> int:
        """Weights used in matmuls per token: active params less norms and the input
        embedding lookup (which is a gather, not a matmul). The 6N of MFU uses this N."""
        lookup = 0 if self.tied_embeddings else self.vocab_size * self.hidden_size
        norms = self.num_layers * self.norm_params() + self.hidden_size
        return self.num_active_params() - lookup - norms
