"""The model's own prediction error per chip, as a distribution of the run-time factor.

This is the interface the futures sample through: `model_error(catalog, chip)` returns the
lognormal median and sigma of ``actual time / predicted time`` for runs on ``chip`` and the
evidence class they come from. The figures are the prediction-error model of
`chipmix.uncertainty` (cross-validated residuals per evidence class: chip fitted on
published runs, few runs, borrowed from its family, datasheet only), taken for the chip's
reference stack at bf16. That model describes ``log(actual / predicted)`` of throughput as
Normal(m, s); run time is its reciprocal, so the time factor is lognormal(-m, s).

A scenario's own ``performance`` source replaces it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from chipmix.catalog.catalog import Catalog
from chipmix.uncertainty.evidence import evidence_for
from chipmix.uncertainty.interval import error_model

__all__ = ["ModelError", "model_error"]


@dataclass(frozen=True, slots=True)
class ModelError:
    """The run-time factor's distribution for one chip: lognormal(median, sigma)."""

    chip: str
    evidence: str
    """The evidence class (`chipmix.uncertainty`): fitted, few, family or datasheet."""
    median: float
    sigma: float
    source: str


def model_error(catalog: Catalog, chip: str) -> ModelError:
    """The prediction-error distribution of runs on ``chip``."""
    model = error_model()
    vendor = catalog.chip(chip).vendor
    evidence = evidence_for(
        model.envelope,
        catalog.calibration,
        chip=chip,
        stack=catalog.calibration.stack_name(None, vendor),
        precision="bf16",
        chips=1,
    )
    dist = model.for_evidence(evidence)
    return ModelError(
        chip=chip,
        evidence=evidence.chip_kind,
        median=math.exp(-dist.log_median),
        sigma=dist.log_sigma,
        source=f"cross-validated prediction error, class {dist.level or evidence.chip_kind} "
        f"({dist.rows} published rows{'; partly assumed' if dist.assumed else ''}; "
        "chipmix.uncertainty)",
    )
