"""A chip its framework sees as several devices (TPU7x's two TensorCores, Trainium's
NeuronCores) is as many tensor-parallel ranks: a one-chip replica still all-reduces, and
the latency steps count ranks, not chips."""

from __future__ import annotations

import numpy as np
import pytest

from chipmix.catalog import load_catalog
from chipmix.serve.calibration import load_serve_calibration
from chipmix.serve.forward import ServeSetup, decode_time, serve_setup
from chipmix.serve.job import ServeJob
from chipmix.workload.registry import load_model

ONE = np.array([1.0])


def _setup(chip: str) -> ServeSetup:
    cat = load_catalog()
    job = ServeJob(model=load_model("llama3-8b"), input_len=512, output_len=128)
    return serve_setup(job, cat.system(chip), cat.calibration, load_serve_calibration())


CHIPS = [("tpu-v7", 2), ("trn2", 4), ("trn1", 2), ("inf2", 2), ("h200", 1), ("tpu-v5p", 1)]


@pytest.mark.parametrize(("chip", "devices"), CHIPS)
def test_devices_per_chip_come_from_the_catalog(chip: str, devices: int) -> None:
    c = load_catalog().chip(chip)
    assert c.devices == devices
    if devices > 1:
        assert c.devices_per_chip is not None
        assert c.devices_per_chip.source


def test_a_one_chip_replica_of_two_devices_all_reduces() -> None:
    tpu7 = decode_time(_setup("tpu-v7"), ONE, ONE, ONE, np.array([8.0]), 600.0)
    h200 = decode_time(_setup("h200"), ONE, ONE, ONE, np.array([8.0]), 600.0)
    assert float(tpu7.tp_comm[0]) > 0.0
    assert float(h200.tp_comm[0]) == 0.0


def test_latency_steps_count_ranks_not_chips() -> None:
    s = _setup("trn2")
    two = float(decode_time(s, np.array([2.0]), ONE, ONE, ONE, 600.0).tp_comm[0])
    layers = load_model("llama3-8b").num_layers
    # 2 chips x 4 logical NeuronCores = 8 ranks: 3 recursive-doubling steps per all-reduce
    assert two >= 2 * layers * 3 * s.alpha
