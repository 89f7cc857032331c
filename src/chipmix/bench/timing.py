"""How the bench times a kernel: inputs made once, calls back to back, device events.

The figure is what a plain back-to-back timing of the same op reads (e.g. ``torch.matmul``
between two CUDA events over 20 products after 5 warm-ups):

- **inputs are made before timing** (``make_inputs`` is called ``buffers`` times, up
  front) and the timed calls rotate through them, so no random-number generation,
  allocation of inputs or host work of the benchmark sits between two calls;
- **calls run back to back**: a sample is ``inner`` calls between two device events
  (``cuda-events``; CUDA and ROCm), and the samples follow each other with no
  synchronization in between: the host queues every sample, then waits once and reads
  the events. A device without events (the CPU, XLA) is timed with the host clock around
  each sample, synchronized at its ends (``host-timer``);
- **L2 effects are stated**: with one input set, an op whose operands fit in the L2 cache
  reads them from L2 from the second call on. Where the caller passes ``l2_bytes`` and the
  operands are smaller than twice that, enough input sets are made that the rotation
  touches at least twice the L2 between two uses of a set (``extra["l2"]`` says which);
- ``inner`` is chosen once from the warm-up so a sample lasts at least ``min_sample_s``.

The reported time is the median over samples divided by ``inner``; the method is recorded
with every result (`chipmix.bench.store.Result.method`).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

__all__ = ["CUDA_EVENTS", "HOST_TIMER", "Event", "Timing", "input_sets", "measure"]

T = TypeVar("T")

CUDA_EVENTS = "cuda-events"
"""Device events around ``inner`` back-to-back calls, samples queued without a sync."""
HOST_TIMER = "host-timer"
"""The host clock around ``inner`` calls between two synchronizations."""


class Event(Protocol):
    """What the timing needs of a device event (``torch.cuda.Event(enable_timing=True)``)."""

    def record(self) -> None: ...
    def synchronize(self) -> None: ...
    def elapsed_time(self, end: Any, /) -> float: ...


@dataclass(frozen=True, slots=True)
class Timing:
    """Seconds per call of the measured function, and how they were taken."""

    median_s: float
    min_s: float
    max_s: float
    repeats: int
    """Timed samples (after warm-up)."""
    inner: int
    """Calls per sample."""
    method: str = HOST_TIMER
    """`CUDA_EVENTS` or `HOST_TIMER`."""
    l2: str = ""
    """How the L2 cache figures in the figure (see the module docstring)."""


def input_sets(operand_bytes: float, l2_bytes: float | None, *, limit: int = 64) -> tuple[int, str]:
    """How many input sets to rotate through, and the sentence saying what L2 does."""
    if not l2_bytes or operand_bytes <= 0:
        return 1, "one input set; L2 size unknown"
    if operand_bytes >= 2.0 * l2_bytes:
        return 1, f"operands {operand_bytes / 2**20:.0f} MiB ≥ 2 × L2 ({l2_bytes / 2**20:.0f} MiB)"
    n = min(limit, math.ceil(2.0 * l2_bytes / operand_bytes))
    state = "≥" if n * operand_bytes >= 2.0 * l2_bytes else "<"
    return n, (
        f"{n} input sets of {operand_bytes / 2**20:.3g} MiB rotated ({state} 2 × L2 of "
        f"{l2_bytes / 2**20:.0f} MiB between two uses of a set)"
    )


def measure(
    run: Callable[[T], object],
    make_inputs: Callable[[], T],
    sync: Callable[[], None],
    *,
    warmup: int = 2,
    repeats: int = 5,
    min_sample_s: float = 0.0,
    max_inner: int = 100,
    event: Callable[[], Event] | None = None,
    buffers: int = 1,
    l2: str = "",
) -> Timing:
    """Time ``run(inputs)``: ``warmup`` untimed calls, then ``repeats`` timed samples of
    ``inner`` calls each, rotating through ``buffers`` input sets made up front."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1 (got {repeats})")
    sets: Sequence[T] = [make_inputs() for _ in range(max(buffers, 1))]
    sync()
    first = 0.0
    for i in range(max(warmup, 1)):
        start = time.perf_counter()
        run(sets[i % len(sets)])
        sync()
        first = time.perf_counter() - start
    inner = 1
    if min_sample_s > 0 and first > 0:
        inner = max(1, min(max_inner, math.ceil(min_sample_s / first)))
    if event is not None:
        samples = _device_samples(run, sets, sync, event, repeats, inner)
        method = CUDA_EVENTS
    else:
        samples = _host_samples(run, sets, sync, repeats, inner)
        method = HOST_TIMER
    return Timing(
        median_s=statistics.median(samples),
        min_s=min(samples),
        max_s=max(samples),
        repeats=repeats,
        inner=inner,
        method=method,
        l2=l2,
    )


def _device_samples(
    run: Callable[[T], object], sets: Sequence[T], sync: Callable[[], None],
    event: Callable[[], Event], repeats: int, inner: int,
) -> list[float]:  # fmt: skip
    marks = [event() for _ in range(repeats + 1)]
    sync()
    marks[0].record()
    call = 0
    for r in range(repeats):
        for _ in range(inner):
            run(sets[call % len(sets)])
            call += 1
        marks[r + 1].record()
    marks[-1].synchronize()
    return [marks[r].elapsed_time(marks[r + 1]) / 1e3 / inner for r in range(repeats)]


def _host_samples(
    run: Callable[[T], object], sets: Sequence[T], sync: Callable[[], None],
    repeats: int, inner: int,
) -> list[float]:  # fmt: skip
    samples = []
    call = 0
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        for _ in range(inner):
            run(sets[call % len(sets)])
            call += 1
        sync()
        samples.append((time.perf_counter() - start) / inner)
    return samples
