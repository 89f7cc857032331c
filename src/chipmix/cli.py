"""The ``chipmix`` command: parse, call, render. No logic lives here."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from chipmix.errors import ChipmixError

app = typer.Typer(
    name="chipmix",
    help="Plan transformer training across accelerator vendors: time, cost, layouts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# -- shared options --------------------------------------------------------------------
ModelOpt = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        help="Preset id or model file (YAML/JSON in the preset schema, or a HF config.json).",
    ),
]
SystemOpt = Annotated[
    str, typer.Option("--system", "-s", help="System id, or a chip id for its reference system.")
]
ChipsOpt = Annotated[int | None, typer.Option("--chips", "-n", help="Number of chips.")]
SeqOpt = Annotated[int, typer.Option("--seq-len", help="Tokens per sequence.")]
BatchOpt = Annotated[int, typer.Option("--global-batch", help="Sequences per step.")]
PrecisionOpt = Annotated[str, typer.Option("--precision", help="bf16, fp8 or int8.")]
ModeOpt = Annotated[str, typer.Option("--mode", help="pretrain, finetune or lora.")]
TokensOpt = Annotated[
    float | None, typer.Option("--tokens", help="Tokens to train on (e.g. 15e12).")
]
TierOpt = Annotated[
    str, typer.Option("--price-tier", help="on-demand, spot, committed-1y, committed-3y or owned.")
]
StackOpt = Annotated[
    str | None,
    typer.Option(
        "--stack", help="Software stack (megatron, torchtitan, maxtext, neuronx-distributed…)."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
CatalogOpt = Annotated[
    Path | None,
    typer.Option("--catalog", help="Folder of catalog files overlaying the shipped catalog."),
]
ReportOpt = Annotated[
    Path | None,
    typer.Option(
        "--report",
        help="Also write a self-contained HTML report with plots to this file (opens offline).",
        dir_okay=False,
    ),
]


def _show(result: Any, tables: Callable[[Any], Iterable[Any]], json_out: bool) -> None:
    """Print ``result`` as one JSON document, or as its rich tables."""
    from chipmix.report.render import console, print_json

    if json_out:
        print_json(result.to_dict())
        return
    for table in tables(result):
        console.print(table)


def _write_report(page: Any, path: Path) -> None:
    """Write an HTML report (`chipmix.report.html`) and say where, on stderr."""
    from chipmix.report.html import write_page
    from chipmix.report.render import error_console

    out = write_page(page, path)
    error_console.print(f"report: {out} ({out.stat().st_size / 1e6:.1f} MB)", highlight=False)


_ARGV: list[str] = []
"""The command line as typed, recorded by `main` (empty when called another way)."""


def _report_context(catalog: Path | None) -> dict[str, Any]:
    """What every report shows beside its result: the catalog's version and the command."""
    import shlex

    from chipmix.catalog import load_catalog
    from chipmix.catalog.version import catalog_version

    command = shlex.join(["chipmix", *_ARGV]) if _ARGV else None
    return {"catalog": catalog_version(load_catalog(catalog)), "command": command}


def _layout_opts(
    tp: int | None,
    pp: int | None,
    dp: int | None,
    cp: int | None,
    ep: int | None,
    vpp: int | None,
    micro_batch: int | None,
    zero: int | None,
    recompute: str | None,
) -> dict[str, Any]:
    return {
        "tp": tp,
        "pp": pp,
        "dp": dp,
        "cp": cp,
        "ep": ep,
        "vpp": vpp,
        "micro_batch": micro_batch,
        "zero": zero,
        "recompute": recompute,
    }


def _check_choice(name: str, value: str, valid: tuple[str, ...]) -> Any:
    from chipmix.errors import UnknownNameError

    if value not in valid:
        raise UnknownNameError(name, value, valid)
    return value


def _job_kwargs(
    seq_len: int,
    global_batch: int,
    precision: str,
    mode: str,
    tokens: float | None,
    stack: str | None,
) -> dict[str, Any]:
    from chipmix.workload.job import MODES, TRAIN_PRECISIONS

    return {
        "seq_len": seq_len,
        "global_batch": global_batch,
        "precision": _check_choice("precision", precision, TRAIN_PRECISIONS),
        "mode": _check_choice("mode", mode, MODES),
        "tokens": tokens,
        "stack": stack,
    }


@app.command()
def estimate(
    model: ModelOpt,
    system: SystemOpt,
    chips: ChipsOpt = None,
    seq_len: SeqOpt = 4096,
    global_batch: BatchOpt = 1024,
    precision: PrecisionOpt = "bf16",
    mode: ModeOpt = "pretrain",
    tokens: TokensOpt = None,
    price_tier: TierOpt = "on-demand",
    stack: StackOpt = None,
    tp: Annotated[int | None, typer.Option(help="Tensor parallel degree.")] = None,
    pp: Annotated[int | None, typer.Option(help="Pipeline stages.")] = None,
    dp: Annotated[int | None, typer.Option(help="Data parallel degree.")] = None,
    cp: Annotated[int | None, typer.Option(help="Context parallel degree.")] = None,
    ep: Annotated[int | None, typer.Option(help="Expert parallel degree.")] = None,
    vpp: Annotated[int | None, typer.Option(help="Virtual pipeline stages.")] = None,
    micro_batch: Annotated[int | None, typer.Option(help="Micro-batch (sequences).")] = None,
    zero: Annotated[int | None, typer.Option(help="ZeRO stage 0-3 (3 = FSDP).")] = None,
    recompute: Annotated[str | None, typer.Option(help="none, selective or full.")] = None,
    explain: Annotated[
        bool, typer.Option("--explain", help="Show the step-time and memory breakdown.")
    ] = False,
    json_out: JsonOpt = False,
    catalog: CatalogOpt = None,
) -> None:
    """Predict step time, throughput, MFU, memory and (with --tokens) time, cost, energy.

    Layout axes not given are chosen by the search (the best layout that fits)."""
    from chipmix.api import estimate as run
    from chipmix.report.render import console, estimate_table, print_json

    result = run(
        model,
        system,
        chips,
        catalog=catalog,
        price_tier=price_tier,
        **_job_kwargs(seq_len, global_batch, precision, mode, tokens, stack),
        **_layout_opts(tp, pp, dp, cp, ep, vpp, micro_batch, zero, recompute),
    )
    if json_out:
        print_json(result.to_dict())
        return
    for table in estimate_table(result, explain=explain):
        console.print(table)


@app.command()
def search(
    model: ModelOpt,
    system: SystemOpt,
    chips: Annotated[int, typer.Option("--chips", "-n", help="Number of chips.")],
    seq_len: SeqOpt = 4096,
    global_batch: BatchOpt = 1024,
    precision: PrecisionOpt = "bf16",
    mode: ModeOpt = "pretrain",
    tokens: TokensOpt = None,
    stack: StackOpt = None,
    top: Annotated[int, typer.Option("--top", help="How many layouts to show.")] = 5,
    json_out: JsonOpt = False,
    catalog: CatalogOpt = None,
    report: ReportOpt = None,
) -> None:
    """Find the best parallel layouts for a job on a system."""
    from chipmix.api import search as run
    from chipmix.report.render import search_table

    if top < 1:
        from chipmix.errors import InputError

        raise InputError(f"--top must be at least 1 (got {top})")
    result = run(
        model,
        system,
        chips,
        top=top,
        catalog=catalog,
        **_job_kwargs(seq_len, global_batch, precision, mode, tokens, stack),
    )
    if report is not None:
        from chipmix.report.html import search_page

        _write_report(search_page(result, **_report_context(catalog)), report)
    _show(result, search_table, json_out)


@app.command()
def compare(
    model: ModelOpt,
    tokens: TokensOpt = None,
    steps: Annotated[
        float | None,
        typer.Option("--steps", help="Optimizer steps to train (instead of --tokens)."),
    ] = None,
    chips: Annotated[
        int | None,
        typer.Option(
            "--chips",
            "-n",
            help="Same chip count on every system. Default when no sizing is given: 1024.",
        ),
    ] = None,
    deadline_days: Annotated[
        float | None,
        typer.Option(
            "--deadline-days", help="Fewest chips (whole nodes) that train within this many days."
        ),
    ] = None,
    budget_usd: Annotated[
        float | None,
        typer.Option("--budget-usd", help="Fastest plan whose cost stays within this budget."),
    ] = None,
    systems: Annotated[
        str | None,
        typer.Option(
            "--systems",
            help="Comma-separated system or chip ids, or 'all' for every system. Default: "
            "every chip's reference system, priced by that chip's cheapest current offer.",
        ),
    ] = None,
    seq_len: SeqOpt = 4096,
    global_batch: BatchOpt = 1024,
    precision: PrecisionOpt = "bf16",
    mode: ModeOpt = "pretrain",
    price_tier: TierOpt = "on-demand",
    stack: StackOpt = None,
    json_out: JsonOpt = False,
    catalog: CatalogOpt = None,
    report: ReportOpt = None,
) -> None:
    """Which chips, how long, how much: one job on every system, ranked by cost.

    Give the run's length (--tokens or --steps) and at most one way to size it (--chips,
    --deadline-days or --budget-usd; without one, 1024 chips on every system). Each system
    gets its best layout; the fastest and the cheapest are marked."""
    from chipmix.planning.comparison.compare import compare as run
    from chipmix.report.compare_table import compare_tables

    job = _job_kwargs(seq_len, global_batch, precision, mode, None, stack)
    del job["tokens"]
    result = run(
        model,
        tokens=tokens,
        steps=steps,
        chips=chips,
        deadline_days=deadline_days,
        budget_usd=budget_usd,
        systems=systems,
        price_tier=price_tier,
        catalog=catalog,
        **job,
    )
    if report is not None:
        from chipmix.report.html import compare_page

        _write_report(compare_page(result, **_report_context(catalog)), report)
    _show(result, compare_tables, json_out)


class CatalogKind(StrEnum):
    chips = "chips"
    systems = "systems"
    offers = "offers"


@app.command("catalog")
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


@app.command()
def models(json_out: JsonOpt = False) -> None:
    """List the model presets with their parameter counts."""
    from chipmix.report.catalog_tables import model_rows, models_table
    from chipmix.report.render import console, print_json

    rows = model_rows()
    if json_out:
        print_json(rows)
        return
    console.print(models_table(rows))


@app.command()
def validate(
    cases: Annotated[
        Path | None,
        typer.Option(
            "--cases", help="CSV in the published-measurement schema (default: the shipped cases)."
        ),
    ] = None,
    cross_validate: Annotated[
        bool,
        typer.Option(
            "--cross-validate",
            help="Leave one source out: refit without each source and predict it.",
        ),
    ] = False,
    markdown: Annotated[
        bool,
        typer.Option("--markdown", help="Print the README table (in-sample and cross-validated)."),
    ] = False,
    json_out: JsonOpt = False,
    catalog: CatalogOpt = None,
    report: ReportOpt = None,
) -> None:
    """Score predictions against published training runs."""
    from chipmix.catalog import load_catalog
    from chipmix.report.render import console, print_json
    from chipmix.report.validate_table import scorecard_markdown, scorecard_tables
    from chipmix.validate.cases import DEFAULT_CASES, read_cases
    from chipmix.validate.crossval import leave_one_source_out
    from chipmix.validate.score import score_cases

    cat = load_catalog(catalog)
    rows = read_cases(cases or DEFAULT_CASES)
    card = score_cases(rows, cat)
    cross = leave_one_source_out(rows, cat) if (cross_validate or markdown) else None
    shown = cross if cross is not None else card
    if report is not None:
        from chipmix.report.html import validate_page

        vendors = {chip.id: chip.vendor for chip in cat.chips.values()}
        page = validate_page(
            shown,
            vendors,
            in_sample=card if cross is not None else None,
            cases=str(cases) if cases else "",
            **_report_context(catalog),
        )
        _write_report(page, report)
    if markdown:
        print(scorecard_markdown(card, cross))
        return
    if json_out:
        print_json(shown.to_dict())
        return
    for table in scorecard_tables(shown):
        console.print(table)


@app.command()
def calibrate(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Where to write the fitted calibration (YAML); with --from-bench, the overlay "
            "folder (default ~/.local/share/chipmix/catalog).",
        ),
    ] = None,
    from_bench: Annotated[
        bool,
        typer.Option("--from-bench", help="Fit the chips measured by `chipmix bench` instead."),
    ] = False,
    db: Annotated[
        Path | None, typer.Option("--db", help="Bench results file (with --from-bench).")
    ] = None,
    cases: Annotated[
        Path | None,
        typer.Option(
            "--cases", help="CSV in the published-measurement schema (default: the shipped cases)."
        ),
    ] = None,
    json_out: JsonOpt = False,
    catalog: CatalogOpt = None,
) -> None:
    """Fit the calibration parameters to published runs and write them with provenance;
    with --from-bench, fit the measured chips and write a catalog overlay folder."""
    from chipmix.catalog import load_catalog
    from chipmix.report.render import console, print_json
    from chipmix.validate.cases import DEFAULT_CASES, read_cases
    from chipmix.validate.fit import fit_calibration, write_calibration

    if from_bench:
        from chipmix.bench.commands import calibrate_from_bench
        from chipmix.report.bench_tables import fit_dict, fit_table

        fit, written = calibrate_from_bench(db=db, out=out, catalog=catalog)
        files = [str(p) for p in written]
        if json_out:
            print_json(fit_dict(fit, files))
            return
        for table in fit_table(fit, files):
            console.print(table)
        return
    if out is None:
        from chipmix.errors import InputError

        raise InputError("give --out FILE for the fitted calibration")
    result = fit_calibration(read_cases(cases or DEFAULT_CASES), load_catalog(catalog))
    write_calibration(result, out)
    if json_out:
        print_json(
            {"out": str(out), "parameters": result.parameters, "cases_used": result.cases_used}
        )
        return
    console.print(
        f"wrote {len(result.parameters)} fitted parameters from "
        f"{len(result.cases_used)} cases to {out}"
    )


@app.command()
def simulate(
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Preset id or model file.")
    ] = None,
    system: Annotated[
        str | None,
        typer.Option("--system", "-s", help="System id, or a chip id for its reference system."),
    ] = None,
    chips: Annotated[int | None, typer.Option("--chips", "-n", help="Number of chips.")] = None,
    plan: Annotated[
        Path | None,
        typer.Option("--plan", help="Planner scenario (YAML): simulate every job of its plan."),
    ] = None,
    tokens: TokensOpt = None,
    duration_days: Annotated[
        float | None,
        typer.Option("--duration-days", help="A fixed window of wall time (instead of --tokens)."),
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
    seed: Annotated[int, typer.Option("--seed", help="Random seed (reproducible).")] = 0,
    deadline_days: Annotated[
        float | None,
        typer.Option("--deadline-days", help="Report the probability of finishing by then."),
    ] = None,
    hot_spares: Annotated[
        int | None,
        typer.Option("--hot-spares", help="Hot spare nodes (default: the catalog's share)."),
    ] = None,
    sweep: Annotated[
        bool,
        typer.Option("--sweep", help="Also sweep checkpoint intervals: the simulated optimum."),
    ] = False,
    seq_len: SeqOpt = 4096,
    global_batch: BatchOpt = 1024,
    precision: PrecisionOpt = "bf16",
    mode: ModeOpt = "pretrain",
    price_tier: TierOpt = "on-demand",
    stack: StackOpt = None,
    json_out: JsonOpt = False,
    catalog: CatalogOpt = None,
    report: ReportOpt = None,
) -> None:
    """Monte Carlo of a run under failures, maintenance, reclaims and outages: ETTR,
    completion time, cost with the wasted part, and the checkpoint interval to use.

    Give --model, --system, --chips and the run's length; or --plan with a planner
    scenario to simulate each job where the plan puts it."""
    from chipmix.errors import InputError
    from chipmix.report.render import console, print_json
    from chipmix.report.sim_tables import plan_simulation_tables, simulation_tables
    from chipmix.sim.simulate import simulate as run

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
                                hot_spare_nodes=hot_spares, catalog=catalog)  # fmt: skip
        if json_out:
            print_json(planned.to_dict())
            return
        for table in plan_simulation_tables(planned):
            console.print(table)
        return
    if model is None or system is None or chips is None:
        raise InputError("give --model, --system and --chips (or --plan SCENARIO.yaml)")
    job = _job_kwargs(seq_len, global_batch, precision, mode, None, stack)
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
        deadline_days=deadline_days,
        price_tier=price_tier,
        hot_spare_nodes=hot_spares,
        sweep=sweep,
        catalog=catalog,
        **job,
    )
    if report is not None:
        from chipmix.report.html import simulate_page

        _write_report(simulate_page(result, **_report_context(catalog)), report)
    _show(result, simulation_tables, json_out)


@app.command()
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
        int | None, typer.Option("--threads", help="CPU threads (default: PyTorch's).")
    ] = None,
    seq_len: Annotated[int | None, typer.Option("--seq-len", help="Tokens per sequence.")] = None,
    batch: Annotated[int | None, typer.Option("--batch", help="Sequences per step.")] = None,
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
    memory, norms, a training step; collectives under torchrun. Needs chipmix[bench]."""
    from chipmix.bench.commands import run_bench, run_check
    from chipmix.bench.runner import SUITES
    from chipmix.report.bench_tables import bench_dict, bench_progress, bench_table, check_table
    from chipmix.report.render import console, error_console, print_json

    options: dict[str, Any] = {
        "model": model, "suite": _check_choice("suite", suite, SUITES), "device": device,
        "chip": chip, "threads": threads, "seq_len": seq_len, "batch": batch,
        "compile": compile, "db": db, "catalog": catalog,
    }  # fmt: skip
    try:
        with bench_progress(error_console) as progress:
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


def _shares_opt(text: str | None, option: str) -> dict[str, float] | None:
    """``nvidia=60%,google=0.3`` → {"nvidia": 0.6, "google": 0.3}."""
    if text is None:
        return None
    from chipmix.errors import InputError

    out: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, _, value = part.partition("=")
        try:
            share = value.strip()
            out[name.strip()] = float(share[:-1]) / 100 if share.endswith("%") else float(share)
        except ValueError:
            raise InputError(
                f"{option} takes name=share pairs like nvidia=60% or nvidia=0.6 (got {part!r})"
            ) from None
    return out


def _list_opt(text: str | None) -> list[str] | None:
    return None if text is None else [p.strip() for p in text.split(",") if p.strip()]


@app.command()
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
    json_out: JsonOpt = False,
    catalog: CatalogOpt = None,
    report: ReportOpt = None,
) -> None:
    """Plan a portfolio: which job runs on which offer, tier and chips, and when.

    The scenario file lists the jobs, the offers and the constraints (budget, vendor and
    cloud share caps, minimum vendors, power cap); the plan meets every deadline at the
    least cost (or the shortest makespan, or the most tokens within the budget) and says
    which constraints bind and what relaxing them is worth. See examples/*.yaml."""
    from chipmix.planning.portfolio.planner import plan as run
    from chipmix.planning.portfolio.results import PlanInfeasibleError
    from chipmix.report.plan_tables import plan_tables
    from chipmix.report.render import print_json

    try:
        result = run(
            scenario,
            catalog=catalog,
            pareto=pareto,
            sensitivity=False if no_sensitivity else None,
            single_vendor=False if no_baseline else None,
        )
    except PlanInfeasibleError as exc:
        if json_out:
            print_json(exc.to_dict())
            raise typer.Exit(2) from None
        raise
    if report is not None:
        from chipmix.report.html.plan import plan_page

        text = scenario.read_text(encoding="utf-8")
        page = plan_page(
            result, scenario_text=text, scenario_file=str(scenario), **_report_context(catalog)
        )
        _write_report(page, report)
    _show(result, plan_tables, json_out)


@app.command()
def budget(
    usd: Annotated[
        float | None, typer.Option("--usd", help="Budget in US dollars: what it buys.")
    ] = None,
    years: Annotated[float, typer.Option("--years", help="Length of the commitment.")] = 1.0,
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
        int | None, typer.Option("--max-chips", help="Chips each offer can hold at once.")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Model to train (with --tokens per run)."),
    ] = None,
    tokens: Annotated[
        float | None, typer.Option("--tokens", help="Tokens per training run (e.g. 15e12).")
    ] = None,
    runs: Annotated[
        float | None,
        typer.Option("--runs", help="Runs of --model to train: the budget they need."),
    ] = None,
    chips: Annotated[
        int, typer.Option("--chips", "-n", help="Chips per run, for its throughput.")
    ] = 4096,
    seq_len: SeqOpt = 4096,
    global_batch: BatchOpt = 1024,
    precision: PrecisionOpt = "bf16",
    mode: ModeOpt = "pretrain",
    stack: StackOpt = None,
    json_out: JsonOpt = False,
    catalog: CatalogOpt = None,
    report: ReportOpt = None,
) -> None:
    """What a commitment buys: chip-hours, PFLOP-days and training runs per offer and tier
    under vendor caps (--usd); or the budget that K runs need (--runs)."""
    from chipmix.planning.budget.budget import budget as run
    from chipmix.report.plan_tables import budget_tables

    job = _job_kwargs(seq_len, global_batch, precision, mode, None, stack)
    del job["tokens"]
    result = run(
        usd,
        years,
        offers=_list_opt(offers),
        mix=_shares_opt(mix, "--mix"),
        vendor_caps=_shares_opt(cap, "--cap"),
        tiers=_list_opt(tiers),
        max_chips=max_chips,
        model=model,
        tokens=tokens,
        runs=runs,
        chips=chips,
        catalog=catalog,
        **job,
    )
    if report is not None:
        from chipmix.report.html.budget import budget_page

        _write_report(budget_page(result, **_report_context(catalog)), report)
    _show(result, budget_tables, json_out)


def main() -> None:
    """Entry point: chipmix errors become one line on stderr and exit status 2."""
    _ARGV[:] = sys.argv[1:]
    try:
        app()
    except ChipmixError as exc:
        from chipmix.report.render import error_console

        error_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
