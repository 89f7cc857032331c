"""The ``simulate`` command: a run (or a plan's runs) under failures and outages."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
    TierOpt,
    TokensOpt,
    finite,
    job_kwargs,
    priced_catalog,
)
from chipmix.cli.output import emit, output_format, report_context, show, write_report
from chipmix.cli.paths import input_file

__all__ = ["simulate"]


def simulate(
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Preset id or model file.")
    ] = None,
    system: Annotated[
        str | None,
        typer.Option("--system", "-s", help="System id, or a chip id for its reference system."),
    ] = None,
    chips: Annotated[
        int | None,
        typer.Option("--chips", "-n", help="Number of chips."),
    ] = None,
    plan: Annotated[
        Path | None,
        typer.Option("--plan", help="Planner scenario (YAML): simulate every job of its plan."),
    ] = None,
    tokens: TokensOpt = None,
    duration_days: Annotated[
        float | None,
        typer.Option(
            "--duration-days",
            help="A fixed window of wall time (instead of --tokens).",
            callback=finite(36500),
        ),
    ] = None,
    checkpoint_interval: Annotated[
        str,
        typer.Option(
            "--checkpoint-interval",
            help="Compute between checkpoints: 30m, 900s, 1.5h, or daly / young (optimum).",
        ),
    ] = "daly",
    async_checkpoint: Annotated[
        bool, typer.Option("--async-checkpoint", help="Asynchronous checkpoints.")
    ] = False,
    scenario: Annotated[
        Path | None,
        typer.Option("--scenario", help="Outage scenario file (YAML): outages, migration."),
    ] = None,
    replicas: Annotated[int, typer.Option("--replicas", help="Monte Carlo replicas.")] = 1000,
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed (reproducible).", max=2**63 - 1)
    ] = 0,
    deadline_days: Annotated[
        float | None,
        typer.Option(
            "--deadline-days",
            help="Report the probability of finishing by then.",
            callback=finite(36500),
        ),
    ] = None,
    hot_spares: Annotated[
        int | None,
        typer.Option(
            "--hot-spares",
            help="Hot spare nodes (default: the catalog's share).",
            max=MAX_CHIPS,
        ),
    ] = None,
    sweep: Annotated[
        bool,
        typer.Option("--sweep", help="Also sweep checkpoint intervals: the simulated optimum."),
    ] = False,
    no_model_error: Annotated[
        bool,
        typer.Option(
            "--no-model-error",
            help="Replay the point prediction instead of drawing each replica's throughput "
            "from the prediction's p10–p90 error distribution.",
        ),
    ] = False,
    seq_len: SeqOpt = 4096,
    global_batch: BatchOpt = 1024,
    precision: PrecisionOpt = "bf16",
    mode: ModeOpt = "pretrain",
    price_tier: TierOpt = "on-demand",
    stack: StackOpt = None,
    json_out: JsonOpt = False,
    fmt: FormatOpt = "table",
    catalog: CatalogOpt = None,
    prices_as_of: PricesAsOfOpt = None,
    report: ReportOpt = None,
) -> None:
    """Monte Carlo of a run under failures, maintenance, reclaims and outages: ETTR,
    completion time, cost with the wasted part, and the checkpoint interval to use.

    Give --model, --system, --chips and the run's length; or --plan with a planner
    scenario to simulate each job where the plan puts it."""
    from chipmix.errors import InputError
    from chipmix.report.render import print_json
    from chipmix.report.sim_tables import plan_simulation_tables, simulation_tables
    from chipmix.sim.simulate import simulate as run

    fmt = output_format(fmt, json_out)
    input_file(plan, "--plan")
    input_file(scenario, "--scenario")
    if plan is not None:
        from chipmix.sim.plan_runs import simulate_plan

        if report is not None:
            raise InputError("--report draws one run; it is not available with --plan yet")
        given = [o for o, v in (("--model", model), ("--system", system), ("--chips", chips),
                                ("--tokens", tokens), ("--duration-days", duration_days),
                                ("--scenario", scenario), ("--deadline-days", deadline_days))
                 if v is not None]  # fmt: skip
        if given:
            raise InputError(f"--plan takes the jobs, systems and deadlines from the plan; "
                             f"leave out {', '.join(given)}")  # fmt: skip
        planned = simulate_plan(plan, replicas=replicas, seed=seed,
                                checkpoint_interval=checkpoint_interval,
                                asynchronous_checkpoint=async_checkpoint,
                                hot_spare_nodes=hot_spares,
                                catalog=priced_catalog(catalog, prices_as_of))  # fmt: skip
        if fmt == "json":
            print_json(planned.to_dict())
            return
        emit(plan_simulation_tables(planned), fmt)
        return
    if model is None or system is None or chips is None:
        raise InputError("give --model, --system and --chips (or --plan SCENARIO.yaml)")
    job = job_kwargs(seq_len, global_batch, precision, mode, None, stack)
    del job["tokens"]
    result = run(
        model,
        system,
        chips,
        tokens=tokens,
        duration_days=duration_days,
        checkpoint_interval=checkpoint_interval,
        asynchronous_checkpoint=async_checkpoint,
        scenario=scenario,
        replicas=replicas,
        seed=seed,
        model_error=not no_model_error,
        deadline_days=deadline_days,
        price_tier=price_tier,
        hot_spare_nodes=hot_spares,
        sweep=sweep,
        catalog=priced_catalog(catalog, prices_as_of),
        **job,
    )
    if report is not None:
        from chipmix.report.html import simulate_page

        write_report(simulate_page(result, **report_context(catalog)), report)
    show(result, simulation_tables, json_out, fmt)
