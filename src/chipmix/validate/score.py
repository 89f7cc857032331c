"""Predict every case and score the prediction against the published figure.

``error = predicted / published − 1`` in the row's own metric (tokens/s or step time).
A row whose layout is partly empty is predicted with the best layout the search finds
with the stated axes pinned. Rows that cannot be predicted keep their reason.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chipmix.catalog.calibration import Calibration
from chipmix.catalog.catalog import Catalog
from chipmix.errors import ChipmixError
from chipmix.layouts.search import run_search
from chipmix.perf.layout import Layout, LayoutBatch
from chipmix.perf.step import evaluate
from chipmix.validate.cases import Case
from chipmix.workload.job import Job

__all__ = ["CaseScore", "Scorecard", "case_job", "predict_case", "score_cases", "summarize"]


@dataclass(frozen=True)
class CaseScore:
    """One row: the prediction, or the reason there is none."""

    id: str
    chip: str
    stack: str
    source: str
    metric: str
    published: float
    predicted: float | None = None
    layout: Layout | None = None
    reason: str | None = None
    """Why the row could not be predicted (None when it was)."""
    predicted_p10: float | None = None
    predicted_p90: float | None = None
    """The prediction's p10–p90 interval in the row's own metric (`chipmix.uncertainty`)."""

    @property
    def covered(self) -> bool | None:
        """Whether the published value lies inside [p10, p90] (None without an interval)."""
        if self.predicted_p10 is None or self.predicted_p90 is None:
            return None
        return self.predicted_p10 <= self.published <= self.predicted_p90

    @property
    def error(self) -> float | None:
        return None if self.predicted is None else self.predicted / self.published - 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "chip": self.chip, "stack": self.stack, "metric": self.metric,
            "published": self.published, "predicted": self.predicted, "error": self.error,
            "predicted_p10": self.predicted_p10, "predicted_p90": self.predicted_p90,
            "layout": None if self.layout is None else self.layout.as_dict(),
            "reason": self.reason,
        }  # fmt: skip


def _stats(errors: Sequence[float]) -> dict[str, float | int]:
    if not errors:
        return {"count": 0}
    a = np.abs(np.asarray(errors))
    return {
        "count": len(errors),
        "median_abs_error": float(np.median(a)),
        "p90_abs_error": float(np.percentile(a, 90)),
        "mean_signed_error": float(np.mean(errors)),
    }


@dataclass(frozen=True)
class Scorecard:
    """Per-row scores and their summary overall, per chip and per stack."""

    rows: list[CaseScore]
    cross_validated: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def predicted(self) -> list[CaseScore]:
        return [r for r in self.rows if r.error is not None]

    @property
    def unpredicted(self) -> list[CaseScore]:
        return [r for r in self.rows if r.error is None]

    def summary(self) -> dict[str, Any]:
        errors = [r.error for r in self.predicted if r.error is not None]
        out: dict[str, Any] = _stats(errors)
        out["count"] = len(errors)
        out["unpredicted"] = len(self.unpredicted)
        covered = [r.covered for r in self.predicted if r.covered is not None]
        out["interval_coverage"] = sum(covered) / len(covered) if covered else None
        for key in ("chip", "stack"):
            groups: dict[str, list[float]] = defaultdict(list)
            for r in self.predicted:
                groups[getattr(r, key)].append(r.error)  # type: ignore[arg-type]
            out[f"per_{key}"] = {k: _stats(v) for k, v in sorted(groups.items())}
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "cross_validated": self.cross_validated,
            "rows": [r.to_dict() for r in self.rows],
            "summary": self.summary(),
            "notes": self.notes,
        }


def case_job(case: Case) -> Job:
    """The job a case describes (its global batch must be known)."""
    row = case.row
    assert row.global_batch_seqs is not None
    return Job(
        model=case.model,
        mode=row.mode,
        seq_len=row.seq_len,
        global_batch=row.global_batch_seqs,
        precision=row.precision,
        precision_recipe=case.precision_recipe,
        stack=case.stack,
        loss_tiles=row.loss_tiles,
    )


def predict_case(
    case: Case,
    catalog: Catalog,
    calibration: Calibration | None = None,
    layout: Layout | None = None,
) -> CaseScore:
    """Predict one case. With ``layout`` given, that layout is evaluated as is (used by
    the fitter); otherwise the search fills the axes the row leaves empty."""
    row = case.row
    calibration = calibration or catalog.calibration
    base = CaseScore(
        id=row.id,
        chip=row.chip,
        stack=case.stack,
        source=row.source,
        metric=row.metric,
        published=row.value,
    )
    if row.global_batch_seqs is None:
        return _with(
            base,
            reason="global batch not published (needed for the pipeline "
            "schedule and data-parallel degree)",
        )
    try:
        system = catalog.system(row.chip)
        job = case_job(case)
        if layout is None:
            outcome = run_search(job, system, row.chips, calibration, case.pinned_layout)
            layout = outcome.layout(0)
            tps = float(outcome.result.tokens_per_s[0])
        else:
            tps = float(
                evaluate(job, system, calibration, LayoutBatch.of([layout])).tokens_per_s[0]
            )
    except ChipmixError as exc:
        return _with(base, reason=str(exc))
    predicted = tps if row.metric == "tokens_per_s" else job.tokens_per_step / tps
    return _with(base, predicted=predicted, layout=layout)


def _with(base: CaseScore, **changes: Any) -> CaseScore:
    from dataclasses import replace

    return replace(base, **changes)


def score_cases(
    cases: Iterable[Case], catalog: Catalog, calibration: Calibration | None = None
) -> Scorecard:
    return Scorecard([predict_case(c, catalog, calibration) for c in cases])


def summarize(scores: Scorecard) -> dict[str, Any]:
    return scores.summary()
