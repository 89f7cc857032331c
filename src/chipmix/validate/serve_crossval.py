"""Leave-one-source-out for serving, and the cross-validated residuals intervals use.

Every row is predicted by serving parameters fitted without its source (the benchmark
round, documentation page or recipe it comes from): the error measures how the serving
model generalizes to a new publication. `serving_residuals` returns those signed log
errors per row with the row's chip, stack and scenario, for prediction intervals.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chipmix.catalog.catalog import Catalog
from chipmix.validate.score import CaseScore, Scorecard
from chipmix.validate.serve_cases import ServeCase
from chipmix.validate.serve_fit import fit_serving, prior_layouts
from chipmix.validate.serve_score import predict_layout

__all__ = ["ServeResidual", "serve_leave_one_source_out", "serving_residuals", "source_of"]


def source_of(case: ServeCase) -> str:
    """The publication a row comes from (the rule of `validate.crossval.source_key`)."""
    return case.row.source.split(" (")[0].strip()


def serve_leave_one_source_out(
    cases: Sequence[ServeCase], catalog: Catalog, *, max_evaluations: int = 200
) -> Scorecard:
    """Each source's rows predicted by a fit on every other source."""
    groups: dict[str, list[ServeCase]] = defaultdict(list)
    for case in cases:
        groups[source_of(case)].append(case)
    scores: dict[str, CaseScore] = {}
    start = prior_layouts(cases, catalog)  # the same for every fold: computed once
    for held_out, rows in groups.items():
        training = [c for c in cases if source_of(c) != held_out]
        fitted = fit_serving(
            training, catalog, rounds=1, max_evaluations=max_evaluations, layouts=start
        )
        for case in rows:
            scores[case.id] = predict_layout(case, catalog, fitted.calibration)[0]
    notes = [f"{len(groups)} sources, each predicted by serving parameters fitted without it"]
    return Scorecard([scores[c.id] for c in cases], cross_validated=True, notes=notes)


@dataclass(frozen=True)
class ServeResidual:
    """One row's cross-validated signed log error, log(predicted / published)."""

    id: str
    chip: str
    stack: str
    scenario: str
    metric: str
    source: str
    log_error: float

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "chip": self.chip, "stack": self.stack,
                "scenario": self.scenario, "metric": self.metric, "source": self.source,
                "log_error": self.log_error}  # fmt: skip


def serving_residuals(
    cases: Sequence[ServeCase], catalog: Catalog, card: Scorecard | None = None
) -> list[ServeResidual]:
    """Leave-one-source-out residuals of every predicted row (``card``: a cross-validated
    scorecard already computed for ``cases``)."""
    card = card or serve_leave_one_source_out(cases, catalog)
    by_id = {c.id: c for c in cases}
    out = []
    for r in card.rows:
        if r.predicted is None:
            continue
        case = by_id[r.id]
        out.append(
            ServeResidual(
                r.id,
                r.chip,
                r.stack,
                case.row.scenario,
                r.metric,
                source_of(case),
                math.log(r.predicted / r.published),
            )
        )
    return out
