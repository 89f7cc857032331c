"""The levels a calibration parameter is pooled over, and the unknowns ("slots") a fit moves.

A chip parameter belongs to its vendor, its generation (``chip_families`` in
``calibration.yaml``) and the chip itself; a stack parameter to the stack and each stack it
is built on (``stack_parents``). Each (parameter, level, key) with published rows behind it
is one slot: a deviation from the prior in the parameter's fit space. `Hierarchy` maps the
cases onto the slots and the fitted deviations back onto every chip and stack of the
catalog, with the evidence of each resolved value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
from numpy.typing import NDArray

from chipmix.catalog.calibration import (
    Calibration,
    ChipCalibration,
    Evidence,
    StackCalibration,
)
from chipmix.catalog.catalog import Catalog
from chipmix.validate.cases import Case

__all__ = ["FIT_PARAMETERS", "LEVEL_WIDTH", "MIN_ROWS", "FitParameter", "Hierarchy", "Slot"]

Array = NDArray[np.float64]

MIN_ROWS = 2
"""Published rows a slot needs before it is fitted: no parameter belongs to a single row."""

_EPS = 0.02
"""Fractions are fitted inside [ε, 1 − ε] so a prior on the boundary can still move."""


@dataclass(frozen=True)
class FitParameter:
    """One calibratable field: its scope, transform and prior width."""

    scope: str
    """``chip`` or ``stack``."""
    name: str
    transform: str
    """``log`` (positive scale) or ``logit`` (fraction in (0, 1))."""
    sigma: float
    """Prior width in the transformed space of one level's deviation: a deviation of σ
    costs as much as one row off by a factor e."""
    base: str | None = None
    """A parameter measured relative to another (the low-precision efficiency moves with
    the fitted bf16 matmul efficiency, then by its own deviations)."""
    low_precision_only: bool = False
    """Informed only by rows whose GEMMs run in a low-precision format."""
    moe_only: bool = False
    """Informed only by rows of mixture-of-experts models."""

    def to_fit(self, value: float) -> float:
        if self.transform == "log":
            return math.log(max(value, _EPS))
        v = min(max(value, _EPS), 1.0 - _EPS)
        return math.log(v / (1.0 - v))

    def natural(self, x: Array | float) -> Array:
        x = np.asarray(x, dtype=np.float64)
        if self.transform == "log":
            return np.asarray(np.exp(x))
        return np.asarray(1.0 / (1.0 + np.exp(-x)))


FIT_PARAMETERS: tuple[FitParameter, ...] = (
    FitParameter("chip", "matmul_efficiency", "logit", 2.0),
    FitParameter("chip", "matmul_half_dim", "log", 1.5),
    FitParameter("chip", "attention_efficiency", "logit", 1.5),
    FitParameter("chip", "grouped_gemm_efficiency", "logit", 1.0, moe_only=True),
    FitParameter(
        "chip", "low_precision_efficiency", "logit", 1.0,
        base="matmul_efficiency", low_precision_only=True,
    ),
    FitParameter("stack", "compute_efficiency", "log", 0.4),
    FitParameter("stack", "tp_overlap", "logit", 2.0),
    FitParameter("stack", "dp_overlap", "logit", 2.0),
    FitParameter("stack", "step_overhead_s", "log", 1.5),
)  # fmt: skip
"""The parameters `chipmix calibrate` fits (the others keep their priors)."""

LEVEL_WIDTH = {"vendor": 1.0, "family": 1.0, "chip": 1.5, "stack": 1.5}
"""Prior width of each level's deviation, as a share of the parameter's σ: a chip's own
deviation may be larger than what its whole family shares."""


@dataclass(frozen=True)
class Slot:
    """One fitted unknown: parameter ``param`` at ``level`` for ``key``."""

    param: int
    """Index into `FIT_PARAMETERS`."""
    level: str
    key: str
    sigma: float

    @property
    def parameter(self) -> FitParameter:
        return FIT_PARAMETERS[self.param]


def _chip_levels(calibration: Calibration, catalog: Catalog, chip: str) -> list[tuple[str, str]]:
    vendor = catalog.chips[chip].vendor if chip in catalog.chips else "unknown"
    levels = [("vendor", vendor)]
    family = calibration.family_of(chip)
    if family is not None:
        levels.append(("family", family))
    return [*levels, ("chip", chip)]


def _stack_levels(calibration: Calibration, stack: str) -> list[tuple[str, str]]:
    return [("stack", s) for s in calibration.stack_chain(stack)]


def _runs_low_precision(case: Case, catalog: Catalog) -> bool:
    chip = catalog.chips[case.row.chip]
    return case.row.precision != "bf16" and chip.peak_flops(case.row.precision) > (
        chip.peak_flops("bf16")
    )


class Hierarchy:
    """Cases × slots: which unknowns move which case's parameters."""

    def __init__(self, cases: Sequence[Case], catalog: Catalog) -> None:
        self.catalog = catalog
        self.prior = prior = catalog.prior_calibration
        self.slots: list[Slot] = []
        self.index: dict[tuple[int, str, str], int] = {}
        n = len(cases)
        self.chains: list[list[list[int]]] = []
        self.x0: list[list[float]] = []
        self.chip_base: list[dict[str, Any]] = []
        self.stack_base: list[dict[str, Any]] = []
        self.case_slots: list[list[int]] = []
        informs: list[set[int]] = []
        for case in cases:
            chip_cal = prior.for_chip(case.row.chip)
            stack_cal = prior.for_stack(case.stack)
            low = _runs_low_precision(case, catalog)
            chains: list[list[int]] = []
            x0: list[float] = []
            own: set[int] = set()
            for j, param in enumerate(FIT_PARAMETERS):
                chain = self._chain(j, case.row.chip, case.stack)
                if (param.low_precision_only and not low) or (
                    param.moe_only and case.model.moe is None
                ):
                    chains.append([])
                    x0.append(0.0)
                    continue
                own.update(chain)
                chains.append(chain)
                x0.append(param.to_fit(self._prior_value(param, chip_cal, stack_cal)))
            self.chains.append(chains)
            self.x0.append(x0)
            self.chip_base.append(dict(chip_cal))
            self.stack_base.append(dict(stack_cal))
            informs.append(own)
        self.incidence = np.zeros((n, len(self.slots)), dtype=bool)
        for i, own in enumerate(informs):
            self.incidence[i, sorted(own)] = True
            self.case_slots.append(sorted(own))

    def _slot(self, j: int, level: str, key: str) -> int:
        if (j, level, key) not in self.index:
            sigma = FIT_PARAMETERS[j].sigma * LEVEL_WIDTH[level]
            self.index[(j, level, key)] = len(self.slots)
            self.slots.append(Slot(j, level, key, sigma))
        return self.index[(j, level, key)]

    def _levels(self, j: int, chip: str, stack: str) -> list[tuple[str, str]]:
        if FIT_PARAMETERS[j].scope == "chip":
            return _chip_levels(self.prior, self.catalog, chip)
        return _stack_levels(self.prior, stack)

    def _chain(self, j: int, chip: str, stack: str, *, create: bool = True) -> list[int]:
        """The slots parameter ``j`` of this chip/stack adds up (its base's first)."""
        param = FIT_PARAMETERS[j]
        chain: list[int] = []
        if param.base is not None:
            base = next(k for k, p in enumerate(FIT_PARAMETERS) if p.name == param.base)
            chain += self._chain(base, chip, stack, create=create)
        for level, key in self._levels(j, chip, stack):
            if create:
                chain.append(self._slot(j, level, key))
            elif (j, level, key) in self.index:
                chain.append(self.index[(j, level, key)])
        return chain

    @staticmethod
    def _prior_value(param: FitParameter, chip: ChipCalibration, stack: StackCalibration) -> float:
        entry: ChipCalibration | StackCalibration = chip if param.scope == "chip" else stack
        value = getattr(entry, param.name)
        if value is None and param.base is not None:
            value = getattr(entry, param.base)
        return float(value)

    # -- back onto the catalog ------------------------------------------------------------
    def resolve(self, u: Array, active: NDArray[np.bool_], rows: NDArray[np.int64]) -> Calibration:
        """Every chip and stack whose parameters the fitted deviations move, with the
        evidence of each of their calibrated parameters."""
        chips: dict[str, dict[str, float]] = {}
        stacks: dict[str, dict[str, float]] = {}
        evidence: list[Evidence] = []
        stack_names = sorted(
            {s.key for s in self.slots if s.level == "stack"}
            | set(self.prior.stack_parents)
            | set(self.prior.stacks)
        )
        targets = [("chip", c) for c in sorted(self.catalog.chips)]
        targets += [("stack", s) for s in stack_names]
        for scope, key in targets:
            chip_cal = self.prior.for_chip(key if scope == "chip" else "")
            stack_cal = self.prior.for_stack(key if scope == "stack" else None)
            for j, param in enumerate(FIT_PARAMETERS):
                if param.scope != scope:
                    continue
                chain = self._chain(j, key, key, create=False)
                used = [s for s in chain if active[s]]
                own_param = [s for s in used if self.slots[s].param == j]
                prior_value = self._prior_value(param, chip_cal, stack_cal)
                value = prior_value
                if used:
                    value = float(param.natural(param.to_fit(prior_value) + u[used].sum()))
                if own_param or (used and param.base is None):
                    target = chips if scope == "chip" else stacks
                    target.setdefault(key, {})[param.name] = value
                evidence.append(self._evidence(scope, key, j, value, prior_value, used, rows))
        return Calibration(
            chips={k: ChipCalibration(**v) for k, v in chips.items()},
            stacks={k: StackCalibration(**v) for k, v in stacks.items()},
            evidence=evidence,
        )

    def _evidence(
        self,
        scope: str,
        key: str,
        j: int,
        value: float,
        prior: float,
        used: list[int],
        rows: NDArray[np.int64],
    ) -> Evidence:
        own_levels = {"chip", "stack"}
        own = [s for s in used if self.slots[s].key == key and self.slots[s].level in own_levels]
        if own:
            basis = "fitted"
        elif used:
            basis = "family" if scope == "chip" else "parent"
        else:
            entry = (self.prior.chips if scope == "chip" else self.prior.stacks).get(key)
            name = FIT_PARAMETERS[j].name
            measured = entry is not None and name in entry.model_fields_set
            basis = "measured" if measured else "default"
        pooled = [f"{self.slots[s].level}:{self.slots[s].key} ({int(rows[s])} rows)" for s in used]
        return Evidence(
            scope=scope,
            key=key,
            name=FIT_PARAMETERS[j].name,
            value=float(f"{value:.6g}"),
            prior=float(f"{prior:.6g}"),
            basis=basis,
            rows=int(max((rows[s] for s in own), default=0)),
            pooled=pooled,
        )

    def parameters(
        self, u: Array, active: NDArray[np.bool_], rows: NDArray[np.int64]
    ) -> list[dict[str, Any]]:
        """Each fitted slot: its parameter, level, key, deviation and rows."""
        return [
            {"scope": s.parameter.scope, "key": f"{s.level}:{s.key}", "name": s.parameter.name,
             "fitted": float(f"{float(u[i]):.6g}"), "rows": int(rows[i])}
            for i, s in enumerate(self.slots) if active[i]
        ]  # fmt: skip

    def with_provenance(
        self, fitted: Calibration, cases: Sequence[Case], residuals: dict[str, float]
    ) -> Calibration:
        """The fitted fields with a note on each entry and the file's provenance."""
        errors = np.abs(np.expm1(np.array(list(residuals.values()) or [0.0])))
        today = date.today().isoformat()
        note = f"fitted by chipmix calibrate on {today} from {len(cases)} published runs"

        def cite(old: ChipCalibration | StackCalibration | None, fields: list[str]) -> str:
            text = f"{', '.join(fields)} {note} (see evidence)"
            return f"{old.source}; {text}" if old is not None and old.source else text

        chips = {
            k: v.model_copy(
                update={"source": cite(self.prior.chips.get(k), sorted(v.model_fields_set))}
            )
            for k, v in fitted.chips.items()
        }
        stacks = {
            k: v.model_copy(
                update={"source": cite(self.prior.stacks.get(k), sorted(v.model_fields_set))}
            )
            for k, v in fitted.stacks.items()
        }
        for entry in (*chips.values(), *stacks.values()):
            entry.model_fields_set.add("source")
        return Calibration(
            chips=chips, stacks=stacks, evidence=fitted.evidence,
            provenance={
                "command": "chipmix calibrate",
                "date": today,
                "cases": ", ".join(c.id for c in cases),
                "sources": "; ".join(sorted({c.row.source.split(" (")[0] for c in cases})),
                "method": "hierarchical robust least squares (soft-L1) on "
                          "log(predicted/published): each chip parameter is its prior moved "
                          "by vendor, generation and chip deviations, each stack parameter "
                          "by the deviations of the stack and its parents, all shrunk toward "
                          f"0; a deviation is fitted only with >= {MIN_ROWS} rows behind it",
                "in_sample_median_abs_error": f"{float(np.median(errors)):.4f}",
            },
        )  # fmt: skip
