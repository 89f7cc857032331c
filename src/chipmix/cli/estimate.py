"""Commands about one job: ``estimate`` (one system, one layout), ``search`` (the best
layouts) and ``compare`` (every system)."""

from __future__ import annotations

from typing import Annotated

import typer

from chipmix.cli.options import (
    BatchOpt,
    CatalogOpt,
    ChipsOpt,
    FormatOpt,
    JsonOpt,
    LossTilesOpt,
    ModelOpt,
    ModeOpt,
    PrecisionOpt,
    PricesAsOfOpt,
    RecipeOpt,
    ReportOpt,
    SeqOpt,
    StackOpt,
    SystemOpt,
    TierOpt,
    TokensOpt,
    TopOpt,
    finite,
    job_kwargs,
    layout_opts,
    priced_catalog,
)
from chipmix.cli.output import emit, output_format, report_context, show, write_report

__all__ = ["compare", "estimate", "search"]


def estimate(
    model: ModelOpt,
    system: SystemOpt,
    chips: ChipsOpt = None,
    seq_len: SeqOpt = 4096,
    global_batch: BatchOpt = 1024,
    precision: PrecisionOpt = "bf16",
    precision_recipe: RecipeOpt = None,
    loss_tiles: LossTilesOpt = None,
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
    recompute: Annotated[
        str | None,
        typer.Option(
            help="Recomputation: none, selective, full; Megatron-Core modules "
            "(core_attn,mlp,layernorm,moe_act,moe,shared_experts,mla_up_proj, comma-joined); "
            "MaxText remat policies (minimal, save_qkv_proj, save_dot_except_mlp, …, "
            "custom:NAME=device|offload|remat,…)."
        ),
    ] = None,
    offload: Annotated[
        str | None,
        typer.Option(
            help="Host offload: none, activations, activations:N (layers per stage), "
            "optimizer; comma-joined."
        ),
    ] = None,
    explain: Annotated[
        bool, typer.Option("--explain", help="Show the step-time and memory breakdown.")
    ] = False,
    json_out: JsonOpt = False,
    fmt: FormatOpt = "table",
    catalog: CatalogOpt = None,
    prices_as_of: PricesAsOfOpt = None,
) -> None:
    """Predict step time, throughput, MFU, memory and (with --tokens) time, cost, energy.

    Layout axes not given are chosen by the search (the best layout that fits)."""
    from chipmix.api import estimate as run

    result = run(
        model,
        system,
        chips,
        catalog=priced_catalog(catalog, prices_as_of),
        price_tier=price_tier,
        **job_kwargs(
            seq_len, global_batch, precision, mode, tokens, stack, precision_recipe, loss_tiles
        ),
        **layout_opts(tp, pp, dp, cp, ep, vpp, micro_batch, zero, recompute, offload),
    )
    fmt = output_format(fmt, json_out)
    if fmt == "json":
        from chipmix.report.json_doc import print_json

        print_json(result.to_dict())
        return
    from chipmix.report.render import estimate_table

    emit(estimate_table(result, explain=explain), fmt)


def search(
    model: ModelOpt,
    system: SystemOpt,
    chips: Annotated[int, typer.Option("--chips", "-n", help="Number of chips.")],
    seq_len: SeqOpt = 4096,
    global_batch: BatchOpt = 1024,
    precision: PrecisionOpt = "bf16",
    precision_recipe: RecipeOpt = None,
    loss_tiles: LossTilesOpt = None,
    mode: ModeOpt = "pretrain",
    tokens: TokensOpt = None,
    stack: StackOpt = None,
    top: TopOpt = 5,
    json_out: JsonOpt = False,
    fmt: FormatOpt = "table",
    catalog: CatalogOpt = None,
    prices_as_of: PricesAsOfOpt = None,
    report: ReportOpt = None,
) -> None:
    """Find the best parallel layouts for a job on a system."""
    from chipmix.api import search as run
    from chipmix.report.render import search_table

    result = run(
        model,
        system,
        chips,
        top=top,
        catalog=priced_catalog(catalog, prices_as_of),
        **job_kwargs(
            seq_len, global_batch, precision, mode, tokens, stack, precision_recipe, loss_tiles
        ),
    )
    if report is not None:
        from chipmix.report.html import search_page

        write_report(search_page(result, **report_context(catalog)), report)
    show(result, search_table, json_out, fmt)


def compare(
    model: ModelOpt,
    tokens: TokensOpt = None,
    steps: Annotated[
        float | None,
        typer.Option(
            "--steps",
            help="Optimizer steps to train (instead of --tokens).",
            callback=finite(1e12),
        ),
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
            "--deadline-days",
            help="Fewest chips (whole nodes) that train within this many days.",
            callback=finite(36500),
        ),
    ] = None,
    budget_usd: Annotated[
        float | None,
        typer.Option(
            "--budget-usd",
            help="Fastest plan whose cost stays within this budget.",
            callback=finite(1e15),
        ),
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
    baseline: Annotated[
        str | None,
        typer.Option(
            "--baseline",
            help="System, chip or offer id: each plan's price-performance relative to it, "
            "with its p10–p90 interval.",
        ),
    ] = None,
    json_out: JsonOpt = False,
    fmt: FormatOpt = "table",
    catalog: CatalogOpt = None,
    prices_as_of: PricesAsOfOpt = None,
    report: ReportOpt = None,
) -> None:
    """Which chips, how long, how much: one job on every system, ranked by cost.

    Give the run's length (--tokens or --steps) and at most one way to size it (--chips,
    --deadline-days or --budget-usd; without one, 1024 chips on every system). Each system
    gets its best layout; the fastest and the cheapest are marked."""
    from chipmix.planning.comparison.compare import compare as run
    from chipmix.report.compare_table import compare_tables

    job = job_kwargs(seq_len, global_batch, precision, mode, None, stack)
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
        catalog=priced_catalog(catalog, prices_as_of),
        baseline=baseline,
        **job,
    )
    if report is not None:
        from chipmix.report.html import compare_page

        write_report(compare_page(result, **report_context(catalog)), report)
    show(result, compare_tables, json_out, fmt)
