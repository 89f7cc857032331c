"""The ``chipmix`` command: the typer app, its command groups, and the entry point.

Each command group lives in its own module (parse, call, render; no logic):

- `estimate`: ``estimate``, ``search``, ``compare`` (one job)
- `catalog`: ``catalog``, ``models`` (what chipmix knows)
- `validate`: ``validate``, ``calibrate`` (the model against published runs)
- `simulate`: ``simulate`` (a run under failures)
- `bench`: ``bench`` (measure this machine)
- `plan`: ``plan``, ``budget`` (many jobs and money)
- `serve`: ``serve estimate``, ``serve search``, ``serve compare`` (inference)

A new group (e.g. ``serve``) is a module beside these, registered below in the order
``chipmix --help`` lists it.
"""

from __future__ import annotations

import sys

import typer

from chipmix.cli import bench, catalog, estimate, plan, serve, simulate, validate
from chipmix.cli.output import ARGV
from chipmix.errors import ChipmixError

__all__ = ["app", "main"]

app = typer.Typer(
    name="chipmix",
    help="Plan transformer training across accelerator vendors: time, cost, layouts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# -- the command groups, in the order `chipmix --help` lists them ---------------------
app.command()(estimate.estimate)
app.command()(estimate.search)
app.command()(estimate.compare)
app.command("catalog")(catalog.catalog_cmd)
app.command()(catalog.models)
app.command()(validate.validate)
app.command()(validate.calibrate)
app.command()(simulate.simulate)
app.command()(bench.bench)
app.command()(plan.plan)
app.command()(plan.budget)
app.add_typer(serve.app)


def main() -> None:
    """Entry point: chipmix errors become one line on stderr and exit status 2."""
    ARGV[:] = sys.argv[1:]
    try:
        app()
    except ChipmixError as exc:
        from rich.markup import escape

        from chipmix.report.render import error_console

        # The message is text, not markup: "chipmix[bench]" must print as written.
        error_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False,
                            soft_wrap=True)  # fmt: skip
        sys.exit(2)
