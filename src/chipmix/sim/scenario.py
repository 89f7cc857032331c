"""Continuity scenario files: outages of the job's system, what to do during one, what-ifs.

A scenario is YAML (or JSON) like::

    name: nvidia shortage in our region
    outages:                      # the job's own system loses capacity
      - name: region power event
        start_day: 10             # days after the run starts
        duration_days: 14
        capacity_lost: 0.5        # share of the job's chips gone (1 = all of them)
    on_outage: shrink             # without migration: 'shrink' onto the chips left, or 'wait'
    migration:                    # a second system to continue on during an outage
      system: trn2                # system id, or chip id for its reference system
      chips: 16384                # default: as many as the job
      warm: true                  # capacity held; false: shrink/wait lead_time_h, then move
      lead_time_h: 72
      transfer_gb_s: 25           # moving the checkpoint there (default: the catalog's)
      return_when_restored: true  # come back once the outage ends
    reliability:                  # what-ifs over the catalog's reliability figures
      failure_rate_multiplier: 1.0
      hot_spare_nodes: 40

Outages hit the job's primary system only (a region or a vendor going short); the migration
target is taken to be unaffected, which is the point of a second vendor.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from chipmix.catalog.offer import PriceTier
from chipmix.common.files import NoBoolNumbers, choice_hint, read_yaml
from chipmix.errors import FileFormatError, InputError

__all__ = [
    "ContinuityScenario",
    "Migration",
    "Outage",
    "ReliabilityOverrides",
    "load_scenario",
    "parse_scenario",
]


class _Strict(NoBoolNumbers):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Outage(_Strict):
    """The job's system loses a share of its capacity for a while."""

    name: str = ""
    start_day: float = Field(ge=0)
    """Days after the run starts."""
    duration_days: float = Field(gt=0)
    capacity_lost: float = Field(gt=0, le=1)
    """Share of the job's chips that are gone (1 = the whole system)."""

    @property
    def start_s(self) -> float:
        return self.start_day * 86400.0

    @property
    def end_s(self) -> float:
        return (self.start_day + self.duration_days) * 86400.0


class Migration(_Strict):
    """A second system the job moves to during an outage."""

    system: str
    """System id, or a chip id for its reference system."""
    chips: int | None = Field(None, gt=0)
    """Chips to use there; default: as many as the job uses on its own system."""
    warm: bool = True
    """Capacity already held (a warm second vendor): the run moves there at once. False: it
    carries on as without migration for ``lead_time_h``, then moves at a checkpoint (never,
    when the outage is shorter)."""
    lead_time_h: float = Field(72.0, ge=0)
    """Time to obtain the capacity when it is not warm."""
    transfer_gb_s: float | None = Field(None, gt=0)
    """Bandwidth for moving the checkpoint there; default: the catalog's ``transfer_gb_s``."""
    return_when_restored: bool = True
    """Move back (paying the transfer again) once the outage ends."""
    price_tier: PriceTier | None = None
    """Tier the second system is paid in; default: the job's."""


class ReliabilityOverrides(_Strict):
    """What-if knobs over the catalog's reliability figures."""

    failure_rate_multiplier: float = Field(1.0, ge=0)
    """Multiplies every component-failure rate (not maintenance or reclaims)."""
    hot_spare_nodes: int | None = Field(None, ge=0)
    """Spare nodes kept for the job; default: the catalog's share of the job's nodes."""


class ContinuityScenario(_Strict):
    """Everything a scenario file can say."""

    name: str = ""
    outages: list[Outage] = Field(default_factory=list)
    on_outage: Literal["shrink", "wait"] = "shrink"
    """Without migration: continue on the chips left (with the layout the search finds for
    them), or wait for the capacity to come back."""
    migration: Migration | None = None
    reliability: ReliabilityOverrides = Field(default_factory=ReliabilityOverrides)

    @model_validator(mode="after")
    def _outages_do_not_overlap(self) -> ContinuityScenario:
        ordered = sorted(self.outages, key=lambda o: o.start_day)
        for before, after in itertools.pairwise(ordered):
            if after.start_day < before.start_day + before.duration_days:
                raise ValueError(
                    f"outages overlap: {before.name or 'one'} runs from day "
                    f"{before.start_day:g} to {before.start_day + before.duration_days:g}, "
                    f"{after.name or 'the next'} starts on day {after.start_day:g}; merge them"
                )
        return self

    @property
    def sorted_outages(self) -> list[Outage]:
        return sorted(self.outages, key=lambda o: o.start_day)


_VALID_KEYS: dict[str, type[BaseModel]] = {
    "": ContinuityScenario,
    "outages": Outage,
    "migration": Migration,
    "reliability": ReliabilityOverrides,
}


def _explain(where: str, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        path = ".".join(loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            parent = next((p for p in loc[:-1] if p in _VALID_KEYS), "")
            valid = ", ".join(_VALID_KEYS[parent].model_fields)
            lines.append(f"  {path}: unknown key; valid keys here: {valid}")
        elif err["type"] == "missing":
            lines.append(f"  {path}: required")
        elif err["type"] == "value_error":
            lines.append(f"  {path}: {err['msg']}")
        else:
            lines.append(f"  {path}: {err['msg']} (got {err['input']!r}){choice_hint(err)}")
    return f"{where}: invalid scenario:\n" + "\n".join(lines)


def parse_scenario(raw: Any, where: str = "scenario") -> ContinuityScenario:
    """A `ContinuityScenario` from parsed YAML/JSON; problems raise `FileFormatError`."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise FileFormatError(f"{where}: expected a mapping of scenario keys")
    try:
        return ContinuityScenario.model_validate(raw)
    except ValidationError as exc:
        raise FileFormatError(_explain(where, exc)) from None


def load_scenario(path: str | Path) -> ContinuityScenario:
    """Read a scenario file (YAML or JSON)."""
    file = Path(path)
    if not file.is_file():
        raise InputError(f"scenario file {str(file)!r} does not exist")
    raw = read_yaml(file)
    if raw is None:
        raise FileFormatError(f"{file}: the scenario file is empty; leave --scenario out")
    return parse_scenario(raw, str(file))
