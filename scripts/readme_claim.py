"""The README's worked vendor claim (AWS: Trn2 against P5en), computed, not typed.

Runs `chipmix.compare` for Llama 3.1 405B on 15T tokens, trn2.48xlarge against
p5en.48xlarge, for two sizings (equal chip counts; fewest chips for a deadline) at two
price dates (the day the claim was checked against, and today's catalog), and writes the
table and the prose between the README's ``vendor-claim`` markers. Every number in the
section, and every verb that judges the claim (holds / shrinks / turns), follows from
the computed ratios. `scripts/update-readme` runs it; ``--check`` only reports whether
the README is current (exit 1 when it is not).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
START, END = "<!-- vendor-claim:start -->", "<!-- vendor-claim:end -->"

MODEL = "llama3.1-405b"
TOKENS = 15e12
SEQ_LEN = 8192
GLOBAL_BATCH = 2048
SYSTEM = "trn2.48xlarge"
BASELINE = "p5en.48xlarge"
CHIPS = 1024
DEADLINE_DAYS = 90
CLAIM_DATE = "2025-05-01"  # prices as AWS made the claim (P5en before its June 2025 cut)
CLAIM_LOW, CLAIM_HIGH = 0.30, 0.40  # "30–40% better price performance"
TIER = "on-demand"


@dataclass(frozen=True)
class Cell:
    """trn2's tokens per dollar relative to p5en's: predicted, p10, p90; and chip counts."""

    ratio: float
    p10: float
    p90: float
    chips: int
    baseline_chips: int
    price_flag: str
    evidence: list[dict[str, Any]]


def _cell(cat: Any, *, deadline: bool) -> Cell:
    import chipmix

    sizing: dict[str, Any] = {"deadline_days": DEADLINE_DAYS} if deadline else {"chips": CHIPS}
    result = chipmix.compare(
        MODEL,
        tokens=TOKENS,
        seq_len=SEQ_LEN,
        global_batch=GLOBAL_BATCH,
        systems=SYSTEM,
        baseline=BASELINE,
        price_tier=TIER,
        catalog=cat,
        **sizing,
    )
    rows = {r.system.id: r for r in result.rows}
    row, base = rows[SYSTEM], rows[BASELINE]
    if row.relative_price_performance is None or row.chips is None or base.chips is None:
        raise SystemExit(f"compare gave no price-performance for {SYSTEM}: {row.reason}")
    mid, lo, hi = row.relative_price_performance
    out = row.to_dict()
    return Cell(
        mid, lo, hi, row.chips, base.chips, out["price_flag_by_tier"].get(TIER, ""),
        out.get("evidence", []),
    )  # fmt: skip


def _offer_price(cat: Any) -> tuple[float, str]:
    """The baseline's on-demand price per unit-hour in ``cat`` and the date it took effect."""
    offers = [
        o for o in cat.offers.values() if o.system == BASELINE and TIER in o.usd_per_unit_hour
    ]
    offer = min(offers, key=lambda o: o.usd_per_unit_hour[TIER])
    return offer.usd_per_unit_hour[TIER], offer.valid_from


def compute() -> dict[str, Any]:
    """Every figure of the section."""
    from chipmix.catalog.catalog import load_catalog
    from chipmix.catalog.vintage import prices_as_of

    today = load_catalog()
    then = prices_as_of(today, CLAIM_DATE)
    return {
        "before": {"chips": _cell(then, deadline=False), "deadline": _cell(then, deadline=True)},
        "after": {"chips": _cell(today, deadline=False), "deadline": _cell(today, deadline=True)},
        "price_before": _offer_price(then),
        "price_after": _offer_price(today),
        "chip_name": today.system(SYSTEM).chip.name,
        "model_name": chipmix_model_name(),
    }


def chipmix_model_name() -> str:
    from chipmix.workload import load_model

    spec = load_model(MODEL)
    return str(spec.display_name or spec.name)


# -- words from numbers ----------------------------------------------------------------------
def pct(ratio: float) -> str:
    """+37 % / −8 % / ±0 %: the advantage in tokens per dollar, rounded to a whole percent."""
    p = round((ratio - 1.0) * 100)
    return "±0 %" if p == 0 else (f"+{p} %" if p > 0 else f"−{-p} %")


def verdict(ratio: float) -> str:
    """What becomes of the 30–40 % claim at this ratio, chosen by the rounded figure."""
    gain = round((ratio - 1.0) * 100) / 100
    if gain > CLAIM_HIGH:
        return f"holds and more ({pct(ratio)})"
    if gain >= CLAIM_LOW:
        return f"holds ({pct(ratio)})"
    if gain > 0:
        return f"shrinks to {pct(ratio)}"
    if gain == 0:
        return "vanishes (±0 %)"
    return f"turns into {pct(ratio)}"


def _x(value: float) -> str:
    return f"{value:.2f}"


def _interval(c: Cell) -> str:
    return f"{_x(c.ratio)}× [{_x(c.p10)}–{_x(c.p90)}]"


def _month(day: str) -> str:
    d = date.fromisoformat(day if len(day) == 10 else f"{day}-01")
    return d.strftime("%B %Y")


def _evidence_words(cell: Cell, chip_name: str) -> str:
    chip = next((e for e in cell.evidence if e.get("scope") == "chip"), None)
    stack = next((e for e in cell.evidence if e.get("scope") == "stack"), None)
    if chip is None:
        return ""
    rows = int(chip.get("rows", 0))
    if rows:
        words = f"{chip_name} has {rows} published training run{'s' if rows > 1 else ''}"
    else:
        words = f"{chip_name} has no published training run"
        if chip.get("source") == "family":
            fam, n = chip.get("family", "its family"), chip.get("family_rows", 0)
            words += f", so its chip parameters are borrowed from its family ({fam}, {n} rows)"
        else:
            words += ", so its prediction rests on the datasheet and microbenchmark priors"
    if stack is not None:
        words += f" and the stack {stack['key']} is {stack['source']}"
        if stack.get("rows"):
            words += f" on {stack['rows']} rows"
    return words


def render(f: dict[str, Any]) -> str:
    b, a = f["before"], f["after"]
    (p_then, _), (p_now, since) = f["price_before"], f["price_after"]
    cut = _month(since)
    table = "\n".join(
        [
            f"| sizing | p5en before the {cut} cut (${p_then:,.2f}/h) "
            f"| p5en after it (${p_now:,.2f}/h) |",
            "|---|---:|---:|",
            f"| {CHIPS:,} chips each | {_interval(b['chips'])} | {_interval(a['chips'])} |",
            f"| fewest chips for {DEADLINE_DAYS} days | {_interval(b['deadline'])} "
            f"| {_interval(a['deadline'])} |",
        ]
    )
    d = a["deadline"]
    same = b["deadline"].chips == d.chips and b["deadline"].baseline_chips == d.baseline_chips
    counts = f"trn2 needs {d.chips:,} chips, P5en {d.baseline_chips:,}"
    if not same:
        counts += f"; at the old price {b['deadline'].chips:,} and {b['deadline'].baseline_chips:,}"
    prose = (
        f"At the prices it was made against and for equal chip counts the claim "
        f"{verdict(b['chips'].ratio)}; after P5en's price cut it {verdict(a['chips'].ratio)}. "
        f"Sized to a {DEADLINE_DAYS}-day deadline ({counts}) it {verdict(b['deadline'].ratio)} "
        f"at the old price and {verdict(a['deadline'].ratio)} at today's."
    )
    cells = [b["chips"], a["chips"], b["deadline"], a["deadline"]]
    spanning = sum(c.p10 <= 1.0 <= c.p90 for c in cells)
    evidence = _evidence_words(a["chips"], f["chip_name"])
    if spanning == len(cells):
        prose += " Every interval spans 1×"
        prose += f": {evidence}, and at this evidence" if evidence else ": at this evidence"
        prose += " the two are not distinguishable."
    elif spanning:
        prose += (
            f" {spanning} of the {len(cells)} intervals span 1×: there the two are not "
            "distinguishable at this evidence" + (f" ({evidence})." if evidence else ".")
        )
    else:
        prose += " No interval spans 1×: the difference is larger than the model's error."
    flag = a["chips"].price_flag
    if flag:
        prose += f" The trn2 {TIER} price the catalog holds is marked {flag}."
    caption = (
        f"Tokens per dollar of {SYSTEM} relative to {BASELINE}, {TIER}, {f['model_name']} on "
        f"{TOKENS / 1e12:g}T tokens (predicted, p10–p90):"
    )
    return f"{START}\n{_wrap(caption)}\n\n{table}\n\n{_wrap(prose)}\n{END}"


def _wrap(text: str, width: int = 90) -> str:
    import textwrap

    return textwrap.fill(text, width=width, break_on_hyphens=False, break_long_words=False)


def update(readme: Path = README, *, check: bool = False) -> bool:
    """Rewrite the section; True when the README changed (or, with ``check``, would)."""
    text = readme.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise SystemExit(f"{readme.name}: the {START} … {END} markers are missing")
    block = render(compute())
    new = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    if new != text and not check:
        readme.write_text(new, encoding="utf-8")
    return new != text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the README is stale")
    args = parser.parse_args(argv)
    changed = update(check=args.check)
    if args.check and changed:
        print("README.md: the vendor-claim section is stale; run scripts/update-readme")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
