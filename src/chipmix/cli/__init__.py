"""The ``chipmix`` command line: `app` (typer) and `main` (the console entry point).

One module per command group; `chipmix.cli.commands` registers them."""

from chipmix.cli.commands import app, main

__all__ = ["app", "main"]
