"""Commands about many jobs and money: ``plan`` (a portfolio from a scenario file) and
``budget`` (what a commitment buys)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from chipmix.cli.options import (
    MAX_CHIPS,
    BatchOpt,
    CatalogOpt,
    FormatOpt,
    JsonOpt,
    ModeOpt,
    PrecisionOpt,
    PricesAsOfOpt,
    ReportOpt,
    SeqOpt,
    StackOpt,
    finite,
    job_kwargs,
    list_opt,
    priced_catalog,
    shares_opt,
)
from chipmix.cli.output import output_format, report_context, show, write_report
from chipmix.cli.paths import input_file
from chipmix.cli.serve import InputOpt, OutputOpt, TPOTOpt, TTFTOpt

if TYPE_CHECKING:
    from rich.table import Table

    from chipmix.planning.portfolio.results import PlanResult
    from chipmix.serve.precision import KVPrecision, WeightPrecision

__all__ = ["budget", "plan"]


def plan(
    scenario: Annotated[Path, typer.Argument(help="Scenario file (YAML).", dir_okay=False)],
    pareto: Annotated[
        bool, typer.Option("--pareto", help="Also trace the cost-vs-makespan Pareto front.")
    ] = False,
    no_sensitivity: Annotated[
        bool,
        typer.Option("--no-sensitivity", help="Skip the binding constraints' marginal values."),
    ] = False,
    no_baseline: Annotated[
        bool, typer.Option("--no-baseline", help="Skip the single-vendor comparison plans.")
    ] = False,
    futures: Annotated[
        int | None,
        typer.Option(
            "--futures",
            help="Sample N futures of the scenario's uncertainty sources: the deterministic, "
            "robust and single-vendor plans' reliability and cost over them.",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the futures.")] = 0,
    workers: Annotated[
        int, typer.Option("--workers", help="Ray workers on this machine (1: serial, no Ray).")
    ] = 1,
    ray_address: Annotated[
        str | None, typer.Option("--ray-address", help="An existing Ray cluster to run on.")
    ] = None,
    target: Annotated[
        float | None,
        typer.Option("--target", help="Wanted P(every deadline met), 0–1 (default: 0.9)."),
    ] = None,
    json_out: JsonOpt = False,
    fmt: FormatOpt = "table",
    catalog: CatalogOpt = None,
    prices_as_of: PricesAsOfOpt = None,
    report: ReportOpt = None,
) -> None:
    """Plan a portfolio: which job runs on which offer, tier and chips, and when.

    The scenario file lists the jobs, the offers and the constraints (budget, vendor and
    cloud share caps, minimum vendors, power cap); the plan meets every deadline at the
    least cost (or the shortest makespan, or the most tokens within the budget) and says
    which constraints bind and what relaxing them is worth. See examples/*.yaml."""
    if futures is not None:
        fmt = output_format(fmt, json_out)
        _futures(scenario, futures, seed, workers, ray_address, target, fmt, catalog, report)
        return
    from chipmix.planning.portfolio.planner import plan as run
    from chipmix.planning.portfolio.results import PlanInfeasibleError
    from chipmix.report.json_doc import print_json

    fmt = output_format(fmt, json_out)
    input_file(scenario, "SCENARIO")
    try:
        result = run(
            scenario,
            catalog=priced_catalog(catalog, prices_as_of),
            pareto=pareto,
            sensitivity=False if no_sensitivity else None,
            single_vendor=False if no_baseline else None,
        )
    except PlanInfeasibleError as exc:
        if fmt == "json":
            print_json(exc.to_dict())
            raise typer.Exit(2) from None
        raise
    if report is not None:
        from chipmix.report.html.plan import plan_page

        text = scenario.read_text(encoding="utf-8")
        page = plan_page(
            result, scenario_text=text, scenario_file=str(scenario), **report_context(catalog)
        )
        write_report(page, report)
    show(result, _plan_tables, json_out, fmt)


def _plan_tables(result: PlanResult) -> list[Table]:
    """The plan's tables (rich imported only when tables are printed)."""
    from chipmix.report.plan_tables import plan_tables

    return plan_tables(result)


def _futures(
    scenario: Path,
    n: int,
    seed: int,
    workers: int,
    ray_address: str | None,
    target: float | None,
    fmt: str,
    catalog: Path | None,
    report: Path | None,
) -> None:
    from chipmix.planning.futures.analysis import futures as run
    from chipmix.planning.portfolio.results import PlanInfeasibleError
    from chipmix.report.futures_tables import futures_tables
    from chipmix.report.render import print_json

    input_file(scenario, "SCENARIO")
    try:
        result = run(
            scenario,
            n,
            seed=seed,
            workers=workers,
            ray_address=ray_address,
            catalog=catalog,
            target=target,
        )
    except PlanInfeasibleError as exc:
        if fmt == "json":
            print_json(exc.to_dict())
            raise typer.Exit(2) from None
        raise
    if report is not None:
        from chipmix.report.html.futures import futures_page

        page = futures_page(result, scenario_file=str(scenario), **report_context(catalog))
        write_report(page, report)
    show(result, futures_tables, False, fmt)


def budget(
    usd: Annotated[
        float | None,
        typer.Option("--usd", help="Budget in US dollars: what it buys.", callback=finite(1e15)),
    ] = None,
    years: Annotated[
        float,
        typer.Option("--years", help="Length of the commitment.", callback=finite(100)),
    ] = 1.0,
    offers: Annotated[
        str | None,
        typer.Option(
            "--offers",
            help="Comma-separated offer, system or chip ids (default: every current offer).",
        ),
    ] = None,
    mix: Annotated[
        str | None,
        typer.Option(
            "--mix", help="Fixed spend shares by vendor, cloud or offer: nvidia=50%,google=30%."
        ),
    ] = None,
    cap: Annotated[
        str | None, typer.Option("--cap", help="Largest spend share per vendor: nvidia=60%.")
    ] = None,
    tiers: Annotated[
        str | None,
        typer.Option("--tiers", help="Comma-separated price tiers (default: all but spot)."),
    ] = None,
    max_chips: Annotated[
        int | None,
        typer.Option(
            "--max-chips", help="Chips each offer can hold at once.", min=1, max=MAX_CHIPS
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Model to train (with --tokens per run)."),
    ] = None,
    tokens: Annotated[
        float | None,
        typer.Option(
            "--tokens", help="Tokens per training run (e.g. 15e12).", callback=finite(1e16)
        ),
    ] = None,
    runs: Annotated[
        float | None,
        typer.Option(
            "--runs",
            help="Runs of --model to train: the budget they need.",
            callback=finite(1e6),
        ),
    ] = None,
    chips: Annotated[
        int,
        typer.Option(
            "--chips", "-n", help="Chips per run, for its throughput.", min=1, max=MAX_CHIPS
        ),
    ] = 4096,
    seq_len: SeqOpt = 4096,
    global_batch: BatchOpt = 1024,
    precision: PrecisionOpt = "bf16",
    mode: ModeOpt = "pretrain",
    stack: StackOpt = None,
    serve_model: Annotated[
        str | None,
        typer.Option(
            "--serve-model",
            help="Model to serve: what the budget buys in served output tokens at the "
            "--ttft-p99-ms/--tpot-p99-ms targets (with --model too, --serve-share of it).",
        ),
    ] = None,
    input_len: InputOpt = 2000,
    output_len: OutputOpt = 300,
    ttft_p99_ms: TTFTOpt = None,
    tpot_p99_ms: TPOTOpt = None,
    serve_precision: Annotated[
        str, typer.Option("--serve-precision", help="Served weights: bf16, fp8, int8 or fp4.")
    ] = "bf16",
    serve_kv_precision: Annotated[
        str | None,
        typer.Option(
            "--serve-kv-precision",
            help="Served KV cache: bf16 or fp8 (default fp8 for fp8/fp4 weights).",
        ),
    ] = None,
    serve_stack: Annotated[
        str | None,
        typer.Option("--serve-stack", help="Serving stack (vllm, sglang, trt-llm, …)."),
    ] = None,
    serve_share: Annotated[
        float | None,
        typer.Option(
            "--serve-share",
            help="Share of the budget for serving when --model is trained too (0-1).",
            callback=finite(1.0),
        ),
    ] = None,
    json_out: JsonOpt = False,
    fmt: FormatOpt = "table",
    catalog: CatalogOpt = None,
    prices_as_of: PricesAsOfOpt = None,
    report: ReportOpt = None,
    *,
    ctx: typer.Context,
) -> None:
    """What a commitment buys: chip-hours, PFLOP-days, training runs and served output
    tokens per offer and tier under vendor caps (--usd); or the budget that K runs need
    (--runs)."""
    from chipmix.planning.budget.budget import budget as run
    from chipmix.report.plan_tables import budget_tables

    fmt = output_format(fmt, json_out)
    if model is None:
        _refuse_unused(ctx, ("tokens", "runs", "chips", "seq_len", "global_batch",
                             "precision", "mode", "stack"), "--model")  # fmt: skip
    if serve_model is None:
        _refuse_unused(ctx, ("input_len", "output_len", "ttft_p99_ms", "tpot_p99_ms",
                             "serve_precision", "serve_kv_precision", "serve_stack",
                             "serve_share"), "--serve-model")  # fmt: skip
    job = job_kwargs(seq_len, global_batch, precision, mode, None, stack)
    del job["tokens"]
    serve = None
    if serve_model is not None:
        from chipmix.planning.budget.serving import ServeRequest

        serve = ServeRequest(
            serve_model, input_len=input_len, output_len=output_len,
            precision=cast("WeightPrecision", serve_precision), ttft_p99_ms=ttft_p99_ms,
            tpot_p99_ms=tpot_p99_ms, share=serve_share,
            kv_precision=cast("KVPrecision | None", serve_kv_precision),
            stack=serve_stack,
        )  # fmt: skip
    result = run(
        usd,
        years,
        offers=list_opt(offers),
        mix=shares_opt(mix, "--mix"),
        vendor_caps=shares_opt(cap, "--cap"),
        tiers=list_opt(tiers),
        max_chips=max_chips,
        model=model,
        tokens=tokens,
        runs=runs,
        chips=chips,
        catalog=priced_catalog(catalog, prices_as_of),
        serve=serve,
        **job,
    )
    if report is not None:
        from chipmix.report.html.budget import budget_page

        write_report(budget_page(result, **report_context(catalog)), report)
    show(result, budget_tables, json_out, fmt)


def _refuse_unused(ctx: typer.Context, names: tuple[str, ...], needs: str) -> None:
    """Options typed on the command line that do nothing without ``needs``: an error, not
    a silent success (the user believes they shaped the answer)."""
    from chipmix.errors import InputError

    given = [
        "--" + name.replace("_", "-")
        for name in names
        if getattr(ctx.get_parameter_source(name), "name", None) == "COMMANDLINE"
    ]
    if given:
        raise InputError(f"{', '.join(given)} only apply with {needs}; add {needs} or leave "
                         f"{'them' if len(given) > 1 else 'it'} out")  # fmt: skip
