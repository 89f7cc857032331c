"""The catalog: chips, systems, offers and calibration, read from data files.

The shipped files live in ``chipmix/catalog/data``; a user's folder of files with the same
layout (``chips/*.yaml``, ``systems/*.yaml``, ``offers/*.yaml``, ``calibration.yaml``)
overlays them: an entry with a known id replaces the shipped one, a new id extends the set.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from chipmix.catalog.calibration import Calibration
from chipmix.catalog.chip import Chip
from chipmix.catalog.consistency import check_consistency
from chipmix.catalog.figure import Figure, Source
from chipmix.catalog.offer import Offer, PriceTier
from chipmix.catalog.system import ResolvedSystem, System
from chipmix.common.files import format_validation_error, read_yaml
from chipmix.errors import FileFormatError, InfeasibleError, InputError
from chipmix.names import lookup

__all__ = [
    "CATALOG_ENV",
    "DATA_DIR",
    "FITTED_CALIBRATION",
    "PRIOR_CALIBRATION",
    "Catalog",
    "load_catalog",
]

DATA_DIR = Path(__file__).parent / "data"
PRIOR_CALIBRATION = "calibration.yaml"
"""Per-chip priors from public microbenchmarks, and stated assumptions."""
FITTED_CALIBRATION = "calibration-fitted.yaml"
"""Written by ``chipmix calibrate``; overlays the priors field by field."""
FACILITIES = "facilities.yaml"
"""Power usage effectiveness (facility / IT power) per provider."""
CATALOG_ENV = "CHIPMIX_CATALOG"
"""Environment variable naming a user's overlay folder (same as ``--catalog``)."""

M = TypeVar("M", bound=BaseModel)

# Assumed average wall power per chip where neither the system nor the chip states one.
# Stated as an assumption, flagged `power_is_estimated` wherever it is used.
_ASSUMED_POWER_W = 700.0


def _parse(model: type[M], raw: Any, path: Path, where: str) -> M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise FileFormatError(format_validation_error(f"{path} [{where}]", exc)) from None


@dataclass
class Catalog:
    """Every chip, system and offer chipmix knows, with the sources of their figures."""

    chips: dict[str, Chip] = field(default_factory=dict)
    systems: dict[str, System] = field(default_factory=dict)
    offers: dict[str, Offer] = field(default_factory=dict)
    sources: dict[str, Source] = field(default_factory=dict)
    calibration: Calibration = field(default_factory=Calibration)
    """The calibration in use: priors with the fitted file on top."""
    prior_calibration: Calibration = field(default_factory=Calibration)
    """Microbenchmark priors only (``calibration.yaml``): where ``chipmix calibrate`` starts."""
    folders: list[str] = field(default_factory=list)
    """The folders read, shipped first, overlays after."""
    origin: dict[str, str] = field(default_factory=dict)
    """The file each entry was read from, keyed ``chips:ID``, ``systems:ID``, ``offers:ID``."""
    pue_by_provider: dict[str, Figure] = field(default_factory=dict)
    """PUE per provider (``default`` for the rest), from ``facilities.yaml``."""

    # -- reading -------------------------------------------------------------------------
    def read_folder(self, folder: Path) -> None:
        if not folder.is_dir():
            raise InputError(f"catalog folder {str(folder)!r} does not exist or is not a folder")
        if self.folders and not _holds_catalog_files(folder):
            raise InputError(
                f"catalog folder {str(folder)!r} holds no catalog files (chips/*.yaml, "
                f"systems/*.yaml, offers/*.yaml, {PRIOR_CALIBRATION}, {FITTED_CALIBRATION}, "
                f"{FACILITIES}, reliability.yaml)"
            )
        self.folders.append(str(folder))
        for path in sorted((folder / "chips").glob("*.y*ml")):
            self._read_entries(path, "chips", Chip, self.chips)
        for path in sorted((folder / "systems").glob("*.y*ml")):
            self._read_entries(path, "systems", System, self.systems)
        for path in sorted((folder / "offers").glob("*.y*ml")):
            self._read_entries(path, "offers", Offer, self.offers)
        for name, fitted in ((PRIOR_CALIBRATION, False), (FITTED_CALIBRATION, True)):
            if (folder / name).exists():
                self._merge_calibration(folder / name, fitted=fitted)
        if (folder / FACILITIES).exists():
            self._read_facilities(folder / FACILITIES)

    def _read_facilities(self, path: Path) -> None:
        raw = read_yaml(path)
        if not isinstance(raw, dict) or not isinstance(raw.get("pue"), dict):
            raise FileFormatError(f"{path}: expected a mapping with a 'pue' mapping by provider")
        for name, value in (raw.get("sources") or {}).items():
            self.sources[name] = _parse(Source, value, path, f"sources.{name}")
        for provider, value in raw["pue"].items():
            figure = _parse(Figure, value, path, f"pue.{provider}")
            if figure.source not in self.sources:
                raise FileFormatError(
                    f"{path} [pue.{provider}]: source {figure.source!r} is not defined"
                )
            if figure.value < 1.0:
                raise FileFormatError(
                    f"{path} [pue.{provider}]: a PUE is facility / IT power, at least 1 "
                    f"(got {figure.value:g})"
                )
            self.pue_by_provider[str(provider)] = figure

    def _read_entries(self, path: Path, key: str, model: type[M], into: dict[str, M]) -> None:
        raw = read_yaml(path)
        if not isinstance(raw, dict) or key not in raw:
            raise FileFormatError(f"{path}: expected a mapping with a {key!r} list")
        if not isinstance(raw.get("sources", {}), dict | None):
            raise FileFormatError(f"{path}: 'sources' must be a mapping of key: {{title, as_of}}")
        if not isinstance(raw[key], list | None):
            raise FileFormatError(f"{path}: {key!r} must be a list of entries")
        unknown = set(raw) - {key, "sources"}
        if unknown:
            raise FileFormatError(
                f"{path}: unknown top-level keys {sorted(unknown)}; valid: 'sources', {key!r}"
            )
        local_sources = {
            name: _parse(Source, value, path, f"sources.{name}")
            for name, value in (raw.get("sources") or {}).items()
        }
        for name, defined in local_sources.items():
            known = self.sources.get(name)
            if known is not None and known != defined and not self._overlaying(path):
                raise FileFormatError(
                    f"{path}: source key {name!r} is already defined differently in another "
                    f"catalog file; source keys are shared by the whole catalog, rename it"
                )
        self.sources.update(local_sources)
        for index, entry in enumerate(raw[key] or []):
            ident = entry.get("id", f"#{index}") if isinstance(entry, dict) else f"#{index}"
            item = _parse(model, entry, path, f"{key}[{index}] id={ident}")
            for where, source in _source_keys(item):
                if source not in self.sources:
                    raise FileFormatError(
                        f"{path} [{key} id={ident}] {where}: source {source!r} is not defined "
                        f"(this file's sources: {sorted(local_sources)})"
                    )
            into[item.id] = item  # type: ignore[attr-defined]
            self.origin[f"{key}:{item.id}"] = str(path)  # type: ignore[attr-defined]

    def _overlaying(self, path: Path) -> bool:
        """True while reading a user's overlay, whose keys may replace shipped ones."""
        return len(self.folders) > 1

    def _merge_calibration(self, path: Path, *, fitted: bool) -> None:
        new = _parse(Calibration, read_yaml(path) or {}, path, "calibration")
        self.calibration = self.calibration.overlay(new)
        if not fitted:
            self.prior_calibration = self.prior_calibration.overlay(new)

    # -- checking ------------------------------------------------------------------------
    def check_references(self) -> None:
        """Every system names a known chip, every offer a known system."""
        for system in self.systems.values():
            if system.chip not in self.chips:
                lookup(self.chips, system.chip, f"chip (in system {system.id!r})")
        for offer in self.offers.values():
            if offer.system not in self.systems:
                lookup(self.systems, offer.system, f"system (in offer {offer.id!r})")

    # -- queries -------------------------------------------------------------------------
    def chip(self, chip_id: str) -> Chip:
        return lookup(self.chips, chip_id, "chip")

    def reference_system(self, chip_id: str) -> System:
        self.chip(chip_id)
        for system in self.systems.values():
            if system.chip == chip_id and system.reference:
                return system
        raise InputError(f"chip {chip_id!r} has no reference system in the catalog")

    def system(self, name: str) -> ResolvedSystem:
        """A system by id, or a chip id meaning that chip's reference system."""
        if name in self.systems:
            return self.resolve(self.systems[name])
        if name in self.chips:
            return self.resolve(self.reference_system(name))
        return self.resolve(lookup(self.systems | _as_systems(self), name, "system or chip"))

    def resolve(self, system: System) -> ResolvedSystem:
        chip = self.chip(system.chip)
        domain = system.scaleup_domain_chips or chip.scaleup_domain_chips
        up = system.scaleup_gb_s_per_direction or chip.scaleup_gb_s_per_direction
        out = system.scaleout_gbit_s_per_chip or chip.scaleout_gbit_s_per_chip
        power, estimated = self._power(system, chip)
        pue = system.pue or self.pue_by_provider.get(system.provider)
        pue = pue or self.pue_by_provider.get("default")
        # Built from figures already validated, with the types its fields declare: no
        # second validation (which would build the model's schema on every command).
        return ResolvedSystem.model_construct(
            system=system,
            chip=chip,
            scaleup_domain_chips=int(domain.value),
            scaleup_bytes_per_s=float(up.value) * 1e9,
            scaleout_bytes_per_s=float(out.value if out else 0.0) * 1e9 / 8,
            power_w_per_chip=float(power),
            power_is_estimated=bool(estimated),
            pue=float(pue.value) if pue else 1.0,
            pue_is_estimated=bool(pue.estimated) if pue else True,
        )

    def _power(self, system: System, chip: Chip) -> tuple[float, bool]:
        """IT power per chip: the system's, else its chip's reference system's, else the
        chip's own board power (flagged: it leaves out the host), else an assumption."""
        if system.power_w_per_chip is not None:
            return system.power_w_per_chip.value, system.power_w_per_chip.estimated
        ref = next((s for s in self.systems.values() if s.chip == chip.id and s.reference), None)
        if ref is not None and ref.power_w_per_chip is not None:
            return ref.power_w_per_chip.value, ref.power_w_per_chip.estimated
        if chip.tdp_w is not None:
            return chip.tdp_w.value, True
        return _ASSUMED_POWER_W, True

    def job_limit(self, system: ResolvedSystem) -> int | None:
        """The most chips one job can use on ``system`` (None: no stated limit)."""
        spec = system.system
        if spec.max_chips is None:
            return None
        multi = spec.multislice_max_chips
        return max(spec.max_chips, int(multi.value)) if multi is not None else spec.max_chips

    def job_size_problem(self, system: ResolvedSystem, chips: int) -> str | None:
        """Why ``chips`` chips is not a size ``system`` has, or None when it is one: beyond
        the largest slice a job spans whole slices over DCN (Multislice), up to its limit."""
        spec = system.system
        if spec.max_chips is None or chips <= spec.max_chips:
            return None
        limit = self.job_limit(system)
        assert limit is not None
        multi = spec.multislice_max_chips
        if multi is None:
            return (
                f"{spec.id} scales to at most {spec.max_chips:,} chips (max_chips); "
                f"asked for {chips:,}"
            )
        if chips > limit:
            return (
                f"{spec.id} runs at most {limit:,} chips as Multislice (whole "
                f"{spec.max_chips:,}-chip slices over DCN); asked for {chips:,}"
            )
        if chips % spec.max_chips:
            return (
                f"{spec.id}: beyond one {spec.max_chips:,}-chip slice a job spans whole slices "
                f"over DCN (Multislice); {chips:,} is not a multiple of {spec.max_chips:,} "
                f"(try {chips // spec.max_chips * spec.max_chips:,} or "
                f"{(chips // spec.max_chips + 1) * spec.max_chips:,})"
            )
        return None

    def check_job_size(self, system: ResolvedSystem, chips: int) -> None:
        """Raise `InfeasibleError` when ``chips`` is not a size ``system`` has."""
        problem = self.job_size_problem(system, chips)
        if problem is not None:
            raise InfeasibleError(problem)

    def offers_for(self, system_id: str, *, current_only: bool = True) -> list[Offer]:
        return [
            o
            for o in self.offers.values()
            if o.system == system_id and (o.current or not current_only)
        ]

    def pricing_offers(self, system: ResolvedSystem) -> list[Offer]:
        """The current offers that price a run computed on ``system``: its own, and those of
        systems of the same chip whose node, scale-up domain, link and scale-out figures are
        the same (a reference HGX board and the cloud instance built on it), so a price never
        comes from a machine the speed was not computed for."""
        same = {s.id for s in self.systems.values() if self.same_machine(system, s)}
        return [o for o in self.offers.values() if o.current and o.system in same]

    def same_machine(self, system: ResolvedSystem, other: System) -> bool:
        """True when ``other`` is ``system`` or runs a job exactly as fast (same figures)."""
        if other.id == system.id:
            return True
        if other.chip != system.chip.id or other.chips_per_node != system.system.chips_per_node:
            return False
        theirs = self.resolve(other)
        return (
            theirs.scaleup_domain_chips == system.scaleup_domain_chips
            and _close(theirs.scaleup_bytes_per_s, system.scaleup_bytes_per_s)
            and _close(theirs.scaleout_bytes_per_s, system.scaleout_bytes_per_s)
            and (other.max_chips or 0) == (system.system.max_chips or 0)
        )

    def best_price(self, system_id: str, tier: PriceTier) -> tuple[Offer, float] | None:
        """The cheapest current offer of ``system_id`` in ``tier``, with its $/chip-hour."""
        priced = [
            (o, p)
            for o in self.offers_for(system_id)
            if (p := o.usd_per_chip_hour(tier)) is not None
        ]
        return min(priced, key=lambda op: op[1]) if priced else None

    def source_of(self, figure: Figure) -> Source:
        return self.sources[figure.source]


def _holds_catalog_files(folder: Path) -> bool:
    """True if ``folder`` has any file an overlay may hold (the reliability figures, read
    by `chipmix.catalog.reliability`, included)."""
    kinds = any(any((folder / kind).glob("*.y*ml")) for kind in ("chips", "systems", "offers"))
    names = (PRIOR_CALIBRATION, FITTED_CALIBRATION, FACILITIES, "reliability.yaml")
    return kinds or any((folder / name).is_file() for name in names)


def _as_systems(catalog: Catalog) -> dict[str, System]:
    """Chip ids as aliases of their reference systems, for name look-ups."""
    out = {}
    for chip_id in catalog.chips:
        for s in catalog.systems.values():
            if s.chip == chip_id and s.reference:
                out[chip_id] = s
    return out


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(abs(a), abs(b), 1.0)


def _source_keys(item: BaseModel) -> Iterable[tuple[str, str]]:
    """(field path, source key) of every figure and of the item itself."""
    source = getattr(item, "source", None)
    if isinstance(source, str) and not isinstance(item, Figure):
        yield "source", source
    for name in type(item).model_fields:
        value = getattr(item, name)
        if isinstance(value, Figure):
            yield name, value.source
        elif isinstance(value, dict):
            for key, sub in value.items():
                if isinstance(sub, Figure):
                    yield f"{name}.{key}", sub.source


@cache
def _shipped() -> Catalog:
    from chipmix.common.cache import cached

    def read() -> Catalog:
        catalog = Catalog()
        catalog.read_folder(DATA_DIR)
        return catalog

    return cached(DATA_DIR, Catalog, read)


@cache
def _load(overlays: tuple[str, ...]) -> Catalog:
    shipped = _shipped()
    if not overlays:
        shipped.check_references()
        return shipped
    # Each overlay starts from a copy of the shipped catalog, read once per process: its
    # entries are frozen models, so copying the tables is enough.
    catalog = copy.copy(shipped)
    for entry in fields(catalog):
        value = getattr(catalog, entry.name)
        if isinstance(value, dict | list):
            setattr(catalog, entry.name, copy.copy(value))
    for folder in overlays:
        catalog.read_folder(Path(folder))
    catalog.check_references()
    check_consistency(catalog)
    return catalog


def load_catalog(overlay: str | Path | None = None) -> Catalog:
    """The shipped catalog, with ``overlay`` (or ``$CHIPMIX_CATALOG``) read on top."""
    folders: list[str] = []
    env = os.environ.get(CATALOG_ENV)
    if env:
        folders.append(env)
    if overlay is not None:
        folders.append(str(overlay))
    return _load(tuple(folders))
