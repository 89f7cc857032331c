"""Parameters of an eager (unfused) PyTorch stack: what a training step run op by op pays
beyond the fused kernels the model assumes for the other stacks.

The byte counts are priors counted kernel by kernel from a plain PyTorch training step
(`torch.autocast` bf16 over fp32 master weights, `nn.RMSNorm`, rotary embeddings written
out as tensor arithmetic, SwiGLU as ``silu(gate) * up``, ``cross_entropy`` on fp32 logits,
fused AdamW), the structure of both chipmix's own bench model and Hugging Face
Transformers' Llama; `chipmix.perf.eager` shows each count beside the kernels it adds up.
``launch_s`` is fitted from a results store's eager-kernel microbenchmarks where it has
them (`chipmix.bench.fit`).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["EagerCalibration"]


class EagerCalibration(BaseModel):
    """Traffic and per-kernel cost of an eager PyTorch step (see `chipmix.perf.eager`)."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    residual_bytes: float = Field(4.0, ge=1, le=8)
    """Bytes per element of the residual stream. fp32: with fp32 master weights the
    embedding lookup returns fp32 (autocast does not cast embeddings) and every residual
    add of a bf16 branch output promotes to fp32 (PyTorch AMP docs, "CUDA Ops that can
    autocast to float16", type promotion of out-of-list ops)."""
    norm_passes: float = Field(5.0, ge=0, le=50)
    """Passes over the residual width per norm, forward and backward: forward reads the
    input and writes the output; backward reads the gradient and the input and writes the
    input gradient (one fused kernel each way; counted)."""
    rotary_bytes: float = Field(104.0, ge=0, le=1000)
    """Bytes per element of q and k, forward and backward, of rotary embeddings written as
    tensor arithmetic with fp32 cos/sin tables: forward 4 half-width products (bf16 in,
    fp32 out: 3 B each per element), a subtraction and an addition (6 B), two
    concatenations (8 B each) and the cast back (6 B) = 46 B; backward the cast (6 B), a
    negation (4 B), four product gradients with their casts to bf16 (28 B), two gradient
    sums (6 B), two slice-gradient scatters (8 B) and their sum (6 B) = 58 B (counted)."""
    activation_bytes: float = Field(36.0, ge=0, le=1000)
    """Bytes per element of the MLP width, forward and backward, of SwiGLU run as
    ``silu(gate) * up`` on the two halves of one GEMM output: forward silu (4 B) and the
    product (6 B); backward the two product gradients (6 B each), silu's (6 B) and the
    concatenation of the halves' gradients (8 B) (counted). Other activations: 12 B."""
    loss_bytes: float = Field(44.0, ge=0, le=1000)
    """Bytes per logit of the loss end, forward and backward: the bf16 → fp32 upcast (6 B),
    log-softmax over a row too wide for on-chip memory (reads it twice, writes once: 12 B),
    NLL backward's dense zero-filled gradient (4 B), log-softmax backward (reads gradient
    twice and output once, writes once: 16 B) and the cast of the gradient back (6 B)
    (counted; a fused cross-entropy moves 16 B)."""
    cast_bytes_per_weight: float = Field(12.0, ge=0, le=100)
    """Bytes per matmul weight of autocast's casts: forward reads the fp32 master weight
    and writes a bf16 copy (6 B); backward reads the bf16 weight gradient and writes it in
    fp32 (6 B) (PyTorch AMP: autocast caches the casts for one forward only)."""
    kernels_per_layer: float = Field(114.0, ge=0, le=10000)
    """Kernels one dense layer launches, forward and backward (counted: 38 forward, 76
    backward; the rotary arithmetic alone is 58)."""
    kernels_per_step: float = Field(20.0, ge=0, le=10000)
    """Kernels outside the layers: embedding, final norm, logits, loss, optimizer."""
    launch_s: float = Field(3e-6, ge=0, le=1e-3)
    """Fixed device time per kernel on top of its traffic: the gap between back-to-back
    kernels (~0.9 µs: 3.8 µs per 2.9 µs kernel without CUDA graphs in NVIDIA's "Getting
    Started with CUDA Graphs", Gray 2019) plus the ramp-up and tail of a kernel that does
    not keep every SM busy from start to end. Prior 3 µs (estimated); fitted per results
    store from the eager-kernel microbenchmarks (`chipmix.bench.fit`)."""
    optimizer_bytes_per_param: float = Field(28.0, ge=0, le=200)
    """HBM traffic of the optimizer as run: fused AdamW (``torch.optim.AdamW(fused=True)``)
    reads the fp32 weight, gradient and two moments and writes the weight and moments;
    there is no bf16 weight copy to write under autocast."""
    source: str = ""
