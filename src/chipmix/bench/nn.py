"""A decoder-only transformer in plain PyTorch, built from a `ModelSpec` (nanoGPT-sized).

Every architecture feature the spec names is built as the spec says: RMSNorm or LayerNorm,
multi-head / grouped-query / multi-query attention with rotary embeddings and causal
``scaled_dot_product_attention``, SwiGLU / GeLU / ReLU² MLPs, linear biases, dropout, tied
embeddings, and mixture-of-experts layers (top-k softmax router over experts plus shared
experts, DeepSeekMoE style; tokens are gathered per expert, no capacity limit). Multi-head
latent attention (MLA) is not built here.

This module imports torch at the top: only `chipmix.bench.e2e` imports it, inside a
function, so nothing else in chipmix pulls torch in.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional

from chipmix.errors import InputError
from chipmix.workload.model import ModelSpec

__all__ = ["TransformerLM"]


def _norm(spec: ModelSpec) -> nn.Module:
    if spec.norm == "layernorm":
        return nn.LayerNorm(spec.hidden_size)
    return nn.RMSNorm(spec.hidden_size)


def _rotary(seq_len: int, head_dim: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """cos/sin tables of rotary position embeddings (Su et al. 2021, arXiv 2104.09864)."""
    half = head_dim // 2
    freqs = 1.0 / (10000.0 ** (torch.arange(0, half, device=device).float() / half))
    angles = torch.outer(torch.arange(seq_len, device=device).float(), freqs)
    return angles.cos(), angles.sin()


def _apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half : 2 * half]
    rotated = torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return torch.cat((rotated, x[..., 2 * half :]), dim=-1).type_as(x)


class Attention(nn.Module):
    """Causal self-attention with ``num_kv_heads`` key/value heads."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = spec.num_heads, spec.num_kv_heads, spec.head_dim
        width = spec.q_dim + 2 * spec.kv_dim
        self.qkv = nn.Linear(spec.hidden_size, width, bias=spec.linear_bias)
        self.out = nn.Linear(spec.q_dim, spec.hidden_size, bias=spec.linear_bias)
        self.dropout = nn.Dropout(0.1 if spec.dropout else 0.0)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        b, s, _ = x.shape
        q, k, v = self._split(self.qkv(x))
        q = q.view(b, s, self.heads, self.head_dim).transpose(1, 2)
        k = k.view(b, s, self.kv_heads, self.head_dim).transpose(1, 2)
        v = v.view(b, s, self.kv_heads, self.head_dim).transpose(1, 2)
        q, k = _apply_rotary(q, cos, sin), _apply_rotary(k, cos, sin)
        groups = self.heads // self.kv_heads
        if groups > 1:
            k = k.repeat_interleave(groups, dim=1)
            v = v.repeat_interleave(groups, dim=1)
        y = functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        y = y.transpose(1, 2).reshape(b, s, self.heads * self.head_dim)
        return self.dropout(self.out(y))  # type: ignore[no-any-return]

    def _split(self, qkv: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        q_width, kv_width = self.heads * self.head_dim, self.kv_heads * self.head_dim
        q, k, v = qkv.split([q_width, kv_width, kv_width], dim=-1)
        return q, k, v


class MLP(nn.Module):
    """SwiGLU (Shazeer 2020), GeLU or squared-ReLU feed-forward of width ``ffn``."""

    def __init__(self, spec: ModelSpec, ffn: int) -> None:
        super().__init__()
        self.kind = spec.mlp
        width = 2 * ffn if spec.mlp == "swiglu" else ffn
        self.up = nn.Linear(spec.hidden_size, width, bias=spec.linear_bias)
        self.down = nn.Linear(ffn, spec.hidden_size, bias=spec.linear_bias)
        self.dropout = nn.Dropout(0.1 if spec.dropout else 0.0)

    def forward(self, x: Tensor) -> Tensor:
        h = self.up(x)
        if self.kind == "swiglu":
            gate, up = h.chunk(2, dim=-1)
            h = functional.silu(gate) * up
        elif self.kind == "gelu":
            h = functional.gelu(h)
        else:
            h = functional.relu(h).square()
        return self.dropout(self.down(h))  # type: ignore[no-any-return]


class MoE(nn.Module):
    """Top-k routed experts (softmax over the chosen k) plus always-on shared experts."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        assert spec.moe is not None
        moe = spec.moe
        self.top_k = moe.top_k
        self.router = nn.Linear(spec.hidden_size, moe.num_experts, bias=False)
        self.experts = nn.ModuleList(
            MLP(spec, moe.expert_ffn_hidden_size) for _ in range(moe.num_experts)
        )
        shared = moe.num_shared_experts * moe.expert_ffn_hidden_size
        self.shared = MLP(spec, shared) if shared else None

    def forward(self, x: Tensor) -> Tensor:
        b, s, h = x.shape
        flat = x.reshape(b * s, h)
        weights, chosen = self.router(flat).topk(self.top_k, dim=-1)
        weights = weights.softmax(dim=-1)
        out = torch.zeros_like(flat)
        for index, expert in enumerate(self.experts):
            token, slot = (chosen == index).nonzero(as_tuple=True)
            if token.numel():
                routed = expert(flat[token]) * weights[token, slot, None]
                out = out.index_add(0, token, routed.type_as(out))
        if self.shared is not None:
            out = out + self.shared(flat)
        return out.view(b, s, h)


class Block(nn.Module):
    """Pre-norm transformer layer: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, spec: ModelSpec, moe_layer: bool) -> None:
        super().__init__()
        self.norm1, self.norm2 = _norm(spec), _norm(spec)
        self.attention = Attention(spec)
        self.mlp: nn.Module = MoE(spec) if moe_layer else MLP(spec, spec.ffn_hidden_size)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        x = x + self.attention(self.norm1(x), cos, sin)
        return x + self.mlp(self.norm2(x))  # type: ignore[no-any-return]


class TransformerLM(nn.Module):
    """Token embedding, ``num_layers`` blocks, final norm, output projection."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        if spec.mla is not None:
            raise InputError(
                f"model {spec.name!r} uses multi-head latent attention, which the bench's "
                "PyTorch model does not build; give a model file without 'mla'"
            )
        self.spec = spec
        self.embed = nn.Embedding(spec.vocab_size, spec.hidden_size)
        dense = spec.num_dense_layers
        self.blocks = nn.ModuleList(Block(spec, i >= dense) for i in range(spec.num_layers))
        self.norm = _norm(spec)
        self.head = nn.Linear(spec.hidden_size, spec.vocab_size, bias=False)
        if spec.tied_embeddings:
            self.head.weight = self.embed.weight
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=1.0 / math.sqrt(p.shape[-1]))

    def forward(self, tokens: Tensor, targets: Tensor) -> Tensor:
        """Mean next-token cross-entropy of ``tokens`` (batch × seq) against ``targets``."""
        cos, sin = _rotary(tokens.shape[1], self.spec.head_dim, tokens.device)
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x, cos, sin)
        logits = self.head(self.norm(x)).float()
        return functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
