"""Cross-validation: fit without a group of rows, predict that group.

Two groupings: by **source** (the paper, benchmark table or submission a row comes from:
how chipmix generalizes to a new publication) and by **chip** (every chip's rows predicted
by a calibration fitted without that chip: the honest score for a chip nobody has
published on, which then borrows from its family and its datasheet). All folds are fitted
together (`chipmix.validate.fit.fit_folds`), so a cross-validation costs about one fit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np

from chipmix.catalog.catalog import Catalog
from chipmix.validate.cases import Case, source_key
from chipmix.validate.fit import fit_tuned, fitted_calibration, prepare
from chipmix.validate.score import CaseScore, Scorecard, predict_case

__all__ = ["CROSS_VALIDATIONS", "CrossValidation", "cross_validate", "leave_one_chip_out",
           "leave_one_source_out", "source_key"]  # fmt: skip

CrossValidation = Literal["source", "chip"]
CROSS_VALIDATIONS: tuple[CrossValidation, ...] = ("source", "chip")


def _chip_key(case: Case) -> str:
    return case.row.chip


def cross_validate(cases: Sequence[Case], catalog: Catalog, by: CrossValidation) -> Scorecard:
    """Leave one source (``by="source"``) or one chip (``by="chip"``) out at a time."""
    key: Callable[[Case], str] = source_key if by == "source" else _chip_key
    groups: dict[str, list[Case]] = defaultdict(list)
    for case in cases:
        groups[key(case)].append(case)
    problem, usable = prepare(cases, catalog)
    names = sorted(groups)
    masks = [np.array([key(c) != name for c in usable], dtype=bool) for name in names]
    fits = fit_tuned(problem, masks, [key(c) for c in usable])
    scores: dict[str, CaseScore] = {}
    for name, fold in zip(names, fits, strict=True):
        calibration, _ = fitted_calibration(problem, fold)
        for case in groups[name]:
            scores[case.id] = predict_case(case, catalog, calibration)
    what = "sources" if by == "source" else "chips"
    chosen = sorted({f.regularization.describe() for f in fits})
    notes = [
        f"{len(groups)} {what}, each predicted by a calibration fitted without it",
        "regularization chosen inside each fold by cross-validation over its own "
        f"training {what}: {'; '.join(chosen)}",
    ]
    return Scorecard([scores[c.id] for c in cases], cross_validated=True, notes=notes)


def leave_one_source_out(cases: Sequence[Case], catalog: Catalog) -> Scorecard:
    return cross_validate(cases, catalog, "source")


def leave_one_chip_out(cases: Sequence[Case], catalog: Catalog) -> Scorecard:
    return cross_validate(cases, catalog, "chip")
