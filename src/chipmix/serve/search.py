"""The serving layout search: every replica layout and batch at once, the best under targets.

Axes are small generators combined with `itertools.product` (tensor-parallel degree inside
the scale-up domain dividing the attention heads; pipeline stages; expert-parallel degree
dividing tp and the experts), and for each layout a ladder of batches up to what its free
memory holds; all are evaluated as arrays in one call. The objective is output tokens per
second per chip; targets on p99 TTFT and TPOT filter the candidates first.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from chipmix.errors import InfeasibleError, InputError
from chipmix.serve.batching import ServeMetrics, evaluate_serving
from chipmix.serve.forward import ForwardTime, ServeSetup
from chipmix.serve.layout import ReplicaBatch
from chipmix.serve.memory import GIB, kv_bytes_per_token, replica_memory
from chipmix.serve.precision import weight_bytes

__all__ = ["ServeOutcome", "Targets", "run_serve_search"]

MAX_BATCH = 4096
"""Largest batch tried (vLLM's ``max_num_seqs`` is 256–1024 in practice)."""


@dataclass(frozen=True, slots=True)
class Targets:
    """Latency targets in seconds (None: no target)."""

    ttft_p99_s: float | None = None
    tpot_p99_s: float | None = None

    def __post_init__(self) -> None:
        for name in ("ttft_p99_s", "tpot_p99_s"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise InputError(f"{name.removesuffix('_s')} target must be > 0 (got {value!r})")


@dataclass(frozen=True, slots=True)
class ServeOutcome:
    """Every candidate that fits and meets the targets, best first, and what was rejected."""

    metrics: ServeMetrics
    """Predictions of the accepted candidates, best first."""
    all_metrics: ServeMetrics
    """Predictions of every candidate tried (for curves)."""
    tried: int
    rejected: dict[str, int]

    @property
    def feasible(self) -> int:
        return len(self.metrics.layouts)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _layout_axes(s: ServeSetup, chips: int, pins: dict[str, int]) -> list[tuple[int, int, int]]:
    model = s.job.model
    domain = s.system.scaleup_domain_chips
    out = []
    tps = [pins["tp"]] if "tp" in pins else [
        t for t in _divisors(chips) if t <= domain and model.num_heads % t == 0
    ]  # fmt: skip
    for tp in tps:
        pps = [pins["pp"]] if "pp" in pins else [
            p for p in _divisors(chips // tp) if p <= min(model.num_layers, 16)
        ]  # fmt: skip
        eps = [1]
        if model.moe is not None:
            eps = [e for e in _divisors(tp) if model.moe.num_experts % e == 0]
        if "ep" in pins:
            eps = [pins["ep"]]
        out += [(tp, pp, ep) for pp, ep in itertools.product(pps, eps) if chips % (tp * pp) == 0]
    return out


def _candidates(
    s: ServeSetup, chips: int, pins: dict[str, int], batch_cap: int | None
) -> ReplicaBatch:
    axes = _layout_axes(s, chips, pins)
    if not axes:
        raise InputError(
            f"no replica layout divides {chips} chips with the pinned axes {pins}; "
            f"tp × pp must divide the chips and tp the {s.job.model.num_heads} heads"
        )
    tp, pp, ep = (np.array(a, dtype=np.int64) for a in zip(*axes, strict=True))
    memory = replica_memory(
        s.job, tp.astype(np.float64), pp.astype(np.float64), s.system.chip.hbm_bytes,
        s.memory_reserved_bytes,
    )  # fmt: skip
    cap = MAX_BATCH if batch_cap is None else min(batch_cap, MAX_BATCH)
    most = np.minimum(memory.max_batch(s.job.mean_context), cap).astype(np.int64)
    ladder = 2 ** np.arange(int(np.log2(MAX_BATCH)) + 1)
    rows: list[tuple[int, int, int, int, int]] = []
    for i in range(len(tp)):
        if "batch" in pins:
            batches = [pins["batch"]]
        else:
            top = max(int(most[i]), 1)  # a layout that holds no request is kept to report
            batches = sorted({*(int(b) for b in ladder if b < top), top})
        replicas = chips // int(tp[i] * pp[i])
        rows += [(int(tp[i]), int(pp[i]), int(ep[i]), replicas, b) for b in batches]
    cols = [np.array(c, dtype=np.int64) for c in zip(*rows, strict=True)]
    return ReplicaBatch(*cols)


def run_serve_search(
    s: ServeSetup,
    chips: int,
    targets: Targets = Targets(),
    pins: dict[str, int] | None = None,
    batch_cap: int | None = None,
) -> ServeOutcome:
    """Evaluate every candidate; keep those that fit and meet ``targets``, best first.

    Raises `InfeasibleError` saying how much memory the model needs when no replica holds
    it, or which target rules every layout out and by how much. ``batch_cap`` bounds the
    requests per replica (a client's maximum concurrency).
    """
    pins = dict(pins or {})
    cands = _candidates(s, chips, pins, batch_cap)
    m = evaluate_serving(s, cands)
    fits = m.fits & (m.max_batch >= 1)
    if not fits.any():
        raise InfeasibleError(_memory_message(s, m, chips))
    ttft_ok = (
        np.ones_like(fits) if targets.ttft_p99_s is None else m.ttft_p99_s <= targets.ttft_p99_s
    )
    tpot_ok = (
        np.ones_like(fits) if targets.tpot_p99_s is None else m.tpot_p99_s <= targets.tpot_p99_s
    )
    ok = fits & ttft_ok & tpot_ok
    if not ok.any():
        raise InfeasibleError(_target_message(m, fits, ttft_ok, tpot_ok, targets))
    rejected = Counter(
        {"memory": int((~fits).sum()), "ttft": int((fits & ~ttft_ok).sum()),
         "tpot": int((fits & ttft_ok & ~tpot_ok).sum())}
    )  # fmt: skip
    index = np.flatnonzero(ok)
    per_chip = m.tokens_per_s_per_chip[index]
    # Best first; ties (same throughput) go to the lower TPOT.
    order = index[np.lexsort((m.tpot_p99_s[index], -per_chip))]
    return ServeOutcome(
        metrics=_take(m, order), all_metrics=m, tried=len(cands),
        rejected={k: v for k, v in rejected.items() if v},
    )  # fmt: skip


def _take(m: ServeMetrics, index: NDArray[np.intp]) -> ServeMetrics:
    def sub(f: ForwardTime) -> ForwardTime:
        shape = m.iteration_s.shape
        return ForwardTime(*(np.broadcast_to(getattr(f, n), shape)[index]
                             for n in ForwardTime.__dataclass_fields__))  # fmt: skip

    return ServeMetrics(
        layouts=m.layouts.take(index), decode=sub(m.decode), prefill=sub(m.prefill),
        iteration_s=m.iteration_s[index], ttft_s=m.ttft_s[index],
        ttft_p99_s=m.ttft_p99_s[index], tpot_s=m.tpot_s[index],
        tpot_p99_s=m.tpot_p99_s[index],
        output_tokens_per_s=m.output_tokens_per_s[index],
        memory_bytes=m.memory_bytes[index], memory_capacity_bytes=m.memory_capacity_bytes,
        max_batch=m.max_batch[index], weights_bytes=m.weights_bytes[index],
        server_utilization=m.server_utilization,
    )  # fmt: skip


def _memory_message(s: ServeSetup, m: ServeMetrics, chips: int) -> str:
    job = s.job
    weights = job.model.num_params() * weight_bytes(job.precision) / GIB
    kv = kv_bytes_per_token(job.model, job.kv_precision) * job.mean_context / GIB
    largest = int(np.argmax(m.layouts.tp * m.layouts.pp))
    replica = int(m.layouts.tp[largest] * m.layouts.pp[largest])
    capacity = replica * m.memory_capacity_bytes / GIB
    return (
        f"{job.model.name} does not fit on any replica of {s.system.chip.id}: it needs "
        f"{weights:.1f} GiB of {job.precision} weights + {kv:.2f} GiB of KV cache per request "
        f"({job.mean_context:.0f} tokens), but the largest replica ({replica} chips of "
        f"{chips}) gives {capacity:.1f} GiB; use more chips, a lower weight precision "
        f"(--precision fp8/fp4) or a chip with more memory"
    )


def _target_message(
    m: ServeMetrics,
    fits: NDArray[np.bool_],
    ttft_ok: NDArray[np.bool_],
    tpot_ok: NDArray[np.bool_],
    targets: Targets,
) -> str:
    parts = []
    for name, ok, values, target in (
        ("TTFT", ttft_ok, m.ttft_p99_s, targets.ttft_p99_s),
        ("TPOT", tpot_ok, m.tpot_p99_s, targets.tpot_p99_s),
    ):
        if target is None or (fits & ok).any():
            continue
        best = int(np.argmin(np.where(fits, values, np.inf)))
        parts.append(
            f"the p99 {name} target of {target * 1e3:.0f} ms rules out every layout: the "
            f"fastest ({m.layouts.layout(best)}) reaches {values[best] * 1e3:.0f} ms, "
            f"{values[best] / target:.2f}× the target"
        )
    if not parts:
        # Each target alone is reachable, but not both at once.
        best = int(np.argmin(np.where(fits & ttft_ok, m.tpot_p99_s, np.inf)))
        parts.append(
            f"the TTFT and TPOT targets together rule out every layout: among layouts "
            f"meeting the TTFT target the lowest p99 TPOT is {m.tpot_p99_s[best] * 1e3:.0f} ms "
            f"({m.layouts.layout(best)}), {m.tpot_p99_s[best] / (targets.tpot_p99_s or 1):.2f}× "
            f"the target"
        )
    return "; ".join(parts) + "; relax the target, use faster chips or more chips per replica"
