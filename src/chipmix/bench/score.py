"""``chipmix validate --from-bench DB``: every end-to-end step stored in a bench results
file, scored against the prediction made with the calibration fitted from that same file.

The chips are fitted from the store's microbenchmarks exactly as ``chipmix calibrate
--from-bench`` fits them (`chipmix.bench.fit`: matmul, attention, copy and the eager
kernels; never the end-to-end steps themselves), written as a catalog overlay into a
temporary folder and loaded over the catalog in use, so the prediction is the one a user
gets after calibrating. Each stored step is then predicted as ``bench --check`` predicts
it (`chipmix.bench.check.compare`: the eager step with the ``pytorch`` stack, a compiled
one with the fused stack). A store holding only steps (a ``bench --check`` file) is
calibrated from another store given as ``fit_db``. No device is needed, nor torch.

It lives in ``bench/`` (the room that reads results files) and scores with
``validate``'s types, so ``chipmix validate --from-bench`` prints it like any scorecard.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chipmix.bench.check import CheckResult, compare, stack_for
from chipmix.bench.fit import BenchFit, fit_from_store, write_overlay
from chipmix.bench.store import Store
from chipmix.catalog.catalog import load_catalog
from chipmix.errors import ChipmixError, InputError
from chipmix.validate.score import CaseScore, Scorecard

__all__ = ["BenchScorecard", "score_bench"]


@dataclass(frozen=True)
class BenchScorecard:
    """The scores of a store's steps, their predicted breakdowns and the fit behind them."""

    card: Scorecard
    checks: dict[str, CheckResult] = field(default_factory=dict)
    """Per row id: the prediction beside the measurement, with the named breakdown."""
    fit: BenchFit | None = None
    db: str = ""
    fit_db: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = self.card.to_dict()
        for row in out["rows"]:
            check = self.checks.get(row["id"])
            if check is not None:
                row["breakdown"] = check.predicted.breakdown
                row["model"] = check.model
                row["compiled"] = check.compiled
        out["db"] = self.db
        out["fit_db"] = self.fit_db
        out["calibration"] = [] if self.fit is None else self.fit.calibration().parameters
        return out


def _open(path: Path, option: str) -> Store:
    if not path.is_file():
        raise InputError(f"{option} {path}: no such results file; give a `chipmix bench` --db file")
    return Store(path, readonly=True)


def score_bench(
    db: str | Path, *, fit_db: str | Path | None = None, catalog: str | Path | None = None
) -> BenchScorecard:
    """Fit the chips of ``fit_db`` (default ``db``) and score every stored step of ``db``."""
    db, source = Path(db), Path(fit_db) if fit_db is not None else Path(db)
    with _open(db, "--from-bench") as store:
        steps = store.results(kind="e2e")
    if not steps:
        raise InputError(
            f"--from-bench {db}: the file holds no end-to-end step; run "
            "`chipmix bench --check` (or a suite with its training step) into it"
        )
    base = load_catalog(catalog)
    with _open(source, "--fit-db" if fit_db is not None else "--from-bench") as store:
        chips = sorted({s.chip for s in steps} & set(store.chips()))
        try:
            fit = fit_from_store(store, base, chips) if chips else None
        except InputError as exc:
            if fit_db is not None:
                raise
            raise InputError(
                f"{exc}; give --fit-db with the results file of its microbenchmarks "
                "(the suite the check was calibrated from)"
            ) from None
    with tempfile.TemporaryDirectory(prefix="chipmix-validate-") as tmp:
        folder = Path(tmp) / "catalog"
        if catalog is not None:
            shutil.copytree(catalog, folder)
        if fit is not None:
            write_overlay(fit, folder)
        cat = load_catalog(folder) if folder.exists() else base
    rows: list[CaseScore] = []
    checks: dict[str, CheckResult] = {}
    fitted = {f.chip for f in fit.chips} if fit is not None else set()
    for s in steps:
        result = s.result
        compiled = bool(result.shape.get("compile", False))
        row_id = f"{db.stem}#{s.id}"
        base_row = CaseScore(id=row_id, chip=s.chip, stack=stack_for(compiled),
                             source=f"run {s.run_id}", metric="step_time_s",
                             published=result.median_s)  # fmt: skip
        if s.chip not in fitted:
            rows.append(_reason(base_row, f"{source} holds no microbenchmarks of {s.chip} to fit"))
            continue
        try:
            check = compare(cat, s.chip, result)
        except ChipmixError as exc:
            rows.append(_reason(base_row, str(exc)))
            continue
        checks[row_id] = check
        rows.append(_predicted(base_row, check.predicted.step_time_s))
    notes = [
        f"calibration fitted from {source.name} (microbenchmarks only; steps never fitted)",
        "eager steps predicted with stack pytorch, compiled steps with chipmix-bench",
    ]
    return BenchScorecard(Scorecard(rows, notes=notes), checks, fit, str(db), str(source))


def _reason(row: CaseScore, reason: str) -> CaseScore:
    from dataclasses import replace

    return replace(row, reason=reason)


def _predicted(row: CaseScore, predicted: float) -> CaseScore:
    from dataclasses import replace

    return replace(row, predicted=predicted)
