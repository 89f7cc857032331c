"""The p10–p90 interval of a prediction, from cross-validated residuals per evidence class.

Method (normalized split-conformal prediction with hierarchical shrinkage):

1. Residuals. Every published row is predicted by a calibration that never saw it —
   leaving its source out, and leaving its chip out — and ``x = log(published /
   predicted)`` of throughput is recorded with the row's evidence class *as that fold saw
   it* (`chipmix.uncertainty.evidence.classify`). ``data/prediction_error.yaml`` holds
   them; ``scripts/prediction-error`` rewrites it.
2. Location and scale per class, shrunk toward the parent class (empirical Bayes, the
   usual James–Stein / credibility weighting, Bühlmann 1967): with ``n`` rows of median
   ``m̂`` and robust scale ``ŝ = 1.4826 · MAD``, ``m = (n m̂ + k m_parent) / (n + k)`` and
   ``s² = (n ŝ² + k s²_parent) / (n + k)``, ``k = SHRINK_ROWS`` pseudo-rows. The levels
   are: every row → chip kind (fitted / few / family / datasheet) → chip kind with its
   flags (stack not fitted, precision not validated, beyond the largest published chip
   count). Less evidence never narrows the interval: the scale is made non-decreasing
   along the chip kinds, and no class is narrower than its chip kind.
3. Conformal width. Each leave-one-source-out residual is scored ``|x − m| / s`` by the
   classes fitted *without any residual of its source* (cross-conformal prediction, Vovk
   2015, "Cross-conformal predictors", Ann. Math. Artif. Intell. 74; jackknife+, Barber et
   al. 2021, Ann. Statist. 49(1)); ``q`` is the ``⌈(n + 1) · 0.8⌉ / n`` empirical quantile
   of these normalized scores (split-conformal quantile, Lei et al. 2018, JASA 113(523);
   normalized nonconformity scores, Lei et al. §5.2). Rows of one source share their
   errors (one stack version, one cluster), so scoring them by a fit that saw their
   siblings would understate the width for a new publication.
4. Distribution. Each class is summarized as ``log(actual / predicted) ~ Normal(m, σ)``
   with ``σ = q s / z₀.₉`` (z₀.₉ = 1.2816), whose p10 and p90 are the conformal bounds; the
   planner's futures and the simulator sample from it (`ErrorDistribution.sample`).

Serving has a model of its own (`serving_error_model`), fitted the same way from the
leave-one-source-out residuals of the published serving rows (the data file's ``serving``
section, written by the same script): a serving interval comes from measured held-out
serving errors, not from the training errors widened.

What it ignores: residuals of rows of one source are correlated (one stack version, one
cluster), so the coverage for a new chip of a new vendor may be lower than the
cross-validated figure; a flag never seen in the residuals widens its chip kind by the
assumed ``UNSEEN_FLAG_WIDENING`` per flag.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from chipmix.common.files import read_yaml
from chipmix.uncertainty.evidence import CHIP_KINDS, Envelope, EvidenceClass

__all__ = [
    "COVERAGE",
    "DATA_FILE",
    "SHRINK_ROWS",
    "UNSEEN_FLAG_WIDENING",
    "Z90",
    "ErrorDistribution",
    "ErrorModel",
    "Interval",
    "Residual",
    "error_model",
    "fingerprint",
    "interval_for",
    "serving_error_model",
]

DATA_FILE = Path(__file__).parent / "data" / "prediction_error.yaml"
Z90 = 1.2815515655446004
"""The standard normal's 90th percentile."""
COVERAGE = 0.8
"""p10–p90: the interval is meant to hold 80 % of actual values."""
SHRINK_ROWS = 4.0
"""Pseudo-rows of the parent class in each class's location and scale (assumed: a class
of four rows is trusted half as much as its parent)."""
UNSEEN_FLAG_WIDENING = 1.25
"""Assumed widening of the scale per flag that no residual carried (e.g. a serving
prediction judged by a data file without serving residuals)."""
MIN_SCALE = 0.01
"""No class is trusted to better than 1 % (log scale), however tight its residuals."""
_MAD_TO_SIGMA = 1.4826
"""1 / Φ⁻¹(0.75): MAD → standard deviation for normal data."""


@dataclass(frozen=True, slots=True)
class Residual:
    """One cross-validated prediction: ``log(published / predicted)`` of throughput."""

    id: str
    source: str
    chip: str
    split: str
    """``source`` (leave-one-source-out) or ``chip`` (leave-one-chip-out)."""
    chip_kind: str
    flags: tuple[str, ...]
    log_error: float

    @property
    def level(self) -> str:
        return _flag_level(self.chip_kind, self.flags)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "source": self.source, "chip": self.chip, "split": self.split,
            "chip_kind": self.chip_kind, "flags": list(self.flags),
            "log_error": round(self.log_error, 6),
        }  # fmt: skip

    @staticmethod
    def from_dict(raw: Mapping[str, Any]) -> Residual:
        return Residual(
            id=str(raw["id"]), source=str(raw["source"]), chip=str(raw["chip"]),
            split=str(raw["split"]), chip_kind=str(raw["chip_kind"]),
            flags=tuple(str(f) for f in raw.get("flags") or ()),
            log_error=float(raw["log_error"]),
        )  # fmt: skip


def _flag_level(chip_kind: str, flags: Sequence[str]) -> str:
    return f"{chip_kind}|{','.join(sorted(flags)) or 'clean'}"


@dataclass(frozen=True, slots=True)
class ErrorDistribution:
    """``log(actual / predicted)`` of throughput ~ Normal(``log_median``, ``log_sigma``).

    Actual time, chip-hours, cost and energy scale with predicted / actual throughput, so
    their factors are the reciprocals."""

    log_median: float
    log_sigma: float
    rows: int = 0
    """Residual rows of the class itself (before shrinkage)."""
    level: str = ""
    """The class the figures come from (``chip kind|flags``)."""
    assumed: bool = False
    """True when part of the width is an assumption (a flag no residual carried)."""

    def factor(self, z: float) -> float:
        return math.exp(self.log_median + z * self.log_sigma)

    @property
    def p10_factor(self) -> float:
        """Actual ÷ predicted throughput at the 10th percentile."""
        return self.factor(-Z90)

    @property
    def p90_factor(self) -> float:
        return self.factor(Z90)

    @property
    def width(self) -> float:
        """p90 ÷ p10: how many times wider the top of the interval is than its bottom."""
        return self.p90_factor / self.p10_factor

    def sample(self, rng: np.random.Generator, size: int | tuple[int, ...]) -> NDArray[np.float64]:
        """Factors actual ÷ predicted throughput, drawn from the distribution."""
        return np.exp(self.log_median + self.log_sigma * rng.standard_normal(size))

    def to_dict(self) -> dict[str, Any]:
        return {
            "log_median": self.log_median, "log_sigma": self.log_sigma,
            "p10_factor": self.p10_factor, "p90_factor": self.p90_factor,
            "rows": self.rows, "class": self.level, "assumed": self.assumed,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class Interval:
    """p10–p90 of a prediction's throughput and of every figure derived from it."""

    distribution: ErrorDistribution
    figures: dict[str, tuple[float, float]] = field(default_factory=dict)

    @staticmethod
    def of(
        distribution: ErrorDistribution,
        throughput: Mapping[str, float],
        inverse: Mapping[str, float | None] | None = None,
    ) -> Interval:
        """``throughput`` figures move with throughput (tokens/s, MFU); ``inverse`` ones
        with its reciprocal (step time, time to train, chip-hours, cost, energy, $/M
        tokens); None values are left out."""
        lo, hi = distribution.p10_factor, distribution.p90_factor
        figures = {k: (v * lo, v * hi) for k, v in throughput.items()}
        figures |= {k: (v / hi, v / lo) for k, v in (inverse or {}).items() if v is not None}
        return Interval(distribution, figures)

    def __getitem__(self, key: str) -> tuple[float, float]:
        return self.figures[key]

    def to_dict(self) -> dict[str, Any]:
        return {k: [lo, hi] for k, (lo, hi) in self.figures.items()}


def _median(x: NDArray[np.float64]) -> float:
    """``np.median`` of a non-empty vector, exactly (the middle value, or the mean of the
    two middle values), without its general-axis machinery: the cross-validated intervals
    take some 40,000 medians of a few dozen values."""
    s = np.sort(x)
    half = len(s) // 2
    return float(s[half]) if len(s) % 2 else float((s[half - 1] + s[half]) / 2.0)


def _robust(x: NDArray[np.float64]) -> tuple[float, float]:
    median = _median(x)
    return median, max(MIN_SCALE, _MAD_TO_SIGMA * _median(np.abs(x - median)))


@dataclass(frozen=True)
class ErrorModel:
    """Location and conformal scale per evidence class, fitted from residuals."""

    classes: dict[str, tuple[int, float, float]]
    """Class level → (rows, location m, scale s) after shrinkage and the monotone steps."""
    q: float
    """The conformal multiplier of the normalized scores."""
    envelope: Envelope = field(default_factory=Envelope)
    """What the published rows cover (for a user's prediction's evidence)."""
    residuals: tuple[Residual, ...] = ()

    @staticmethod
    def fit(residuals: Iterable[Residual], envelope: Envelope | None = None) -> ErrorModel:
        rows = list(residuals)
        if not rows:
            raise ValueError("the prediction-error model needs at least one residual")
        classes = _classes(rows)
        scores = []
        sources = {r.source for r in rows}
        for source in sorted(sources):  # cross-conformal: a source's scores without it
            held = [r for r in rows if r.source == source and r.split == "source"]
            rest = (
                _classes([r for r in rows if r.source != source]) if len(sources) > 1 else classes
            )
            for r in held:
                _, m, s = _lookup(rest, r.chip_kind, r.flags)
                scores.append(abs(r.log_error - m) / s)
        if not scores:  # no leave-one-source-out residual: score every row in-sample
            scores = [abs(r.log_error - _lookup(classes, r.chip_kind, r.flags)[1])
                      / _lookup(classes, r.chip_kind, r.flags)[2] for r in rows]  # fmt: skip
        n = len(scores)
        rank = min(n, math.ceil((n + 1) * COVERAGE))
        q = float(np.sort(scores)[rank - 1])
        return ErrorModel(classes, q, envelope or Envelope(), tuple(rows))

    def distribution(self, chip_kind: str, flags: Sequence[str]) -> ErrorDistribution:
        level = _flag_level(chip_kind, flags)
        assumed = False
        if level in self.classes:
            n, m, s = self.classes[level]
        else:
            _, m, s = self.classes.get(chip_kind, self.classes["all"])
            n = 0
            seen = {f for lv in self.classes for f in lv.partition("|")[2].split(",")}
            unseen = [f for f in flags if f not in seen]
            s *= UNSEEN_FLAG_WIDENING ** len(unseen)
            assumed = bool(unseen)
            if flags:  # a combination no residual had: at least its widest seen flag
                clean = self.classes.get(f"{chip_kind}|clean", (0, m, s))[2]
                s = max(
                    [s, clean] + [self.classes[lv][2] for lv in self.classes if _has(lv, flags)]
                )
        return ErrorDistribution(m, self.q * s / Z90, n, level, assumed)

    def for_evidence(self, evidence: EvidenceClass) -> ErrorDistribution:
        return self.distribution(evidence.chip_kind, evidence.flags)


def _classes(rows: Sequence[Residual]) -> dict[str, tuple[int, float, float]]:
    """Rows, location and scale per class level, shrunk toward the parent, monotone in
    the evidence (module docstring, step 2)."""
    x_all = np.array([r.log_error for r in rows])
    m0, s0 = _robust(x_all)
    classes: dict[str, tuple[int, float, float]] = {"all": (len(rows), m0, s0)}

    def shrink(x: NDArray[np.float64], parent: tuple[int, float, float]) -> tuple[float, float]:
        n, (m_hat, s_hat) = len(x), _robust(x)
        _, pm, ps = parent
        m = (n * m_hat + SHRINK_ROWS * pm) / (n + SHRINK_ROWS)
        s = math.sqrt((n * s_hat**2 + SHRINK_ROWS * ps**2) / (n + SHRINK_ROWS))
        return m, s

    by_kind: dict[str, list[float]] = defaultdict(list)
    by_level: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        by_kind[r.chip_kind].append(r.log_error)
        by_level[r.level].append(r.log_error)
    widest = 0.0
    for chip_kind in CHIP_KINDS:  # from most to least evidence: the scale never shrinks
        x = np.array(by_kind.get(chip_kind, []))
        m, s = shrink(x, classes["all"]) if len(x) else (m0, s0)
        widest = max(widest, s)
        classes[chip_kind] = (len(x), m, widest)
    for level, values in by_level.items():
        kind = level.partition("|")[0]
        m, s = shrink(np.array(values), classes[kind])
        classes[level] = (len(values), m, max(s, classes[kind][2]))
    every = {lv.partition("|")[2] for lv in classes if "|" in lv} - {"clean"}
    for flags in ["clean", *sorted(every)]:  # clean first: a flag never narrows
        running = 0.0  # along the chip kinds, for the same flags: never narrower
        for chip_kind in CHIP_KINDS:
            level = f"{chip_kind}|{flags}"
            n, m, s = classes.get(level, (0, *classes[chip_kind][1:]))
            if flags != "clean":
                s = max(s, classes[f"{chip_kind}|clean"][2])
            running = max(running, s)
            classes[level] = (n, m, running)
    return classes


def _lookup(
    classes: Mapping[str, tuple[int, float, float]], chip_kind: str, flags: Sequence[str]
) -> tuple[int, float, float]:
    """A class's figures, or its chip kind's when no residual had that class."""
    level = _flag_level(chip_kind, flags)
    if level in classes:
        return classes[level]
    _, m, s = classes.get(chip_kind, classes["all"])
    return 0, m, s


def _has(level: str, flags: Sequence[str]) -> bool:
    kind_flags = level.partition("|")[2]
    return bool(kind_flags) and kind_flags != "clean" and set(kind_flags.split(",")) <= set(flags)


def fingerprint(paths: Iterable[Path]) -> str:
    """SHA-256 of the files the residuals were computed from (cases and priors)."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@cache
def _load(path: str) -> ErrorModel:
    def read() -> ErrorModel:
        raw = read_yaml(Path(path)) or {}
        residuals = [Residual.from_dict(r) for r in raw.get("residuals") or []]
        return ErrorModel.fit(residuals, Envelope.from_dict(raw.get("envelope") or {}))

    if Path(path) != DATA_FILE:
        return read()
    from chipmix.common.cache import cached

    return cached(DATA_FILE.parent, ErrorModel, read)  # the fit, once per shipped file


def error_model(path: Path | None = None) -> ErrorModel:
    """The shipped prediction-error model (fitted from ``data/prediction_error.yaml``; the
    fit is cached with the parsed catalog, `chipmix.common.cache`)."""
    return _load(str(path or DATA_FILE))


@cache
def _load_serving(path: str) -> ErrorModel | None:
    section = (read_yaml(Path(path)) or {}).get("serving") or {}
    residuals = [Residual.from_dict(r) for r in section.get("residuals") or []]
    if not residuals:
        return None
    return ErrorModel.fit(residuals, Envelope.from_dict(section.get("envelope") or {}))


def serving_error_model(path: Path | None = None) -> ErrorModel:
    """The serving prediction-error model: fitted from the leave-one-source-out residuals
    of the published serving rows (the data file's ``serving`` section). A file without
    them falls back to the training model, whose ``serving`` flag is then unseen and
    widened by the assumed `UNSEEN_FLAG_WIDENING`."""
    return _load_serving(str(path or DATA_FILE)) or error_model(path)


def interval_for(evidence: EvidenceClass) -> ErrorDistribution:
    """The distribution of actual ÷ predicted throughput for a prediction of this evidence
    class: ``log_median`` and ``log_sigma`` of its logarithm, p10/p90 factors, `sample`.
    This is what the planner's futures and the simulator draw from."""
    return error_model().for_evidence(evidence)
