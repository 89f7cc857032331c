"""What the eager-kernel microbenchmarks say about the ``pytorch`` stack, and how a stored
figure was timed.

The chip's ``memory_efficiency`` is the hardware's streaming rate (copy / read kernels).
The norm and SwiGLU microbenchmarks time eager kernels as a PyTorch step runs them; their
time beyond their traffic at that rate, per kernel, is the stack's per-kernel fixed cost
``launch_s`` (`chipmix.catalog.eager.EagerCalibration`). Each result is predicted with
the kernels it really ran: SwiGLU as ``silu(gate) * up`` is two kernels moving five passes
of ``tokens × width`` (silu reads and writes, the product reads two and writes one),
though its stored ``bytes`` count the three a fused kernel moves.

Results stored before the timing method was recorded (``method`` empty) timed attention
with the grouped-query key/value heads expanded by ``repeat_interleave`` inside the timed
region; `attention_core_s` takes that traffic out, so the fitted ``attention_efficiency``
is the fused kernel's alone (the eager stack charges the repeat itself).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from chipmix.bench.store import Result

__all__ = [
    "LAUNCH_CAP_S",
    "LEGACY_METHOD",
    "attention_core_s",
    "eager_kernel_traffic",
    "fit_launch_s",
    "method_of",
]

LAUNCH_CAP_S = 1e-4
"""Largest per-kernel cost the fit reports: beyond ~100 µs the excess is not launch and
tail but arithmetic (a CPU's eager norm and SiLU are compute-bound), which the eager
terms, counted in bytes, do not model."""

LEGACY_METHOD = "host-timer-fresh-inputs"
"""How results without a recorded method were timed: a host clock around ``inner`` calls
between two device synchronizations, fresh random inputs made before every sample."""


def method_of(result: Result) -> str:
    """How ``result`` was timed (`LEGACY_METHOD` where the store does not say)."""
    return result.method or LEGACY_METHOD


def attention_core_s(result: Result, stream_bytes_per_s: float) -> float:
    """Seconds of the fused attention kernels alone in an attention result."""
    if method_of(result) != LEGACY_METHOD:
        return result.median_s
    shape = result.shape
    heads, kv_heads = int(shape["heads"]), int(shape["kv_heads"])
    if kv_heads >= heads:
        return result.median_s
    tokens = float(shape["batch"]) * float(shape["seq_len"])
    width = float(shape["head_dim"])
    # K and V each: forward reads kv and writes q widths, backward reads q and writes kv
    # (the gradient summed over the group), bf16.
    repeat = 2.0 * 2.0 * 2.0 * tokens * width * (heads + kv_heads)
    return max(result.median_s - repeat / stream_bytes_per_s, 0.5 * result.median_s)


def eager_kernel_traffic(result: Result) -> tuple[float, int]:
    """(bytes moved, kernels launched) of one eager norm or elementwise result as run."""
    if "kernels" in result.extra:
        return float(result.extra.get("bytes_as_run", result.bytes)), int(result.extra["kernels"])
    if result.kind == "elementwise" and result.name == "swiglu":
        return result.bytes * 5.0 / 3.0, 2
    return result.bytes, 1


def fit_launch_s(results: Sequence[Result], stream_bytes_per_s: float) -> float | None:
    """Median over the eager-kernel results of (measured − traffic at the streaming rate)
    per kernel, at most `LAUNCH_CAP_S`; None without such results."""
    values = []
    for r in results:
        if r.kind not in ("norm", "elementwise") or r.median_s <= 0:
            continue
        nbytes, kernels = eager_kernel_traffic(r)
        values.append(max(r.median_s - nbytes / stream_bytes_per_s, 0.0) / max(kernels, 1))
    return min(statistics.median(values), LAUNCH_CAP_S) if values else None
