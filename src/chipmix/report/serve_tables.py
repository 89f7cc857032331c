"""Terminal tables of serving predictions: one estimate, the search's best, the comparison."""

from __future__ import annotations

from collections.abc import Iterable

from rich.table import Table

from chipmix.report.render import fmt_num
from chipmix.serve.results import ServeComparison, ServeEstimate, ServeSearchResult

__all__ = ["serve_compare_tables", "serve_estimate_tables", "serve_search_tables"]


def _usd(x: float | None) -> str:
    return "—" if x is None else f"${x:,.2f}"


def _kv(title: str, rows: Iterable[tuple[str, str]]) -> Table:
    t = Table(title=title, title_justify="left", show_header=False)
    t.add_column("", style="bold")
    t.add_column("")
    for k, v in rows:
        t.add_row(k, v)
    return t


def serve_estimate_tables(e: ServeEstimate) -> list[Table]:
    job = e.job
    rows = [
        ("model", f"{job.model.display_name or job.model.name} ({job.model.name})"),
        ("system", f"{e.system.id} ({e.system.chip.name}), stack {e.stack or 'default'}"),
        ("request", f"{job.input_len:,} in / {job.output_len:,} out tokens, weights "
                    f"{job.precision}, KV {job.kv_precision}"),
        ("layout", f"{e.layout} on {e.chips:,} chips"),
        ("output tokens/s", f"{fmt_num(e.output_tokens_per_s)} "
                            f"({fmt_num(e.tokens_per_s_per_chip)} per chip)"),
        ("under Poisson arrivals", f"{fmt_num(e.server_tokens_per_s)} tokens/s"),
        ("TTFT", f"{e.ttft_ms:,.0f} ms (p99 {e.ttft_p99_ms:,.0f} ms)"),
        ("TPOT", f"{e.tpot_ms:,.1f} ms (p99 {e.tpot_p99_ms:,.1f} ms)"),
        ("memory per chip", f"{e.memory_gib_per_chip:,.1f} of {e.memory_capacity_gib:,.0f} GiB "
                            f"(weights {e.weights_gib_per_chip:,.1f}; up to {e.max_batch:,} "
                            f"requests per replica)"),
        ("disaggregated", f"{e.prefill_replicas_per_decode_replica:.2f} prefill replicas per "
                          f"decode replica"),
    ]  # fmt: skip
    interval = e.interval
    for tier, usd in e.usd_per_million_tokens.items():
        key = f"usd_per_million_tokens_{tier}"
        span = ""
        if interval is not None and key in interval.figures:
            lo, hi = interval[key]
            span = f" (p10–p90 {_usd(lo)}–{_usd(hi)})"
        rows.append((f"$ / M output tokens ({tier})", _usd(usd) + span))
    if interval is not None:
        lo, hi = interval["tokens_per_s_per_chip"]
        rows.append(("tokens/s per chip p10–p90", f"{fmt_num(lo)}–{fmt_num(hi)}"))
    if e.evidence is not None:
        mark = "extrapolated — " if e.evidence.extrapolated else ""
        rows.append(("evidence", f"{mark}{e.evidence.describe()}"))
    if e.error_basis:
        rows.append(("interval from", e.error_basis))
    out = [_kv("serving estimate", rows)]
    parts = Table(title="one iteration and one prefill (ms)", title_justify="left")
    for col in ("cause", "iteration", "prefill"):
        parts.add_column(col, justify="left" if col == "cause" else "right")
    for k, v in e.iteration_breakdown_ms.items():
        parts.add_row(k, f"{v:,.2f}", f"{e.prefill_breakdown_ms[k]:,.2f}")
    out.append(parts)
    return out


def serve_search_tables(result: ServeSearchResult) -> list[Table]:
    t = Table(title=f"best serving layouts ({result.feasible:,} of {result.tried:,} meet the "
                    f"targets)", title_justify="left")  # fmt: skip
    for col in ("#", "layout", "chips", "tokens/s/chip", "TTFT p99 ms", "TPOT p99 ms", "GiB/chip"):
        t.add_column(col, justify="left" if col == "layout" else "right")
    for i, e in enumerate(result.top, 1):
        t.add_row(str(i), str(e.layout), str(e.chips), fmt_num(e.tokens_per_s_per_chip),
                  f"{e.ttft_p99_ms:,.0f}", f"{e.tpot_p99_ms:,.1f}",
                  f"{e.memory_gib_per_chip:,.1f}")  # fmt: skip
    out = [t, *serve_estimate_tables(result.best)]
    if result.rejected:
        out.append(_kv("rejected", [(k, f"{v:,}") for k, v in result.rejected.items()]))
    return out


def serve_compare_tables(c: ServeComparison) -> list[Table]:
    """The ranking with the price tier's $ per million output tokens (every tier is in the
    JSON and the HTML report)."""
    t = Table(title=f"serving on every chip, ranked by $ per million output tokens "
                    f"({c.price_tier})", title_justify="left")  # fmt: skip
    cols = ["#", "chip", "vendor", "layout", "tok/s/chip", "p10–p90", "TTFT p99", "TPOT p99"]
    if c.tokens_per_day:
        cols.append("chips")
    cols.append(f"$/M ({c.price_tier})")
    for col in cols:
        t.add_column(col, justify="left" if col in ("chip", "vendor", "layout") else "right")
    for i, r in enumerate(c.feasible, 1):
        e = r.estimate
        assert e is not None
        lay = f"tp{e.layout.tp} pp{e.layout.pp}" + (f" ep{e.layout.ep}" if e.layout.ep > 1 else "")
        span = "—"
        if e.interval is not None:
            lo, hi = e.interval["tokens_per_s_per_chip"]
            span = f"{fmt_num(lo)}–{fmt_num(hi)}"
        cells = [str(i), r.system.chip.id, r.system.chip.vendor, f"{lay} b{e.layout.batch}",
                 fmt_num(e.tokens_per_s_per_chip), span, f"{e.ttft_p99_ms:,.0f} ms",
                 f"{e.tpot_p99_ms:,.0f} ms"]  # fmt: skip
        if c.tokens_per_day:
            cells.append(f"{r.chips_for_demand:,}" if r.chips_for_demand else "—")
        cells.append(_usd(e.usd_per_million_tokens.get(c.price_tier)))
        t.add_row(*cells)
    out = [t]
    best = next((r.estimate for r in c.feasible if r.estimate and r.estimate.error_basis), None)
    if best is not None:
        out.append(_kv("p10–p90", [("interval from", best.error_basis.split(", class")[0])]))
    if c.tokens_per_day:
        rows = [("output tokens per day", fmt_num(c.tokens_per_day)),
                ("chips", "whole replicas that serve it at the offline rate")]  # fmt: skip
        out.append(_kv("demand", rows))
    if c.infeasible:
        bad = Table(title="chips that cannot serve it", title_justify="left")
        bad.add_column("chip")
        bad.add_column("reason")
        for r in c.infeasible:
            bad.add_row(r.system.chip.id, r.reason or "")
        out.append(bad)
    return out
