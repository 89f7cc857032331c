"""Shipped chip files and calibration: coverage, provenance, sanity of units, overlays, errors."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from chipmix.catalog.catalog import DATA_DIR, Catalog
from chipmix.catalog.chip import Chip
from chipmix.catalog.figure import Figure, Source
from chipmix.errors import FileFormatError

# The chip ids DESIGN.md promises ("Contracts other rooms and users rely on").
DESIGN_CHIP_IDS = [
    "a100-40gb",
    "a100-80gb",
    "h100-sxm",
    "h100-pcie",
    "h800",
    "h200",
    "b200",
    "gb200",
    "b300",
    "gb300",
    "trn1",
    "trn2",
    "trn3",
    "inf2",
    "tpu-v4",
    "tpu-v5e",
    "tpu-v5p",
    "tpu-v6e",
    "tpu-v7",
    "mi250x",
    "mi300x",
    "mi325x",
    "mi350x",
    "mi355x",
    "gaudi2",
    "gaudi3",
]
VENDORS = {"nvidia", "aws", "google", "amd", "intel"}

# Chips whose matrix units have no FP8 path: the key must be absent, not zero.
NO_FP8 = {"a100-40gb", "a100-80gb", "mi250x", "tpu-v4", "tpu-v5e"}


def _shipped() -> Catalog:
    """The shipped data folder alone (load_catalog also checks systems/offers, not ours)."""
    catalog = Catalog()
    catalog.read_folder(DATA_DIR)
    return catalog


SHIPPED = _shipped()


def _figures(chip: Chip) -> list[tuple[str, Figure]]:
    """(field path, figure) of every figure a chip carries."""
    found: list[tuple[str, Figure]] = [
        (f"peak_tflops_dense.{p}", f) for p, f in chip.peak_tflops_dense.items()
    ]
    for name in type(chip).model_fields:
        value = getattr(chip, name)
        if isinstance(value, Figure):
            found.append((name, value))
    return found


# -- coverage ------------------------------------------------------------------------------
@pytest.mark.parametrize("chip_id", DESIGN_CHIP_IDS)
def test_design_chip_is_shipped(chip_id: str) -> None:
    chip = SHIPPED.chip(chip_id)
    assert chip.id == chip_id
    assert chip.vendor in VENDORS


# Announced parts (issue 15): in the catalog, marked `announced`, left out of answers that do
# not name them; DESIGN.md's contract list is of parts one can rent or buy.
ANNOUNCED_CHIP_IDS = ["rubin", "mi400", "trn4"]


def test_no_chip_beyond_design_list() -> None:
    # A new chip is welcome, but then DESIGN.md's list must grow with it.
    available = {c.id for c in SHIPPED.chips.values() if c.status == "available"}
    assert available == set(DESIGN_CHIP_IDS)


@pytest.mark.parametrize("chip_id", ANNOUNCED_CHIP_IDS)
def test_announced_parts_are_marked_announced(chip_id: str) -> None:
    chip = SHIPPED.chip(chip_id)
    assert chip.status == "announced"
    assert "announced" in chip.flags
    assert SHIPPED.reference_system(chip_id).reference


def test_chip_files_are_one_per_family() -> None:
    files = sorted(p.name for p in (DATA_DIR / "chips").glob("*.yaml"))
    assert len(files) >= 7, files
    for path in (DATA_DIR / "chips").glob("*.yaml"):
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        vendors = {entry["vendor"] for entry in raw["chips"]}
        assert len(vendors) == 1, f"{path.name} mixes vendors {sorted(vendors)}"


# -- provenance ----------------------------------------------------------------------------
@pytest.mark.parametrize("chip_id", DESIGN_CHIP_IDS)
def test_every_figure_has_a_dated_source(chip_id: str) -> None:
    chip = SHIPPED.chip(chip_id)
    for where, figure in _figures(chip):
        source = SHIPPED.source_of(figure)
        assert isinstance(source, Source), f"{chip_id}.{where}"
        assert source.as_of, f"{chip_id}.{where}: source {figure.source!r} has no date"
        assert source.title, f"{chip_id}.{where}: source {figure.source!r} has no title"


@pytest.mark.parametrize("chip_id", DESIGN_CHIP_IDS)
def test_estimated_figures_say_what_was_assumed(chip_id: str) -> None:
    for where, figure in _figures(SHIPPED.chip(chip_id)):
        if figure.estimated:
            assert "assum" in figure.note.lower(), f"{chip_id}.{where}: {figure.note!r}"


def test_source_keys_are_unique_across_files() -> None:
    # The loader keeps one global sources table, so a key defined twice would be overwritten.
    seen: dict[str, str] = {}
    for path in sorted((DATA_DIR / "chips").glob("*.yaml")):
        for key in yaml.safe_load(path.read_text(encoding="utf-8")).get("sources") or {}:
            assert key not in seen, f"source {key!r} in both {seen.get(key)} and {path.name}"
            seen[key] = path.name


# -- the numbers ---------------------------------------------------------------------------
@pytest.mark.parametrize("chip_id", DESIGN_CHIP_IDS)
def test_bf16_peak_present(chip_id: str) -> None:
    chip = SHIPPED.chip(chip_id)
    assert "bf16" in chip.peak_tflops_dense
    assert chip.peak_tflops_dense["bf16"].value > 0
    assert chip.peak_flops("bf16") == chip.peak_tflops_dense["bf16"].value * 1e12


@pytest.mark.parametrize("chip_id", DESIGN_CHIP_IDS)
def test_lower_precision_is_not_slower(chip_id: str) -> None:
    table = SHIPPED.chip(chip_id).peak_tflops_dense
    bf16 = table["bf16"].value
    if "fp8" in table:
        assert table["fp8"].value >= bf16
    for wider in ("fp32", "tf32"):
        if wider in table:
            assert table[wider].value <= bf16, f"{wider} above bf16"


@pytest.mark.parametrize("chip_id", sorted(NO_FP8))
def test_chips_without_fp8_leave_the_key_out(chip_id: str) -> None:
    chip = SHIPPED.chip(chip_id)
    assert "fp8" not in chip.peak_tflops_dense
    # The model runs FP8 jobs at the bf16 rate on such chips.
    assert chip.peak_flops("fp8") == chip.peak_flops("bf16")


@pytest.mark.parametrize("chip_id", DESIGN_CHIP_IDS)
def test_units_are_plausible(chip_id: str) -> None:
    """Catches unit slips: GB vs GiB is fine, but TB/s vs GB/s or bits vs bytes is not."""
    chip = SHIPPED.chip(chip_id)
    assert 8 <= chip.hbm_gib.value <= 512
    assert 0.5 <= chip.hbm_tb_s.value <= 20
    assert 50 <= chip.scaleup_gb_s_per_direction.value <= 2000
    domain = chip.scaleup_domain_chips.value
    assert domain >= 2
    assert domain == int(domain)
    if chip.scaleout_gbit_s_per_chip is not None:
        assert 1 <= chip.scaleout_gbit_s_per_chip.value <= 1600
    if chip.tdp_w is not None:
        assert 100 <= chip.tdp_w.value <= 2000


def test_known_anchor_values() -> None:
    """A few figures other rooms' tests lean on; change them only with a source."""
    h100 = SHIPPED.chip("h100-sxm")
    assert h100.peak_tflops_dense["bf16"].value == 989
    assert h100.scaleup_gb_s_per_direction.value == 450
    h800 = SHIPPED.chip("h800")
    assert h800.peak_tflops_dense["bf16"].value == h100.peak_tflops_dense["bf16"].value
    assert h800.scaleup_gb_s_per_direction.value == 200
    assert SHIPPED.chip("trn2").scaleup_domain_chips.value == 16
    assert SHIPPED.chip("tpu-v5p").scaleup_domain_chips.value == 8960


# -- calibration ---------------------------------------------------------------------------
def test_calibration_names_only_known_chips() -> None:
    assert SHIPPED.calibration.provenance, "calibration.yaml has no provenance"
    unknown = set(SHIPPED.calibration.chips) - set(SHIPPED.chips)
    assert not unknown


@pytest.mark.parametrize("chip_id", sorted(SHIPPED.prior_calibration.chips))
def test_calibration_entries_cite_their_measurement(chip_id: str) -> None:
    """The priors (calibration.yaml) hold only measured, stated or hardware-derived figures
    (a small-GEMM width from the size or split of the matrix units, said so); fitted fields
    live in calibration-fitted.yaml."""
    entry = SHIPPED.prior_calibration.chips[chip_id]
    assert entry.source, chip_id
    measured = {"matmul_efficiency", "memory_efficiency", "memory_reserved_gib", "source"}
    assert entry.model_fields_set <= measured | {"matmul_half_dim"}
    if "matmul_half_dim" in entry.model_fields_set:
        assert "half" in entry.source
        assert "derived" in entry.source or "trn1" in entry.source


# -- overlays ------------------------------------------------------------------------------
def _write_chips(folder: Path, name: str, doc: dict[str, Any]) -> Path:
    (folder / "chips").mkdir(parents=True, exist_ok=True)
    path = folder / "chips" / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def _valid_chip(chip_id: str = "x1") -> dict[str, Any]:
    return {
        "id": chip_id,
        "name": "Test accelerator",
        "vendor": "nvidia",
        "year": 2030,
        "peak_tflops_dense": {"bf16": {"value": 1000, "source": "my-bench"}},
        "hbm_gib": {"value": 100, "source": "my-bench"},
        "hbm_tb_s": {"value": 5, "source": "my-bench"},
        "scaleup_gb_s_per_direction": {"value": 400, "source": "my-bench"},
        "scaleup_domain_chips": {"value": 8, "source": "my-bench"},
        "tdp_w": {"value": 800, "source": "my-bench"},
    }


_MY_SOURCES = {"my-bench": {"title": "Our own measurement", "as_of": "2030-01"}}


def test_overlay_replaces_one_figure_and_adds_a_chip(tmp_path: Path) -> None:
    patched = SHIPPED.chip("h100-sxm").model_dump(exclude_defaults=True)
    patched["hbm_tb_s"] = {"value": 3.0, "source": "my-bench", "note": "measured copy rate"}
    _write_chips(tmp_path, "mine.yaml", {"sources": _MY_SOURCES, "chips": [patched, _valid_chip()]})
    catalog = _shipped()
    catalog.read_folder(tmp_path)

    h100 = catalog.chip("h100-sxm")
    assert h100.hbm_tb_s.value == 3.0
    assert catalog.source_of(h100.hbm_tb_s).title == "Our own measurement"
    # Everything else about the chip is untouched.
    assert h100.peak_tflops_dense == SHIPPED.chip("h100-sxm").peak_tflops_dense
    assert catalog.chip("x1").peak_flops("bf16") == 1000e12
    assert set(catalog.chips) == set(SHIPPED.chips) | {"x1"}
    assert catalog.folders == [str(DATA_DIR), str(tmp_path)]


def test_overlay_calibration_merges_per_chip(tmp_path: Path) -> None:
    (tmp_path / "calibration.yaml").write_text(
        yaml.safe_dump({"chips": {"h100-sxm": {"matmul_efficiency": 0.5, "source": "fit"}}}),
        encoding="utf-8",
    )
    catalog = _shipped()
    catalog.read_folder(tmp_path)
    assert catalog.calibration.for_chip("h100-sxm").matmul_efficiency == 0.5
    shipped_a100 = SHIPPED.calibration.for_chip("a100-80gb")
    assert catalog.calibration.for_chip("a100-80gb") == shipped_a100


# -- malformed files -----------------------------------------------------------------------
def _mutate_unknown_key(doc: dict[str, Any]) -> None:
    doc["chips"][0]["hbm_gb"] = {"value": 80, "source": "my-bench"}


def _mutate_missing_field(doc: dict[str, Any]) -> None:
    del doc["chips"][0]["hbm_tb_s"]


def _mutate_unknown_source(doc: dict[str, Any]) -> None:
    doc["chips"][0]["hbm_gib"]["source"] = "nowhere-datasheet"


def _mutate_unknown_precision(doc: dict[str, Any]) -> None:
    doc["chips"][0]["peak_tflops_dense"]["fp6"] = {"value": 9000, "source": "my-bench"}


def _mutate_unknown_top_level(doc: dict[str, Any]) -> None:
    doc["systems"] = []


def _mutate_bad_source_date(doc: dict[str, Any]) -> None:
    doc["sources"]["my-bench"]["as_of"] = "last spring"


def _mutate_negative_value(doc: dict[str, Any]) -> None:
    doc["chips"][0]["tdp_w"]["value"] = -5


@pytest.mark.parametrize(
    ("mutate", "key"),
    [
        pytest.param(_mutate_unknown_key, "hbm_gb", id="unknown-field-is-rejected"),
        pytest.param(_mutate_missing_field, "hbm_tb_s", id="missing-required-field"),
        pytest.param(_mutate_unknown_source, "nowhere-datasheet", id="source-not-in-table"),
        pytest.param(_mutate_unknown_precision, "fp6", id="precision-not-modelled"),
        pytest.param(_mutate_unknown_top_level, "systems", id="top-level-key-of-other-file"),
        pytest.param(_mutate_bad_source_date, "as_of", id="source-date-not-iso"),
        pytest.param(_mutate_negative_value, "tdp_w", id="negative-figure"),
    ],
)
def test_malformed_chip_file_names_file_and_key(
    tmp_path: Path, mutate: Callable[[dict[str, Any]], None], key: str
) -> None:
    doc = {"sources": copy.deepcopy(_MY_SOURCES), "chips": [_valid_chip()]}
    mutate(doc)
    path = _write_chips(tmp_path, "broken.yaml", doc)
    with pytest.raises(FileFormatError) as info:
        Catalog().read_folder(tmp_path)
    message = str(info.value)
    assert str(path) in message
    assert key in message


def test_the_valid_baseline_of_the_malformed_cases_loads(tmp_path: Path) -> None:
    # Guards the cases above: each must fail because of its mutation, not the baseline.
    _write_chips(tmp_path, "fine.yaml", {"sources": _MY_SOURCES, "chips": [_valid_chip()]})
    catalog = Catalog()
    catalog.read_folder(tmp_path)
    assert catalog.chip("x1").tdp_w is not None


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "chips").mkdir()
    path = tmp_path / "chips" / "bad.yaml"
    path.write_text("chips:\n  - id: x1\n    name: [unclosed\n", encoding="utf-8")
    with pytest.raises(FileFormatError, match="line 3") as info:
        Catalog().read_folder(tmp_path)
    assert str(path) in str(info.value)
