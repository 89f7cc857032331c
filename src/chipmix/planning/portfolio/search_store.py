"""Layout searches kept between runs, in the user's cache folder (`chipmix.common.cache`).

A plan searches the best layout of every job shape on every machine and chip count it may
use (tens to hundreds of searches, most of a plan's time); planning the same scenario
again, or a variant of it (another deadline, cap or offer), repeats most of them. Each
found layout is kept under a hash of everything its search reads: the job's shape, the
resolved system (every figure), the calibration, and chipmix's own files (code and shipped
data, `fingerprint`), so a changed figure, calibration or version is a new search. Only
found layouts are kept (a failure's reason names its system); the estimate is stored
without its system and handed back on the system asked for.
"""

from __future__ import annotations

import hashlib
from dataclasses import fields
from functools import cache
from pathlib import Path
from typing import Any

from chipmix.catalog.system import ResolvedSystem
from chipmix.common.cache import fingerprint, load, store
from chipmix.results import Estimate

__all__ = ["SearchStore"]

MAX_ENTRIES = 20_000
"""Past this many kept searches the store starts afresh (a few KB each)."""


@cache
def _code() -> str:
    """chipmix's own files: its code and shipped data (bytecode left out)."""
    return fingerprint(Path(__file__).parents[2], skip=frozenset({"__pycache__"}))


class SearchStore:
    """The kept searches of one calibration: read on first use, written by `save`."""

    def __init__(self, calibration_json: str) -> None:
        self.name = f"searches-{_code()}.pickle"
        self.calibration = hashlib.sha256(calibration_json.encode()).hexdigest()
        self.entries: dict[str, dict[str, Any]] | None = None
        self.added = 0
        self.systems: dict[str, str] = {}

    def key(self, shape: str, system: ResolvedSystem, chips: int) -> str:
        figures = self.systems.get(system.id)
        if figures is None:
            figures = self.systems[system.id] = system.model_dump_json()
        text = f"{self.calibration}|{shape}|{figures}|{chips}"
        return hashlib.sha256(text.encode()).hexdigest()

    def _loaded(self) -> dict[str, dict[str, Any]]:
        if self.entries is None:
            self.entries = load(self.name, dict) or {}
        return self.entries

    def get(self, key: str, system: ResolvedSystem) -> Estimate | None:
        kept = self._loaded().get(key)
        if kept is None:
            return None
        try:
            return Estimate(system=system, **kept)
        except TypeError:  # not what this version writes: search again
            return None

    def put(self, key: str, estimate: Estimate) -> None:
        entries = self._loaded()
        if len(entries) >= MAX_ENTRIES:
            entries.clear()
        entries[key] = {f.name: getattr(estimate, f.name) for f in fields(estimate)}
        del entries[key]["system"]
        self.added += 1

    def save(self) -> None:
        """Write the searches added since the last save (nothing when there are none)."""
        if self.added and self.entries is not None:
            store(self.name, self.entries)
            self.added = 0
