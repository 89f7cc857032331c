"""Terminal rendering (rich tables) and JSON output. Nothing else in chipmix prints."""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable, Iterable
from typing import Any

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from chipmix.report.json_doc import print_json
from chipmix.results import Estimate, SearchResult

__all__ = [
    "console",
    "error_console",
    "estimate_table",
    "fmt_duration",
    "fmt_num",
    "fmt_usd",
    "print_csv",
    "print_json",
    "print_tables",
    "search_table",
]

console = Console()
error_console = Console(stderr=True)


def print_tables(tables: Iterable[RenderableType]) -> None:
    """Print tables on stdout, never cutting an id or a number short.

    On a terminal, a column too wide for the screen folds onto more lines instead of ending
    in "…"; into a pipe or a file, each table is printed at its natural width (a program
    reading it wants every value whole, not the width of a screen it does not have)."""
    for table in tables:
        if isinstance(table, Table):
            for column in table.columns:
                column.overflow = "fold"
        width = console.width
        if not console.is_terminal:
            wide = console.options.update_width(10_000)
            width = max(width, console.measure(table, options=wide).maximum)
        out = console if width == console.width else Console(width=width, highlight=False)
        out.print(table)


def _plain(cell: Any) -> str:
    if isinstance(cell, Text):
        return cell.plain
    if isinstance(cell, str):
        return Text.from_markup(cell).plain
    return str(cell)


def print_csv(tables: Iterable[RenderableType]) -> None:
    """Tables as CSV on stdout: per table a ``# title`` line, the header, the rows; a blank
    line between tables. Text that is not a table becomes a ``# `` line."""
    writer = csv.writer(sys.stdout, lineterminator="\n")
    for i, table in enumerate(tables):
        if i:
            sys.stdout.write("\n")
        if not isinstance(table, Table):
            sys.stdout.write(f"# {_plain(table)}\n")
            continue
        if table.title:
            sys.stdout.write(f"# {_plain(table.title)}\n")
        columns = [list(c.cells) for c in table.columns]
        if table.show_header:
            writer.writerow([_plain(c.header) for c in table.columns])
        for row in zip(*columns, strict=True):
            writer.writerow([_plain(cell) for cell in row])


def fmt_num(x: float, digits: int = 3) -> str:
    """Engineering notation with SI suffix: 1.23M, 456k."""
    for bound, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= bound:
            return f"{x / bound:.{digits}g}{suffix}"
    return f"{x:.{digits}g}"


def fmt_usd(x: float | None) -> str:
    if x is None:
        return "—"
    return f"${fmt_num(x)}"


def fmt_duration(hours: float) -> str:
    if hours < 1:
        return f"{hours * 60:.0f} min"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} days"


def _between(e: Estimate, key: str, fmt: Callable[[float], str]) -> str:
    """`` (p10–p90 a–b)`` for one of the estimate's figures, or nothing."""
    interval = e.interval
    if interval is None or key not in interval.figures:
        return ""
    lo, hi = interval[key]
    return f" (p10–p90 {fmt(lo)}–{fmt(hi)})"


def _kv_table(title: str, rows: Iterable[tuple[str, str]]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for k, v in rows:
        table.add_row(k, v)
    return table


def estimate_table(e: Estimate, explain: bool = False) -> list[Table]:
    job = e.job
    rows = [
        ("model", f"{job.model.display_name or job.model.name} ({job.mode}, {job.precision})"),
        ("system", f"{e.chips} × {e.system.chip.name} on {e.system.id}"),
        (
            "shape",
            f"seq {job.seq_len}, global batch {job.global_batch} sequences "
            f"({fmt_num(job.tokens_per_step)} tokens/step)",
        ),
        ("layout", str(e.layout)),
        ("stack", (e.stack or "generic defaults") + ("" if e.job.stack else " (vendor default)")),
        ("step time", f"{e.step_time_s:.3f} s"),
        (
            "tokens/s",
            f"{fmt_num(e.tokens_per_s)} ({fmt_num(e.tokens_per_s_per_chip)} per chip)"
            + _between(e, "tokens_per_s", fmt_num),
        ),
        ("MFU / HFU", f"{e.mfu:.1%} / {e.hfu:.1%}"),
        ("memory/chip", f"{e.memory_gib_per_chip:.1f} of {e.memory_capacity_gib:.0f} GiB"),
    ]
    if e.run is not None:
        run = e.run
        rows += [
            ("tokens", fmt_num(run.tokens)),
            (
                "time to train",
                fmt_duration(run.time_to_train_h) + _between(e, "time_to_train_h", fmt_duration),
            ),
            ("chip-hours", fmt_num(run.chip_hours)),
            (
                "energy",
                f"{run.energy_mwh:,.0f} MWh IT"
                + (" (estimated power)" if run.power_is_estimated else "")
                + f"; {run.facility_energy_mwh:,.0f} MWh at PUE {run.pue:g}",
            ),
        ]
        for tier, cost in run.cost_usd.items():
            rows.append(
                (
                    f"cost {tier}",
                    f"{fmt_usd(cost)} "
                    f"(${run.usd_per_chip_hour[tier]:.2f}/chip-h, "
                    f"{run.offer_by_tier[tier]} as of {run.offer_date_by_tier[tier]}"
                    + (f", {flag}" if (flag := run.price_flag_by_tier.get(tier)) else "")
                    + ")",
                )
            )
        if e.cost_usd is not None:
            rows.append(("cost p10–p90", _between(e, "cost_usd", fmt_usd).strip(" ()")))
        if not run.cost_usd:
            rows.append(("cost", "no priced offer for this chip in the catalog"))
    if e.evidence is not None and e.error is not None:
        mark = "extrapolated — " if e.evidence.extrapolated else ""
        rows.append(("evidence", f"{mark}{e.evidence.describe()}"))
        rows.append(
            (
                "interval",
                f"p10–p90 of actual ÷ predicted throughput {e.error.p10_factor:.2f}–"
                f"{e.error.p90_factor:.2f} (class {e.error.level}; "
                "cross-validated residuals)",
            )
        )
    tables = [_kv_table("chipmix estimate", rows)]
    if explain:
        tables.append(breakdown_table(e))
        tables.append(memory_table(e))
    return tables


def breakdown_table(e: Estimate) -> Table:
    table = Table(title="step time breakdown", title_justify="left")
    table.add_column("term")
    table.add_column("seconds", justify="right")
    table.add_column("share", justify="right")
    for k, v in e.breakdown.items():
        if v > 0:
            table.add_row(k, f"{v:.4f}", f"{v / e.step_time_s:.1%}")
    table.add_row("total", f"{e.step_time_s:.4f}", "100%", style="bold")
    return table


def memory_table(e: Estimate) -> Table:
    table = Table(title="memory per chip (fullest pipeline stage)", title_justify="left")
    table.add_column("term")
    table.add_column("GiB", justify="right")
    for k, v in e.memory_gib.items():
        table.add_row(k, f"{v:.2f}", style="bold" if k == "total" else None)
    table.add_row("capacity", f"{e.memory_capacity_gib:.2f}")
    return table


def search_table(result: SearchResult) -> list[Table]:
    table = Table(
        title=f"best layouts ({result.feasible:,} feasible of {result.tried:,} tried)",
        title_justify="left",
    )
    for col in ("#", "layout", "step s", "tokens/s", "MFU", "GiB/chip", "largest terms"):
        table.add_column(col, justify="right" if col not in ("layout", "largest terms") else "left")
    for i, e in enumerate(result.top, 1):
        terms = sorted(e.breakdown.items(), key=lambda kv: -kv[1])[:3]
        table.add_row(
            str(i),
            str(e.layout),
            f"{e.step_time_s:.3f}",
            fmt_num(e.tokens_per_s),
            f"{e.mfu:.1%}",
            f"{e.memory_gib_per_chip:.1f}",
            ", ".join(f"{k} {v / e.step_time_s:.0%}" for k, v in terms),
        )
    rejected = Table(title="rejected layouts by reason", title_justify="left")
    rejected.add_column("reason")
    rejected.add_column("layouts", justify="right")
    for reason, count in sorted(result.rejected.items(), key=lambda kv: -kv[1]):
        rejected.add_row(reason, f"{count:,}")
    return [table, rejected]
