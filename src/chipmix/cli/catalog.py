"""Commands that list what chipmix knows: ``catalog`` (chips, systems, offers) and ``models``."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from chipmix.cli.options import CatalogOpt, FormatOpt, JsonOpt
from chipmix.cli.output import emit, output_format

__all__ = ["CatalogKind", "catalog_cmd", "models"]


class CatalogKind(StrEnum):
    chips = "chips"
    systems = "systems"
    offers = "offers"


def catalog_cmd(
    kind: Annotated[CatalogKind, typer.Argument(help="chips, systems or offers.")],
    json_out: JsonOpt = False,
    all_vintages: Annotated[
        bool, typer.Option("--all-vintages", help="Offers: include prices no longer current.")
    ] = False,
    fmt: FormatOpt = "table",
    catalog: CatalogOpt = None,
) -> None:
    """List the catalog: chips with their figures, systems, or priced offers."""
    from chipmix.catalog import load_catalog
    from chipmix.report.catalog_tables import catalog_rows, catalog_table
    from chipmix.report.render import print_json

    fmt = output_format(fmt, json_out)
    cat = load_catalog(catalog)
    rows = catalog_rows(cat, kind.value, all_vintages=all_vintages)
    if fmt == "json":
        print_json(rows)
        return
    emit([catalog_table(kind.value, rows)], fmt)


def models(json_out: JsonOpt = False, fmt: FormatOpt = "table") -> None:
    """List the model presets with their parameter counts."""
    from chipmix.report.catalog_tables import model_rows, models_table
    from chipmix.report.render import print_json

    fmt = output_format(fmt, json_out)
    rows = model_rows()
    if fmt == "json":
        print_json(rows)
        return
    emit([models_table(rows)], fmt)
