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

import gc
import os
import sys
from collections.abc import Callable
from functools import cache
from importlib import import_module
from typing import TYPE_CHECKING, Any

import typer

from chipmix.cli.output import ARGV
from chipmix.cli.paths import describe_os_error
from chipmix.errors import ChipmixError

__all__ = ["COMMANDS", "app", "main", "run"]

if TYPE_CHECKING:
    app: typer.Typer
    COMMANDS: dict[str, Callable[..., None]]

# -- the command groups, in the order `chipmix --help` lists them ---------------------
_WHERE: dict[str, tuple[str, str]] = {
    "estimate": ("estimate", "estimate"),
    "search": ("estimate", "search"),
    "compare": ("estimate", "compare"),
    "catalog": ("catalog", "catalog_cmd"),
    "models": ("catalog", "models"),
    "validate": ("validate", "validate"),
    "calibrate": ("validate", "calibrate"),
    "simulate": ("simulate", "simulate"),
    "bench": ("bench", "bench"),
    "plan": ("plan", "plan"),
    "budget": ("plan", "budget"),
}
"""Each command's module (under `chipmix.cli`) and function: a command line imports the
module of the command it runs, not all seven."""


def _function(name: str) -> Callable[..., None]:
    module, function = _WHERE[name]
    found: Callable[..., None] = getattr(import_module(f"chipmix.cli.{module}"), function)
    return found


@cache
def _app() -> typer.Typer:
    """The whole command line (every command and the ``serve`` group), built on first use."""
    from chipmix.cli import serve

    whole = typer.Typer(
        name="chipmix",
        help="Plan transformer training across accelerator vendors: time, cost, layouts.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    for name in _WHERE:
        whole.command(name)(_function(name))
    whole.add_typer(serve.app)  # a group of its own: ``chipmix serve ...`` builds the whole app
    return whole


def __getattr__(name: str) -> Any:
    """``app`` (the typer app) and ``COMMANDS`` (name → function), built on first use."""
    if name == "app":
        return _app()
    if name == "COMMANDS":
        return {command: _function(command) for command in _WHERE}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@cache
def _click_command(name: str | None) -> Any:
    """The click command for ``chipmix NAME`` (built once: typer reads every signature),
    or for the whole group. One command alone builds in a tenth of the group's time."""
    if name is None:
        return typer.main.get_command(_app())
    one = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    one.command(name)(_function(name))
    return typer.main.get_command(one)


_CLICK_ERROR: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)
"""The base of the usage errors typer (click) raises: a bad option, a missing argument."""


def run(argv: list[str]) -> int:
    """Run ``chipmix ARGV`` and return its exit status; never raises, never a traceback.

    A usage error or a chipmix error (bad input, an impossible request) is one line on
    stderr and status 2; so is an operating-system error on a path the user named, or a
    file nested too deep to read; anything else is an internal error: one line, a hint to
    report it, status 1."""
    ARGV[:] = argv
    try:
        if argv and argv[0] in _WHERE:
            command, args, prog = _click_command(argv[0]), argv[1:], f"chipmix {argv[0]}"
        else:
            command, args, prog = _click_command(None), argv, "chipmix"
        code = command.main(args=args, prog_name=prog, standalone_mode=False)
    except SystemExit as exc:
        code = exc.code
    except typer.Abort:
        return _fail("aborted", 1)
    except _CLICK_ERROR as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()  # type: ignore[attr-defined]
            return 2
        return _usage_error(exc)
    except ChipmixError as exc:
        return _fail(str(exc), 2)
    except OSError as exc:
        return _fail(describe_os_error(exc), 2)
    except RecursionError:
        return _fail("input nested too deeply to read (a nesting bomb?); flatten it", 2)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as exc:
        return _fail(
            f"internal error ({type(exc).__name__}: {exc}). This is a bug in chipmix: please "
            "report it with the command line that caused it",
            1,
        )
    return code if isinstance(code, int) else 0


def _usage_error(exc: Exception) -> int:
    message = exc.format_message()  # type: ignore[attr-defined]
    given = _given(getattr(exc, "param", None))
    if given is not None and "(got" not in message:
        message += f" (got {given})"
    context = getattr(exc, "ctx", None)
    hint = f" (see '{context.command_path} --help')" if context is not None else ""
    return _fail(f"{message}{hint}", int(getattr(exc, "exit_code", 2)))


def _given(param: object) -> str | None:
    """The text typed for option ``param`` (the last time it was given), if any."""
    opts = getattr(param, "opts", None) or []
    found = None
    for i, word in enumerate(ARGV):
        for opt in opts:
            if word == opt and i + 1 < len(ARGV):
                found = ARGV[i + 1]
            elif word.startswith(opt + "="):
                found = word[len(opt) + 1 :]
    return None if found is None else repr(found[:60]).strip("'")


_GC_YOUNG = 200_000
"""Allocations between two passes of the cycle collector over its youngest generation, in
a ``chipmix`` process. Python's default (700) makes it walk the ~70,000 objects a command's
start-up creates (modules, classes, functions: they all live to the end) about a hundred
times over before they settle, ~3 % of ``estimate``'s instructions; garbage in reference
cycles waits at most this many allocations longer to be freed."""


def main() -> None:
    """Entry point: run the command line, exit with its status."""
    gc.set_threshold(_GC_YOUNG, *gc.get_threshold()[1:])
    _numpy_on_one_blas_thread()
    _malloc_keeps_freed_memory()
    sys.exit(run(sys.argv[1:]))


MALLOC_MMAP_THRESHOLD = 32 << 20
MALLOC_TRIM_THRESHOLD = 256 << 20
"""Bytes above which glibc's malloc maps a block of its own, and free bytes at the top of
its heap above which it gives them back, in a ``chipmix`` process (`_malloc_keeps_freed_memory`)."""


def _malloc_keeps_freed_memory() -> bool:
    """Let glibc's malloc keep the memory numpy frees for the next arrays (Linux, unless
    the user tuned malloc; True where it was set).

    The layout searches make thousands of temporary arrays of 0.1-1 MB. glibc serves a
    block above its mmap threshold (128 KiB, raised only to the largest block freed so far)
    with a mapping of its own, unmapped when freed, and hands the heap's free top back
    beyond 128 KiB: every such array's pages fault in anew, a fifth of the example plan's
    searches' CPU, spent in the kernel. Fixed thresholds keep them in the heap
    (mallopt(3), ``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD``)."""
    tuned = any(k.startswith("MALLOC_") for k in os.environ) or "GLIBC_TUNABLES" in os.environ
    if not sys.platform.startswith("linux") or tuned:
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no C library with mallopt in the process
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # malloc.h
    trimmed = mallopt(m_trim_threshold, MALLOC_TRIM_THRESHOLD)
    mapped = mallopt(m_mmap_threshold, MALLOC_MMAP_THRESHOLD)
    return bool(trimmed and mapped)


def _numpy_on_one_blas_thread() -> None:
    """Import numpy with its OpenBLAS on one thread, unless the user chose a count.

    OpenBLAS starts a pool of threads, one per core, when numpy loads it, sized by
    ``OPENBLAS_NUM_THREADS`` read at that moment (OpenBLAS's README, "Setting the number of
    threads"). chipmix's products are small (layouts, MILP data; the fitter's 200-column
    systems already run on one thread: `validate.fit`), so the pool only costs: 0.03-0.05 s
    of CPU per command on 2 cores (benchmarks/README.md, startup.py). The variable is
    removed again at once: torch's own BLAS (``bench``) and child processes keep the
    user's environment."""
    if "numpy" in sys.modules or "OPENBLAS_NUM_THREADS" in os.environ:
        return
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    try:
        import numpy  # noqa: F401
    finally:
        del os.environ["OPENBLAS_NUM_THREADS"]


def _fail(message: str, code: int) -> int:
    from rich.markup import escape

    from chipmix.report.render import error_console

    error_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return code
