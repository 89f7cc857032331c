"""The ``chipmix`` command line: `app` (typer) and `main` (the console entry point).

One module per command group; `chipmix.cli.commands` registers them (and builds the whole
app only when asked for it: a command line imports the one command it runs)."""

from typing import Any

from chipmix.cli.commands import main

__all__ = ["app", "main"]


def __getattr__(name: str) -> Any:
    """``app``, the whole typer app, built on first use."""
    if name == "app":
        from chipmix.cli import commands

        return commands.app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
