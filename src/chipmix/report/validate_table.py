"""Rendering of ``chipmix validate``: the per-row table, the summaries, markdown for docs."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from chipmix.validate.score import Scorecard

__all__ = ["scorecard_markdown", "scorecard_tables"]


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:+.1%}"


def scorecard_tables(card: Scorecard) -> list[Table]:
    title = "leave-one-source-out" if card.cross_validated else "in-sample"
    rows = Table(title=f"predicted vs published ({title})", title_justify="left")
    for col in ("id", "chip", "stack", "metric", "published", "predicted", "error"):
        rows.add_column(
            col, justify="right" if col in ("published", "predicted", "error") else "left"
        )
    for r in card.rows:
        if r.predicted is None:
            continue
        style = "red" if abs(r.error or 0.0) > 0.25 else None
        rows.add_row(
            r.id,
            r.chip,
            r.stack,
            r.metric,
            f"{r.published:,.4g}",
            f"{r.predicted:,.4g}",
            _pct(r.error),
            style=style,
        )
    tables = [rows, _summary_table(card.summary(), title)]
    if card.unpredicted:
        missing = Table(title="rows not predicted", title_justify="left")
        missing.add_column("id")
        missing.add_column("reason")
        for r in card.unpredicted:
            missing.add_row(r.id, r.reason or "")
        tables.append(missing)
    return tables


def _summary_table(summary: dict[str, Any], title: str) -> Table:
    table = Table(title=f"absolute error ({title})", title_justify="left")
    for col in ("group", "rows", "median", "p90", "mean signed"):
        table.add_column(col, justify="left" if col == "group" else "right")

    def add(name: str, s: dict[str, Any], style: str | None = None) -> None:
        if not s.get("count"):
            return
        table.add_row(
            name,
            str(s["count"]),
            f"{s['median_abs_error']:.1%}",
            f"{s['p90_abs_error']:.1%}",
            f"{s['mean_signed_error']:+.1%}",
            style=style,
        )

    add("all", summary, "bold")
    for key, label in (("per_chip", "chip"), ("per_stack", "stack")):
        for name, s in summary[key].items():
            add(f"{label} {name}", s)
    return table


def scorecard_markdown(
    card: Scorecard, cross: Scorecard | None = None, chip_cross: Scorecard | None = None
) -> str:
    """A summary table (in sample, leave-one-source-out, leave-one-chip-out), then a
    markdown table per row with each error, for the README."""
    cv = {r.id: r.error for r in cross.rows} if cross else {}
    lo = {r.id: r.error for r in chip_cross.rows} if chip_cross else {}
    lines = [
        "| score | rows predicted | refused | median abs. error | p90 abs. error |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, scored in (
        ("in sample", card),
        ("leave one source out", cross),
        ("leave one chip out", chip_cross),
    ):
        if scored is None:
            continue
        s = scored.summary()
        lines.append(
            f"| {name} | {s['count']} | {s['unpredicted']} | {s['median_abs_error']:.1%} | "
            f"{s['p90_abs_error']:.1%} |"
        )
    loco = " LOCO error |" if chip_cross else ""
    lines += [
        "",
        f"| case | chip | stack | published | predicted | error | LOSO error |{loco}",
        "|---|---|---|---:|---:|---:|---:|" + ("---:|" if chip_cross else ""),
    ]
    for r in card.rows:
        if r.predicted is None:
            continue
        lines.append(
            f"| {r.id} | {r.chip} | {r.stack} | {r.published:,.4g} | "
            f"{r.predicted:,.4g} | {_pct(r.error)} | {_pct(cv.get(r.id))} |"
            + (f" {_pct(lo.get(r.id))} |" if chip_cross else "")
        )
    s = card.summary()
    per_chip = ", ".join(
        f"{k} {v['median_abs_error']:.1%} ({v['count']})" for k, v in s["per_chip"].items()
    )
    lines += ["", f"In-sample median |error| per chip (rows): {per_chip}."]
    for r in card.unpredicted:
        lines.append(f"Not predicted: `{r.id}` — {r.reason}.")
    return "\n".join(lines)
