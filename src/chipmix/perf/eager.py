"""What an eager (unfused) PyTorch step pays beyond the fused kernels the model assumes.

`chipmix.perf.ops` counts the memory-bound work of a layer as fused stacks run it (one
read and one write per norm, residual, rotary and activation; a fused vocabulary-parallel
cross-entropy). A training loop in plain PyTorch runs every one of those as separate
kernels over wider tensors: under ``torch.autocast`` with fp32 master weights the residual
stream is fp32, each linear casts its input and weight to bf16 and back in backward, rotary
embeddings are a dozen elementwise kernels, SwiGLU is two plus a concatenation backward,
the loss is an fp32 log-softmax over the whole vocabulary, and each of the ~100 kernels of
a layer pays a fixed launch-and-tail cost. Each term here is that *extra* over the fused
count (never below zero), with the byte counts of `chipmix.catalog.eager.EagerCalibration`:

=================  ==============================================================================
term               extra bytes per micro-batch on one chip (T tokens, h hidden, q/kv query and
                   key-value widths, f MLP width, V vocabulary, W matmul weights, r residual B)
=================  ==============================================================================
eager_norms        per layer ``T·h·(2·norm_passes·r + 2·residual(r) − 60)``; fused: 60 B/(T·h)
eager_rotary       per layer ``T·(q + kv)·(rotary_bytes − 12)`` + grouped-query K/V repeat and
                   the attention output transpose ``T·(8·(q + kv)·[q > kv] + 8·q)``
eager_activations  per layer ``T·f·(activation_bytes − 18)`` (SwiGLU; fused: 18 B per element)
eager_loss         ``T·V·(loss_bytes − 16)`` (fused cross-entropy: 16 B per logit)
autocast_casts     ``W·cast_bytes_per_weight`` + per layer ``2·T·h·2·(r + 2)`` (the fp32 → bf16
                   casts of the two norm outputs and their gradients back) + the dense fp32
                   embedding gradient ``4·V·h`` (and ``12·V·h`` to add it to a tied head's)
launches           ``(layers · kernels_per_layer + kernels_per_step) · launch_s``
=================  ==============================================================================

All at the chip's streaming rate (`ChipRates.memory_time`). The optimizer as run (fused
AdamW, ``optimizer_bytes_per_param``) replaces the model's Adam traffic in `step`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from chipmix.catalog.eager import EagerCalibration
from chipmix.perf.layout import LayoutBatch
from chipmix.perf.roofline import ChipRates
from chipmix.workload.model import ModelSpec

__all__ = ["EAGER_TERMS", "EagerTerms", "eager_terms"]

Array = NDArray[np.float64]

EAGER_TERMS = (
    "eager_norms",
    "eager_rotary",
    "eager_activations",
    "eager_loss",
    "autocast_casts",
    "launches",
)
"""The named terms, in the order reports show them."""

_FUSED_NORM_RESIDUAL = 60.0
"""Bytes per (token × hidden) `chipmix.perf.ops` charges two norms and two residual adds,
forward and backward: (4 + 6) elements × 2 B × 3."""
_FUSED_ROTARY = 12.0
"""Bytes per element of q and k ops.py charges rotary: 2 elements × 2 B × 3."""
_FUSED_SWIGLU = 18.0
"""Bytes per element of the MLP width ops.py charges SwiGLU: 3 elements × 2 B × 3."""
_FUSED_LOSS = 16.0
"""Bytes per logit of ops.py's fused cross-entropy (`chipmix.perf.ops.logits_work`)."""


@dataclass(frozen=True, slots=True)
class EagerTerms:
    """Seconds per optimizer step of each eager term (arrays over layouts)."""

    per_microbatch: dict[str, Array]
    """Terms paid once per micro-batch on the fullest stage (they lengthen the pipeline)."""
    per_step: dict[str, Array]
    """Terms paid once per step: the launches outside the layers."""

    @property
    def microbatch_s(self) -> Array:
        """Seconds per micro-batch of the per-micro-batch terms together."""
        return np.asarray(sum(self.per_microbatch.values(), start=np.zeros(1)))

    def total(self, microbatches: Array) -> Array:
        """Seconds per step of every term together."""
        out = sum(self.per_microbatch.values(), start=np.zeros_like(microbatches))
        return np.asarray(out * microbatches + sum(self.per_step.values(), start=0.0))

    def named(self, microbatches: Array) -> dict[str, Array]:
        """Seconds per step by term name (`EAGER_TERMS`)."""
        zero = np.zeros_like(microbatches)
        return {
            name: np.asarray(
                self.per_microbatch.get(name, zero) * microbatches + self.per_step.get(name, zero)
            )
            for name in EAGER_TERMS
        }


def _residual_extra(r: float) -> float:
    """Bytes per (token × hidden) of one residual add beyond nothing: forward reads the fp32
    stream and the bf16 branch and writes the stream (2r + 2); backward casts the stream's
    gradient to the branch's bf16 (r + 2, none when the stream is bf16) and sums the two
    gradient paths at the norm's input (3r)."""
    cast_back = (r + 2.0) if r != 2.0 else 0.0
    return (2.0 * r + 2.0) + cast_back + 3.0 * r


def eager_terms(
    model: ModelSpec,
    seq_len: int,
    batch: LayoutBatch,
    layers_per_stage: Array,
    cal: EagerCalibration,
    rates: ChipRates,
    *,
    weights_per_chip: Array,
) -> EagerTerms:
    """The eager terms of every layout in ``batch`` (see the module docstring)."""
    t = batch.tp.astype(np.float64)
    tokens = batch.micro_batch * seq_len / batch.cp.astype(np.float64)
    h, q, kv = float(model.hidden_size), float(model.q_dim), float(model.kv_dim)
    r = cal.residual_bytes
    layers = np.asarray(layers_per_stage, dtype=np.float64)
    last_stage = np.ones_like(t)  # the fullest stage is charged the loss end too

    norms = tokens * h / t * max(2.0 * cal.norm_passes * r + 2.0 * _residual_extra(r)
                                 - _FUSED_NORM_RESIDUAL, 0.0)  # fmt: skip
    repeat = 8.0 * (q + kv) if model.num_kv_heads < model.num_heads else 0.0
    rotary = tokens / t * ((q + kv) * max(cal.rotary_bytes - _FUSED_ROTARY, 0.0) + repeat + 8.0 * q)
    # Eager GeLU / ReLU² move what ops.py already charges them: no extra.
    act = max(cal.activation_bytes - _FUSED_SWIGLU, 0.0) if model.mlp == "swiglu" else 0.0
    ffn = float(model.ffn_hidden_size)
    if model.moe is not None:
        ffn = (
            float(model.moe.top_k + model.moe.num_shared_experts) * model.moe.expert_ffn_hidden_size
        )
    activations = tokens * ffn / t * act
    activation_casts = 2.0 * tokens * h / t * 2.0 * (r + 2.0) if r != 2.0 else 0.0 * tokens
    vocab = float(model.vocab_size)
    loss = last_stage * tokens * vocab / t * max(cal.loss_bytes - _FUSED_LOSS, 0.0)
    embedding = (4.0 + (12.0 if model.tied_embeddings else 0.0)) * vocab * h / t

    per_mb = {
        "eager_norms": rates.memory_time(layers * norms),
        "eager_rotary": rates.memory_time(layers * rotary),
        "eager_activations": rates.memory_time(layers * activations),
        "eager_loss": rates.memory_time(loss),
        "autocast_casts": rates.memory_time(
            weights_per_chip * cal.cast_bytes_per_weight + layers * activation_casts + embedding
        ),
        "launches": np.asarray(layers * cal.kernels_per_layer * cal.launch_s),
    }
    per_step = {"launches": np.full_like(t, cal.kernels_per_step * cal.launch_s)}
    return EagerTerms(per_microbatch=per_mb, per_step=per_step)
