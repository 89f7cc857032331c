"""What each training stack does that changes memory or which layouts it can run.

Stacks differ in the bytes they keep per parameter, how they compute the loss, and which
parallel layouts they accept. Each trait names the documentation it comes from. A stack
chipmix does not know (or none given) gets the permissive PyTorch defaults: every layout
some stack runs is allowed, mixed-precision Adam as Megatron keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = ["STACK_FAMILIES", "StackTraits", "stack_traits"]


@dataclass(frozen=True, slots=True)
class StackTraits:
    """Memory and layout behaviour of one family of stacks."""

    family: str
    weight_bytes: float
    """Bytes per weight as the model holds it."""
    grad_bytes: float
    """Bytes per gradient (the accumulation buffer)."""
    optimizer_bytes: float
    """Bytes per parameter of optimizer state: master copy (if any) and Adam's moments."""
    loss_bytes_per_logit: float
    """Bytes per logit kept for the loss's backward (one micro-batch on the last stage, or
    one of its ``Job.loss_tiles`` tiles when the stack tiles the loss)."""
    kv_replication: bool
    """Accepts tp above the key-value head count by replicating KV heads."""
    ep_folding: bool
    """Folds expert parallelism over tp × cp × dp (not only inside dp)."""
    uneven_pipeline: bool
    """Accepts a layer count that ``pp · vpp`` does not divide."""
    low_precision_saved_inputs: bool
    """Under fp8/fp4 recipes keeps the GEMM inputs for backward in that precision
    (Transformer Engine), not bf16."""
    cp_ring: bool
    """Context parallelism by ring attention: K/V chunks passed around the cp ranks,
    overlapped with the attention core (Liu et al. 2023, arXiv 2310.01889)."""
    cp_all_gather: bool
    """Context parallelism by all-gathering K/V before attention (Llama 3, Dubey et al.
    2024, arXiv 2407.21783 §3.3.2): one exposed collective, cheap with few KV heads."""
    source: str
    ep_dispatch_dedup: bool = False
    """The MoE token dispatcher sends a token over the scale-out network once per
    destination domain (DeepEP / HybridEP; `chipmix.perf.experts`)."""
    materialized_attention: bool = False
    """The attention core writes its score matrix to HBM (no flash attention): Megatron-LM
    before Megatron-Core, whose attention was a batched QKᵀ GEMM, FusedScaleMaskSoftmax and
    dropout (`chipmix.perf.ops.attention_score_bytes`). Its time only: activation memory
    still keeps no score matrix (such runs recompute their attention core, selectively or
    in full; Korthikanti et al. 2022)."""
    vocab_tiling: bool = False
    """Can compute the output layer and loss in tiles of tokens (MaxText
    ``num_vocab_tiling``); a job that does not state ``loss_tiles`` gets the fewest tiles
    that fit. Stacks without it keep what their loss already is (Megatron's fused
    cross-entropy writes its gradient into the bf16 logits)."""


_MEGATRON = StackTraits(
    family="megatron",
    # docs/source/api-guide/dist_optimizer.md: "bf16 param, fp32 grads: 6 + 12/d bytes per
    # parameter" (fp32 main_grad buffer; fp32 master weights and Adam moments, 12 B,
    # sharded over data-parallel ranks by the distributed optimizer).
    weight_bytes=2.0,
    grad_bytes=4.0,
    optimizer_bytes=12.0,
    # --cross-entropy-loss-fusion (Transformer Engine parallel_cross_entropy): the gradient
    # is written in place into the bf16 logits, no fp32 copy is kept.
    loss_bytes_per_logit=2.0,
    # Megatron-Core and TE replicate query groups when tp > num_query_groups (GQA).
    kv_replication=True,
    # Megatron-Core MoE parallel folding (--expert-tensor-parallel-size, EP over TP × DP).
    ep_folding=True,
    # --decoder-first/last-pipeline-num-layers, --account-for-embedding/loss-in-pipeline-split.
    uneven_pipeline=True,
    low_precision_saved_inputs=True,
    # --cp-comm-type p2p (ring) or all_gather (also a2a, Ulysses, not modelled).
    cp_ring=True,
    cp_all_gather=True,
    source="Megatron-Core docs: distributed optimizer, MoE parallel folding, pipeline split",
)

# Megatron-Bridge's MoE performance recipes run Megatron-Core's ``flex`` token dispatcher
# (moe_token_dispatcher_type="flex" with the DeepEP or HybridEP backend; Megatron-Bridge
# scripts/performance/configs, v0.4): node-deduplicated dispatch and combine.
_MEGATRON_BRIDGE = replace(
    _MEGATRON,
    ep_dispatch_dedup=True,
    source=_MEGATRON.source + "; Megatron-Bridge performance recipes: flex (DeepEP/HybridEP) "
    "token dispatcher",
)

# Megatron-LM as published before Megatron-Core (2019-2022 papers and releases): the same
# memory traits, attention through megatron/model/fused_softmax.py (FusedScaleMaskSoftmax)
# between two batched GEMMs; flash attention came with Megatron-Core's Transformer Engine
# layers.
_MEGATRON_LM = replace(
    _MEGATRON,
    materialized_attention=True,
    source=_MEGATRON.source + "; Megatron-LM before Megatron-Core: FusedScaleMaskSoftmax "
    "attention (megatron/model/fused_softmax.py)",
)

_MAXTEXT = StackTraits(
    family="maxtext",
    # MaxText configs/base.yml: weight_dtype float32 (weights and their gradients), mu_dtype
    # defaults to weight_dtype (optax adamw mu and nu in fp32), no separate master copy.
    weight_bytes=4.0,
    grad_bytes=4.0,
    optimizer_bytes=8.0,
    # bf16 logits kept and their bf16 gradient at the backward's peak; XLA fuses the fp32
    # log-softmax into the reduction instead of materializing fp32 logits. The logits are
    # whole unless the run sets num_vocab_tiling (configs/base.yml, default 1;
    # docs/explanations/tiling.md: only one tile of hidden states is projected at a time),
    # which the job carries as ``loss_tiles``.
    loss_bytes_per_logit=4.0,
    # Attention heads are sharded by the tensor axis; fewer KV heads than tp is rejected
    # by the sharding rules (no replication).
    kv_replication=False,
    ep_folding=False,
    # Pipeline stages are num_layers / (pp · layers_per_pipeline_stage) equal stages.
    uneven_pipeline=False,
    low_precision_saved_inputs=False,  # AQT quantizes inside the dot; residuals stay bf16
    # Context parallelism all-gathers K/V over the context axis (layers/attentions.py).
    cp_ring=False,
    cp_all_gather=True,
    source="MaxText configs/base.yml and layers/decoders.py",
    vocab_tiling=True,
)

_NEURONX = StackTraits(
    family="neuronx-distributed",
    weight_bytes=2.0,
    grad_bytes=4.0,
    optimizer_bytes=12.0,
    loss_bytes_per_logit=6.0,
    # NeuronX Distributed GQAQKVColumnParallelLinear: kv_size_multiplier replicates KV heads.
    kv_replication=True,
    ep_folding=False,
    # NxD pipeline: layers split evenly over stages (num_layers % pp == 0).
    uneven_pipeline=False,
    low_precision_saved_inputs=False,
    cp_ring=True,
    cp_all_gather=False,
    source="NeuronX Distributed docs: GQA QKV linear, pipeline parallelism, ZeRO-1",
)

_DEFAULT = StackTraits(
    family="pytorch",
    weight_bytes=2.0,
    grad_bytes=4.0,
    optimizer_bytes=12.0,
    loss_bytes_per_logit=6.0,  # unfused: bf16 logits and their fp32 copy
    kv_replication=True,
    ep_folding=True,
    uneven_pipeline=True,
    low_precision_saved_inputs=False,  # only stacks known to run Transformer Engine
    cp_ring=True,
    cp_all_gather=True,
    source="mixed-precision Adam (Micikevicius et al. 2018; ZeRO, Rajbhandari et al. 2020 §3)",
)

STACK_FAMILIES: dict[str, StackTraits] = {
    "megatron": _MEGATRON,
    "nemo": _MEGATRON,
    "megatron-bridge": _MEGATRON_BRIDGE,
    "megatron-lm": _MEGATRON_LM,
    "mlperf-nvidia": _MEGATRON,
    "primus": _MEGATRON,
    "maxtext": _MAXTEXT,
    "mlperf-google": _MAXTEXT,
    "tpu-recipes": _MAXTEXT,  # AI-Hypercomputer/tpu-recipes: MaxText at a pinned tag
    "neuronx-distributed": _NEURONX,
    "nemo-neuron": _NEURONX,
}
"""Stacks whose behaviour is known, by the family whose code they run (every stack the
calibration's ``stack_parents`` builds on a known one is listed under its parent's family)."""


def stack_traits(stack: str | None) -> StackTraits:
    """The traits of ``stack`` (permissive PyTorch defaults when unknown or None)."""
    return STACK_FAMILIES.get(stack or "", _DEFAULT)
