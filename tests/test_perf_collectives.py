"""Collective times against the closed forms of the alpha-beta model of ring algorithms
(Thakur, Rabenseifner & Gropp 2005, Int. J. HPC Appl. 19(1); Patarasuk & Yuan 2009):
ring all-reduce of M bytes over n ranks with per-rank bandwidth B and step latency α takes
``2(n−1)/n · M/B + 2(n−1)·α``; reduce-scatter and all-gather half of that each."""

from __future__ import annotations

import numpy as np
import pytest

from chipmix.perf import collectives as coll

GB = 1e9
ALPHA = 10e-6


@pytest.mark.parametrize("n", [2, 3, 4, 8, 16, 64, 1024])
@pytest.mark.parametrize("nbytes", [1e3, 256e6, 10e9])
def test_ring_all_reduce_closed_form(n: int, nbytes: float) -> None:
    bw = 450 * GB
    expected = 2.0 * (n - 1) / n * nbytes / bw + 2.0 * (n - 1) * ALPHA
    assert float(coll.all_reduce_time(n, nbytes, bw, ALPHA)) == pytest.approx(expected, rel=1e-12)


def test_ring_all_reduce_worked_example() -> None:
    """8 ranks, 1 GB, 100 GB/s, α = 10 µs: 2·7/8·10 ms + 14·10 µs = 17.64 ms."""
    assert float(coll.all_reduce_time(8, 1e9, 100 * GB, ALPHA)) == pytest.approx(17.64e-3)


@pytest.mark.parametrize("n", [2, 5, 8, 128])
def test_all_gather_costs_what_reduce_scatter_costs(n: int) -> None:
    rs = coll.reduce_scatter_time(n, 3e8, 50 * GB, ALPHA)
    ag = coll.all_gather_time(n, 3e8, 50 * GB, ALPHA)
    assert float(ag) == float(rs)
    assert float(coll.all_reduce_time(n, 3e8, 50 * GB, ALPHA)) == pytest.approx(2 * float(rs))


@pytest.mark.parametrize(
    "fn",
    [coll.reduce_scatter_time, coll.all_gather_time, coll.all_reduce_time, coll.all_to_all_time],
    ids=lambda f: f.__name__,
)
def test_one_rank_costs_nothing(fn: object) -> None:
    assert callable(fn)
    assert float(fn(1, 1e9, 100 * GB, ALPHA)) == 0.0


def test_hierarchical_one_rank_costs_nothing() -> None:
    t = coll.hierarchical_all_reduce_time(1, 8, 1e9, 450 * GB, 50 * GB, ALPHA)
    assert float(t) == 0.0


@pytest.mark.parametrize("n", [2, 4, 8])
def test_hierarchical_equals_flat_within_one_domain(n: int) -> None:
    """All ranks in one scale-up domain: the outer stage has one domain and costs nothing."""
    up, out = 450 * GB, 50 * GB
    flat = coll.all_reduce_time(n, 2e9, up, ALPHA)
    for per_domain in (n, 8, 72):  # a domain at least as large as the group
        hier = coll.hierarchical_all_reduce_time(n, per_domain, 2e9, up, out, ALPHA)
        assert float(hier) == pytest.approx(float(flat), rel=1e-12)


def test_hierarchical_equals_flat_when_one_rank_per_domain() -> None:
    """One rank per domain: the inner stage is empty, the outer is a flat scale-out ring."""
    out = 50 * GB
    hier = coll.hierarchical_all_reduce_time(16, 1, 2e9, 450 * GB, out, ALPHA)
    assert float(hier) == pytest.approx(float(coll.all_reduce_time(16, 2e9, out, ALPHA)))


def test_hierarchical_closed_form_across_domains() -> None:
    """64 ranks, 8 per domain: inner ring of 8 on M over the fast links, then a ring of
    8 domains on M/8 over the network (each rank carries its share)."""
    n, k, m, up, out = 64, 8, 4e9, 450 * GB, 50 * GB
    inner = 2 * (7 / 8 * m / up + 7 * ALPHA)
    outer = 2 * (7 / 8 * (m / 8) / out + 7 * ALPHA)
    got = coll.hierarchical_all_reduce_time(n, k, m, up, out, ALPHA)
    assert float(got) == pytest.approx(inner + outer, rel=1e-12)
    # ...which beats a flat ring over the network for the same group
    assert float(got) < float(coll.all_reduce_time(n, m, out, ALPHA))


def test_point_to_point_and_all_to_all() -> None:
    assert float(coll.p2p_time(1e9, 100 * GB, ALPHA)) == pytest.approx(10e-3 + ALPHA)
    # pairwise all-to-all: each rank keeps 1/n of what it holds, sends the rest
    assert float(coll.all_to_all_time(4, 1e9, 100 * GB, ALPHA)) == pytest.approx(
        3 / 4 * 10e-3 + 3 * ALPHA
    )


def test_vectorized_over_layouts() -> None:
    n = np.array([1.0, 2.0, 4.0, 8.0])
    got = coll.all_reduce_time(n, 1e9, 100 * GB, ALPHA)
    expected = [float(coll.all_reduce_time(float(k), 1e9, 100 * GB, ALPHA)) for k in n]
    assert got.shape == (4,)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize("n", [2, 8, 64])
def test_bandwidth_term_approaches_2m_over_b(n: int) -> None:
    """With α = 0 the bus bandwidth factor of a ring all-reduce is 2(n−1)/n < 2."""
    t = float(coll.all_reduce_time(n, 1e9, 1e9, 0.0))
    assert t == pytest.approx(2.0 * (n - 1) / n)
    assert t < 2.0
