"""Device memory of a serving replica: weights, KV cache, workspace; the batch it admits.

KV cache per token (Pope et al. 2022, "Efficiently Scaling Transformer Inference",
arXiv 2211.05102, §2): ``2 · L · n_kv · d_head`` elements for multi-head and grouped-query
attention (K and V of every KV head in every layer); multi-head latent attention caches one
compressed latent ``d_c`` plus the decoupled rotary key ``d_R`` per layer (DeepSeek-V2,
arXiv 2405.04434, §2.1.2–2.1.3): ``L · (d_c + d_R)``. Under tensor parallelism each chip
holds ``⌈n_kv / tp⌉`` KV heads (heads are replicated once ``tp > n_kv``, as vLLM does); the
MLA latent is replicated on every chip of the group.

PagedAttention (Kwon et al. 2023, arXiv 2309.06180, §4) allocates KV blocks as tokens
arrive, so a replica admits as many requests as the free memory holds at their *mean*
context; vLLM gives the model 90% of device memory by default (``gpu_memory_utilization``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from chipmix.serve.job import ServeJob
from chipmix.serve.precision import kv_bytes, weight_bytes
from chipmix.workload.model import ModelSpec

__all__ = [
    "MEMORY_UTILIZATION",
    "PREFILL_CHUNK_TOKENS",
    "ReplicaMemory",
    "kv_bytes_per_token",
    "replica_memory",
]

Array = NDArray[np.float64]
GIB = float(2**30)
MEMORY_UTILIZATION = 0.9
"""Share of device memory the serving engine takes (vLLM's default)."""
PREFILL_CHUNK_TOKENS = 2048
"""Tokens of one prefill chunk; sizes the activation workspace (vLLM's default
``max_num_batched_tokens`` for chunked prefill is of this order)."""
ACT_BYTES = 2.0


def _kv_elements_per_token_layer(model: ModelSpec, tp: Array | float) -> Array:
    """Cached elements per token and layer on one chip of a ``tp`` group."""
    if model.mla is not None:
        latent = model.mla.kv_lora_rank + model.mla.qk_rope_head_dim
        return np.asarray(np.full_like(np.asarray(tp, dtype=np.float64), float(latent)))
    heads = np.ceil(model.num_kv_heads / np.asarray(tp, dtype=np.float64))
    return np.asarray(2.0 * heads * model.head_dim)


def kv_bytes_per_token(model: ModelSpec, kv_precision: str = "bf16") -> float:
    """KV-cache bytes one token occupies in the whole model (one chip, no parallelism)."""
    per_layer = float(_kv_elements_per_token_layer(model, 1.0))
    return model.num_layers * per_layer * kv_bytes(kv_precision)


@dataclass(frozen=True, slots=True)
class ReplicaMemory:
    """Bytes per chip on the fullest pipeline stage, one entry per layout."""

    capacity: float
    """Device memory the engine may use (``MEMORY_UTILIZATION`` of HBM)."""
    weights: Array
    workspace: Array
    kv_per_token: Array
    """KV-cache bytes one token of one request occupies on this chip."""

    @property
    def kv_free(self) -> Array:
        return np.asarray(self.capacity - self.weights - self.workspace)

    def max_batch(self, context: float) -> Array:
        """Requests of mean context ``context`` the free memory holds (0 if none)."""
        return np.asarray(np.floor(np.maximum(self.kv_free, 0.0) / (self.kv_per_token * context)))

    def needed(self, batch: Array, context: float) -> Array:
        """Bytes per chip with ``batch`` requests of mean context ``context``."""
        return np.asarray(self.weights + self.workspace + self.kv_per_token * batch * context)


def replica_memory(
    job: ServeJob, tp: Array, pp: Array, hbm_bytes: float, reserved_bytes: float
) -> ReplicaMemory:
    """Memory per chip for replicas of ``tp × pp`` chips (weights split evenly over them)."""
    model = job.model
    tp = np.asarray(tp, dtype=np.float64)
    pp = np.asarray(pp, dtype=np.float64)
    weights = model.num_params() * weight_bytes(job.precision) / (tp * pp)
    h = model.hidden_size
    ffn = max(model.ffn_hidden_size, model.moe.expert_ffn_hidden_size if model.moe else 0)
    workspace = PREFILL_CHUNK_TOKENS * ACT_BYTES * (4.0 * h + 2.0 * ffn / tp)
    workspace = workspace + PREFILL_CHUNK_TOKENS * 4.0 * model.vocab_size / tp  # fp32 logits
    layers = np.ceil(model.num_layers / pp)
    kv = layers * _kv_elements_per_token_layer(model, tp) * kv_bytes(job.kv_precision)
    capacity = min(MEMORY_UTILIZATION * hbm_bytes, hbm_bytes - reserved_bytes)
    return ReplicaMemory(capacity, np.asarray(weights), np.asarray(workspace), np.asarray(kv))
