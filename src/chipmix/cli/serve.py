"""The ``serve`` command group: ``serve estimate``, ``serve search``, ``serve compare``
(parse, call, render)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from chipmix.cli.options import (
    MAX_CHIPS,
    MAX_DEGREE,
    CatalogOpt,
    FormatOpt,
    JsonOpt,
    ModelOpt,
    ReportOpt,
    TierOpt,
    TopOpt,
    finite,
)
from chipmix.cli.output import report_context, show, write_report

__all__ = ["app"]

app = typer.Typer(
    name="serve",
    help="Serving: throughput, latency and cost of a model on a chip (or every chip).",
    no_args_is_help=True,
)

InputOpt = Annotated[int, typer.Option("--input-len", help="Prompt tokens per request (mean).")]
OutputOpt = Annotated[
    int, typer.Option("--output-len", help="Generated tokens per request (mean).")
]
MAX_LATENCY_MS = 3.6e6
"""The loosest latency target taken: an hour (a looser one is no target)."""
TTFTOpt = Annotated[
    float | None,
    typer.Option(
        "--ttft-p99-ms",
        help="p99 time-to-first-token target, ms.",
        callback=finite(MAX_LATENCY_MS),
    ),
]
TPOTOpt = Annotated[
    float | None,
    typer.Option(
        "--tpot-p99-ms",
        help="p99 time-per-output-token target, ms.",
        callback=finite(MAX_LATENCY_MS),
    ),
]
WeightOpt = Annotated[str, typer.Option("--precision", help="Weights: bf16, fp8, int8 or fp4.")]
KVOpt = Annotated[
    str | None,
    typer.Option("--kv-precision", help="KV cache: bf16 or fp8 (default fp8 for fp8/fp4 weights)."),
]
ServeStackOpt = Annotated[
    str | None,
    typer.Option(
        "--stack", help="Serving stack (vllm, sglang, trt-llm, jetstream, neuronx-vllm…)."
    ),
]
ServeSystemOpt = Annotated[
    str, typer.Option("--system", "-s", help="System id, or a chip id for its reference system.")
]
ServeChipsOpt = Annotated[
    int, typer.Option("--chips", "-n", help="Number of chips.", min=1, max=MAX_CHIPS)
]
AxisOpt = Annotated[
    int | None, typer.Option(help="Pin this axis of the replica layout.", min=1, max=MAX_DEGREE)
]


def _job(
    input_len: int, output_len: int, precision: str, kv: str | None, stack: str | None
) -> dict[str, Any]:
    return {"input_len": input_len, "output_len": output_len, "precision": precision,
            "kv_precision": kv, "stack": stack}  # fmt: skip


@app.command("estimate")
def estimate_cmd(
    model: ModelOpt,
    system: ServeSystemOpt,
    chips: ServeChipsOpt = 8,
    input_len: InputOpt = 2000,
    output_len: OutputOpt = 300,
    ttft_p99_ms: TTFTOpt = None,
    tpot_p99_ms: TPOTOpt = None,
    precision: WeightOpt = "bf16",
    kv_precision: KVOpt = None,
    stack: ServeStackOpt = None,
    tp: AxisOpt = None,
    pp: AxisOpt = None,
    ep: AxisOpt = None,
    batch: Annotated[
        int | None, typer.Option(help="Requests per replica.", min=1, max=MAX_DEGREE)
    ] = None,
    json_out: JsonOpt = False,
    fmt: FormatOpt = "table",
    catalog: CatalogOpt = None,
    report: ReportOpt = None,
) -> None:
    """Predict serving one model on one system: the given layout, or the best one."""
    from chipmix.api import serve_estimate
    from chipmix.report.serve_tables import serve_estimate_tables

    result = serve_estimate(
        model, system, chips, ttft_p99_ms=ttft_p99_ms, tpot_p99_ms=tpot_p99_ms,
        catalog=catalog, tp=tp, pp=pp, ep=ep, batch=batch,
        **_job(input_len, output_len, precision, kv_precision, stack),
    )  # fmt: skip
    if report is not None:
        from chipmix.report.html.serve import serve_estimate_page

        write_report(serve_estimate_page(result, **report_context(catalog)), report)
    show(result, serve_estimate_tables, json_out, fmt)


@app.command("search")
def search_cmd(
    model: ModelOpt,
    system: ServeSystemOpt,
    chips: ServeChipsOpt = 8,
    input_len: InputOpt = 2000,
    output_len: OutputOpt = 300,
    ttft_p99_ms: TTFTOpt = None,
    tpot_p99_ms: TPOTOpt = None,
    precision: WeightOpt = "bf16",
    kv_precision: KVOpt = None,
    stack: ServeStackOpt = None,
    top: TopOpt = 5,
    json_out: JsonOpt = False,
    fmt: FormatOpt = "table",
    catalog: CatalogOpt = None,
    report: ReportOpt = None,
) -> None:
    """The replica layouts and batches with the most output tokens/s per chip under the
    p99 latency targets."""
    from chipmix.api import serve_search
    from chipmix.report.serve_tables import serve_search_tables

    result = serve_search(
        model, system, chips, ttft_p99_ms=ttft_p99_ms, tpot_p99_ms=tpot_p99_ms, top=top,
        catalog=catalog, **_job(input_len, output_len, precision, kv_precision, stack),
    )  # fmt: skip
    if report is not None:
        from chipmix.report.html.serve import serve_estimate_page

        write_report(serve_estimate_page(result, **report_context(catalog)), report)
    show(result, serve_search_tables, json_out, fmt)


@app.command("compare")
def compare_cmd(
    model: ModelOpt,
    input_len: InputOpt = 2000,
    output_len: OutputOpt = 300,
    ttft_p99_ms: TTFTOpt = None,
    tpot_p99_ms: TPOTOpt = None,
    tokens_per_day: Annotated[
        float | None,
        typer.Option(
            "--tokens-per-day",
            help="Output tokens a day to serve: chips needed.",
            callback=finite(1e18),
        ),
    ] = None,
    chips: Annotated[
        int,
        typer.Option(
            "--chips", "-n", help="Chips on each system (replicas fill them).", min=1, max=MAX_CHIPS
        ),
    ] = 64,
    systems: Annotated[
        str | None,
        typer.Option("--systems", help="Comma-separated system or chip ids (default: every chip)."),
    ] = None,
    precision: WeightOpt = "bf16",
    kv_precision: KVOpt = None,
    stack: ServeStackOpt = None,
    price_tier: TierOpt = "on-demand",
    json_out: JsonOpt = False,
    fmt: FormatOpt = "table",
    catalog: CatalogOpt = None,
    report: ReportOpt = None,
) -> None:
    """Every chip that can serve the model: tokens/s per chip, chips for a demand, and $ per
    million output tokens per price tier."""
    from chipmix.api import serve_compare
    from chipmix.report.serve_tables import serve_compare_tables

    names = [s.strip() for s in systems.split(",") if s.strip()] if systems else None
    result = serve_compare(
        model, chips=chips, systems=names, ttft_p99_ms=ttft_p99_ms, tpot_p99_ms=tpot_p99_ms,
        price_tier=price_tier, tokens_per_day=tokens_per_day, catalog=catalog,
        **_job(input_len, output_len, precision, kv_precision, stack),
    )  # fmt: skip
    if report is not None:
        from chipmix.report.html.serve import serve_compare_page

        write_report(serve_compare_page(result, **report_context(catalog)), report)
    show(result, serve_compare_tables, json_out, fmt)
