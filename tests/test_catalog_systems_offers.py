"""The shipped systems and offers: references resolve, every price is dated and sane.

These read the catalog's own data files (no network). Each check says what a broken file
would do to a user: a chip without a reference system breaks ``--system <chip>``, an offer
without a dated source makes a cost figure unattributable.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from chipmix.catalog.catalog import DATA_DIR, Catalog
from chipmix.catalog.figure import Figure
from chipmix.catalog.offer import Offer
from chipmix.errors import UnknownNameError

# The chip ids DESIGN.md promises (its "Contracts" section); a contract, so spelled out here.
DESIGN_CHIP_IDS = [
    *("a100-40gb", "a100-80gb", "h100-sxm", "h100-pcie", "h800", "h200"),
    *("b200", "gb200", "b300", "gb300"),
    *("trn1", "trn2", "trn3", "inf2"),
    *("tpu-v4", "tpu-v5e", "tpu-v5p", "tpu-v6e", "tpu-v7"),
    *("mi250x", "mi300x", "mi325x", "mi350x", "mi355x"),
    *("gaudi2", "gaudi3"),
]

PRICE_CUT_DAY = "2025-06-01"  # AWS NVIDIA on-demand price cut, effective date


def _shipped() -> Catalog:
    catalog = Catalog()
    catalog.read_folder(DATA_DIR)
    return catalog


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return _shipped()


SHIPPED = _shipped()
ALL_OFFERS = sorted(SHIPPED.offers)
ALL_SYSTEMS = sorted(SHIPPED.systems)


def _date(text: str) -> dt.date:
    parts = [int(p) for p in text.split("-")] + [1, 1]
    return dt.date(parts[0], parts[1], parts[2])


def _figures(system_id: str) -> list[tuple[str, Figure]]:
    system = SHIPPED.systems[system_id]
    return [
        (name, value)
        for name in type(system).model_fields
        if isinstance(value := getattr(system, name), Figure)
    ]


# -- systems ------------------------------------------------------------------------------


@pytest.mark.parametrize("chip_id", DESIGN_CHIP_IDS)
def test_each_design_chip_has_exactly_one_reference_system(catalog: Catalog, chip_id: str) -> None:
    """``--system <chip id>`` means the chip's reference system, so there must be one."""
    refs = [s.id for s in catalog.systems.values() if s.chip == chip_id and s.reference]
    assert len(refs) == 1, f"{chip_id}: reference systems {refs}"
    assert catalog.systems[refs[0]].kind == "reference"


def test_reference_flag_and_kind_agree(catalog: Catalog) -> None:
    """A system of kind ``reference`` that is not flagged would never be picked (and vice versa)."""
    for system in catalog.systems.values():
        assert system.reference == (system.kind == "reference"), system.id


def test_every_system_chip_and_offer_system_exists(catalog: Catalog) -> None:
    catalog.check_references()  # raises UnknownNameError on a dangling id


def test_chip_id_resolves_to_its_reference_system(catalog: Catalog) -> None:
    resolved = catalog.system("h100-sxm")
    assert resolved.id == "hgx-h100"
    assert resolved.system.reference
    assert resolved.scaleup_domain_chips == 8
    assert resolved.scaleup_bytes_per_s == pytest.approx(450e9)  # NVLink4 per direction
    assert resolved.scaleout_bytes_per_s == pytest.approx(400e9 / 8)  # 400 Gbit/s per GPU


@pytest.mark.parametrize("chip_id", DESIGN_CHIP_IDS)
def test_every_chip_id_resolves(catalog: Catalog, chip_id: str) -> None:
    resolved = catalog.system(chip_id)
    assert resolved.chip.id == chip_id
    assert resolved.scaleup_domain_chips >= 1
    assert resolved.scaleup_bytes_per_s > 0


def test_misspelled_system_suggests_the_close_name(catalog: Catalog) -> None:
    with pytest.raises(UnknownNameError, match="Did you mean") as info:
        catalog.system("p5.48xlarg")
    assert "p5.48xlarge" in str(info.value)


@pytest.mark.parametrize("system_id", ALL_SYSTEMS)
def test_system_figures_are_sourced_and_assumptions_explained(system_id: str) -> None:
    for name, figure in _figures(system_id):
        source = SHIPPED.source_of(figure)
        assert source.as_of, f"{system_id}.{name}: source {figure.source!r} has no date"
        if figure.estimated:
            assert figure.note, f"{system_id}.{name} is estimated but says not why"


@pytest.mark.parametrize("system_id", ALL_SYSTEMS)
def test_system_topology_is_consistent(system_id: str) -> None:
    """A scale-up domain larger than the job limit, or a node larger than nothing, is a typo."""
    system = SHIPPED.systems[system_id]
    resolved = SHIPPED.resolve(system)
    if system.max_chips is not None:
        assert resolved.scaleup_domain_chips <= system.max_chips
        assert system.chips_per_node <= system.max_chips
    # per-chip, per-direction scale-up between 100 GB/s and 3 TB/s; scale-out under 3.2 Tbit/s
    # (the announced MI400 Helios rack states 2.4 Tbit/s per GPU)
    assert 100e9 <= resolved.scaleup_bytes_per_s <= 3e12, system_id
    assert resolved.scaleout_bytes_per_s * 8 <= 3.2e12, system_id


# -- offers -------------------------------------------------------------------------------


@pytest.mark.parametrize("offer_id", ALL_OFFERS)
def test_offer_has_a_price_and_a_dated_source(offer_id: str) -> None:
    offer = SHIPPED.offers[offer_id]
    rentable = [offer.usd_per_unit_hour.get(t) for t in ("on-demand", "spot")]
    assert any(p is not None and p > 0 for p in rentable), f"{offer_id}: no on-demand/spot price"
    assert all(p > 0 for p in offer.usd_per_unit_hour.values()), offer_id
    source = SHIPPED.sources[offer.source]
    assert source.as_of, f"{offer_id}: source {offer.source!r} undated"
    assert source.title, f"{offer_id}: source {offer.source!r} untitled"
    if offer.valid_to is not None:
        assert _date(offer.valid_from) <= _date(offer.valid_to), offer_id


@pytest.mark.parametrize("offer_id", ALL_OFFERS)
def test_per_chip_hour_prices_are_sane(offer_id: str) -> None:
    """0.1-30 $ per chip-hour catches a price per GPU typed as per instance and vice versa."""
    offer = SHIPPED.offers[offer_id]
    for tier in offer.usd_per_unit_hour:
        price = offer.usd_per_chip_hour(tier)
        assert price is not None
        assert 0.1 <= price <= 30, f"{offer_id} {tier}: {price:.3f} $/chip-h"


@pytest.mark.parametrize("offer_id", ALL_OFFERS)
def test_offer_unit_fits_the_system(offer_id: str) -> None:
    """A unit is a whole instance or whole chips of it (TPUs are priced per chip)."""
    offer = SHIPPED.offers[offer_id]
    system = SHIPPED.systems[offer.system]
    assert system.chips_per_node % offer.chips_per_unit == 0, (
        f"{offer_id}: {offer.chips_per_unit} chips per unit vs {system.chips_per_node} per node"
    )


@pytest.mark.parametrize("offer_id", ALL_OFFERS)
def test_offer_committed_tiers_are_cheaper_than_on_demand(offer_id: str) -> None:
    prices = SHIPPED.offers[offer_id].usd_per_unit_hour
    if "on-demand" not in prices:
        pytest.skip("no on-demand price to compare with")
    for tier in ("spot", "committed-1y", "committed-3y"):
        if tier in prices:
            assert prices[tier] < prices["on-demand"], f"{offer_id}: {tier} >= on-demand"


def test_aws_p5_keeps_both_price_vintages(catalog: Catalog) -> None:
    """Claims made before June 2025 used the old GPU prices; both must stay in the catalog."""
    p5 = catalog.offers_for("p5.48xlarge", current_only=False)
    old = [o for o in p5 if o.valid_to == "2025-05-31"]
    new = [o for o in p5 if o.valid_from == PRICE_CUT_DAY and o.valid_to is None]
    assert old, [o.id for o in p5]
    assert new, [o.id for o in p5]
    old_price = old[0].usd_per_chip_hour("on-demand")
    new_price = new[0].usd_per_chip_hour("on-demand")
    assert old_price is not None
    assert new_price is not None
    assert new_price < old_price
    assert [o.id for o in catalog.offers_for("p5.48xlarge")] == [new[0].id]


@pytest.mark.parametrize(
    "system_id", ["p4d.24xlarge", "p4de.24xlarge", "p5.48xlarge", "p5en.48xlarge"]
)
def test_aws_cut_instances_have_one_current_and_one_ended_offer(
    catalog: Catalog, system_id: str
) -> None:
    # Capacity Blocks for ML are priced apart (their own dated offers), not a list vintage.
    offers = [
        o for o in catalog.offers_for(system_id, current_only=False) if "capacity-block" not in o.id
    ]
    ended = [o for o in offers if not o.current]
    current = [o for o in offers if o.current]
    assert len(ended) == 1, [o.id for o in offers]
    assert len(current) == 1, [o.id for o in offers]
    assert _date(ended[0].valid_to or "") < _date(current[0].valid_from)


def test_best_price_picks_the_current_cheapest(catalog: Catalog) -> None:
    best = catalog.best_price("p5.48xlarge", "on-demand")
    assert best is not None
    offer, price = best
    assert offer.current
    assert price == pytest.approx(55.04 / 8)


def test_tpu_offers_are_per_chip(catalog: Catalog) -> None:
    tpu_offers = [
        o for o in catalog.offers.values() if catalog.systems[o.system].chip.startswith("tpu-")
    ]
    assert tpu_offers
    assert all(o.chips_per_unit == 1 for o in tpu_offers)


# -- overlays -----------------------------------------------------------------------------


def test_overlay_folder_adds_and_replaces_offers(tmp_path: Path) -> None:
    replaced_id = "aws-p5.48xlarge-us-east-1-2025-06"
    overlay = {
        "sources": {
            "my-quote": {"title": "Our negotiated AWS quote", "as_of": "2026-01-15"},
        },
        "offers": [
            {
                "id": replaced_id,
                "system": "p5.48xlarge",
                "cloud": "aws",
                "region": "us-east-1",
                "chips_per_unit": 8,
                "usd_per_unit_hour": {"on-demand": 40.0},
                "valid_from": "2026-01",
                "source": "my-quote",
            },
            {
                "id": "my-trn2-private",
                "system": "trn2.48xlarge",
                "cloud": "aws",
                "region": "us-east-2",
                "chips_per_unit": 16,
                "usd_per_unit_hour": {"committed-1y": 30.0, "on-demand": 60.0},
                "valid_from": "2026-01",
                "source": "my-quote",
            },
        ],
    }
    (tmp_path / "offers").mkdir()
    (tmp_path / "offers" / "x.yaml").write_text(yaml.safe_dump(overlay), encoding="utf-8")

    catalog = _shipped()
    shipped_count = len(catalog.offers)
    catalog.read_folder(tmp_path)
    catalog.check_references()

    assert len(catalog.offers) == shipped_count + 1
    assert isinstance(catalog.offers["my-trn2-private"], Offer)
    assert catalog.offers[replaced_id].usd_per_unit_hour == {"on-demand": 40.0}
    assert catalog.sources[catalog.offers[replaced_id].source].title == "Our negotiated AWS quote"
    assert catalog.folders[-1] == str(tmp_path)
