"""The ``bench`` command: measure this machine's accelerator and store the results."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from chipmix.cli.options import CatalogOpt, JsonOpt, check_choice

__all__ = ["bench"]

MAX_BENCH_SEQ = 2**15
"""The longest sequence a bench step takes (32k tokens): longer ones exhaust a device's
memory in the attention's activations before they measure anything."""


def bench(
    model: Annotated[
        str,
        typer.Option("--model", "-m", help="Workload: preset id or model file (scaled to fit)."),
    ] = "llama3.2-1b",
    suite: Annotated[
        str, typer.Option("--suite", help="quick, full, or smoke (seconds; tiny shapes, tests).")
    ] = "quick",
    device: Annotated[
        str | None,
        typer.Option("--device", help="cpu, cuda, cuda:N or xla (default: first accelerator)."),
    ] = None,
    chip: Annotated[
        str | None, typer.Option("--chip", help="Catalog chip id, if the name does not match.")
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option("--threads", help="CPU threads (default: PyTorch's).", min=1, max=1024),
    ] = None,
    seq_len: Annotated[
        int | None,
        typer.Option("--seq-len", help="Tokens per sequence.", min=1, max=MAX_BENCH_SEQ),
    ] = None,
    batch: Annotated[
        int | None, typer.Option("--batch", help="Sequences per step.", min=1, max=1024)
    ] = None,
    compile: Annotated[
        bool, typer.Option("--compile", help="Also time the step under torch.compile.")
    ] = False,
    check: Annotated[
        bool,
        typer.Option("--check", help="Predict the end-to-end step, measure it, print both."),
    ] = False,
    db: Annotated[
        Path | None,
        typer.Option("--db", help="Results file (default ~/.local/share/chipmix/bench.sqlite)."),
    ] = None,
    json_out: JsonOpt = False,
    catalog: CatalogOpt = None,
) -> None:
    """Measure this machine's accelerator (or CPU) and store the results: matmul, attention,
    memory, norms, a training step; collectives under torchrun. Needs PyTorch: pip install
    'chipmix\\[bench]'."""
    from chipmix.bench.commands import require_torch, run_bench, run_check
    from chipmix.bench.runner import SUITES
    from chipmix.report.bench_tables import bench_dict, bench_progress, bench_table, check_table
    from chipmix.report.render import console, error_console, print_json

    options: dict[str, Any] = {
        "model": model, "suite": check_choice("suite", suite, SUITES), "device": device,
        "chip": chip, "threads": threads, "seq_len": seq_len, "batch": batch,
        "compile": compile, "db": db, "catalog": catalog,
    }  # fmt: skip
    require_torch()
    try:
        # Progress goes to stderr, and with --json not at all: stdout is the answer alone.
        with bench_progress(error_console, enabled=not json_out) as progress:
            if check:
                run, result = run_check(progress=progress, **options)
            else:
                run = run_bench(progress=progress, **options)
    except KeyboardInterrupt:
        error_console.print("interrupted: every result measured so far is stored")
        raise typer.Exit(130) from None
    if run.db == "":  # a rank other than 0 under torchrun
        return
    if check:
        if json_out:
            print_json(result.to_dict())
            return
        for table in check_table(result):
            console.print(table)
        return
    if json_out:
        print_json(bench_dict(run.device, run.results, run.db, run.run_id))
        return
    console.print(bench_table(run.device, run.results, run.db))
