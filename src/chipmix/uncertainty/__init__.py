"""How far a prediction can be off: its evidence and its p10–p90 interval.

`evidence` says where a prediction's parameters came from (a chip fitted on N published
runs, borrowed from its family, its datasheet only; a stack fitted or inherited; a
precision or chip count beyond what was validated). `interval` turns that evidence class
into a distribution of the ratio actual / predicted throughput, estimated from
cross-validated residuals (``data/prediction_error.yaml``, written by
``scripts/prediction-error``).
"""

from chipmix.uncertainty.evidence import Envelope, EvidenceClass, classify, evidence_for
from chipmix.uncertainty.interval import (
    ErrorDistribution,
    ErrorModel,
    Interval,
    error_model,
    interval_for,
)

__all__ = [
    "Envelope",
    "ErrorDistribution",
    "ErrorModel",
    "EvidenceClass",
    "Interval",
    "classify",
    "error_model",
    "evidence_for",
    "interval_for",
]
