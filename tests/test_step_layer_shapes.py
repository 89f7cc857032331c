"""The step model times one layer once per distinct shape of a long batch
(`chipmix.perf.layer_times.layer_shapes`): the same numbers, to the last bit, as timing every
layout's layer on its own."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest

from chipmix.catalog import load_catalog
from chipmix.layouts.space import SearchSpace
from chipmix.perf import layer_times
from chipmix.perf.step import StepResult, evaluate
from chipmix.workload.make import make_job

CAT = load_catalog()


def _arrays(result: StepResult) -> dict[str, np.ndarray]:
    out = {f.name: getattr(result.breakdown, f.name) for f in fields(result.breakdown)}
    out |= {k: getattr(result, k) for k in ("step_time_s", "tokens_per_s", "mfu", "hfu")}
    return out


@pytest.mark.parametrize(
    ("model", "stack", "system"),
    [
        ("qwen3-235b-a22b", "megatron", "p5.48xlarge"),
        ("llama3-70b", "maxtext", "tpu-v5p-pod"),
        ("mixtral-8x7b", "megatron-lm", "h100-sxm"),
        ("llama3-8b", "pytorch", "h100-sxm"),
    ],
)
def test_shared_layer_shapes_change_no_number(
    model: str, stack: str, system: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = make_job(model, seq_len=4096, global_batch=512, stack=stack)
    resolved = CAT.system(system)
    batch = SearchSpace(job, resolved, 512, {}, stack).batch()
    batch = batch.take(np.arange(min(len(batch), 6000)))
    assert layer_times.layer_shapes(batch) is not None  # long enough to share
    shared = _arrays(evaluate(job, resolved, CAT.calibration, batch))
    monkeypatch.setattr(layer_times, "SHARED_LAYER_MIN", 10**12)
    assert layer_times.layer_shapes(batch) is None
    alone = _arrays(evaluate(job, resolved, CAT.calibration, batch))
    for name, values in alone.items():
        assert np.array_equal(shared[name], values), name


def test_a_short_batch_or_wide_degrees_are_not_shared() -> None:
    job = make_job("llama3-8b", seq_len=4096, global_batch=256)
    batch = SearchSpace(job, CAT.system("h100-sxm"), 64, {}, "megatron").batch()
    assert layer_times.layer_shapes(batch.take(np.arange(10))) is None
    wide = batch.take(np.arange(300))
    wide = type(wide)(*(getattr(wide, f.name) for f in fields(wide)))
    wide.micro_batch[:] = 2**61
    assert layer_times.layer_shapes(wide) is None


def test_the_pipeline_split_looked_up_is_the_split_computed() -> None:
    # `pipeline_split` splits each (pp, vpp) pair once for a long batch: the same layers.
    from chipmix.perf.layout import _split, pipeline_split

    job = make_job("llama3.1-405b", seq_len=8192, global_batch=2048)
    batch = SearchSpace(job, CAT.system("h100-sxm"), 16384, {}, "megatron").batch()
    assert len(batch) > 1000
    for layers in (126, 80, 61, 7):
        split = pipeline_split(layers, batch)
        direct = _split(layers, batch.pp, batch.vpp)
        for looked_up, computed in zip(
            (split.first, split.middle, split.last), direct, strict=True
        ):
            assert np.array_equal(looked_up, computed)
