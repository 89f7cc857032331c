"""Continuous batching: latency and throughput of a replica running ``batch`` requests.

Iteration-level scheduling (Orca, Yu et al. 2022, OSDI '22, §3) admits a new request as
soon as one finishes; with chunked prefill the prompts of new requests ride in the decode
iterations (Sarathi-Serve, Agrawal et al. 2024, arXiv 2403.02310, §4). In steady state a
replica with ``B`` running requests of ``I`` input and ``O`` output tokens finishes ``B/O``
requests per iteration and prefills as many, so, with ``t_d(B)`` the time of one decode
iteration and ``t_p`` one prompt's prefill:

- iteration time        ``T = t(B decode tokens + (B/O)·I prefill tokens)``, one fused
  forward pass (the weights are read once for both)
- output tokens/s       ``B / T`` per replica (the offline throughput)
- time per output token ``TPOT = t(B + ((B−1)/O)·I)``: the other requests' prompts
  interleave with this one's decode (DistServe, Zhong et al. 2024, arXiv 2401.09670, §2.2
  calls this prefill–decode interference)
- time to first token   ``TTFT = t_p + ½ T`` (the prompt's own prefill, after waiting on
  average half an iteration to be scheduled); p99 ``t_p + T``.

The model is deterministic: p99 TPOT equals the mean (chunked prefill spreads the stalls).
Under Poisson arrivals (MLPerf Server) a replica keeps headroom for queueing and sustains
``server_utilization`` of its offline throughput (a calibrated serving parameter).

Disaggregated serving (DistServe; Splitwise, Patel et al. 2024, arXiv 2311.18677) runs
prefill and decode on separate pools: decode iterations then cost ``t_d(B)`` alone, and
a prefill pool of ``N_p`` replicas keeps up with ``N_d`` decode replicas when
``N_p / t_p ≥ N_d · B / (O · t_d(B))``; the KV cache of each prompt crosses the network once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from chipmix.serve.forward import (
    ForwardTime,
    ServeSetup,
    decode_time,
    iteration_time,
    prefill_time,
)
from chipmix.serve.layout import ReplicaBatch
from chipmix.serve.memory import replica_memory

__all__ = ["ServeMetrics", "disaggregated_ratio", "evaluate_serving"]

Array = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ServeMetrics:
    """Everything serving predicts for each layout of a batch of layouts."""

    layouts: ReplicaBatch
    decode: ForwardTime
    """One iteration of ``batch`` requests with their share of prefill (the mean)."""
    prefill: ForwardTime
    """One request's prefill."""
    iteration_s: Array
    ttft_s: Array
    ttft_p99_s: Array
    tpot_s: Array
    tpot_p99_s: Array
    output_tokens_per_s: Array
    """All replicas together, offline (continuous batching at ``batch``)."""
    memory_bytes: Array
    """Bytes per chip needed at ``batch``."""
    memory_capacity_bytes: float
    max_batch: Array
    """Requests a replica's free memory holds at the mean context."""
    weights_bytes: Array
    server_utilization: float

    @property
    def fits(self) -> NDArray[np.bool_]:
        return np.asarray(self.layouts.batch <= self.max_batch)

    @property
    def tokens_per_s_per_chip(self) -> Array:
        return np.asarray(self.output_tokens_per_s / self.layouts.chips)

    @property
    def server_tokens_per_s(self) -> Array:
        return np.asarray(self.server_utilization * self.output_tokens_per_s)


def evaluate_serving(s: ServeSetup, layouts: ReplicaBatch) -> ServeMetrics:
    """Predict latency, throughput and memory for every layout in ``layouts``."""
    job = s.job
    tp, pp, ep = (getattr(layouts, a).astype(np.float64) for a in ("tp", "pp", "ep"))
    b = layouts.batch.astype(np.float64)
    memory = replica_memory(job, tp, pp, s.system.chip.hbm_bytes, s.memory_reserved_bytes)
    out = float(job.output_len)
    dec = iteration_time(s, tp, pp, ep, b, b / out, job.mean_context)
    pre = prefill_time(s, tp, pp, ep, job.input_len)
    own = iteration_time(s, tp, pp, ep, b, (b - 1.0) / out, job.mean_context)
    t_d, t_p = dec.total, pre.total
    iteration = t_d
    tpot = own.total
    waits = b > 1
    return ServeMetrics(
        layouts=layouts,
        decode=dec,
        prefill=pre,
        iteration_s=np.asarray(iteration),
        ttft_s=np.asarray(t_p + np.where(waits, 0.5 * t_d, 0.0)),
        ttft_p99_s=np.asarray(t_p + np.where(waits, t_d, 0.0)),
        tpot_s=np.asarray(tpot),
        tpot_p99_s=np.asarray(tpot),
        output_tokens_per_s=np.asarray(layouts.replicas * b / iteration),
        memory_bytes=memory.needed(b, job.mean_context),
        memory_capacity_bytes=memory.capacity,
        max_batch=memory.max_batch(job.mean_context),
        weights_bytes=memory.weights,
        server_utilization=s.server_utilization,
    )


def disaggregated_ratio(s: ServeSetup, layouts: ReplicaBatch) -> Array:
    """Prefill replicas needed per decode replica when prefill runs on its own pool of the
    same layout (DistServe §3; Splitwise §4): ``(B / O) · t_p / t_d(B)`` with ``t_d`` a
    pure decode iteration."""
    tp, pp, ep = (getattr(layouts, a).astype(np.float64) for a in ("tp", "pp", "ep"))
    b = layouts.batch.astype(np.float64)
    t_d = decode_time(s, tp, pp, ep, b, s.job.mean_context).total
    t_p = prefill_time(s, tp, pp, ep, s.job.input_len).total
    return np.asarray(b / s.job.output_len * t_p / t_d)
