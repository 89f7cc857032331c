"""Collective communication times: the alpha-beta model of ring algorithms.

For ``n`` ranks, a message of ``M`` bytes (the full, gathered size), per-rank link bandwidth
``B`` bytes/s per direction and per-step latency ``α`` (Thakur, Rabenseifner & Gropp 2005,
"Optimization of collective communication operations in MPICH", Int. J. HPC Appl. 19(1)):

- reduce-scatter, all-gather:  T = (n-1)/n · M / B + (n-1) α
- all-reduce (RS then AG):     T = 2 (n-1)/n · M / B + 2 (n-1) α
- all-to-all (pairwise):       T = (n-1)/n · M / B + (n-1) α, M = bytes one rank sends in all
- point-to-point:              T = M / B + α

A group that spans scale-up domains runs hierarchically: ``k`` ranks per domain do the
collective over the fast links on ``M``, then each rank runs it across the ``n/k`` domains
on its share ``M/k`` over the scale-out network (NCCL's tree/ring hybrids reach the same
bandwidth term). All functions take numpy arrays and broadcast.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "all_gather_time",
    "all_reduce_time",
    "all_to_all_time",
    "hierarchical_all_reduce_time",
    "hierarchical_reduce_scatter_time",
    "p2p_time",
    "reduce_scatter_time",
]

Array = NDArray[np.float64]
ArrayLike = Array | float


def reduce_scatter_time(n: ArrayLike, nbytes: ArrayLike, bw: ArrayLike, alpha: float) -> Array:
    """Ring reduce-scatter of ``nbytes`` (whole tensor) over ``n`` ranks."""
    n = np.asarray(n, dtype=np.float64)
    steps = np.maximum(n - 1.0, 0.0)
    return np.asarray(steps / np.maximum(n, 1.0) * nbytes / bw + steps * alpha)


all_gather_time = reduce_scatter_time
"""Ring all-gather costs the same as reduce-scatter (same steps, same bytes)."""


def all_reduce_time(n: ArrayLike, nbytes: ArrayLike, bw: ArrayLike, alpha: float) -> Array:
    """Ring all-reduce = reduce-scatter + all-gather."""
    return 2.0 * reduce_scatter_time(n, nbytes, bw, alpha)


def all_to_all_time(n: ArrayLike, nbytes: ArrayLike, bw: ArrayLike, alpha: float) -> Array:
    """Pairwise all-to-all where each rank sends ``nbytes`` spread evenly over ``n`` ranks."""
    return reduce_scatter_time(n, nbytes, bw, alpha)


def p2p_time(nbytes: ArrayLike, bw: ArrayLike, alpha: float) -> Array:
    return np.asarray(np.asarray(nbytes, dtype=np.float64) / bw + alpha)


def hierarchical_reduce_scatter_time(
    n: ArrayLike,
    per_domain: ArrayLike,
    nbytes: ArrayLike,
    bw_up: ArrayLike,
    bw_out: ArrayLike,
    alpha: float,
) -> Array:
    """Reduce-scatter over ``n`` ranks, ``per_domain`` of them in each scale-up domain."""
    k = np.minimum(np.asarray(per_domain, dtype=np.float64), n)
    domains = np.asarray(n, dtype=np.float64) / k
    inner = reduce_scatter_time(k, nbytes, bw_up, alpha)
    outer = reduce_scatter_time(domains, np.asarray(nbytes) / k, bw_out, alpha)
    return inner + outer


def hierarchical_all_reduce_time(
    n: ArrayLike,
    per_domain: ArrayLike,
    nbytes: ArrayLike,
    bw_up: ArrayLike,
    bw_out: ArrayLike,
    alpha: float,
) -> Array:
    """All-reduce = hierarchical reduce-scatter + all-gather (same cost)."""
    return 2.0 * hierarchical_reduce_scatter_time(n, per_domain, nbytes, bw_up, bw_out, alpha)
