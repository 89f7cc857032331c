"""The model's own prediction error per chip, as a distribution of the run-time factor.

This is the interface the futures sample through: `model_error(catalog, chip)` returns the
lognormal sigma of ``actual time / predicted time`` for runs on ``chip`` and the evidence
class it comes from. Until the cross-validated residuals per evidence class are in the
catalog, it is a stated, conservative assumption:

- ``fitted`` — the chip has parameters fitted on published runs (``calibration.parameters``):
  sigma 0.15. The fit's in-sample median |error| is 0.088 (calibration-fitted.yaml); for a
  lognormal, median |log error| = 0.674 σ, so in-sample σ ≈ 0.13; out of sample is wider.
- ``family`` — not fitted, but a chip of the same vendor is (its efficiencies borrowed):
  sigma 0.25 (assumption: about twice the fitted class's out-of-sample spread).
- ``datasheet`` — nothing of its vendor is fitted (datasheet peaks, default efficiencies):
  sigma 0.35 (assumption: extrapolated chips wider still).

The median is 1 (the model unbiased). A scenario's own ``performance`` source replaces it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from chipmix.catalog.catalog import Catalog

__all__ = ["SIGMA_BY_EVIDENCE", "Evidence", "ModelError", "model_error"]

Evidence = Literal["fitted", "family", "datasheet"]
SIGMA_BY_EVIDENCE: dict[Evidence, float] = {"fitted": 0.15, "family": 0.25, "datasheet": 0.35}
"""Lognormal sigma of the run-time factor by evidence class (assumptions, see above)."""


@dataclass(frozen=True, slots=True)
class ModelError:
    """The run-time factor's distribution for one chip: lognormal(median, sigma)."""

    chip: str
    evidence: Evidence
    median: float
    sigma: float
    source: str


def model_error(catalog: Catalog, chip: str) -> ModelError:
    """The prediction-error distribution of runs on ``chip``."""
    fitted = {
        str(p.get("key"))
        for p in catalog.calibration.parameters
        if str(p.get("scope", "chip")) == "chip"
    }
    vendor = catalog.chip(chip).vendor
    family = {c for c in fitted if c in catalog.chips and catalog.chip(c).vendor == vendor}
    evidence: Evidence = "fitted" if chip in fitted else "family" if family else "datasheet"
    sigma = SIGMA_BY_EVIDENCE[evidence]
    return ModelError(
        chip=chip,
        evidence=evidence,
        median=1.0,
        sigma=sigma,
        source=f"assumption: {evidence} evidence class, lognormal sigma {sigma:g} "
        "(chipmix.planning.futures.model_error)",
    )
