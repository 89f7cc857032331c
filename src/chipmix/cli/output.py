"""What every command does with its result: print it (tables or JSON), write the HTML
report, and the context every report shows (catalog version, the command typed)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

__all__ = ["ARGV", "FORMATS", "emit", "output_format", "report_context", "show", "write_report"]

FORMATS = ("table", "csv", "json")


def output_format(fmt: str, json_out: bool) -> str:
    """The format asked for (``--json`` is ``--format json``), or a one-line error."""
    from chipmix.cli.options import check_choice

    check_choice("format", fmt, FORMATS)
    return "json" if json_out else fmt


def emit(tables: Iterable[Any], fmt: str = "table") -> None:
    """Print rich tables on stdout: as tables (never cut short), or as CSV."""
    from chipmix.report.render import print_csv, print_tables

    if fmt == "csv":
        print_csv(tables)
    else:
        print_tables(tables)


def show(
    result: Any, tables: Callable[[Any], Iterable[Any]], json_out: bool, fmt: str = "table"
) -> None:
    """Print ``result`` as one JSON document, or as its tables (rich or CSV)."""
    from chipmix.report.json_doc import print_json

    fmt = output_format(fmt, json_out)
    if fmt == "json":
        print_json(result.to_dict())
        return
    emit(tables(result), fmt)


def write_report(page: Any, path: Path) -> None:
    """Write an HTML report (`chipmix.report.html`) and say where, on stderr."""
    from chipmix.report.html import write_page
    from chipmix.report.render import error_console

    out = write_page(page, path)
    error_console.print(f"report: {out} ({out.stat().st_size / 1e6:.1f} MB)", highlight=False)


ARGV: list[str] = []
"""The command line as typed, recorded by `main` (empty when called another way)."""


def report_context(catalog: Path | None) -> dict[str, Any]:
    """What every report shows beside its result: the catalog's version and the command."""
    import shlex

    from chipmix.catalog import load_catalog
    from chipmix.catalog.version import catalog_version

    command = shlex.join(["chipmix", *ARGV]) if ARGV else None
    return {"catalog": catalog_version(load_catalog(catalog)), "command": command}
