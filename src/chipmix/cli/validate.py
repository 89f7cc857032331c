"""Commands that check the model against published runs: ``validate`` and ``calibrate``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from chipmix.cli.options import CatalogOpt, FormatOpt, JsonOpt, ReportOpt, check_choice
from chipmix.cli.output import emit, output_format, report_context, write_report
from chipmix.cli.paths import input_file, output_file, output_folder

__all__ = ["calibrate", "validate"]


def validate(
    cases: Annotated[
        list[Path] | None,
        typer.Option(
            "--cases",
            help="CSV in the published-measurement schema (default: the shipped base set "
            "published_training.csv); repeat it to score the union of several files.",
        ),
    ] = None,
    cross_validate: Annotated[
        str | None,
        typer.Option(
            "--cross-validate",
            metavar="source|chip",
            help="Refit without each source (source) or each chip (chip) and predict its rows "
            "with the calibration that never saw them.",
        ),
    ] = None,
    markdown: Annotated[
        bool,
        typer.Option("--markdown", help="Print the README table (in-sample and cross-validated)."),
    ] = False,
    from_bench: Annotated[
        Path | None,
        typer.Option(
            "--from-bench",
            help="Score every training step stored in this `chipmix bench` results file, "
            "predicted with the calibration fitted from the same file (no device needed).",
        ),
    ] = None,
    fit_db: Annotated[
        Path | None,
        typer.Option(
            "--fit-db",
            help="With --from-bench: fit the calibration from this results file instead "
            "(for a `bench --check` file, the suite it was calibrated from).",
        ),
    ] = None,
    json_out: JsonOpt = False,
    fmt: FormatOpt = "table",
    catalog: CatalogOpt = None,
    report: ReportOpt = None,
) -> None:
    """Score predictions against published training runs (or, given a file in the
    published-serving schema, serving measurements), or against the training steps of a
    bench results file (--from-bench)."""
    if from_bench is not None or fit_db is not None:
        _validate_bench(from_bench, fit_db, output_format(fmt, json_out), catalog, cases,
                        cross_validate, markdown, report)  # fmt: skip
        return
    from chipmix.catalog import load_catalog
    from chipmix.report.render import print_json
    from chipmix.report.validate_table import scorecard_markdown, scorecard_tables
    from chipmix.validate.cases import DEFAULT_CASES, read_case_files
    from chipmix.validate.crossval import CROSS_VALIDATIONS
    from chipmix.validate.crossval import cross_validate as refit_without
    from chipmix.validate.prediction_error import with_intervals
    from chipmix.validate.score import score_cases
    from chipmix.validate.serve_cases import is_serving_file

    fmt = output_format(fmt, json_out)
    by = (
        None
        if cross_validate is None
        else check_choice("--cross-validate", cross_validate, CROSS_VALIDATIONS)
    )
    files = _case_files(cases, [DEFAULT_CASES])
    cat = load_catalog(catalog)
    serving_files = [f for f in files if is_serving_file(f)]
    if serving_files and len(serving_files) < len(files):
        from chipmix.errors import InputError

        raise InputError(
            f"--cases: {serving_files[0]} is in the published-serving schema and "
            f"{next(f for f in files if f not in serving_files)} in the training one; "
            "score one schema at a time"
        )
    if serving_files:  # the published-serving schema
        from chipmix.validate.serve_cases import read_serve_case_files
        from chipmix.validate.serve_crossval import serve_leave_one_source_out
        from chipmix.validate.serve_score import score_serve_cases

        if by == "chip":
            from chipmix.errors import InputError

            raise InputError(
                "serving cases cross-validate by source only (--cross-validate source)"
            )
        serving = read_serve_case_files(files)
        card = score_serve_cases(serving, cat)
        cross = serve_leave_one_source_out(serving, cat) if (by or markdown) else None
        if markdown:
            print(scorecard_markdown(card, cross))
            return
    else:
        rows = read_case_files(files)
        if by is not None and report is None and not markdown:  # only the refitted scores
            shown = with_intervals(refit_without(rows, cat, by), rows, cat)
            if fmt == "json":
                print_json(shown.to_dict())
                return
            emit(scorecard_tables(shown), fmt)
            return
        card = with_intervals(score_cases(rows, cat), rows, cat)
        if markdown:
            by_source = refit_without(rows, cat, "source")
            print(scorecard_markdown(card, by_source, refit_without(rows, cat, "chip")))
            return
        cross = None if by is None else with_intervals(refit_without(rows, cat, by), rows, cat)
    shown = cross if cross is not None else card
    if report is not None:
        from chipmix.report.html import validate_page

        vendors = {chip.id: chip.vendor for chip in cat.chips.values()}
        page = validate_page(
            shown,
            vendors,
            in_sample=card if cross is not None else None,
            cases=", ".join(map(str, cases)) if cases else "",
            **report_context(catalog),
        )
        write_report(page, report)
    if fmt == "json":
        print_json(shown.to_dict())
        return
    emit(scorecard_tables(shown), fmt)


def _validate_bench(
    db: Path | None, fit_db: Path | None, fmt: str, catalog: Path | None,
    cases: list[Path] | None, cross_validate: str | None, markdown: bool, report: Path | None,
) -> None:  # fmt: skip
    from chipmix.bench.score import score_bench
    from chipmix.errors import InputError
    from chipmix.report.bench_tables import bench_score_tables
    from chipmix.report.render import print_json

    if db is None:
        raise InputError("--fit-db goes with --from-bench DB (the file whose steps to score)")
    other = [name for name, given in (("--cases", cases), ("--cross-validate", cross_validate),
             ("--markdown", markdown), ("--report", report)) if given]  # fmt: skip
    if other:
        raise InputError(f"--from-bench scores a results file; it does not combine with "
                         f"{', '.join(other)}")  # fmt: skip
    input_file(db, "--from-bench")
    input_file(fit_db, "--fit-db")
    scored = score_bench(db, fit_db=fit_db, catalog=catalog)
    if fmt == "json":
        print_json(scored.to_dict())
        return
    emit(bench_score_tables(scored), fmt)


def calibrate(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Where to write the fitted calibration (YAML); with --from-bench, the overlay "
            "folder (default ~/.local/share/chipmix/catalog).",
        ),
    ] = None,
    from_bench: Annotated[
        bool,
        typer.Option("--from-bench", help="Fit the chips measured by `chipmix bench` instead."),
    ] = False,
    db: Annotated[
        Path | None, typer.Option("--db", help="Bench results file (with --from-bench).")
    ] = None,
    cases: Annotated[
        list[Path] | None,
        typer.Option(
            "--cases",
            help="CSV in the published-measurement schema; repeat it to fit the union of "
            "several files (default: the shipped base set published_training.csv).",
        ),
    ] = None,
    json_out: JsonOpt = False,
    catalog: CatalogOpt = None,
) -> None:
    """Fit the calibration parameters to published runs and write them with provenance;
    with --from-bench, fit the measured chips and write a catalog overlay folder."""
    from chipmix.catalog import load_catalog
    from chipmix.report.render import console, print_json
    from chipmix.validate.cases import CALIBRATION_CASES, read_case_files
    from chipmix.validate.fit import fit_calibration, write_calibration

    case_files = _case_files(cases, list(CALIBRATION_CASES))
    if from_bench:
        output_folder(out, "--out")
    else:
        output_file(out, "--out", make_folder=False)
    if from_bench:
        from chipmix.bench.commands import calibrate_from_bench
        from chipmix.report.bench_tables import fit_dict, fit_table

        fit, written = calibrate_from_bench(db=db, out=out, catalog=catalog)
        files = [str(p) for p in written]
        if json_out:
            print_json(fit_dict(fit, files))
            return
        for table in fit_table(fit, files):
            console.print(table)
        return
    if out is None:
        from chipmix.errors import InputError

        raise InputError("give --out FILE for the fitted calibration")
    result = fit_calibration(read_case_files(case_files), load_catalog(catalog))
    write_calibration(result, out)
    if json_out:
        print_json(
            {"out": str(out), "parameters": result.parameters, "cases_used": result.cases_used}
        )
        return
    console.print(
        f"wrote {len(result.parameters)} fitted parameters from "
        f"{len(result.cases_used)} cases to {out}"
    )


def _case_files(given: list[Path] | None, default: list[Path]) -> list[Path]:
    """The ``--cases`` files (each must be a readable file), or ``default`` when none."""
    for path in given or []:
        input_file(path, "--cases")
    return list(given) if given else default
