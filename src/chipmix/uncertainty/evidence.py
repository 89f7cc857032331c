"""Where a prediction's parameters came from: its evidence class.

A prediction of one job on one chip rests on the chip's calibration (fitted on its own
published runs, borrowed from its family's, or its datasheet and microbenchmark priors
only), on the stack's (fitted, inherited from a parent stack, or the default), on whether
the job's precision and chip count lie inside what the published runs of that chip cover.
The class is what the prediction-error model (`chipmix.uncertainty.interval`) is keyed by;
the same function classifies the cross-validated residuals (with the rows each fold saw)
and a user's prediction (with every published row), so both speak of the same thing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "CHIP_KINDS",
    "FITTED_ROWS",
    "ChipKind",
    "Envelope",
    "EvidenceClass",
    "Mode",
    "StackKind",
    "classify",
    "evidence_for",
]

ChipKind = Literal["fitted", "few", "family", "datasheet"]
CHIP_KINDS: tuple[ChipKind, ...] = ("fitted", "few", "family", "datasheet")
"""From most to least evidence: a class further right never gets a narrower interval."""
StackKind = Literal["fitted", "inherited", "default"]
Mode = Literal["training", "serving"]

FITTED_ROWS = 3
"""Published rows a chip needs to count as ``fitted`` (1–2 rows: ``few``)."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """What a set of published runs covers: rows, largest chip count and precisions per
    chip, rows per stack (all counted from the validation file, see
    `chipmix.validate.prediction_error`)."""

    chip_rows: Mapping[str, int] = field(default_factory=dict)
    chip_max_chips: Mapping[str, int] = field(default_factory=dict)
    chip_precisions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    stack_rows: Mapping[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "chip_rows": dict(sorted(self.chip_rows.items())),
            "chip_max_chips": dict(sorted(self.chip_max_chips.items())),
            "chip_precisions": {k: list(v) for k, v in sorted(self.chip_precisions.items())},
            "stack_rows": dict(sorted(self.stack_rows.items())),
        }

    @staticmethod
    def from_dict(raw: Mapping[str, Any]) -> Envelope:
        return Envelope(
            chip_rows={str(k): int(v) for k, v in (raw.get("chip_rows") or {}).items()},
            chip_max_chips={str(k): int(v) for k, v in (raw.get("chip_max_chips") or {}).items()},
            chip_precisions={
                str(k): tuple(str(p) for p in v)
                for k, v in (raw.get("chip_precisions") or {}).items()
            },
            stack_rows={str(k): int(v) for k, v in (raw.get("stack_rows") or {}).items()},
        )


@dataclass(frozen=True, slots=True)
class EvidenceClass:
    """The evidence behind one prediction."""

    chip: str
    chip_kind: ChipKind
    chip_rows: int
    """Published rows of this chip behind its calibration."""
    family: str | None
    family_rows: int
    """Published rows of the other chips of its family (what a ``family`` chip borrows)."""
    stack: str | None
    stack_kind: StackKind
    stack_rows: int
    precision: str
    precision_validated: bool
    """True when a published run of this chip used this precision (or the chip has none,
    in which case the chip kind already says so)."""
    chips: int
    max_validated_chips: int
    """The largest published run on this chip (0 when there is none)."""
    mode: Mode = "training"

    @property
    def beyond_scale(self) -> bool:
        """More chips than any published run of this chip used."""
        return 0 < self.max_validated_chips < self.chips

    @property
    def flags(self) -> tuple[str, ...]:
        """What takes the prediction outside its chip's fitted ground, besides the chip."""
        out = []
        if self.stack_kind != "fitted":
            out.append(f"stack-{self.stack_kind}")
        if not self.precision_validated:
            out.append("precision-unvalidated")
        if self.beyond_scale:
            out.append("beyond-scale")
        if self.mode != "training":
            out.append(self.mode)
        return tuple(out)

    @property
    def extrapolated(self) -> bool:
        """True when the chip has no published run of its own, or the job leaves what its
        runs cover (precision, chip count, stack): the table marks such rows."""
        return self.chip_kind in ("family", "datasheet") or bool(self.flags)

    def describe(self) -> str:
        """One line, e.g. ``h100-sxm: 17 published runs, fitted; stack megatron: fitted on
        25 runs``."""
        chip = {
            "fitted": f"{self.chip}: {self.chip_rows} published runs, fitted",
            "few": f"{self.chip}: only {self.chip_rows} published run(s), fitted",
            "family": f"{self.chip}: no published run; borrowed from family {self.family} "
            f"({self.family_rows} runs) and the datasheet",
            "datasheet": f"{self.chip}: no published run; datasheet and microbenchmark priors only",
        }[self.chip_kind]
        stack = {
            "fitted": f"stack {self.stack}: fitted on {self.stack_rows} runs",
            "inherited": f"stack {self.stack}: inherited from its parent stack",
            "default": f"stack {self.stack or '(none)'}: default parameters",
        }[self.stack_kind]
        parts = [chip, stack]
        if not self.precision_validated:
            parts.append(f"{self.precision}: no published {self.chip} run in this precision")
        if self.beyond_scale:
            parts.append(
                f"{self.chips:,} chips: beyond the largest published run "
                f"({self.max_validated_chips:,})"
            )
        return "; ".join(parts)

    def to_list(self) -> list[dict[str, Any]]:
        """The ``evidence`` list of the JSON contract: one entry per scope, with its source
        kind (fitted / family / datasheet / default) and the rows behind it."""
        chip_source = {"fitted": "fitted", "few": "fitted", "family": "family"}.get(
            self.chip_kind, "datasheet"
        )
        stack_source = {"fitted": "fitted", "inherited": "family"}.get(self.stack_kind, "default")
        out: list[dict[str, Any]] = [
            {"scope": "chip", "key": self.chip, "source": chip_source, "rows": self.chip_rows,
             "class": self.chip_kind},
            {"scope": "stack", "key": self.stack, "source": stack_source,
             "rows": self.stack_rows, "class": self.stack_kind},
            {"scope": "precision", "key": self.precision,
             "source": "fitted" if self.precision_validated else "default",
             "rows": self.chip_rows if self.precision_validated else 0},
            {"scope": "chips", "key": self.chips,
             "source": "default" if self.beyond_scale else "fitted",
             "rows": self.chip_rows, "max_validated": self.max_validated_chips},
        ]  # fmt: skip
        if self.chip_kind == "family":
            out[0]["family"] = self.family
            out[0]["family_rows"] = self.family_rows
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "class": self.chip_kind,
            "flags": list(self.flags),
            "extrapolated": self.extrapolated,
            "summary": self.describe(),
        }


def classify(
    *,
    chip: str,
    chip_rows: int,
    family: str | None,
    family_rows: int,
    stack: str | None,
    stack_rows: int,
    parent_rows: int,
    precision: str,
    precisions: tuple[str, ...],
    chips: int,
    max_chips: int,
    mode: Mode = "training",
) -> EvidenceClass:
    """The class of a prediction from the published rows its calibration saw."""
    if chip_rows >= FITTED_ROWS:
        chip_kind: ChipKind = "fitted"
    elif chip_rows > 0:
        chip_kind = "few"
    elif family is not None and family_rows > 0:
        chip_kind = "family"
    else:
        chip_kind = "datasheet"
    if stack is not None and stack_rows >= 2:
        stack_kind: StackKind = "fitted"
    elif stack is not None and parent_rows >= 2:
        stack_kind = "inherited"
    else:
        stack_kind = "default"
    return EvidenceClass(
        chip=chip, chip_kind=chip_kind, chip_rows=chip_rows, family=family,
        family_rows=family_rows, stack=stack, stack_kind=stack_kind, stack_rows=stack_rows,
        precision=precision, precision_validated=chip_rows == 0 or precision in precisions,
        chips=chips, max_validated_chips=max_chips, mode=mode,
    )  # fmt: skip


def family_lookup(calibration: object) -> Callable[[str], str | None]:
    """The calibration's chip → family map where it has one (a hierarchical fit shares a
    family's deviations between its chips); without one no chip borrows."""
    family_of = getattr(calibration, "family_of", None)
    if callable(family_of):
        return lambda chip: family_of(chip)
    return lambda chip: None


def parent_lookup(calibration: object) -> Callable[[str], list[str]]:
    """The stacks a stack inherits from (its ancestors), where the calibration says so."""
    chain = getattr(calibration, "stack_chain", None)
    if callable(chain):
        return lambda stack: [s for s in chain(stack) if s != stack]
    return lambda stack: []


def evidence_for(
    envelope: Envelope,
    calibration: object,
    *,
    chip: str,
    stack: str | None,
    precision: str,
    chips: int,
    mode: Mode = "training",
    exclude_chip: bool = False,
) -> EvidenceClass:
    """The evidence of a prediction of ``chips`` chips of ``chip`` on ``stack``, given the
    published rows in ``envelope`` (every shipped row, for a user's prediction).
    ``exclude_chip`` counts the chip's own rows as absent (leave-one-chip-out)."""
    family_of = family_lookup(calibration)
    family = family_of(chip)
    family_rows = sum(
        n for c, n in envelope.chip_rows.items() if c != chip and family and family_of(c) == family
    )
    parents = parent_lookup(calibration)(stack) if stack else []
    return classify(
        chip=chip,
        chip_rows=0 if exclude_chip else envelope.chip_rows.get(chip, 0),
        family=family,
        family_rows=family_rows,
        stack=stack,
        stack_rows=envelope.stack_rows.get(stack, 0) if stack else 0,
        parent_rows=max((envelope.stack_rows.get(p, 0) for p in parents), default=0),
        precision=precision,
        precisions=envelope.chip_precisions.get(chip, ()),
        chips=chips,
        max_chips=0 if exclude_chip else envelope.chip_max_chips.get(chip, 0),
        mode=mode,
    )
