"""Which catalog a result came from: a fingerprint of its files and the dates of its data.

Reports print this beside their numbers, so a reader can tell two runs on different price
lists apart: the fingerprint changes with any byte of any catalog file read (shipped or
overlay); the dates say how fresh the figures and prices are.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from chipmix.catalog.catalog import Catalog

__all__ = ["CatalogVersion", "catalog_version"]

_PATTERNS = ("chips/*.y*ml", "systems/*.y*ml", "offers/*.y*ml", "*.y*ml")


@dataclass(frozen=True, slots=True)
class CatalogVersion:
    """The identity and freshness of a loaded catalog."""

    chipmix_version: str
    """The installed chipmix package's version."""
    fingerprint: str
    """First 12 hex digits of the SHA-256 over every catalog file read (path and bytes)."""
    folders: tuple[str, ...]
    """The folders read: the shipped data first, then overlays."""
    num_files: int
    """Catalog files hashed."""
    newest_source: str
    """The latest ``as_of`` date among the sources of its figures and prices."""
    newest_price: str
    """The latest ``valid_from`` date among its current offers ('' when it has none)."""
    num_chips: int
    num_systems: int
    num_offers: int
    """Current offers (prices still valid)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "chipmix_version": self.chipmix_version,
            "fingerprint": self.fingerprint,
            "folders": list(self.folders),
            "num_files": self.num_files,
            "newest_source": self.newest_source,
            "newest_price": self.newest_price,
            "num_chips": self.num_chips,
            "num_systems": self.num_systems,
            "num_offers": self.num_offers,
        }

    def __str__(self) -> str:
        return (
            f"catalog {self.fingerprint} (chipmix {self.chipmix_version}; sources to "
            f"{self.newest_source}, prices from {self.newest_price or '—'})"
        )


def _files(folder: Path) -> list[Path]:
    found: set[Path] = set()
    for pattern in _PATTERNS:
        found.update(p for p in folder.glob(pattern) if p.is_file())
    return sorted(found)


def catalog_version(catalog: Catalog) -> CatalogVersion:
    """The fingerprint and dates of ``catalog`` (its files are hashed on each call)."""
    digest = hashlib.sha256()
    count = 0
    for index, folder in enumerate(catalog.folders):
        root = Path(folder)
        for path in _files(root):
            # Shipped files are named relative to their folder so the fingerprint does not
            # depend on where chipmix is installed; overlays by their place in the order.
            digest.update(f"{index}:{path.relative_to(root).as_posix()}\0".encode())
            digest.update(path.read_bytes())
            digest.update(b"\0")
            count += 1
    current = [o for o in catalog.offers.values() if o.current]
    try:
        package = version("chipmix")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        package = "unknown"
    return CatalogVersion(
        chipmix_version=package,
        fingerprint=digest.hexdigest()[:12],
        folders=tuple(catalog.folders),
        num_files=count,
        newest_source=max((s.as_of for s in catalog.sources.values()), default=""),
        newest_price=max((o.valid_from for o in current), default=""),
        num_chips=len(catalog.chips),
        num_systems=len(catalog.systems),
        num_offers=len(current),
    )
