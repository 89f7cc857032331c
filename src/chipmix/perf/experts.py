"""Communication of expert parallelism: the token all-to-all and the expert gradients.

**All-to-all on the links it really crosses.** With balanced routing (the published MoE
runs force it) each of a rank's ``T`` tokens goes to ``top_k`` experts spread evenly over
the ``n`` ranks of the expert-parallel group. When the group spans ``D = n / k`` scale-up
domains of ``k`` of its ranks each, a share ``(k − 1) / n`` of the copies stays on the
scale-up fabric and ``(n − k) / n`` crosses the scale-out network; NCCL drives every peer
at once, so the two move concurrently and the slower one sets the time (NCCL's all-to-all
is grouped point-to-point sends, one per peer; DeepSeek-V3, arXiv 2412.19437 §3.2.2,
overlaps its IB and NVLink traffic the same way).

**Node-deduplicated dispatch.** DeepEP and NVIDIA's HybridEP (Megatron-Core's ``flex``
token dispatcher) send a token over the scale-out network at most once per destination
domain and fan it out over the scale-up fabric there, and combine in the mirror order
(DeepSeek-V3 §3.2.2: "each token … transmitted via IB … to the GPUs with the same in-node
index on its target nodes … then forwarded via NVLink"). The scale-out copies per token
are then the expected number of *distinct* remote domains its ``top_k`` experts fall in,
not ``top_k · (n − k) / n``: for ``E`` experts spread evenly over ``D`` domains, a domain
holds none of the ``top_k`` picks with the hypergeometric probability
``Π_{i<top_k} (E − E/D − i) / (E − i)``.

**Expert gradients.** Routed experts are replicated over the expert-data-parallel group
(``edp = tp · dp · cp / (ep · etp)``), not over the whole data-parallel group, and its
members are the ranks ``ep`` (folded) or ``tp · cp · ep`` apart (Megatron-Core
``parallel_state``: expert-data-parallel groups; Liu et al. 2025, arXiv 2504.14960): with
the expert-parallel group filling a scale-up domain, every expert-gradient reduction
crosses the scale-out network.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from chipmix.perf import collectives as coll
from chipmix.perf.layout import LayoutBatch, expert_tp
from chipmix.workload.model import ModelSpec

__all__ = [
    "all_to_all_seconds",
    "expert_dp_group",
    "expert_parameters",
    "remote_domains_per_token",
]

Array = NDArray[np.float64]


def _ep_stride(batch: LayoutBatch) -> Array:
    """Rank distance between neighbouring members of an expert-parallel group: 1 when
    folded over tp × cp × dp (expert ranks ordered first), else ``tp · cp`` (the group
    lies inside dp, whose neighbours are a tp × cp block apart)."""
    folded = batch.dp % batch.ep != 0
    return np.where(folded, 1.0, batch.tp * batch.cp).astype(np.float64)


def _members_per_domain(n: Array, stride: Array, domain: int) -> Array:
    """Members of a group of ``n`` ranks ``stride`` apart that share one scale-up domain."""
    return np.asarray(np.clip(np.floor(domain / stride), 1.0, np.maximum(n, 1.0)))


def remote_domains_per_token(experts: int, top_k: int, domains: Array) -> Array:
    """Expected number of scale-up domains other than its own that a token's ``top_k``
    experts fall in, experts spread evenly over ``domains`` (hypergeometric miss
    probability; see the module docstring)."""
    d = np.maximum(np.asarray(domains, dtype=np.float64), 1.0)
    e = float(experts)
    miss = np.ones_like(d)
    for i in range(top_k):
        miss = miss * np.clip((e - e / d - i) / (e - i), 0.0, 1.0)
    return np.asarray((d - 1.0) * (1.0 - miss))


def all_to_all_seconds(
    model: ModelSpec,
    tokens: Array,
    batch: LayoutBatch,
    domain: int,
    bw_up: float,
    bw_out: float,
    alpha: float,
    *,
    dedup: bool,
    element_bytes: float,
) -> Array:
    """One dispatch (or combine) all-to-all of the ``tokens`` a rank routes, in seconds."""
    assert model.moe is not None
    moe = model.moe
    n = batch.ep.astype(np.float64)
    k = _members_per_domain(n, _ep_stride(batch), domain)
    token_bytes = tokens * model.hidden_size * element_bytes
    local = token_bytes * moe.top_k * (k - 1.0) / n
    if dedup:
        remote = token_bytes * remote_domains_per_token(moe.num_experts, moe.top_k, n / k)
    else:
        remote = token_bytes * moe.top_k * (n - k) / n
    # One latency per step of the pairwise exchange (Thakur et al. 2005), as the ring
    # collectives in `chipmix.perf.collectives`.
    latency = np.maximum(n - 1.0, 0.0) * alpha
    seconds = np.maximum(local / bw_up, remote / bw_out) + latency
    return np.asarray(np.where(n > 1, seconds, 0.0))


def expert_parameters(model: ModelSpec, batch: LayoutBatch, moe_layers: Array) -> Array:
    """Routed-expert weights one chip of the fullest stage holds (before ZeRO sharding)."""
    return np.asarray(moe_layers * model.expert_params_per_layer() / (batch.ep * expert_tp(batch)))


def expert_dp_group(batch: LayoutBatch, domain: int) -> tuple[Array, Array]:
    """The expert-data-parallel degree and how many of its ranks share a scale-up domain."""
    tp = batch.tp.astype(np.float64)
    dp = batch.dp.astype(np.float64) * batch.cp
    ep = batch.ep.astype(np.float64)
    edp = np.maximum(tp * dp / (ep * expert_tp(batch)), 1.0)
    stride = _ep_stride(batch) * ep
    return np.asarray(edp), _members_per_domain(edp, stride, domain)


def expert_gradient_seconds(
    edp: Array,
    per_domain: Array,
    nbytes: Array,
    bw_up: float,
    bw_out: float,
    alpha: float,
) -> Array:
    """Reduce-scatter (or all-gather) of ``nbytes`` of expert state over the edp group."""
    return coll.hierarchical_reduce_scatter_time(edp, per_domain, nbytes, bw_up, bw_out, alpha)
