"""Leave-one-source-out cross-validation: fit without a source, predict its rows.

Every row is predicted by a calibration that never saw its source (the paper, benchmark
table or submission it comes from), so the error measures how chipmix generalizes to a
new publication — the number to trust, unlike the in-sample fit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from chipmix.catalog.catalog import Catalog
from chipmix.validate.cases import Case
from chipmix.validate.fit import fit_calibration
from chipmix.validate.score import CaseScore, Scorecard, predict_case

__all__ = ["leave_one_source_out", "source_key"]


def source_key(case: Case) -> str:
    """The publication a row comes from: its source text up to any parenthesized detail."""
    return case.row.source.split(" (")[0].strip()


def leave_one_source_out(cases: Sequence[Case], catalog: Catalog) -> Scorecard:
    groups: dict[str, list[Case]] = defaultdict(list)
    for case in cases:
        groups[source_key(case)].append(case)
    scores: dict[str, CaseScore] = {}
    for held_out, rows in groups.items():
        training = [c for c in cases if source_key(c) != held_out]
        fitted = fit_calibration(training, catalog, rounds=1).calibration
        for case in rows:
            scores[case.id] = predict_case(case, catalog, fitted)
    notes = [f"{len(groups)} sources, each predicted by a calibration fitted without it"]
    return Scorecard([scores[c.id] for c in cases], cross_validated=True, notes=notes)
