"""Timing the nanoGPT way (``bench.py``): warm up, synchronize, time, take the median.

Each sample gets fresh random inputs (made outside the timed region) so no cache holds a
previous sample's operands; a sample runs the kernel ``inner`` times between two
synchronizations, ``inner`` chosen once from the warm-up so a sample lasts at least
``min_sample_s`` (a short kernel is not all launch and sync latency). The reported time is
the median over samples divided by ``inner``.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["Timing", "measure"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Timing:
    """Seconds per call of the measured function."""

    median_s: float
    min_s: float
    max_s: float
    repeats: int
    """Timed samples (after warm-up)."""
    inner: int
    """Calls per sample."""


def measure(
    run: Callable[[T], object],
    make_inputs: Callable[[], T],
    sync: Callable[[], None],
    *,
    warmup: int = 2,
    repeats: int = 5,
    min_sample_s: float = 0.0,
    max_inner: int = 100,
) -> Timing:
    """Time ``run(inputs)``: ``warmup`` untimed calls, then ``repeats`` timed samples."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1 (got {repeats})")
    first = 0.0
    for i in range(max(warmup, 1)):
        inputs = make_inputs()
        sync()
        start = time.perf_counter()
        run(inputs)
        sync()
        if i == max(warmup, 1) - 1:
            first = time.perf_counter() - start
    inner = 1
    if min_sample_s > 0 and first > 0:
        inner = max(1, min(max_inner, math.ceil(min_sample_s / first)))
    samples = []
    for _ in range(repeats):
        inputs = make_inputs()
        sync()
        start = time.perf_counter()
        for _ in range(inner):
            run(inputs)
        sync()
        samples.append((time.perf_counter() - start) / inner)
    return Timing(
        median_s=statistics.median(samples),
        min_s=min(samples),
        max_s=max(samples),
        repeats=repeats,
        inner=inner,
    )
