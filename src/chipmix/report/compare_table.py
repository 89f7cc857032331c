"""The `chipmix compare` tables: the ranking, each plan's layout, the systems left out."""

from __future__ import annotations

from rich import box
from rich.table import Table

from chipmix.planning.comparison.result import Comparison, ComparisonRow
from chipmix.report.render import fmt_num, fmt_usd

__all__ = ["compare_tables"]


def _title(c: Comparison) -> str:
    job = c.job
    name = job.model.display_name or job.model.name
    head = (
        f"{name} ({job.mode}, {job.precision}) on {fmt_num(c.tokens)} tokens, seq {job.seq_len}, "
        f"{job.global_batch} sequences/step"
    )
    if c.sizing == "chips":
        how = f"{int(c.target):,} chips on each system"
        if c.sizing_is_default:
            how += " (the default; size with --chips, --deadline-days or --budget-usd)"
    elif c.sizing == "deadline":
        how = f"the fewest chips (whole nodes) that train within {c.target:g} days"
    else:
        how = f"the fastest plan within ${c.target:,.0f}"
    return f"{head}\n{how}; ranked by {c.price_tier} cost"


def _days(hours: float) -> str:
    days = hours / 24
    return f"{days:.1f}" if days < 100 else f"{days:,.0f}"


def _marks(r: ComparisonRow) -> str:
    return " ".join(m for m, on in (("fastest", r.fastest), ("cheapest", r.cheapest)) if on)


def _spread(r: ComparisonRow) -> str:
    interval = r.rank_interval()
    if interval is None:
        return "—"
    lo, hi = interval
    if r.cost_usd is not None:
        return "$" + _range(lo, hi)
    return f"{lo / 24:,.0f}–{hi / 24:,.0f}d"


def _range(lo: float, hi: float) -> str:
    """``13–33M``: both ends with two significant digits and the upper end's suffix."""
    for bound, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, "")):
        if hi >= bound:
            return f"{_two(lo / bound)}–{_two(hi / bound)}{suffix}"
    return f"{_two(lo)}–{_two(hi)}"


def _two(x: float) -> str:
    """Two significant digits, never in exponent notation (110, 93, 9.3)."""
    return f"{x:.0f}" if x >= 10 else f"{x:.2g}"


def _relative(r: ComparisonRow) -> str:
    if r.relative_price_performance is None:
        return "—"
    mid, lo, hi = r.relative_price_performance
    if lo == hi:
        return f"{mid:.2f}×"
    return f"{mid:.2f}× [{lo:.2f}–{hi:.2f}]"


def _label(r: ComparisonRow, show_system: bool) -> str:
    return r.system.id if show_system else r.system.chip.id


def _table(title: str) -> Table:
    return Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=(0, 0),
        collapse_padding=True,
    )


def _ranking(c: Comparison, show_system: bool) -> Table:
    table = _table(_title(c))
    heads = ["#", "chip", "vendor"] + (["system"] if show_system else [])
    heads += ["chips", "tok/s", "MFU", "days", "cost", "p10–p90", "$/M tok", "MWh"]
    heads += [f"vs {c.baseline}"] if c.baseline else []
    heads += [""]
    left = ("chip", "vendor", "system", "")
    for h in heads:
        table.add_column(
            h,
            justify="left" if h in left else "right",
            no_wrap=h in ("chip", ""),
            min_width={"chip": 7, "": 8}.get(h),
        )
    estimated = False
    flags: set[str] = set()
    for r in c.feasible:
        e = r.estimate
        assert e is not None
        assert e.run is not None
        per_m = r.usd_per_million_tokens
        estimated |= e.run.power_is_estimated
        chip_flags = r.system.chip.flags
        flags.update(chip_flags)
        chip = r.system.chip.id + ("†" if r.extrapolated else "")
        chip += f" ({', '.join(chip_flags)})" if chip_flags else ""
        cells = [str(r.rank), chip, r.system.chip.vendor]
        cells += [r.system.id] if show_system else []
        flag = e.run.price_flag_by_tier.get(c.price_tier, "")
        flags.update([flag] if flag else [])
        cells += [
            f"{e.chips:,}",
            fmt_num(e.tokens_per_s),
            f"{e.mfu:.0%}",
            _days(e.run.time_to_train_h),
            fmt_usd(r.cost_usd),
            _spread(r),
            "—" if per_m is None else f"${per_m:.2f}",
            f"{e.run.energy_mwh:,.0f}" + ("*" if e.run.power_is_estimated else ""),
        ]
        if c.baseline:
            cells.append(_relative(r))
        cells.append(_marks(r))
        table.add_row(*cells, style="bold" if r.fastest or r.cheapest else None)
    notes = []
    if any(r.cost_usd is None for r in c.feasible):
        notes.append(f"— no {c.price_tier} price for the chip in the catalog")
    if estimated:
        notes.append("* energy from an assumed power per chip")
    notes.append("MWh: IT energy (× the site's PUE in --json)")
    for flag, meaning in _FLAGS.items():
        if flag in flags:
            notes.append(f"{flag}: {meaning}")
    if any(r.extrapolated for r in c.feasible):
        notes.append(
            "† extrapolated: no published run of this chip, or the job leaves what its runs "
            "cover (precision, chip count, stack); wider interval"
        )
    notes.append("p10–p90: the ranking figure's interval from cross-validated residuals")
    close = [r for r in c.feasible if r.distinguishable_from_best is False]
    best = next((r for r in c.feasible if r.rank == 1), None)
    if close and best is not None:
        names = ", ".join(_label(r, show_system) for r in close)
        notes.append(
            f"{_label(best, show_system)} and {names} are not distinguishable at this "
            "evidence (their intervals overlap)"
        )
    if c.baseline:
        notes.append(
            f"vs {c.baseline}: tokens per dollar relative to the baseline's, p10–p90 in "
            "brackets (1.30× = 30 % better price-performance)"
        )
    if notes:
        table.caption = "\n".join(notes)
        table.caption_justify = "left"
    return table


_FLAGS = {
    "estimated": "no public list price; the offer says how it was estimated",
    "unverified": "a third-party or single-sighting price, not checked against the cloud",
    "announced": "not shipping; figures from the announcement",
    "inference-only": "a serving part, here because it was named",
}


def _details(c: Comparison, show_system: bool) -> Table:
    table = _table("layouts, other price tiers" + (", chip counts" if c.sizing != "chips" else ""))
    table.add_column("#", justify="right")
    table.add_column("system" if show_system else "chip")
    table.add_column("best layout")
    table.add_column("as of")
    table.add_column("other tiers")
    if c.sizing != "chips":
        table.add_column("why this many chips")
    for r in c.feasible:
        e = r.estimate
        assert e is not None
        assert e.run is not None
        others = ", ".join(
            f"{t.removeprefix('committed-')} {fmt_usd(cost)}"
            for t, cost in e.run.cost_usd.items()
            if t != c.price_tier
        )
        run = e.run
        offer = run.offer_by_tier.get(c.price_tier)
        flag = run.price_flag_by_tier.get(c.price_tier, "")
        date = run.offer_date_by_tier.get(c.price_tier)
        priced = "—" if offer is None or date is None else f"{date} {flag}".strip()
        cells = [str(r.rank), _label(r, show_system), str(e.layout), priced, others or "—"]
        table.add_row(*cells, *([r.note] if c.sizing != "chips" else []))
    return table


def _left_out(c: Comparison, show_system: bool) -> Table:
    table = _table("systems that cannot do this job")
    table.add_column("system" if show_system else "chip")
    table.add_column("reason")
    for r in c.infeasible:
        table.add_row(_label(r, show_system), r.reason or "")
    return table


def compare_tables(c: Comparison) -> list[Table]:
    """The ranking (cheapest first), the plans' layouts, and the systems without a plan.

    Rows are labelled by chip when every system is its chip's reference system (the
    default), by system otherwise."""
    show_system = any(not r.system.system.reference for r in c.rows)
    tables = [_ranking(c, show_system)]
    if c.feasible:
        tables.append(_details(c, show_system))
    if c.infeasible:
        tables.append(_left_out(c, show_system))
    return tables
