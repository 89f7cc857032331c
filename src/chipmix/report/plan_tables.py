"""The `chipmix plan` and `chipmix budget` tables."""

from __future__ import annotations

from rich import box
from rich.table import Table

from chipmix.planning.budget.budget import BudgetResult
from chipmix.planning.portfolio.results import PlanResult, Share
from chipmix.report.render import fmt_num, fmt_usd

__all__ = ["budget_tables", "plan_tables"]


def _table(title: str) -> Table:
    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)


def _kv(title: str, rows: list[tuple[str, str]]) -> Table:
    table = Table(title=title, title_justify="left", show_header=False, box=box.SIMPLE)
    table.add_column(style="bold")
    table.add_column()
    for k, v in rows:
        table.add_row(k, v)
    return table


def _usd(x: float | None) -> str:
    """Dollars with B for billions (render's SI ``G`` reads oddly for money)."""
    if x is None:
        return "—"
    if abs(x) >= 1e9:
        return f"${x / 1e9:,.3g}B"
    return fmt_usd(x)


def _count(x: float) -> str:
    """A large count (tokens): SI suffixes up to T, then thousands of T."""
    return f"{x / 1e12:,.0f}T" if abs(x) >= 1e15 else fmt_num(x)


def _days(hours: float) -> str:
    days = hours / 24
    return f"{days:.1f}" if days < 100 else f"{days:,.0f}"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.0%}"


# -- plan ------------------------------------------------------------------------------------
def plan_tables(r: PlanResult) -> list[Table]:
    tables = [_summary(r)]
    if r.allocations or not r.serving_entries:
        tables += [_allocations(r), _layouts(r)]
    if r.serving_entries:
        tables += [_serving_entries(r), _serving(r)]
    if r.reservations:
        tables.append(_reservations(r))
    tables.append(_shares("vendors", r.vendors, r.cap_basis))
    if len(r.clouds) > 1:
        tables.append(_shares("clouds", r.clouds, r.cap_basis))
    if r.binding:
        tables.append(_binding(r))
    if r.baselines:
        tables.append(_baselines(r))
    if r.pareto:
        tables.append(_pareto(r))
    tables.append(_stats(r))
    return tables


def _summary(r: PlanResult) -> Table:
    s = r.stats
    status = s.status if s.status == "optimal" else f"{s.status} (gap {s.gap:.2%})"
    rows = [
        ("scenario", f"{r.scenario} ({r.objective}; horizon {r.horizon_start} → {r.horizon_end})"),
        ("status", f"{status}, MIP gap {s.gap:.3%}"),
        ("cost", _usd(r.cost_usd)),
        ("energy", f"{r.energy_mwh:,.0f} MWh (IT load)"),
    ]
    if r.allocations or not r.serving_entries:  # a serving-only plan has no runs to finish
        rows += [
            ("tokens", f"{_count(r.tokens)} in {len(r.allocations)} runs"),
            ("completion", f"{r.completion:%Y-%m-%d %H:%M} ({_days(r.makespan_h)} days)"),
        ]
    rows += [
        (
            "concentration",
            f"HHI {r.hhi_spend:.2f} of spend, {r.hhi_compute:.2f} of compute (1 = one vendor)",
        ),
    ]
    best = r.best_single_vendor
    saving = r.savings_vs_single_vendor
    if best is not None and best.cost_usd is not None and saving is not None:
        same = [
            *(["meeting the same deadlines"] if r.allocations or not r.serving_entries else []),
            *(["serving the same demand"] if r.serving_entries else []),
        ]
        rows.append(
            (
                "vs one vendor",
                f"{'saves' if saving >= 0 else 'costs'} {_usd(abs(best.cost_usd - r.cost_usd))}"
                f" ({abs(saving):.1%} of the plan's cost) against the best single-vendor plan "
                f"({best.vendor}, {_usd(best.cost_usd)}) {' and '.join(same)}",
            )
        )
    if r.unplaced:
        rows.append(("not run", ", ".join(r.unplaced)))
    for note in r.notes:
        rows.append(("note", note))
    return _kv("chipmix plan", rows)


def _serving_entries(r: PlanResult) -> Table:
    table = _table("serving")
    heads = ("serving", "model", "SLO", "peak tokens/day", "output tokens", "peak chips",
             "cost", "$/M tokens")  # fmt: skip
    for h in heads:
        table.add_column(h, justify="left" if h in ("serving", "model", "SLO") else "right")
    for e in r.serving_entries:
        table.add_row(
            e.serving, e.model, e.slo, _count(e.peak_tokens_per_day), _count(e.output_tokens),
            f"{e.peak_chips:,}", _usd(e.cost_usd), _per_million(e.usd_per_million_tokens),
        )  # fmt: skip
    return table


def _per_million(x: float | None) -> str:
    return "—" if x is None else f"${x:,.3f}"


def _serving(r: PlanResult) -> Table:
    table = _table(f"serving lines (chips per {r.period_days:g}-day period: first, peak, last)")
    heads = ("serving", "offer", "tier", "replica", "tok/s/chip", "chips", "chip-h", "cost",
             "$/M tokens")  # fmt: skip
    for h in heads:
        table.add_column(
            h, justify="left" if h in ("serving", "offer", "tier", "replica") else "right"
        )
    for s in r.serving:
        held = [c for c in s.chips if c]
        flag = f" ({s.price_flag})" if s.price_flag else ""
        table.add_row(
            s.serving, s.offer, f"{s.tier}{flag}", f"{s.replica_chips} chips: {s.layout}",
            f"{s.tokens_per_s_per_chip:,.0f}",
            f"{held[0]:,} / {s.peak_chips:,} / {held[-1]:,}" if held else "0",
            fmt_num(s.chip_hours), _usd(s.cost_usd), _per_million(s.usd_per_million_tokens),
        )  # fmt: skip
    return table


def _allocations(r: PlanResult) -> Table:
    table = _table("allocation")
    heads = ("job", "offer", "tier", "chips", "start", "end", "days", "cost", "slack d",
             "P(on time)")  # fmt: skip
    for h in heads:
        table.add_column(h, justify="left" if h in ("job", "offer", "tier") else "right")
    for a in r.allocations:
        table.add_row(
            a.job,
            a.offer,
            a.tier + (f" ({a.price_flag})" if a.price_flag else ""),
            f"{a.chips:,}",
            f"{a.start:%Y-%m-%d}",
            f"{a.end:%Y-%m-%d}",
            _days(a.duration_h),
            _usd(a.cost_usd),
            "—" if a.slack_h is None else f"{a.slack_h / 24:.1f}",
            "—" if a.deadline_probability is None else f"{a.deadline_probability:.0%}",
        )
    if r.deadline_probability is not None:
        table.caption = (
            f"P(on time): the chance each run meets its deadline under the model's error "
            f"(sampled from cross-validated residuals); all of them: "
            f"{r.deadline_probability:.0%}"
        )
        table.caption_justify = "left"
    return table


def _layouts(r: PlanResult) -> Table:
    table = _table("layouts (the search's best on each allocation)")
    for h in ("job", "model", "chips", "layout", "tokens/s", "MFU"):
        table.add_column(h, justify="right" if h in ("tokens/s", "MFU") else "left")
    for a in r.allocations:
        table.add_row(
            a.job,
            f"{a.model} ({a.mode}, {fmt_num(a.tokens)} tok)",
            f"{a.chips:,} × {a.chip}" + ("†" if a.extrapolated else ""),
            str(a.layout),
            fmt_num(a.tokens_per_s),
            f"{a.mfu:.0%}",
        )
    if any(a.extrapolated for a in r.allocations):
        table.caption = (
            "† extrapolated: no published run of this chip, or the job leaves what its runs "
            "cover (precision, chip count, stack); its interval is wider"
        )
        table.caption_justify = "left"
    return table


def _reservations(r: PlanResult) -> Table:
    table = _table("reservations (paid for the whole term)")
    for h in ("offer", "tier", "chips", "term d", "cost", "after horizon", "used"):
        table.add_column(h, justify="left" if h in ("offer", "tier") else "right")
    for x in r.reservations:
        table.add_row(
            x.offer,
            x.tier,
            f"{x.chips:,}",
            f"{x.term_days:,.0f}",
            _usd(x.cost_usd),
            _usd(x.beyond_horizon_usd),
            f"{x.utilization:.0%}",
        )
    return table


def _shares(title: str, shares: list[Share], basis: str) -> Table:
    table = _table(f"{title}: spend and compute (caps on {basis})")
    for h in ("name", "spend", "share", "H100-eq chip-h", "share ", "cap"):
        table.add_column(h, justify="left" if h == "name" else "right")
    for s in sorted(shares, key=lambda s: -s.spend_usd):
        table.add_row(
            s.name,
            _usd(s.spend_usd),
            _pct(s.spend_share),
            fmt_num(s.h100_hours),
            _pct(s.compute_share),
            _pct(s.cap),
        )
    return table


def _binding(r: PlanResult) -> Table:
    table = _table(
        "what each constraint costs (removed, or relaxed by one step, and re-solved; "
        "% of the plan's cost)"
    )
    table.add_column("constraint")
    table.add_column("gain", justify="right")
    table.add_column("%", justify="right")
    table.add_column("what it means")
    for b in r.binding:
        gain = _usd(b.gain) if b.gain_unit == "usd" else f"{fmt_num(b.gain)} {b.gain_unit}"
        share = "—" if b.fraction is None else f"{b.fraction:.1%}"
        table.add_row(f"{b.constraint} {b.subject}".strip(), gain, share, b.message)
    return table


def _baselines(r: PlanResult) -> Table:
    same = "same jobs and deadlines" if r.allocations or not r.serving_entries else ""
    same += (" and " if same else "same ") + "serving demand" if r.serving_entries else ""
    table = _table(f"single-vendor plans ({same}, no share caps)")
    for h in ("vendor", "cost", "vs plan", "status"):
        table.add_column(h, justify="right" if h in ("cost", "vs plan") else "left")
    for b in sorted(r.baselines, key=lambda b: (b.cost_usd is None, b.cost_usd or 0.0)):
        vs = "—" if b.cost_usd is None else f"{b.cost_usd / r.cost_usd - 1:+.1%}"
        table.add_row(b.vendor, _usd(b.cost_usd), vs, b.reason or b.status)
    return table


def _pareto(r: PlanResult) -> Table:
    table = _table("cost vs makespan (Pareto front)")
    for h in ("completion", "days", "cost", "vs plan"):
        table.add_column(h, justify="left" if h == "completion" else "right")
    assert r.pareto is not None
    for p in r.pareto:  # percentages of the plan's cost, as everywhere in a plan
        table.add_row(
            f"{p.completion:%Y-%m-%d}",
            _days(p.makespan_h),
            _usd(p.cost_usd),
            f"{p.cost_usd / r.cost_usd - 1:+.1%}",
        )
    return table


def _stats(r: PlanResult) -> Table:
    s = r.stats
    return _kv(
        "solver",
        [
            (
                "model",
                f"{s.placements:,} placements → {s.columns:,} columns, {s.rows:,} rows, "
                f"{s.nonzeros:,} non-zeros",
            ),
            ("searches", f"{s.searches:,} layout searches ({s.cache_hits:,} cache hits)"),
            (
                "time",
                f"placements {s.candidates_s:.1f} s, HiGHS {s.solve_s:.2f} s, "
                f"{s.extra_solves} re-solves, total {s.total_s:.1f} s",
            ),
        ],
    )


# -- budget ----------------------------------------------------------------------------------
def budget_tables(r: BudgetResult) -> list[Table]:
    if r.direction == "forward":
        head = f"what {_usd(r.usd)} buys over {r.years:g} years"
    else:
        head = f"the budget for {r.runs:,.3g} runs over {r.years:g} years"
    rows = [
        ("question", head),
        ("spend", _usd(r.spend_usd)),
        ("chip-hours", fmt_num(r.chip_hours)),
        ("compute", f"{fmt_num(r.pflop_days)} PFLOP/s-days (dense bf16 peak)"),
    ]
    if r.model is not None and r.tokens is not None and r.tokens_per_run:
        rows.append(
            (
                "training",
                f"{_count(r.tokens)} tokens of {r.model} = {r.runs or 0:,.2f} runs of "
                f"{_count(r.tokens_per_run)} tokens (runs of up to {r.chips_per_run:,} chips; "
                "each offer's run size in chips/run)",
            )
        )
    if r.serve_model is not None and r.served_tokens is not None:
        part = "" if r.serve_share is None else f" ({r.serve_share:.0%} of the budget)"
        rows.append(
            (
                "serving",
                f"{_count(r.served_tokens)} output tokens of {r.serve_model} at {r.serve_slo} "
                f"= {_count(r.served_tokens_per_day or 0.0)} a day for {r.years:g} years, "
                f"for {_usd(r.serve_spend_usd)}{part}",
            )
        )
    shares = ", ".join(f"{v} {s:.0%}" for v, s in sorted(r.vendor_shares.items()))
    rows.append(("vendors", f"{shares}; HHI {r.hhi:.2f}"))
    if r.vendor_caps:
        rows.append(("caps", ", ".join(f"{v} ≤ {c:.0%}" for v, c in r.vendor_caps.items())))
    if r.mix:
        rows.append(("mix", ", ".join(f"{k} {s:.0%}" for k, s in r.mix.items())))
    tables = [_kv("chipmix budget", rows)]
    table = _table("purchases by offer and tier")
    heads = ["offer", "tier", "$/chip-h", "spend", "share", "chips held", "PFLOP/s-d"]
    if r.model is not None:
        heads += ["runs", "chips/run", "days/run"]
    if r.serve_model is not None:
        heads += ["served tokens/day", "tok/s/chip", "replica"]
    for h in heads:
        table.add_column(h, justify="left" if h in ("offer", "tier") else "right")
    for line in r.lines:
        cells = [
            line.offer,
            line.tier + (f" ({line.price_flag})" if line.price_flag else ""),
            f"{line.usd_per_chip_hour:.2f}",
            _usd(line.spend_usd),
            _pct(line.share),
            f"{line.chips_held:,.0f}",
            fmt_num(line.pflop_days),
        ]
        if r.model is not None:
            spread = (
                f" ({line.runs_p10:,.2f}–{line.runs_p90:,.2f})"
                if line.runs_p10 is not None and line.runs_p90 is not None
                else ""
            )
            cells[0] += "†" if line.extrapolated else ""
            cells += [
                "—" if line.runs is None else f"{line.runs:,.2f}{spread}",
                "—" if line.run_chips is None else f"{line.run_chips:,}",
                "—" if line.run_days is None else f"{line.run_days:,.0f}",
            ]
        if line.served_tokens is not None:
            cells[0] += " (serving)"
            cells += [
                _count(line.served_tokens / (r.years * 365.25)),
                f"{line.served_tokens / line.chip_hours / 3600:,.0f}" if line.chip_hours else "—",
                line.replica,
            ]
        elif r.serve_model is not None:
            cells += ["—", "—", "—"]
        table.add_row(*cells)
    if r.model is not None and r.lines:
        table.caption = "runs: predicted (p10–p90 under the model's error)" + (
            "; † extrapolated: no published run of this chip, or the job leaves what its runs cover"
            if any(line.extrapolated for line in r.lines)
            else ""
        )
        table.caption_justify = "left"
    tables.append(table)
    if r.skipped:
        left = _table("offers left out")
        left.add_column("offer")
        left.add_column("why")
        for offer, why in sorted(r.skipped.items()):
            left.add_row(offer, why)
        tables.append(left)
    return tables
