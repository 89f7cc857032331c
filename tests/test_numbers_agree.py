"""Issue 15: numbers that agree with each other (catalog truth, the 2026 catalog, pricing).

Each test is named after the case it reproduces.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import chipmix
from chipmix.catalog.catalog import DATA_DIR, load_catalog
from chipmix.catalog.consistency import TOLERANCE
from chipmix.catalog.reliability import load_reliability
from chipmix.cli import app, main
from chipmix.errors import FileFormatError, InfeasibleError
from chipmix.perf.step import model_flops_per_token
from chipmix.sim.scenario import parse_scenario as parse_continuity

runner = CliRunner()
CAT = load_catalog()

TRAINIUM_SYSTEMS = [s.id for s in CAT.systems.values() if CAT.chips[s.chip].vendor == "aws"]


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(a, b)


# -- 1. one convention per figure --------------------------------------------------------------
def test_the_trn2_link_figures_agree() -> None:
    chip = CAT.chip("trn2")
    instance = CAT.system("trn2.48xlarge")  # what `--system trn2` computes on
    assert CAT.system("trn2").id == "trn2.48xlarge"
    assert instance.scaleup_bytes_per_s == pytest.approx(
        chip.scaleup_gb_s_per_direction.value * 1e9
    )
    assert chip.scaleup_gb_s_per_direction.value == 512  # 1,024 GB/s per device / 2


@pytest.mark.parametrize("system_id", TRAINIUM_SYSTEMS)
def test_trainium_and_inferentia_links_agree_with_the_chip_or_say_why(system_id: str) -> None:
    system = CAT.systems[system_id]
    chip = CAT.chip(system.chip)
    mine = system.scaleup_gb_s_per_direction
    if mine is None:
        return
    agree = _rel(mine.value, chip.scaleup_gb_s_per_direction.value) <= TOLERANCE
    assert agree or system.differs_from_chip.get("scaleup_gb_s_per_direction"), system_id


def test_power_per_chip_is_the_systems_it_share_on_every_reference_system() -> None:
    for system in CAT.systems.values():
        if not system.reference:
            continue
        assert system.power_w_per_chip is not None, system.id
        chip = CAT.chip(system.chip)
        if chip.tdp_w is not None:  # the share includes the accelerator and more
            assert system.power_w_per_chip.value > chip.tdp_w.value, system.id


def test_a_cloud_instance_takes_its_reference_systems_power() -> None:
    assert CAT.system("p5.48xlarge").power_w_per_chip == CAT.system("hgx-h100").power_w_per_chip
    assert CAT.system("hgx-h200").power_w_per_chip == CAT.system("hgx-h100").power_w_per_chip


def _energy_per_token(system: str, chips: int = 64) -> float:
    e = chipmix.estimate("llama3-70b", system, chips, seq_len=4096, global_batch=256, tokens=1e11)
    assert e.run is not None
    return e.run.energy_mwh / e.run.tokens


def test_energy_per_token_of_the_same_job_on_h100_and_h200_within_25_percent() -> None:
    h100, h200 = _energy_per_token("h100-sxm"), _energy_per_token("h200")
    assert _rel(h100, h200) <= 0.25, (h100, h200)


TRAINING_REFERENCES = sorted(
    s.id
    for s in CAT.systems.values()
    if s.reference
    and CAT.chips[s.chip].status == "available"
    and CAT.chips[s.chip].use == "training"
)


@pytest.mark.parametrize("system_id", TRAINING_REFERENCES)
def test_energy_per_model_flop_is_plausible_on_every_vendor(system_id: str) -> None:
    # Joules per model FLOP actually done: IT power share / achieved FLOP/s. An H100 at 45 %
    # MFU is ~3 pJ/FLOP; a 2020-era chip up to ~10; nothing real is below 0.3 or above 20.
    system = CAT.system(system_id)
    chips = system.system.chips_per_node * 8
    e = chipmix.estimate("llama3-8b", system_id, chips, seq_len=4096, global_batch=256, tokens=1e10)
    assert e.run is not None
    joules = e.run.energy_mwh * 3.6e9
    pj_per_flop = joules / (e.run.tokens * model_flops_per_token(e.job)) * 1e12
    assert 0.3 <= pj_per_flop <= 20, (system_id, pj_per_flop)


def test_pue_is_applied_once_separately() -> None:
    e = chipmix.estimate("llama3-8b", "tpu-v5p", 64, seq_len=4096, global_batch=256, tokens=1e10)
    assert e.run is not None
    pue = CAT.pue_by_provider["gcp"].value
    assert e.run.pue == pue
    assert e.run.facility_energy_mwh == pytest.approx(e.run.energy_mwh * pue)
    d = e.to_dict()
    assert d["facility_energy_mwh"] == pytest.approx(d["energy_mwh"] * pue)


# -- the loader refuses contradicting files (bad input with a user overlay) -------------------
def run_main(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    """`chipmix ARGS` through the console entry point: (exit status, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["chipmix", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), captured.out, captured.err


def _overlay(tmp: Path, kind: str, doc: dict[str, Any]) -> Path:
    (tmp / kind).mkdir(parents=True, exist_ok=True)
    path = tmp / kind / "mine.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def _shipped_entry(kind: str, ident: str) -> dict[str, Any]:
    for path in sorted((DATA_DIR / kind).glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for entry in doc[kind]:
            if entry["id"] == ident:
                return {"sources": doc["sources"], kind: [entry]}
    raise AssertionError(ident)


def test_overlay_system_contradicting_its_chips_link_is_refused_naming_both_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = _shipped_entry("systems", "trn2.48xlarge")
    doc["systems"][0]["scaleup_gb_s_per_direction"]["value"] = 1024  # the old, doubled figure
    mine = _overlay(tmp_path, "systems", doc)
    with pytest.raises(FileFormatError) as info:
        load_catalog(tmp_path)
    message = str(info.value)
    assert str(mine) in message
    assert "aws-trainium.yaml" in message
    assert "1,024" in message
    assert "512" in message
    # through the CLI: exit 2, one line, no traceback
    code, _, err = run_main(
        ["estimate", "--model", "llama3-8b", "--system", "trn2", "--chips", "16",
         "--catalog", str(tmp_path)],
        monkeypatch, capsys,
    )  # fmt: skip
    assert code == 2
    assert "Traceback" not in err
    assert "contradict" in err


def test_overlay_saying_why_its_link_differs_is_accepted(tmp_path: Path) -> None:
    doc = _shipped_entry("systems", "trn2.48xlarge")
    entry = doc["systems"][0]
    entry["scaleup_gb_s_per_direction"]["value"] = 1024
    entry["differs_from_chip"] = {"scaleup_gb_s_per_direction": "my lab measured it per direction"}
    _overlay(tmp_path, "systems", doc)
    assert load_catalog(tmp_path).system("trn2").scaleup_bytes_per_s == 1024e9


def test_overlay_power_share_below_the_chips_board_power_is_refused(tmp_path: Path) -> None:
    doc = _shipped_entry("systems", "hgx-h100")
    doc["systems"][0]["power_w_per_chip"]["value"] = 500  # below the H100's 700 W
    _overlay(tmp_path, "systems", doc)
    with pytest.raises(FileFormatError, match=r"power_w_per_chip = 500 W .* tdp_w = 700 W"):
        load_catalog(tmp_path)


def test_overlay_offer_with_spot_above_on_demand_is_refused(tmp_path: Path) -> None:
    doc = _shipped_entry("offers", "aws-p5.48xlarge-us-east-1-2025-06")
    doc["offers"][0]["usd_per_unit_hour"]["spot"] = 99.0
    mine = _overlay(tmp_path, "offers", doc)
    with pytest.raises(
        FileFormatError, match=r"spot = 99 \$/h is above its on-demand = 55\.04"
    ) as e:
        load_catalog(tmp_path)
    assert str(mine) in str(e.value)


def test_overlay_estimated_offer_without_how_is_refused(tmp_path: Path) -> None:
    doc = _shipped_entry("offers", "gcp-tpu-v7-us-central1-2026-11")
    del doc["offers"][0]["estimated"]["committed-3y"]
    _overlay(tmp_path, "offers", doc)
    with pytest.raises(FileFormatError, match=r"missing: \['committed-3y'\]"):
        load_catalog(tmp_path)


# -- 2. price and speed from the same system ---------------------------------------------------
def test_estimate_h100_sxm_spot_prices_an_offer_of_the_system_it_computed_on() -> None:
    result = runner.invoke(app, ["estimate", "--model", "llama3-70b", "--system", "h100-sxm",
                                 "--chips", "1024", "--tokens", "15e12", "--price-tier", "spot",
                                 "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    offer = CAT.offers[out["offer_by_tier"]["spot"]]
    computed = CAT.system(out["system"])
    assert CAT.same_machine(computed, CAT.systems[offer.system])
    # a3-highgpu-8g (100 Gb/s per GPU, 4x slower scale-out) never prices an HGX H100 run
    assert CAT.systems[offer.system].id != "a3-highgpu-8g"
    assert out["offer_date_by_tier"]["spot"] == offer.valid_from


def test_every_priced_run_is_priced_by_a_machine_with_its_figures() -> None:
    for system in CAT.systems.values():
        resolved = CAT.resolve(system)
        for offer in CAT.pricing_offers(resolved):
            assert CAT.same_machine(resolved, CAT.systems[offer.system]), (system.id, offer.id)


# -- 6. the 2026 catalog -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def compare_405b() -> dict[str, Any]:
    return chipmix.compare("llama3.1-405b", tokens=15e12).to_dict()


def test_compare_llama31_405b_prices_five_vendors_with_each_offers_date_and_note(
    compare_405b: dict[str, Any],
) -> None:
    priced = [r for r in compare_405b["rows"] if r.get("cost_usd")]
    assert len({r["vendor"] for r in priced}) >= 5
    chips = {r["chip"] for r in priced}
    assert {"gb200", "tpu-v7", "trn3"} <= chips
    for r in priced:
        tier = compare_405b["price_tier"]
        assert r["offer_date_by_tier"][tier]
        assert tier in r["price_flag_by_tier"]  # "" for a listed price
    flags = {r["chip"]: r["price_flag_by_tier"]["on-demand"] for r in priced}
    assert flags["gb200"] == flags["tpu-v7"] == flags["trn3"] == "estimated"
    assert flags["trn2"] == "unverified"


def test_inference_and_announced_chips_are_left_out_of_training_answers_unless_named(
    compare_405b: dict[str, Any],
) -> None:
    shown = {r["chip"] for r in compare_405b["rows"]}
    assert not shown & {"inf2", "rubin", "mi400", "trn4"}
    named = chipmix.compare("llama3-8b", tokens=1e10, chips=64, systems="inf2,rubin")
    assert {r.system.chip.id for r in named.rows} == {"inf2", "rubin"}
    assert {f for r in named.rows for f in r.system.chip.flags} == {"inference-only", "announced"}


def test_committed_tiers_of_aws_and_azure_say_they_are_estimated() -> None:
    for cloud in ("aws", "azure"):
        committed = [
            o
            for o in CAT.offers.values()
            if o.cloud == cloud and "committed-1y" in o.usd_per_unit_hour
        ]
        assert committed, cloud
        for o in committed:
            assert o.flag("committed-1y") == "estimated"
            assert o.how("committed-1y")


def test_compare_table_shows_the_offer_date_and_note() -> None:
    result = runner.invoke(app, ["compare", "--model", "llama3-8b", "--tokens", "1e10",
                                 "--chips", "64", "--systems", "gb200,trn2,h100-sxm"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "2026-11 estimated" in result.stdout
    assert "2024-12 unverified" in result.stdout


# -- 3. sizes that exist ----------------------------------------------------------------------
LIMITED = sorted(s.id for s in CAT.systems.values() if s.max_chips is not None)


def _estimate_or_reason(system_id: str, chips: int) -> str | None:
    try:
        chipmix.estimate("llama3-8b", system_id, chips, seq_len=4096, global_batch=1024)
    except InfeasibleError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("system_id", LIMITED)
def test_estimate_and_compare_agree_on_every_systems_limit(system_id: str) -> None:
    system = CAT.system(system_id)
    spec = system.system
    assert spec.max_chips is not None
    for chips in (spec.max_chips + spec.chips_per_node, 2 * spec.max_chips):
        problem = CAT.job_size_problem(system, chips)
        row = chipmix.compare(
            "llama3-8b", tokens=1e10, chips=chips, systems=system_id, seq_len=4096,
            global_batch=1024,
        ).rows[0]  # fmt: skip
        if problem is None:
            assert row.feasible, (chips, row.reason)
            assert _estimate_or_reason(system_id, chips) is None
        else:
            assert row.reason == problem
            assert _estimate_or_reason(system_id, chips) == problem


def test_tpu_slices_join_through_dcn_as_multislice() -> None:
    v6e = CAT.system("tpu-v6e")
    e = chipmix.estimate("llama3.1-405b", "tpu-v6e", 4096, seq_len=8192, global_batch=2048)
    assert e.chips == 4096  # 16 slices of 256 ...
    assert v6e.scaleup_domain_chips == 256  # ... each its own ICI domain ...
    assert v6e.scaleout_bytes_per_s == pytest.approx(100e9 / 8)  # ... joined over DCN
    problem = CAT.job_size_problem(v6e, 4000)
    assert problem is not None
    assert "not a multiple of 256" in problem
    assert "try 3,840 or 4,096" in problem
    # a system without Multislice stops at its slice
    assert CAT.job_size_problem(CAT.system("tpu-v5p"), 8192) is not None


def test_budget_10e9_4y_405b_no_run_longer_than_four_years_runs_each_offer_holds() -> None:
    years = 4
    r = chipmix.budget(10e9, years, model="llama3.1-405b", tokens=15e12)
    assert r.lines
    for line in r.lines:
        assert line.run_days is not None
        assert line.run_days <= years * 365.25, line
        system = CAT.resolve(CAT.systems[line.system])
        assert line.run_chips is not None
        assert CAT.job_size_problem(system, line.run_chips) is None, line
        assert line.run_chips % system.system.chips_per_node == 0
    for offer, why in r.skipped.items():
        if "horizon" in why:
            assert "longer than the 4-year horizon" in why, offer


# -- 5. continuity priced ---------------------------------------------------------------------
def test_a_warm_standby_costs_its_price() -> None:
    # 1,024 H100 on the primary; a warm MI300X standby of 1,024 chips never used (no outage):
    # the run costs the standby's tier price for the whole time held on top of the primary.
    scen = {"migration": {"system": "mi300x", "warm": True}}
    alone = chipmix.simulate("llama3-8b", "h100-sxm", 1024, tokens=1e11, replicas=20, seed=0)
    held = chipmix.simulate(
        "llama3-8b", "h100-sxm", 1024, tokens=1e11, replicas=20, seed=0,
        scenario=parse_continuity(scen),
    )  # fmt: skip
    standby = held.outcome.timeline.runs[1]
    assert standby.usd_per_chip_hour is not None
    move = held.outcome.timeline.move
    assert move is not None
    assert move.standby_usd_per_s == pytest.approx(standby.usd_per_s)
    wall_h = held.summary["completion_days_p50"] * 24
    extra = held.summary["cost_usd_p50"] - alone.summary["cost_usd_p50"]
    assert extra == pytest.approx(standby.held_chips * standby.usd_per_chip_hour * wall_h, rel=0.02)
    assert any("warm standby" in note for note in held.assumptions)


def test_moving_trn2_to_mi300x_pays_transfer_resharding_porting_and_egress() -> None:
    outage = {"start_day": 2, "duration_days": 40, "capacity_lost": 1.0}
    cold = {"outages": [outage], "migration": {"system": "mi300x", "warm": False,
                                               "lead_time_h": 24}}  # fmt: skip
    r = chipmix.simulate(
        "llama3-70b", "trn2", 1024, tokens=1e12, replicas=20, seed=0,
        scenario=parse_continuity(cold),
    )  # fmt: skip
    tl = r.outcome.timeline
    move = tl.move
    assert move is not None
    rel = load_reliability()
    size_gb = r.primary.checkpoint.size_bytes / 1e9
    assert move.transfer_s == pytest.approx(size_gb / rel.storage.transfer_gb_s.value)
    assert move.reshard_s == pytest.approx(size_gb / rel.migration.reshard_gb_s.value)
    assert move.porting_s == pytest.approx(rel.migration.porting("aws", "amd").value * 86400)
    assert move.lead_s == move.porting_s  # porting (14 days) outlasts the capacity's 24 h
    assert tl.runs[0].cloud == "aws"
    assert tl.runs[1].cloud == "azure"
    assert move.egress_usd == pytest.approx(size_gb * rel.migration.egress("aws").value)
    moved = next(p for p in tl.phases if "migrated" in p.label)
    assert moved.start_s == pytest.approx((2 + 14) * 86400)
    assert moved.entry_usd == pytest.approx(move.egress_usd)
    assert moved.entry_down_s > move.transfer_s + move.reshard_s  # + load and warm-up


def test_serving_prices_come_from_the_same_machine_too() -> None:
    from chipmix.serve.prices import chip_hour_prices

    h100 = CAT.system("h100-sxm")
    prices = chip_hour_prices(CAT, h100)
    spot = min(
        p for o in CAT.pricing_offers(h100) if (p := o.usd_per_chip_hour("spot")) is not None
    )
    assert prices["spot"] == spot
    a3 = next(o for o in CAT.offers.values() if o.system == "a3-highgpu-8g" and o.current)
    assert a3 not in CAT.pricing_offers(h100)


def test_budget_and_plan_tables_flag_estimated_prices() -> None:
    r = chipmix.budget(10e9, 4, model="llama3.1-405b", tokens=15e12)
    assert any(line.price_flag == "estimated" for line in r.lines)
    for line in r.lines:
        offer = CAT.offers[line.offer]
        assert line.price_flag == offer.flag(line.tier)
        assert line.offer_date == offer.valid_from
