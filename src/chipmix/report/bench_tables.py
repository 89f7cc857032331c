"""Rendering for ``chipmix bench`` and ``chipmix calibrate --from-bench``: the progress bar,
the results table, the fitted parameters and the check (predicted beside measured)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from chipmix.report.render import fmt_num

if TYPE_CHECKING:
    from chipmix.bench.check import CheckResult
    from chipmix.bench.detect import Device
    from chipmix.bench.fit import BenchFit
    from chipmix.bench.score import BenchScorecard
    from chipmix.bench.store import Result

__all__ = [
    "bench_dict",
    "bench_progress",
    "bench_score_tables",
    "bench_table",
    "check_table",
    "fit_dict",
    "fit_table",
]


@contextmanager
def bench_progress(
    console: Console, *, enabled: bool = True
) -> Iterator[Callable[[str, int, int], None] | None]:
    """A rich progress bar on ``console``; yields the callback the runner reports to
    (None when not ``enabled``: nothing is drawn)."""
    if not enabled:
        yield None
        return
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    task = bar.add_task("bench", total=None)

    def update(label: str, done: int, total: int) -> None:
        bar.update(task, description=label, completed=done, total=total)

    with bar:
        yield update


def _shape(result: Result) -> str:
    s = result.shape
    if result.kind == "matmul":
        return f"{s['m']}×{s['k']}×{s['n']}"
    if result.kind == "attention":
        return f"b{s['batch']} h{s['heads']}/{s['kv_heads']} s{s['seq_len']} d{s['head_dim']}"
    if result.kind in ("norm", "elementwise"):
        return f"{s['tokens']}×{s.get('hidden', s.get('width'))}"
    if result.kind == "e2e":
        model = s["model"]
        return f"{model['name']} b{s['batch']} s{s['seq_len']}"
    if result.kind == "collective":
        return f"{fmt_num(float(s.get('bytes', 0)))}B ×{s.get('world_size', '?')}"
    return f"{fmt_num(float(s.get('bytes', 0)))}B"


def _rate(result: Result) -> str:
    if result.kind == "e2e":
        mfu = result.extra.get("mfu")
        tps = fmt_num(float(result.extra.get("tokens_per_s", 0.0)))
        return f"{tps} tok/s" + (f", MFU {100 * mfu:.1f}%" if mfu is not None else "")
    if result.kind == "collective":
        if "unsupported" in result.extra:
            return "unsupported: " + str(result.extra["unsupported"])
        return f"busbw {fmt_num(float(result.extra['busbw_bytes_per_s']))}B/s"
    if result.flops:
        return f"{fmt_num(result.flops_per_s)}FLOP/s"
    return f"{fmt_num(result.bytes_per_s)}B/s"


def bench_table(device: Device, results: Sequence[Result], db: str) -> Table:
    """One row per measurement: kind, name, dtype, shape, median time, rate."""
    table = Table(
        title=f"{device.name} → chip {device.chip} ({device.kind}); stored in {db}",
        title_justify="left",
    )
    for column in ("kind", "name", "dtype", "shape"):
        table.add_column(column)
    table.add_column("median", justify="right")
    table.add_column("rate", justify="right")
    table.add_column("timed by")
    for r in results:
        table.add_row(r.kind, r.name, r.dtype, _shape(r), f"{r.median_s * 1e3:.3g} ms", _rate(r),
                      r.method or "host timer (unrecorded)")  # fmt: skip
    return table


def bench_dict(device: Device, results: Sequence[Result], db: str, run_id: int) -> dict[str, Any]:
    """The run as JSON: device, versions and every result with its derived rates."""
    return {
        "db": db,
        "run_id": run_id,
        "device": device.info(),
        "versions": device.versions,
        "results": [
            {**asdict(r), "flops_per_s": r.flops_per_s, "bytes_per_s": r.bytes_per_s}
            for r in results
        ],
    }


def fit_table(fit: BenchFit, written: Sequence[str]) -> list[Table]:
    """Per chip: each fitted parameter, its prior and the results behind it."""
    tables = []
    for chip in fit.chips:
        table = Table(title=f"{chip.chip}: calibration from {fit.db}", title_justify="left")
        for column in ("parameter", "prior", "fitted", "results", "how"):
            table.add_column(column, justify="right" if column in ("prior", "fitted") else "left")
        for p in chip.parameters:
            table.add_row(
                str(p["name"]), f"{float(p['prior']):.4g}", f"{float(p['fitted']):.4g}",
                str(p["rows"]), str(p["note"]),
            )  # fmt: skip
        tables.append(table)
    files = Table(title="written", show_header=False, title_justify="left")
    files.add_column()
    for path in written:
        files.add_row(path)
    tables.append(files)
    return tables


def fit_dict(fit: BenchFit, written: Sequence[str]) -> dict[str, Any]:
    return {
        "db": fit.db,
        "written": list(written),
        "chips": {
            c.chip: {
                "parameters": c.parameters,
                "calibration": c.calibration.model_dump(exclude_unset=True),
                "matmul_log_residuals": c.residuals,
            }
            for c in fit.chips
        },
    }


def check_table(check: CheckResult) -> list[Table]:
    """Predicted beside measured, then the predicted breakdown."""
    p = check.predicted
    table = Table(
        title=(
            f"check: {check.model} ({fmt_num(check.params)} weights), batch {check.batch} × "
            f"{check.seq_len} tokens on {check.chip}{', compiled' if check.compiled else ''}"
        ),
        title_justify="left",
    )
    for column in ("", "predicted", "measured"):
        table.add_column(column, justify="right" if column else "left")
    table.add_row("step time", f"{p.step_time_s * 1e3:.4g} ms",
                  f"{check.measured_step_time_s * 1e3:.4g} ms")  # fmt: skip
    table.add_row("tokens/s", fmt_num(p.tokens_per_s), fmt_num(check.measured_tokens_per_s))
    table.add_row("MFU", f"{100 * p.mfu:.1f}%", f"{100 * check.measured_mfu:.1f}%")
    table.add_row("error", f"{100 * check.error:+.1f}%", "")
    parts = Table(title="predicted breakdown", show_header=False, title_justify="left")
    parts.add_column()
    parts.add_column(justify="right")
    for name, seconds in p.breakdown.items():
        if seconds:
            parts.add_row(name, f"{seconds * 1e3:.4g} ms")
    parts.add_row("calibration", p.calibration_source or "defaults (not calibrated)")
    return [table, parts]


def bench_score_tables(scored: BenchScorecard) -> list[Table]:
    """``validate --from-bench``: the scorecard, each distinct step's predicted breakdown
    beside its measurement, and the parameters fitted from the store."""
    from chipmix.report.validate_table import scorecard_tables

    tables = scorecard_tables(scored.card)
    seen: dict[tuple[str, float], str] = {}
    for row_id, check in scored.checks.items():
        seen.setdefault((check.model, round(check.predicted.step_time_s, 9)), row_id)
    if seen:
        parts = Table(title="predicted breakdown (ms per step)", title_justify="left")
        parts.add_column("term")
        ids = list(seen.values())
        for row_id in ids:
            parts.add_column(row_id, justify="right")
        terms = list(scored.checks[ids[0]].predicted.breakdown)
        for term in terms:
            values = [scored.checks[i].predicted.breakdown.get(term, 0.0) for i in ids]
            if any(values):
                parts.add_row(term, *(f"{v * 1e3:.4g}" for v in values))
        parts.add_row("predicted", *(f"{scored.checks[i].predicted.step_time_s * 1e3:.4g}"
                                     for i in ids), style="bold")  # fmt: skip
        parts.add_row("measured", *(f"{scored.checks[i].measured_step_time_s * 1e3:.4g}"
                                    for i in ids))  # fmt: skip
        tables.append(parts)
    if scored.fit is not None:
        params = Table(title=f"fitted from {scored.fit_db}", title_justify="left")
        for column in ("scope", "key", "parameter", "prior", "fitted", "results"):
            params.add_column(column, justify="right" if column in ("prior", "fitted") else "left")
        for p in scored.fit.calibration().parameters:
            params.add_row(str(p["scope"]), str(p["key"]), str(p["name"]),
                           f"{float(p['prior']):.4g}", f"{float(p['fitted']):.4g}",
                           str(p["rows"]))  # fmt: skip
        tables.append(params)
    return tables
