"""`chipmix simulate --plan`: every job of a portfolio plan simulated where the plan puts it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chipmix.cli import app
from chipmix.sim.plan_runs import simulate_plan

runner = CliRunner()

SCENARIO = """\
name: sim-plan
start: 2026-01-01
objective: min-cost
offers:
  - catalog: aws-p5.48xlarge-us-east-1-2025-06
    max_chips: 1024
    tiers: [on-demand]
jobs:
  - {name: pretrain-8b, model: llama3-8b, tokens: 2e11, deadline: 2026-01-20}
  - {name: finetune-70b, model: llama3-70b, tokens: 5e10, deadline: 2026-01-25, mode: finetune}
"""


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plan") / "plan.yaml"
    path.write_text(SCENARIO)
    return path


def test_each_job_runs_on_its_allocation(scenario: Path) -> None:
    sim = simulate_plan(scenario, replicas=60, seed=1)
    assert {j.allocation.job for j in sim.jobs} == {"pretrain-8b", "finetune-70b"}
    for j in sim.jobs:
        a, run = j.allocation, j.result.primary
        assert run.estimate.system.id == a.system
        assert run.chips == a.chips
        assert run.estimate.layout == a.layout  # the planner's layout, not a new search
        assert run.tokens_per_s == pytest.approx(a.tokens_per_s, rel=1e-9)
        assert j.deadline_days is not None
        assert j.deadline_days > a.duration_h / 24
        summary = j.result.summary
        assert summary["completion_days_p50"] >= a.duration_h / 24  # failures only delay
    each = [float(j.meets_deadline.mean()) for j in sim.jobs]
    assert sim.all_deadlines_probability <= min(each)
    d = sim.to_dict()
    assert d["cost_usd_mean"] >= d["planned_cost_usd"] * 0.999
    assert len(sim.to_dataframe()) == 2


def test_cli_plan(scenario: Path) -> None:
    args = ["simulate", "--plan", str(scenario), "--replicas", "30"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    out = json.loads(result.stdout)
    assert {"all_deadlines_probability", "jobs", "planned_cost_usd"} <= set(out)
    table = runner.invoke(app, args)
    assert table.exit_code == 0
    assert "P(every job on time)" in table.stdout


def test_cli_plan_rejects_a_second_job_description(scenario: Path) -> None:
    result = runner.invoke(app, ["simulate", "--plan", str(scenario), "--chips", "8"])
    assert result.exit_code != 0
    assert "leave out --chips" in str(result.exception)


SERVING = """\
name: sim-serve
start: 2026-01-05
end: 2026-02-01
offers:
  - {{catalog: aws-p5.48xlarge-us-east-1-2025-06, tiers: [on-demand]}}
{jobs}serving:
  - {{name: chat, model: llama3-8b, input_len: 2000, output_len: 300, tokens_per_day: 2e9,
     ttft_p99_ms: 2000, tpot_p99_ms: 100}}
solver: {{period_days: 14}}
"""
JOBS = """\
jobs:
  - {name: pretrain-1b, model: llama3.2-1b, tokens: 1e10, global_batch: 256,
     deadline: 2026-01-25, chip_counts: [16]}
"""


def test_serving_lines_are_named_as_not_simulated(tmp_path: Path) -> None:
    path = tmp_path / "serve.yaml"
    path.write_text(SERVING.format(jobs=JOBS))
    sim = simulate_plan(path, replicas=20, seed=1)
    assert [j.allocation.job for j in sim.jobs] == ["pretrain-1b"]
    line = "chat on aws-p5.48xlarge-us-east-1-2025-06 (on-demand)"
    assert sim.not_simulated == [line]
    d = sim.to_dict()
    assert d["not_simulated"] == [line]
    serving_usd = sum(s.cost_usd for s in sim.plan.serving)
    assert serving_usd > 0
    assert d["cost_usd_mean"] >= d["planned_cost_usd"] * 0.999  # serving counted as planned
    out = runner.invoke(app, ["simulate", "--plan", str(path), "--replicas", "20"])
    assert out.exit_code == 0, (out.output, out.exception)
    assert "not simulated" in out.stdout
    assert "chat on" in out.stdout
    # without jobs: nothing simulated, the serving lines named
    path.write_text(SERVING.format(jobs=""))
    alone = simulate_plan(path, replicas=20, seed=1)
    assert alone.jobs == []
    assert alone.not_simulated == [line]
