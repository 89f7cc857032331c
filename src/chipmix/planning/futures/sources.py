"""Uncertainty sources a scenario may name (pydantic): what a user writes under ``futures:``.

Each source is one distribution with its ``source`` (a citation, or "assumption: " and
why) and what it applies to::

    futures:
      target: 90%                    # wanted P(every deadline met) of the robust plan
      sources:
        - kind: performance          # the model's prediction error: run time × factor
          chips: [mi300x]            # (default every chip; without this source, the
          dist: lognormal            #  default by evidence class, `model_error`)
          sigma: 0.25
          source: "assumption: ..."
        - kind: price                # per-use price × factor, per offer family
          family: aws                # a cloud, a vendor or an offer id (default: every)
          dist: lognormal
          sigma: 0.10
          source: "..."
        - kind: capacity             # fraction of an offer's chips actually delivered
          vendor: amd
          dist: uniform
          low: 0.5
          high: 1.0
          source: "..."
        - kind: delay                # days before a vendor's offers deliver, when late
          vendor: nvidia
          probability: 0.3
          dist: triangular
          low: 14
          mode: 30
          high: 90
          source: "..."
        - kind: outage               # Poisson outages of a vendor, cloud or region
          cloud: azure
          rate_per_year: 2
          dist: uniform              # duration of one outage, days
          low: 1
          high: 7
          source: "..."
        - kind: failures             # interruptions per 1000 chip-days; hours lost each
          vendor: amd
          dist: lognormal
          median: 0.5
          sigma: 0.5
          hours_lost: 2.0
          source: "..."

Every parameter is checked against the range its quantity allows: an impossible one is an
error naming the source, the parameter and the valid range.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

__all__ = [
    "DISTRIBUTIONS",
    "KINDS",
    "Distribution",
    "FuturesSpec",
    "Kind",
    "SourceSpec",
    "draw",
]

Kind = Literal["performance", "price", "capacity", "delay", "outage", "failures"]
KINDS: tuple[Kind, ...] = ("performance", "price", "capacity", "delay", "outage", "failures")
DISTRIBUTIONS = ("lognormal", "uniform", "triangular", "fixed")

_RANGE: dict[Kind, tuple[float, float, str]] = {
    "performance": (0.0, np.inf, "a run-time factor lies in (0, ∞)"),
    "price": (0.0, np.inf, "a price factor lies in (0, ∞)"),
    "capacity": (0.0, 1.0, "a delivered-capacity fraction lies in [0, 1]"),
    "delay": (0.0, 3650.0, "a delivery delay lies in [0, 3650] days"),
    "outage": (0.0, 3650.0, "an outage lasts (0, 3650] days"),
    "failures": (0.0, 1e4, "interruptions per 1000 chip-days lie in [0, 10000]"),
}
"""The valid range of each kind's sampled quantity."""
_OPEN_LOW: frozenset[Kind] = frozenset({"performance", "price", "outage"})
"""Kinds whose quantity must be strictly above the range's low end."""
_MAX_SIGMA = 2.0
"""A lognormal sigma of 2 spans a factor e⁴ ≈ 55 between p16 and p84: beyond, a typo."""


class Distribution(BaseModel):
    """One distribution: ``dist`` and its parameters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dist: Literal["lognormal", "uniform", "triangular", "fixed"] = "lognormal"
    median: float | None = None
    """lognormal: the median (default: 1 for factors)."""
    sigma: float | None = None
    """lognormal: the standard deviation of the log."""
    low: float | None = None
    mode: float | None = None
    high: float | None = None
    value: float | None = None
    """fixed: the one value."""

    def parameters(self) -> dict[str, float]:
        """The parameters the distribution uses, with their defaults."""
        if self.dist == "lognormal":
            return {"median": 1.0 if self.median is None else self.median,
                    "sigma": 0.0 if self.sigma is None else self.sigma}  # fmt: skip
        if self.dist == "fixed":
            return {"value": np.nan if self.value is None else self.value}
        out = {"low": self.low, "high": self.high}
        if self.dist == "triangular":
            out["mode"] = self.mode
        return {k: np.nan if v is None else v for k, v in out.items()}


class SourceSpec(Distribution):
    """One uncertainty source: its kind, what it applies to, its distribution, its source."""

    kind: Kind
    chips: list[str] | None = None
    """performance: the chips it applies to (default: every chip)."""
    family: str | None = None
    """price: a cloud, vendor or offer id (default: every offer)."""
    vendor: str | None = None
    cloud: str | None = None
    region: str | None = None
    probability: float = Field(default=1.0, ge=0, le=1)
    """delay: the chance the vendor delivers late at all."""
    rate_per_year: float = Field(default=0.0, ge=0, le=365)
    """outage: outages per year (Poisson)."""
    hours_lost: float = Field(default=2.0, ge=0, le=720)
    """failures: hours of the whole run lost per interruption (restart + lost work)."""
    source: str = Field(min_length=1)
    """A citation, or "assumption: " and why."""

    @field_validator("chips")
    @classmethod
    def _chips(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("chips: give at least one chip id, or leave the key out")
        return value

    @model_validator(mode="after")
    def _in_range(self) -> SourceSpec:
        _check(self)
        return self

    @property
    def subject(self) -> str:
        """What the source applies to, in words."""
        for key in ("family", "vendor", "cloud", "region"):
            if (v := getattr(self, key)) is not None:
                return f"{key} {v}"
        if self.chips:
            return "chips " + ",".join(self.chips)
        return "every offer"

    @property
    def label(self) -> str:
        return f"{self.kind} source ({self.subject})"


def _fail(spec: SourceSpec, parameter: str, value: float, valid: str) -> None:
    raise PydanticCustomError(
        "futures_range",
        "{label}: {parameter} = {value} is impossible; valid: {valid}",
        {"label": spec.label, "parameter": parameter, "value": f"{value:g}", "valid": valid},
    )


def _check(spec: SourceSpec) -> None:
    """Every parameter inside the range its kind allows, else an error naming source,
    parameter and valid range."""
    lo, hi, words = _RANGE[spec.kind]
    open_low = spec.kind in _OPEN_LOW
    low_txt = f"({lo:g}" if open_low else f"[{lo:g}"
    valid = f"{low_txt}, {hi:g}] ({words})"
    params = spec.parameters()
    for name, value in params.items():
        if np.isnan(value):
            _fail(spec, name, value, f"a number is required for dist {spec.dist}")
    if spec.dist == "lognormal":
        if not params["median"] > 0:
            _fail(spec, "median", params["median"], "(0, ∞)")
        if not 0 <= params["sigma"] <= _MAX_SIGMA:
            _fail(spec, "sigma", params["sigma"], f"[0, {_MAX_SIGMA:g}]")
        if spec.kind == "capacity":
            _fail(spec, "dist", 0.0, "uniform, triangular or fixed (a fraction ≤ 1)")
        return
    for name, value in params.items():
        bad = value < lo or value > hi or (open_low and value <= lo)
        if bad:
            _fail(spec, name, value, valid)
    if spec.dist in ("uniform", "triangular") and params["low"] > params["high"]:
        _fail(spec, "low", params["low"], f"≤ high ({params['high']:g})")
    if spec.dist == "triangular" and not params["low"] <= params["mode"] <= params["high"]:
        _fail(spec, "mode", params["mode"], f"[low, high] = [{params['low']:g}, "
              f"{params['high']:g}]")  # fmt: skip


def draw(spec: Distribution, rng: np.random.Generator, size: int | None = None) -> Any:
    """Samples of the distribution (one float, or an array of ``size``)."""
    p = spec.parameters()
    if spec.dist == "lognormal":
        return p["median"] * np.exp(p["sigma"] * rng.standard_normal(size))
    if spec.dist == "uniform":
        return rng.uniform(p["low"], p["high"], size)
    if spec.dist == "triangular":
        if p["low"] == p["high"]:
            return np.full(size, p["low"]) if size is not None else p["low"]
        return rng.triangular(p["low"], p["mode"], p["high"], size)
    return np.full(size, p["value"]) if size is not None else p["value"]


class FuturesSpec(BaseModel):
    """The ``futures:`` block of a scenario."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    target: float = Field(default=0.9, gt=0, le=1)
    """Wanted P(every deadline met) of the robust plan (the chance constraint)."""
    default_performance: bool = True
    """Without a performance source for a chip, sample the model's error by its evidence
    class (`chipmix.planning.futures.model_error`)."""
    sources: list[SourceSpec] = Field(default_factory=list)

    @field_validator("target", mode="before")
    @classmethod
    def _percent(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().endswith("%"):
            try:
                return float(value.strip()[:-1]) / 100.0
            except ValueError:
                return value
        return value
