"""Reliability data: interruption counts by component class, restart costs, storage speeds.

The shipped ``data/reliability.yaml`` is read first; a ``reliability.yaml`` in any overlay
folder of the catalog (``--catalog``, ``$CHIPMIX_CATALOG``) is merged over it key by key,
so an overlay may change one figure and keep the rest. Every number is a `Figure` with a
source; this module only reads and checks them (``chipmix.sim.failures`` turns the counts
into per-chip rates).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chipmix.catalog.catalog import DATA_DIR, Catalog
from chipmix.catalog.figure import Figure, Source
from chipmix.catalog.offer import PriceTier
from chipmix.common.files import NoBoolNumbers, format_validation_error, read_yaml
from chipmix.errors import FileFormatError

__all__ = [
    "FAILURE_CLASSES",
    "RELIABILITY_FILE",
    "ChipReliability",
    "FailureClass",
    "MigrationFigures",
    "ObservedFleet",
    "Reliability",
    "RestartFigures",
    "ScalingRule",
    "StorageFigures",
    "load_reliability",
]

RELIABILITY_FILE = "reliability.yaml"

FailureClass = Literal["accelerator", "hbm", "host", "network", "software"]
FAILURE_CLASSES: tuple[FailureClass, ...] = ("accelerator", "hbm", "host", "network", "software")
ScalingRule = Literal["tdp_w", "hbm_gib", "none"]
"""How a class's per-chip rate moves from the reference chip to another: with the board
power, with the HBM capacity, or not at all."""


class _Strict(NoBoolNumbers):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class ObservedFleet(_Strict):
    """One published observation of a fleet: interruptions by class over a window."""

    chip: str
    """Catalog id of the chip observed."""
    num_chips: int = Field(gt=0)
    days: float = Field(gt=0)
    source: str
    interruptions: dict[FailureClass, Figure]
    """Unexpected interruptions in the window, by component class."""
    planned_interruptions: Figure
    """Planned interruptions (maintenance) in the window; taken at a checkpoint."""

    @property
    def chip_hours(self) -> float:
        return self.num_chips * self.days * 24.0


class ChipReliability(_Strict):
    """Rates measured or assumed for one chip, replacing the ones derived by scaling."""

    chip: str
    failures_per_million_chip_hours: dict[FailureClass, Figure]
    planned_per_million_chip_hours: Figure | None = None
    note: str = ""


class RestartFigures(_Strict):
    """What an interruption costs besides the lost work and loading the checkpoint."""

    detect_s: Figure
    """Mean time from the failure to the job noticing it."""
    relaunch_s: Figure
    """Relaunch on the same nodes (software failures, planned maintenance)."""
    hot_spare_swap_s: Figure
    """Swap a failed node for a hot spare and relaunch."""
    replace_node_s: Figure
    """Get a replacement node when no hot spare is free, and relaunch."""
    warmup_s: Figure
    """Process start, communicators, compile, data loader: before the first step."""
    repair_h: Figure
    """Until a failed node is back in the spare pool."""
    hot_spare_fraction: Figure
    """Hot spare nodes per job node (rounded up)."""
    spot_reacquire_s: Figure
    """Wait for spot capacity after a reclaim, and relaunch."""


class StorageFigures(_Strict):
    """Checkpoint storage: bandwidth per chip, capped by the storage system's aggregate."""

    write_gb_s_per_chip: Figure
    read_gb_s_per_chip: Figure
    aggregate_write_gb_s: Figure
    aggregate_read_gb_s: Figure
    snapshot_gb_s_per_chip: Figure
    """Device-to-host copy that blocks training in an asynchronous checkpoint."""
    transfer_gb_s: Figure
    """Between systems, for a migration."""


class MigrationFigures(_Strict):
    """Moving a run to another system: resharding, egress price, porting lead time."""

    reshard_gb_s: Figure
    """Rewriting the checkpoint for the target's layout, GB/s aggregate."""
    egress_usd_per_gb: dict[str, Figure]
    """Price of data leaving a cloud, per cloud of the source, and ``default``."""
    porting_days: dict[str, Figure]
    """Lead time to port the job to the target vendor's stack, per target vendor; ``same``
    for a target of the same vendor; ``default`` for the rest."""

    def egress(self, cloud: str) -> Figure:
        return self.egress_usd_per_gb.get(cloud) or self.egress_usd_per_gb["default"]

    def porting(self, source_vendor: str, target_vendor: str) -> Figure:
        if source_vendor == target_vendor:
            return self.porting_days["same"]
        return self.porting_days.get(target_vendor) or self.porting_days["default"]


class Reliability(_Strict):
    """The whole reliability file."""

    reference: ObservedFleet
    scaling: dict[FailureClass, ScalingRule]
    chips: list[ChipReliability] = Field(default_factory=list)
    reclaims_per_node_month: dict[PriceTier, Figure]
    spot_warning_s: dict[str, Figure]
    """Per cloud (``aws``, ``gcp``, …), and ``default``."""
    restart: RestartFigures
    storage: StorageFigures
    migration: MigrationFigures
    sources: dict[str, Source] = Field(default_factory=dict)

    def chip_override(self, chip_id: str) -> ChipReliability | None:
        for entry in self.chips:
            if entry.chip == chip_id:
                return entry
        return None

    def spot_warning(self, cloud: str) -> float:
        figure = self.spot_warning_s.get(cloud) or self.spot_warning_s.get("default")
        return 0.0 if figure is None else figure.value


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``, recursing into mappings (lists are replaced)."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _figures(value: Any, where: str) -> list[tuple[str, Figure]]:
    if isinstance(value, Figure):
        return [(where, value)]
    if isinstance(value, BaseModel):
        return [
            hit
            for name in type(value).model_fields
            for hit in _figures(getattr(value, name), f"{where}.{name}".lstrip("."))
        ]
    if isinstance(value, dict):
        return [hit for k, v in value.items() for hit in _figures(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [hit for i, v in enumerate(value) for hit in _figures(v, f"{where}[{i}]")]
    return []


@cache
def _load(folders: tuple[str, ...]) -> Reliability:
    raw: dict[str, Any] = {}
    read: list[str] = []
    for folder in folders:
        path = Path(folder) / RELIABILITY_FILE
        if not path.exists():
            continue
        data = read_yaml(path)
        if not isinstance(data, dict):
            raise FileFormatError(f"{path}: expected a mapping of reliability keys")
        raw = _merge(raw, data)
        read.append(str(path))
    where = " + ".join(read)
    try:
        rel = Reliability.model_validate(raw)
    except ValidationError as exc:
        raise FileFormatError(format_validation_error(where, exc)) from None
    for name, figure in _figures(rel, ""):
        if figure.source not in rel.sources:
            raise FileFormatError(
                f"{where}: {name}: source {figure.source!r} is not defined "
                f"(sources: {sorted(rel.sources)})"
            )
    if rel.reference.source not in rel.sources:
        raise FileFormatError(f"{where}: reference.source {rel.reference.source!r} undefined")
    return rel


def load_reliability(catalog: Catalog | None = None) -> Reliability:
    """The shipped reliability figures with those of ``catalog``'s overlay folders on top."""
    folders = tuple(catalog.folders) if catalog is not None else (str(DATA_DIR),)
    if str(DATA_DIR) not in folders:
        folders = (str(DATA_DIR), *folders)
    return _load(folders)
