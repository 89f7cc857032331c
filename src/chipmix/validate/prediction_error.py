"""The cross-validated residuals behind every prediction's interval, and their file.

Each published row is predicted twice by a calibration that never saw it: leaving its
source out, and leaving its chip out. Each residual ``log(published / predicted)`` of
throughput is stored with the row's evidence class as that fold saw it (the rows of its
chip, family and stack in the fold's training set), so a prediction for a chip with no
published run is judged by how chips were predicted when their own rows were held out.
`chipmix.uncertainty.interval` fits the error model from this file;
``scripts/prediction-error`` rewrites it (``python -m chipmix.validate.prediction_error``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from chipmix.catalog.catalog import Catalog, load_catalog
from chipmix.common.files import read_yaml
from chipmix.uncertainty.evidence import Envelope, evidence_for
from chipmix.uncertainty.interval import (
    DATA_FILE,
    Z90,
    ErrorModel,
    Residual,
    error_model,
    fingerprint,
)
from chipmix.validate import crossval
from chipmix.validate.cases import CALIBRATION_CASES, Case, read_case_files
from chipmix.validate.fit import fit_calibration
from chipmix.validate.score import CaseScore, Scorecard, predict_case
from chipmix.validate.serve_error import serving_section

if TYPE_CHECKING:
    from chipmix.uncertainty.interval import ErrorDistribution

__all__ = [
    "envelope_of",
    "inputs_fingerprint",
    "nested_coverage",
    "residuals",
    "with_intervals",
    "write_prediction_error",
    "write_serving_residuals",
]

HEADER = (
    "# Written by scripts/prediction-error; do not edit by hand.\n"
    "# Cross-validated residuals log(published / predicted) of throughput per evidence\n"
    "# class (chipmix.validate.prediction_error), and what the published rows cover; the\n"
    "# serving section holds the same for the published serving rows\n"
    "# (chipmix.validate.serve_error).\n"
)


def envelope_of(cases: Sequence[Case]) -> Envelope:
    """What the rows a calibration can be fitted from cover (rows with a known global batch)."""
    rows: dict[str, int] = {}
    max_chips: dict[str, int] = {}
    precisions: dict[str, set[str]] = {}
    stacks: dict[str, int] = {}
    for case in cases:
        row = case.row
        if row.global_batch_seqs is None:
            continue
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


def _leave_one_chip_out(cases: Sequence[Case], catalog: Catalog) -> Scorecard:
    """Every chip's rows predicted by a calibration fitted without that chip."""
    scores: dict[str, CaseScore] = {}
    for chip in sorted({c.row.chip for c in cases}):
        training = [c for c in cases if c.row.chip != chip]
        fitted = fit_calibration(training, catalog, rounds=1).calibration
        for case in cases:
            if case.row.chip == chip:
                scores[case.id] = predict_case(case, catalog, fitted)
    return Scorecard([scores[c.id] for c in cases], cross_validated=True)


def _residuals_of(
    card: Scorecard,
    cases: Sequence[Case],
    catalog: Catalog,
    split: str,
    held_out: Callable[[Case], str],
) -> list[Residual]:
    by_id = {c.id: c for c in cases}
    out = []
    for score in card.predicted:
        case = by_id[score.id]
        assert score.predicted is not None
        training = [c for c in cases if held_out(c) != held_out(case)]
        row = case.row
        evidence = evidence_for(
            envelope_of(training), catalog.calibration, chip=row.chip, stack=row.stack,
            precision=row.precision, chips=row.chips,
        )  # fmt: skip
        ratio = score.predicted / score.published  # predicted/published in the row's metric
        log_tps_ratio = math.log(ratio) if row.metric == "tokens_per_s" else -math.log(ratio)
        out.append(
            Residual(
                id=case.id, source=crossval.source_key(case), chip=row.chip, split=split,
                chip_kind=evidence.chip_kind, flags=evidence.flags, log_error=-log_tps_ratio,
            )
        )  # fmt: skip
    return out


def residuals(cases: Sequence[Case], catalog: Catalog) -> list[Residual]:
    """Leave-one-source-out and leave-one-chip-out residuals of every predictable row."""
    by_source = crossval.leave_one_source_out(cases, catalog)
    loco: Callable[[Sequence[Case], Catalog], Scorecard] = getattr(
        crossval, "leave_one_chip_out", _leave_one_chip_out
    )
    by_chip = loco(cases, catalog)
    return _residuals_of(by_source, cases, catalog, "source", crossval.source_key) + (
        _residuals_of(by_chip, cases, catalog, "chip", lambda c: c.row.chip)
    )


def inputs_fingerprint(cases_files: Sequence[Path] = CALIBRATION_CASES) -> str:
    """The published rows the residuals were computed from (every file the shipped
    calibration is fitted on). A change to the model or to its priors changes the
    residuals too without changing this; rerun ``scripts/prediction-error`` after one that
    moves the validation errors."""
    return fingerprint(list(cases_files))


def write_prediction_error(
    out: Path = DATA_FILE, cases_files: Sequence[Path] = CALIBRATION_CASES
) -> int:
    """Recompute the training and serving residuals over the calibration's published rows
    and write the file; returns the number of residuals."""
    cases = read_case_files(cases_files)
    catalog = load_catalog()
    rows = residuals(cases, catalog)
    body: dict[str, Any] = {
        "fingerprint": inputs_fingerprint(cases_files),
        "date": date.today().isoformat(),
        "cases": len(cases),
        "envelope": envelope_of(cases).to_dict(),
        "residuals": [r.to_dict() for r in rows],
        "serving": serving_section(catalog),
    }
    out.write_text(HEADER + yaml.safe_dump(body, sort_keys=False, width=100))
    return len(rows) + len(body["serving"]["residuals"])


def write_serving_residuals(out: Path = DATA_FILE) -> int:
    """Recompute only the serving section (after a change to the serving model or its
    rows), keeping the training residuals; returns the number of serving residuals."""
    body = dict(read_yaml(out) or {})
    body["serving"] = serving_section(load_catalog())
    out.write_text(HEADER + yaml.safe_dump(body, sort_keys=False, width=100))
    return len(body["serving"]["residuals"])


def nested_coverage(rows: Sequence[Residual]) -> dict[str, bool]:
    """Leave-one-source-out coverage of the error model itself: each source's
    leave-one-source-out residuals judged by an error model fitted without any residual of
    that source. Row id → whether its published value lies inside the p10–p90 interval."""
    out: dict[str, bool] = {}
    for source in sorted({r.source for r in rows}):
        model = ErrorModel.fit([r for r in rows if r.source != source])
        for r in rows:
            if r.source == source and r.split == "source":
                dist = model.distribution(r.chip_kind, r.flags)
                out[r.id] = abs(r.log_error - dist.log_median) <= Z90 * dist.log_sigma
    return out


def with_intervals(card: Scorecard, cases: Sequence[Case], catalog: Catalog) -> Scorecard:
    """The scorecard with every prediction's p10–p90 interval in the row's own metric.

    In-sample: the shipped error model and every published row as evidence. Cross-validated
    (leaving sources out): each row's evidence as its fold saw it, and an error model fitted
    without any residual of its source, so the coverage is an honest one."""
    shipped = error_model()
    by_id = {c.id: c for c in cases}
    models: dict[str, ErrorModel] = {}
    full = envelope_of(cases)
    rows = []
    for score in card.rows:
        case = by_id.get(score.id)
        if score.predicted is None or case is None:
            rows.append(score)
            continue
        row = case.row
        source = crossval.source_key(case)
        if card.cross_validated:
            if source not in models:
                models[source] = ErrorModel.fit(
                    [r for r in shipped.residuals if r.source != source]
                )
            model = models[source]
            envelope = envelope_of([c for c in cases if crossval.source_key(c) != source])
        else:
            model, envelope = shipped, full
        evidence = evidence_for(
            envelope, catalog.calibration, chip=row.chip, stack=row.stack,
            precision=row.precision, chips=row.chips,
        )  # fmt: skip
        dist: ErrorDistribution = model.for_evidence(evidence)
        lo, hi = dist.p10_factor, dist.p90_factor
        if row.metric == "tokens_per_s":
            p10, p90 = score.predicted * lo, score.predicted * hi
        else:
            p10, p90 = score.predicted / hi, score.predicted / lo
        rows.append(replace(score, predicted_p10=p10, predicted_p90=p90))
    return replace(card, rows=rows)


if __name__ == "__main__":  # pragma: no cover
    import sys

    if sys.argv[1:] == ["--serving"]:
        write_serving_residuals()
    else:
        write_prediction_error()
