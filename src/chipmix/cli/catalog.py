"""Commands that list what chipmix knows: ``catalog`` (chips, systems, offers) and ``models``."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from chipmix.cli.options import CatalogOpt, JsonOpt

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
    catalog: CatalogOpt = None,
) -> None:
    """List the catalog: chips with their figures, systems, or priced offers."""
    from chipmix.catalog import load_catalog
    from chipmix.report.catalog_tables import catalog_rows, catalog_table
    from chipmix.report.render import console, print_json

    cat = load_catalog(catalog)
    rows = catalog_rows(cat, kind.value, all_vintages=all_vintages)
    if json_out:
        print_json(rows)
        return
    console.print(catalog_table(kind.value, rows))


def models(json_out: JsonOpt = False) -> None:
    """List the model presets with their parameter counts."""
    from chipmix.report.catalog_tables import model_rows, models_table
    from chipmix.report.render import console, print_json

    rows = model_rows()
    if json_out:
        print_json(rows)
        return
    console.print(models_table(rows))
