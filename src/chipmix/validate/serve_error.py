"""The serving section of the prediction-error file: held-out serving residuals per
evidence class.

Every published serving row is predicted by serving parameters fitted without its source
(`chipmix.validate.serve_crossval`); its residual ``log(published / predicted)`` of
throughput (a latency row counts as the reciprocal of a throughput) is stored with the
row's evidence class as that fold saw it: the serving rows of its chip, stack and
precision in the fold's training set, flagged ``serving``. `serving_error_model` in
`chipmix.uncertainty.interval` fits the serving intervals from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chipmix.catalog.catalog import Catalog
from chipmix.uncertainty.evidence import Envelope, evidence_for
from chipmix.uncertainty.interval import Residual, fingerprint
from chipmix.validate.score import Scorecard
from chipmix.validate.serve_cases import DEFAULT_SERVE_CASES, ServeCase, read_serve_cases
from chipmix.validate.serve_crossval import (
    serve_leave_one_source_out,
    serving_residuals,
    source_of,
)

__all__ = [
    "LATENCY_METRICS",
    "serving_envelope",
    "serving_error_residuals",
    "serving_inputs_fingerprint",
    "serving_section",
]

LATENCY_METRICS = frozenset({"ttft_ms", "tpot_ms"})
"""Metrics that fall as throughput rises: their log error is the throughput's, negated."""


def serving_envelope(cases: Sequence[ServeCase]) -> Envelope:
    """What the predictable serving rows cover: rows, largest chip count and precisions
    per chip, rows per stack."""
    rows: dict[str, int] = {}
    max_chips: dict[str, int] = {}
    precisions: dict[str, set[str]] = {}
    stacks: dict[str, int] = {}
    for case in cases:
        if case.refusal is not None:
            continue
        row = case.row
        rows[row.chip] = rows.get(row.chip, 0) + 1
        max_chips[row.chip] = max(max_chips.get(row.chip, 0), row.chips)
        precisions.setdefault(row.chip, set()).add(row.precision)
        stacks[row.stack] = stacks.get(row.stack, 0) + 1
    return Envelope(
        chip_rows=rows,
        chip_max_chips=max_chips,
        chip_precisions={k: tuple(sorted(v)) for k, v in precisions.items()},
        stack_rows=stacks,
    )


def serving_error_residuals(
    cases: Sequence[ServeCase], catalog: Catalog, card: Scorecard | None = None
) -> list[Residual]:
    """Every predicted row's leave-one-source-out residual of throughput, with its
    evidence class as its fold saw it (``card``: the cross-validated scorecard, if
    already computed)."""
    card = card or serve_leave_one_source_out(cases, catalog)
    by_id = {c.id: c for c in cases}
    out = []
    for r in serving_residuals(cases, catalog, card):
        row = by_id[r.id].row
        fold = serving_envelope([c for c in cases if source_of(c) != r.source])
        evidence = evidence_for(
            fold, catalog.calibration, chip=row.chip, stack=row.stack,
            precision=row.precision, chips=row.chips, mode="serving",
        )  # fmt: skip
        # r.log_error is log(predicted / published) in the row's metric
        x = r.log_error if r.metric in LATENCY_METRICS else -r.log_error
        out.append(
            Residual(r.id, r.source, row.chip, "source", evidence.chip_kind, evidence.flags, x)
        )
    return out


def serving_inputs_fingerprint(cases_file: Path = DEFAULT_SERVE_CASES) -> str:
    """The published serving rows the serving residuals were computed from."""
    return fingerprint([cases_file])


def serving_section(catalog: Catalog, cases_file: Path = DEFAULT_SERVE_CASES) -> dict[str, Any]:
    """The data file's ``serving`` section: fingerprint, envelope and residuals."""
    cases = read_serve_cases(cases_file)
    rows = serving_error_residuals(cases, catalog)
    return {
        "fingerprint": serving_inputs_fingerprint(cases_file),
        "cases": len(cases),
        "envelope": serving_envelope(cases).to_dict(),
        "residuals": [r.to_dict() for r in rows],
    }
