"""Serving demand in `chipmix plan`: whole replicas at the serving search's best layout, the
same caps as the jobs, a clear error when no chip meets the SLO, JSON."""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import chipmix
from chipmix.cli import app, main
from chipmix.errors import InfeasibleError
from chipmix.planning.portfolio.planner import plan

runner = CliRunner()

H100 = "aws-p5.48xlarge-us-east-1-2025-06"
MI300X = "azure-nd-mi300x-v5-2026-04"
SLO = {"ttft_p99_ms": 2000, "tpot_p99_ms": 100}
D = 2e9
"""Output tokens a day."""


JOB = {"name": "a", "model": "llama3.2-1b", "tokens": 1e10, "global_batch": 256,
       "deadline": "2026-01-25", "chip_counts": [16], "offers": [H100]}  # fmt: skip


def scenario(**serving: Any) -> dict[str, Any]:
    entry = {"name": "chat", "model": "llama3-8b", "input_len": 2000, "output_len": 300,
             "tokens_per_day": D, **SLO, **serving}  # fmt: skip
    return {
        "name": "serve",
        "start": "2026-01-05",
        "end": "2026-02-15",
        "offers": [
            {"catalog": H100, "tiers": ["on-demand"]},
            {"catalog": MI300X, "tiers": ["on-demand"]},
        ],
        "jobs": [JOB],
        "serving": [entry],
        "solver": {"period_days": 14},
    }


def run(sc: dict[str, Any]) -> chipmix.PlanResult:
    return plan(sc, sensitivity=False, single_vendor=False)


def search(system: str) -> chipmix.ServeEstimate:
    return chipmix.serve_estimate("llama3-8b", system, 64, input_len=2000, output_len=300, **SLO)  # type: ignore[arg-type]


def test_closed_form_chips_on_one_offer() -> None:
    """D tokens/day at X tokens/s/chip on replicas of r chips: ⌈D / 86400 / (X·r)⌉ × r."""
    result = run(scenario(offers=[H100]))
    best = search("p5.48xlarge")
    r = best.layout.replica_chips
    x = best.tokens_per_s_per_chip
    expected = math.ceil(D / 86400 / (x * r) - 1e-9) * r
    assert expected == best.chips_for(D)
    (line,) = result.serving
    assert line.offer == H100
    assert line.replica_chips == r
    assert line.tokens_per_s_per_chip == pytest.approx(x)
    assert set(line.chips) == {expected}
    (entry,) = result.serving_entries
    days = (result.horizon_end - result.horizon_start).days + 1
    assert entry.output_tokens == pytest.approx(D * days)
    price = 6.88  # the offer's on-demand $/chip-hour
    assert entry.cost_usd == pytest.approx(expected * days * 24 * price, rel=0.02)
    assert entry.usd_per_million_tokens == pytest.approx(entry.cost_usd / (D * days) * 1e6)
    # the serving cost is in the plan's cost, beside the job's
    assert result.cost_usd == pytest.approx(entry.cost_usd + result.allocations[0].cost_usd)


def test_a_cap_forces_a_vendor_mix() -> None:
    free = run(scenario())
    (cheap,) = {line.offer for line in free.serving}
    need = max(free.serving[0].chips)
    sc = scenario()
    for o in sc["offers"]:
        if o["catalog"] == cheap:
            o["max_chips"] = need // 2
    capped = run(sc)
    offers = {line.offer for line in capped.serving}
    assert offers == {H100, MI300X}
    on_cheap = next(line for line in capped.serving if line.offer == cheap)
    job_chips = 16 if cheap == H100 else 0
    assert max(on_cheap.chips) + job_chips <= need // 2  # serving and training share the cap
    assert len({v.name for v in capped.vendors}) == 2
    assert capped.cost_usd > free.cost_usd


def test_no_chip_meets_the_slo() -> None:
    with pytest.raises(InfeasibleError, match=r"TPOT target of 1 ms .* reaches"):
        run(scenario(tpot_p99_ms=1))


def test_cli_slo_error_exits_2_and_json_parses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario(tpot_p99_ms=1)))
    monkeypatch.setattr(sys, "argv", ["chipmix", "plan", str(path), "--no-baseline"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    for part in ("serving 'chat'", "TPOT target of 1 ms", "reaches"):
        assert part in err
    path.write_text(yaml.safe_dump(scenario()))
    out = runner.invoke(app, ["plan", str(path), "--json", "--no-sensitivity", "--no-baseline"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    (entry,) = data["serving"]["entries"]
    assert entry["serving"] == "chat"
    assert entry["usd_per_million_tokens"] > 0
    assert data["serving"]["lines"][0]["chips"]


def test_demand_steps_and_unknown_keys() -> None:
    steps = [{"from": "2026-01-05", "tokens_per_day": D}, {"from": "2026-01-19",
             "tokens_per_day": 2 * D}]  # fmt: skip
    result = run(scenario(offers=[H100], tokens_per_day=steps))
    chips = result.serving[0].chips
    assert chips[0] < chips[-1]
    (entry,) = result.serving_entries
    assert entry.output_tokens == pytest.approx(D * 14 + 2 * D * 28)  # Jan 5-18, Jan 19-Feb 15
    with pytest.raises(chipmix.InputError, match="tpot_p99_ms"):
        run(scenario(tpot_p99=100))


def test_the_example_serves() -> None:
    from chipmix.planning.portfolio.resolve import SERVING_GAP, SERVING_PRESOLVE
    from chipmix.planning.portfolio.scenario_file import load_scenario

    root = Path(__file__).resolve().parent.parent
    sc = load_scenario(root / "examples" / "serving-lab-2026.yaml")
    (entry,) = sc.serving
    assert entry.tokens_per_day(sc.start, sc.start) == 1e10
    assert entry.tokens_per_day(sc.start, sc.end) == 6e10
    # 90 days at 10G, 153 at 30G, 122 at 60G
    assert entry.tokens_between(sc.start, sc.end) == pytest.approx(1.281e13)
    assert sc.solver.gap == SERVING_GAP
    assert sc.solver.presolve == SERVING_PRESOLVE
    training = load_scenario(root / "examples" / "frontier-lab-2026.yaml")
    assert training.solver.presolve == "light"


def test_a_serving_only_scenario_plans(tmp_path: Path) -> None:
    """No training jobs: the plan is the serving lines alone, and the text has no job tables."""
    sc = scenario(offers=[H100])
    del sc["jobs"]
    result = run(sc)
    assert result.allocations == []
    best = search("p5.48xlarge")
    (line,) = result.serving
    assert set(line.chips) == {best.chips_for(D)}
    (entry,) = result.serving_entries
    assert result.cost_usd == pytest.approx(entry.cost_usd)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(sc))
    out = runner.invoke(app, ["plan", str(path), "--no-sensitivity", "--no-baseline"])
    assert out.exit_code == 0, out.output
    assert "serving lines" in out.stdout
    assert "allocation" not in out.stdout
    assert "completion" not in out.stdout
    # the horizon may end where the serving does
    del sc["end"]
    sc["serving"][0]["end"] = "2026-01-31"
    assert run(sc).horizon_end.isoformat() == "2026-01-31"


def test_nothing_to_plan_is_refused() -> None:
    sc = scenario()
    del sc["jobs"], sc["serving"]
    with pytest.raises(chipmix.InputError, match="at least one job or one serving entry"):
        run(sc)


def test_an_offer_full_of_serving_replicas_is_a_binding_capacity() -> None:
    """The constraint table counts serving's use of an offer: capped below what the cheap
    offer would serve, its capacity is binding and raising it saves money."""
    sc = scenario()
    del sc["jobs"]
    free = run(sc)
    (cheap,) = {line.offer for line in free.serving}
    need = max(free.serving[0].chips)
    for o in sc["offers"]:
        if o["catalog"] == cheap:
            o["max_chips"] = need // 2
    capped = plan(sc, sensitivity=True, single_vendor=False)
    assert capped.allocations == []
    binding = {(b.constraint, b.subject): b for b in capped.binding}
    assert ("capacity", cheap) in binding
    assert binding[("capacity", cheap)].gain > 0


def test_a_serving_only_plan_compares_vendors_on_the_same_demand(tmp_path: Path) -> None:
    """Without jobs there are no deadlines: the one-vendor comparison is on the demand."""
    sc = scenario(offers=[H100, MI300X])
    del sc["jobs"]
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(sc))
    out = runner.invoke(app, ["plan", str(path), "--no-sensitivity"])
    assert out.exit_code == 0, out.output
    text = " ".join(out.stdout.split())  # the tables wrap at the terminal's width
    assert "deadlines" not in text
    assert re.search(r"single-vendor plan \(\w+, \$[\d.,]+\w?\) serving the same demand", text)
    assert "single-vendor plans (same serving demand, no share caps)" in text
