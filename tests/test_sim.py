"""The continuity simulator (issue 6): published reliability, the engine against closed-form
results, checkpoint policy, outages with and without migration, reproducibility.

Most cases use small replica counts and short windows; the 16,384-chip case runs the full
Llama 3 window because that is what it checks (~0.1 s for 200 replicas).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from chipmix.catalog import load_catalog
from chipmix.catalog.reliability import FAILURE_CLASSES, load_reliability
from chipmix.sim import simulate
from chipmix.sim.checkpoint import (
    CHECKPOINT_BYTES_PER_PARAM,
    checkpoint_bytes,
    daly_interval,
    parse_interval,
    young_interval,
)
from chipmix.sim.failures import CAUSES, chip_rates
from chipmix.workload.job import Job
from chipmix.workload.registry import load_model

LLAMA3 = {"seq_len": 8192, "global_batch": 2048}


def overlay(tmp_path: Path, data: dict[str, object]) -> Path:
    """A catalog overlay folder holding only a reliability.yaml."""
    (tmp_path / "reliability.yaml").write_text(yaml.safe_dump(data))
    return tmp_path


def fig(value: float) -> dict[str, object]:
    return {"value": value, "source": "chipmix-assumption"}


# -- issue 6, "Must show": the Llama 3 run --------------------------------------------------
def test_llama3_405b_on_16k_h100_for_54_days_matches_the_paper() -> None:
    """Llama 3 (arXiv 2407.21783, §3.3.4, Table 5): 16,384 H100s, a 54-day snapshot, 419
    unexpected interruptions (466 with 47 planned), "higher than 90%" effective training time.

    Assumptions (the shipped reliability.yaml, all stated there): per-chip rates = Table 5's
    counts by class / (16,384 × 54 × 24 chip-hours), Poisson, also striking during restarts;
    planned maintenance at a checkpoint; restart = detect 2 min + hot-spare swap or relaunch
    3 min + checkpoint load + warm-up 5 min; 2 % hot spare nodes, 48 h repair; 5.7 TB
    checkpoint (14 B/param) written synchronously at Tectonic's 2 TB/s, every Daly-optimal
    interval; the 54 days are a fixed window of wall time.
    """
    r = simulate(
        "llama3.1-405b", "h100-sxm", 16384, duration_days=54, replicas=200, seed=0, **LLAMA3
    )
    s = r.summary
    assert s["unplanned_interruptions_mean"] == pytest.approx(419, rel=0.15)
    assert s["interruptions_mean"] == pytest.approx(466, rel=0.15)
    assert 0.88 <= s["ettr_mean"] <= 0.95
    by_cause = s["interruptions_by_cause_mean"]
    assert by_cause["accelerator"] > by_cause["hbm"] > by_cause["host"]  # the table's order
    assert by_cause["spot_reclaim"] == 0  # on-demand capacity is not reclaimed
    assert r.policy.mtbf_lossy_h == pytest.approx(54 * 24 / 419, rel=1e-9)  # one every ~3 h


# -- the rates, from the file ---------------------------------------------------------------
def test_per_chip_rates_are_table5_counts_over_chip_hours() -> None:
    cat = load_catalog()
    rel = load_reliability(cat)
    h100 = cat.chip("h100-sxm")
    rates = chip_rates(rel, h100, h100)
    total = sum(rates.failures_per_chip_hour.values())
    assert total == pytest.approx(419 / (16384 * 54 * 24))
    assert rates.planned_per_chip_hour == pytest.approx(47 / (16384 * 54 * 24))
    assert set(rates.failures_per_chip_hour) == set(FAILURE_CLASSES)


@pytest.mark.parametrize(
    ("chip", "accelerator", "hbm"),
    [
        pytest.param("b200", 1000 / 700, 180 / 80, id="b200: TDP and HBM scale"),
        pytest.param("trn2", 1.0, 96 / 80, id="trn2: no published TDP, HBM scales"),
        pytest.param("h200", 1.0, 141 / 80, id="h200: same TDP, more HBM"),
    ],
)
def test_other_chips_scale_by_the_stated_rules(chip: str, accelerator: float, hbm: float) -> None:
    cat = load_catalog()
    rel = load_reliability(cat)
    h100 = cat.chip("h100-sxm")
    ref = chip_rates(rel, h100, h100).failures_per_chip_hour
    got = chip_rates(rel, cat.chip(chip), h100).failures_per_chip_hour
    assert got["accelerator"] / ref["accelerator"] == pytest.approx(accelerator)
    assert got["hbm"] / ref["hbm"] == pytest.approx(hbm)
    for c in ("host", "network", "software"):
        assert got[c] == pytest.approx(ref[c])


def test_every_reliability_figure_has_a_defined_source() -> None:
    rel = load_reliability(load_catalog())
    assert rel.reference.source in rel.sources
    for name in ("detect_s", "warmup_s", "replace_node_s"):
        assert getattr(rel.restart, name).source in rel.sources


# -- checkpoints ----------------------------------------------------------------------------
def test_checkpoint_is_14_bytes_per_parameter() -> None:
    model = load_model("llama3-70b")
    assert CHECKPOINT_BYTES_PER_PARAM == 14
    assert checkpoint_bytes(Job(model=model)) == 14 * model.num_params()
    lora = checkpoint_bytes(Job(model=model, mode="lora"))
    assert 0 < lora < 0.01 * checkpoint_bytes(Job(model=model))


def test_young_and_daly_formulas() -> None:
    delta, m = 60.0, 7200.0
    assert young_interval(delta, m) == pytest.approx(math.sqrt(2 * 60 * 7200))
    x = delta / (2 * m)
    daly = math.sqrt(2 * delta * m) * (1 + math.sqrt(x) / 3 + x / 9) - delta
    assert daly_interval(delta, m) == pytest.approx(daly)
    assert daly_interval(3 * m, m) == m  # δ ≥ 2M: checkpoint every M
    assert math.isinf(young_interval(delta, math.inf))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30m", 1800.0), ("900s", 900.0), ("1.5h", 5400.0), ("45min", 2700.0), (600, 600.0)],
)
def test_interval_strings(text: str | int, seconds: float) -> None:
    assert parse_interval(text) == seconds


def _exact_overlay(tmp_path: Path) -> Path:
    """Every interruption costs the same restart R and loses work (no planned maintenance,
    spares back at once), and checkpoints are slow: Young's and Daly's assumptions."""
    return overlay(
        tmp_path,
        {
            "reference": {"planned_interruptions": fig(0)},
            "restart": {"repair_h": fig(0)},
            "storage": {"aggregate_write_gb_s": fig(2), "aggregate_read_gb_s": fig(2)},
        },
    )


def test_mean_completion_matches_the_exact_exponential_model(tmp_path: Path) -> None:
    """With constant restart R, exponential failures of mean M that also strike restarts, and
    a checkpoint δ after every τ of work, one segment takes M·e^{R/M}·(e^{(τ+δ)/M} − 1) on
    average (Daly 2006, eq. 13); the last segment writes no checkpoint."""
    r = simulate(
        "llama3-8b",
        "h100-sxm",
        1024,
        tokens=1e12,
        replicas=400,
        seed=7,
        failure_rate_multiplier=10,
        hot_spare_nodes=1,
        checkpoint_interval="20m",
        catalog=_exact_overlay(tmp_path),
        model_error=False,  # the failure model alone: throughput at its point prediction
    )
    run = r.primary
    m = run.lossy_mtbf_s
    restart = run.restart
    big_r = restart.detect_s + restart.swap_s + run.checkpoint.load_s + restart.warmup_s
    assert restart.relaunch_s == restart.swap_s  # software and hardware restarts cost the same
    tau, delta = run.interval_s, run.checkpoint.write_s
    work = 1e12 / run.tokens_per_s
    segments = work / tau
    k = math.ceil(segments)

    def segment(length: float) -> float:
        return m * math.exp(big_r / m) * math.expm1(length / m)

    expected = (k - 1) * segment(tau + delta) + segment(work - (k - 1) * tau)
    got = float(np.mean(r.outcome.arrays.wall_s))
    assert got == pytest.approx(expected, rel=0.01)


def test_simulated_best_interval_is_near_young_and_daly(tmp_path: Path) -> None:
    """Where their assumptions hold (exponential failures, constant δ and R, δ ≪ M), the
    interval that maximizes the simulated ETTR lies within 25 % of Young's and Daly's."""
    r = simulate(
        "llama3-8b",
        "h100-sxm",
        1024,
        duration_days=30,
        replicas=300,
        seed=3,
        failure_rate_multiplier=25,
        hot_spare_nodes=1,
        sweep=True,
        catalog=_exact_overlay(tmp_path),
    )
    pol = r.policy
    assert pol.sweep is not None
    delta = r.primary.checkpoint.blocking_s
    assert delta > 30  # a checkpoint costs something, so the optimum is sharp enough
    assert pol.mtbf_lossy_h * 3600 > 50 * delta
    best = pol.sweep.best_interval_s
    assert best == pytest.approx(pol.daly_interval_s, rel=0.25)
    assert best == pytest.approx(pol.young_interval_s, rel=0.25)
    # and the sweep's curve rises then falls around it
    ettr = pol.sweep.ettr_mean
    assert ettr[0] < max(ettr) > ettr[-1]


def test_time_adds_up_for_every_replica() -> None:
    r = simulate(
        "llama3-70b", "h100-sxm", 2048, tokens=2e12, replicas=100, seed=1, failure_rate_multiplier=5
    )
    a = r.outcome.arrays
    parts = a.productive_s + a.lost_work_s + a.checkpoint_s + a.downtime_s + a.waiting_s
    np.testing.assert_allclose(parts, a.wall_s, rtol=1e-9)
    np.testing.assert_allclose(a.tokens, 2e12)
    assert np.all(a.finished)
    assert np.all(a.cost_usd >= a.productive_cost_usd)


def test_asynchronous_checkpoints_block_less(tmp_path: Path) -> None:
    cat = overlay(tmp_path, {"storage": {"aggregate_write_gb_s": fig(5)}})
    kwargs = {"duration_days": 10, "replicas": 100, "seed": 2, "catalog": cat}
    sync = simulate("llama3-70b", "h100-sxm", 1024, **kwargs)  # type: ignore[arg-type]
    asyn = simulate("llama3-70b", "h100-sxm", 1024, asynchronous_checkpoint=True, **kwargs)  # type: ignore[arg-type]
    assert asyn.primary.checkpoint.blocking_s < sync.primary.checkpoint.blocking_s / 10
    assert asyn.summary["checkpoint_hours_mean"] < sync.summary["checkpoint_hours_mean"]
    assert asyn.ettr_mean > sync.ettr_mean


def test_spot_capacity_is_reclaimed_at_the_stated_rate() -> None:
    r = simulate(
        "llama3-70b", "p5.48xlarge", 1024, duration_days=30, replicas=200, seed=4, price_tier="spot"
    )
    nodes = 1024 // 8
    expected = nodes * 0.2 / 730 * 30 * 24  # 0.2 reclaims per node-month
    got = r.summary["interruptions_by_cause_mean"]["spot_reclaim"]
    assert got == pytest.approx(expected, rel=0.1)
    on_demand = simulate("llama3-70b", "p5.48xlarge", 1024, duration_days=30, replicas=200, seed=4)
    assert on_demand.summary["interruptions_by_cause_mean"]["spot_reclaim"] == 0
    assert r.ettr_mean < on_demand.ettr_mean


def test_hot_spares_shorten_hardware_restarts() -> None:
    kwargs = {"duration_days": 30, "replicas": 100, "seed": 5, "failure_rate_multiplier": 20}
    none = simulate("llama3-70b", "h100-sxm", 2048, hot_spare_nodes=0, **kwargs)  # type: ignore[arg-type]
    some = simulate("llama3-70b", "h100-sxm", 2048, hot_spare_nodes=16, **kwargs)  # type: ignore[arg-type]
    assert some.summary["restart_hours_mean"] < none.summary["restart_hours_mean"]
    assert some.ettr_mean > none.ettr_mean


# -- outages and migration ------------------------------------------------------------------
OUTAGE = {
    "name": "nvidia region outage",
    "outages": [{"name": "region", "start_day": 3, "duration_days": 14, "capacity_lost": 1.0}],
    "migration": {"system": "trn2", "warm": True},
}


def test_vendor_outage_a_warm_second_vendor_finishes_sooner(tmp_path: Path) -> None:
    """All H100 capacity is gone from day 3 to day 17. With a warm Trainium2 fleet the run
    moves there (paying the checkpoint transfer and trn2's throughput) and comes back; without
    it, the run waits."""
    path = tmp_path / "outage.yaml"
    path.write_text(yaml.safe_dump(OUTAGE))
    r = simulate(
        "llama3-70b",
        "h100-sxm",
        1024,
        tokens=1e12,
        replicas=100,
        seed=0,
        scenario=path,
        deadline_days=16,
    )
    assert r.without_migration is not None
    with_m, without = r.summary, r.without_migration.summary()
    # trn2 runs the job at its family-fitted throughput (below H100's), so the 14 days of
    # outage cost it about 4.5 days of progress: a gain of more than 9 days.
    assert with_m["completion_days_p50"] < without["completion_days_p50"] - 9
    assert r.migration_gain_days_p50 is not None
    assert r.migration_gain_days_p50 > 9
    assert without["waiting_hours_mean"] == pytest.approx(14 * 24, rel=0.01)
    assert with_m["waiting_hours_mean"] == 0
    assert with_m["deadline_probability"] > without["deadline_probability"]
    labels = [p.label for p in r.outcome.timeline.phases]
    assert labels == ["primary", "region: migrated to trn2", "primary"]
    trn2 = r.outcome.timeline.runs[1]
    assert trn2.estimate.system.chip.id == "trn2"
    assert trn2.tokens_per_s != r.primary.tokens_per_s  # the throughput change is paid
    entry = r.outcome.timeline.phases[1].entry_down_s
    assert entry > r.primary.checkpoint.size_bytes / 25e9  # includes the transfer
    assert r.to_dict()["without_migration"]["completion_days_p50"] == without["completion_days_p50"]


def test_partial_outage_shrinks_onto_the_chips_left() -> None:
    scen = {"outages": [{"start_day": 2, "duration_days": 10, "capacity_lost": 0.5}]}
    from chipmix.sim.scenario import parse_scenario

    shrink = simulate(
        "llama3-70b",
        "h100-sxm",
        1024,
        tokens=1e12,
        replicas=50,
        seed=0,
        scenario=parse_scenario(scen),
    )
    wait = simulate(
        "llama3-70b",
        "h100-sxm",
        1024,
        tokens=1e12,
        replicas=50,
        seed=0,
        scenario=parse_scenario(scen | {"on_outage": "wait"}),
    )
    shrunk = shrink.outcome.timeline.runs[1]
    assert shrunk.chips == 512
    assert 0 < shrunk.tokens_per_s < shrink.primary.tokens_per_s
    assert shrink.summary["completion_days_p50"] < wait.summary["completion_days_p50"]


# -- reproducibility and results ------------------------------------------------------------
def test_same_seed_same_numbers_other_seed_other_numbers() -> None:
    def run(seed: int) -> dict[str, object]:
        return simulate(
            "llama3-70b", "h100-sxm", 2048, tokens=1e12, replicas=50, seed=seed
        ).to_dict()

    a, b, c = run(11), run(11), run(12)
    assert a == b
    assert a["completion_days_p50"] != c["completion_days_p50"]


def test_result_converts_to_dict_and_dataframe() -> None:
    r = simulate("llama3-8b", "h100-sxm", 64, tokens=1e11, replicas=20, seed=0, deadline_days=30)
    d = r.to_dict()
    for key in (
        "interruptions_mean",
        "ettr_mean",
        "completion_days_p50",
        "completion_days_p90",
        "cost_usd_mean",
        "deadline_probability",
        "checkpoint_policy",
        "assumptions",
    ):
        assert key in d, key
    df = r.to_dataframe()
    assert len(df) == 20
    assert {f"interruptions_{c}" for c in CAUSES} <= set(df.columns)
    assert df["ettr"].between(0, 1).all()


def test_a_cold_second_system_takes_over_only_after_its_lead_time() -> None:
    """Not warm: the run carries on shrunk until the capacity arrives and the job is ported
    to the target's vendor (the longer of the two), then moves at a checkpoint; with a lead
    time longer than the outage it never moves."""
    from chipmix.sim.scenario import parse_scenario

    rel = load_reliability()
    porting_days = rel.migration.porting("nvidia", "aws").value  # 30 days, assumed
    outage = {"start_day": 2, "duration_days": porting_days + 6, "capacity_lost": 0.5}
    cold = parse_scenario(
        {"outages": [outage], "migration": {"system": "trn2", "warm": False, "lead_time_h": 48}}
    )
    r = simulate("llama3-70b", "h100-sxm", 1024, tokens=1e12, replicas=20, seed=0, scenario=cold)
    phases = r.outcome.timeline.phases
    assert [p.label.split(": ")[-1] for p in phases] == [
        "primary",
        "shrunk to 512 chips",
        "migrated to trn2",
        "primary",
    ]
    assert phases[2].start_s == pytest.approx((2 + porting_days) * 86400)
    assert not phases[2].entry_sudden  # moved at a checkpoint
    never = parse_scenario(
        {"outages": [{**outage, "duration_days": 6}],
         "migration": {"system": "trn2", "warm": False, "lead_time_h": 48}}
    )  # fmt: skip
    r = simulate("llama3-70b", "h100-sxm", 1024, tokens=1e12, replicas=20, seed=0, scenario=never)
    assert "migrated" not in " ".join(p.label for p in r.outcome.timeline.phases)
