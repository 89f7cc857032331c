"""The sample history of a simulated run (issue 8: the simulate report's timeline): the
engine's trace of one replica adds up to that replica's totals, and recording it changes
no number."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from chipmix.sim.engine import Trace, run_replicas
from chipmix.sim.results import SimulationResult
from chipmix.sim.sample import sample_history
from chipmix.sim.simulate import simulate


@pytest.fixture(scope="module")
def result() -> SimulationResult:
    return simulate(
        "llama3-8b", "h100-sxm", 512, tokens=2e12, seq_len=4096, global_batch=512, replicas=64
    )


def test_trace_adds_up_to_the_replica_totals(result: SimulationResult) -> None:
    h = sample_history(result)
    a = result.outcome.arrays
    i = h.replica
    spans, events = h.trace.spans, h.trace.events
    # Contiguous from 0 to the replica's end.
    t = 0.0
    for s in spans:
        assert s.start_s == pytest.approx(t, abs=1e-6)
        assert s.end_s >= s.start_s
        t = s.end_s
    assert t == pytest.approx(float(a.elapsed_s[i]))
    kinds = Counter(e.kind for e in events)
    assert kinds["interruption"] == int(a.interruptions[i])
    assert kinds["done"] == 1
    down = sum(s.end_s - s.start_s for s in spans if s.kind == "restart")
    assert down == pytest.approx(float(a.downtime_s[i]), rel=1e-9, abs=1e-6)
    lost = sum(e.lost_s for e in events)
    assert lost == pytest.approx(float(a.lost_work_s[i]), rel=1e-9, abs=1e-6)
    assert h.completion_days == pytest.approx(float(a.wall_s[i]) / 86400)
    assert sum(s.num_checkpoints for s in spans) > 0


def test_sample_is_the_median_replica(result: SimulationResult) -> None:
    h = sample_history(result)
    days = result.outcome.completion_days
    assert abs(days[h.replica] - np.median(days)) <= np.min(np.abs(days - np.median(days))) + 1e-9


def test_recording_changes_no_number(result: SimulationResult) -> None:
    o = result.outcome
    kwargs = {"target_tokens": 2e12, "window": False, "replicas": 64}
    plain = run_replicas(o.timeline, rng=np.random.default_rng(result.seed), **kwargs)
    traced = run_replicas(
        o.timeline, rng=np.random.default_rng(result.seed), trace=Trace(replica=5), **kwargs
    )
    assert np.array_equal(plain.wall_s, traced.wall_s)
    assert np.array_equal(plain.counts, traced.counts)
    assert np.array_equal(plain.wall_s, o.arrays.wall_s)


def test_window_mode_ends_with_the_window() -> None:
    r = simulate("llama3-8b", "h100-sxm", 256, duration_days=3, global_batch=256, replicas=16)
    h = sample_history(r, replica=0)
    assert h.completion_days is None
    assert h.trace.events[-1].kind == "end"
    assert h.trace.spans[-1].end_s == pytest.approx(3 * 86400)
    assert math.isfinite(h.tokens)


def test_bad_replica_is_refused(result: SimulationResult) -> None:
    with pytest.raises(ValueError, match="replica must be"):
        sample_history(result, replica=64)
