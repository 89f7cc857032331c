"""The README's figures that come from running chipmix, computed rather than typed.

Three kinds, rewritten by ``scripts/update-readme`` (and, but for the first, after
``scripts/prediction-error``):

- the transfer table between the ``transfer`` markers (``--transfer``; `transfer_table`): the
  extra published rows (chips the base set lacks) with the shipped calibration and held out
  by chip;
- the worked vendor claim between the ``vendor-claim`` markers (``readme_claim.py``);
- figures quoted in prose, each wrapped in a marker that says how to compute it::

      <!--fig SPEC-->+24%<!--/fig-->

  (an HTML comment: invisible on the rendered page). SPEC is one of

  ``TABLE COLUMN signed|abs|within CASES``
      from a generated table of this README: TABLE is ``training`` or ``serving``,
      COLUMN ``error`` (in sample), ``loso`` or ``loco``, CASES comma-separated case ids
      or shell patterns; ``signed`` gives the value or the range ("+20–25%"), ``abs`` the
      range of absolute values ("64–83%"), ``within`` the largest absolute value ("12%");
      percentages rounded half away from zero from the table's figures.
  ``coverage training|training-sparse|serving``
      leave-one-source-out coverage of the p10–p90 intervals from the shipped residual
      file (``training-sparse``: rows of chips with at most 3 published rows); ``serving``
      as "30 of 44 (68%)".
  ``coverage serving-largest|serving-others``
      the serving misses in the source with the most rows ("13 of the 14 misses … 19 of
      the 44 rows") and the other sources' covered rows ("24 of 25").
  ``evidence MODEL SYSTEM CHIPS``
      the evidence line an estimate prints, as a code span.
  ``cases training|serving``
      the number of published rows in the shipped case file ("91 rows").
  ``fp8-gain MODEL SYSTEM CHIPS``
      tokens/s in fp8 over bf16 for that job (tp 1, pp 1, 4,096 × 64), as "1.2×".
  ``transfer CHIP in|out median|p90``
      a cell of the transfer table (CHIP ``all`` for its last line): with the shipped
      calibration (``in``) or held out by chip (``out``).
  ``bench within``
      the largest |error| of the stored training steps in ``measurements/`` against the
      calibration fitted from their own files, rounded up ("6%").

``tests/test_readme_figures.py`` recomputes every marker from the same inputs and fails
when the README disagrees. ``--check`` reports stale figures without writing.
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib.util
import re
import sys
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FIG = re.compile(r"<!--fig (?P<spec>[^>]*?)-->(?P<value>.*?)<!--/fig-->", re.S)
TABLES = {"training": "validation", "serving": "serving-validation"}
COLUMNS = {"error": "error", "loso": "LOSO error", "loco": "LOCO error"}
MINUS = "−"


# -- the generated tables, read back -----------------------------------------------------------
def table_rows(text: str, table: str) -> dict[str, dict[str, str]]:
    """Case id → {column header: cell} of the per-case table between a block's markers."""
    start, end = f"<!-- {TABLES[table]}:start -->", f"<!-- {TABLES[table]}:end -->"
    block = text[text.index(start) : text.index(end)]
    header: list[str] | None = None
    rows: dict[str, dict[str, str]] = {}
    for line in block.splitlines():
        if not line.startswith("|"):
            header = None if not line.strip() else header
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
        elif cells[0].startswith("---"):
            continue
        elif header[0] == "case":
            rows[cells[0]] = dict(zip(header, cells, strict=False))
    return rows


def _percent(cell: str) -> Decimal:
    return Decimal(cell.replace("%", "").replace(MINUS, "-").replace("+", ""))


def _round(x: Decimal) -> int:
    return int(x.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _signed(n: int) -> str:
    return f"+{n}" if n > 0 else (f"{MINUS}{-n}" if n < 0 else "±0")


def _span(lo: str, hi: str) -> str:
    return lo if lo == hi else f"{lo}–{hi}"


def from_table(text: str, table: str, column: str, op: str, cases: str) -> str:
    rows = table_rows(text, table)
    picked = [
        row[COLUMNS[column]]
        for pattern in cases.split(",")
        for case, row in rows.items()
        if fnmatch.fnmatchcase(case, pattern)
    ]
    if not picked:
        raise ValueError(f"no row of the {table} table matches {cases!r}")
    values = sorted(_round(_percent(v)) for v in picked)
    if op == "signed":
        lo, hi = values[0], values[-1]
        if lo < 0 < hi:
            return f"{_signed(lo)}% to {_signed(hi)}%"
        if hi < 0:  # name the smaller deviation first: "−36% to −48%"
            return _signed(hi) + "%" if lo == hi else f"{_signed(hi)}% to {_signed(lo)}%"
        if lo == hi:
            return f"{_signed(lo)}%"
        return f"{_signed(lo)}–{hi if lo > 0 else _signed(hi)}%"
    mags = sorted(abs(v) for v in values)
    if op == "abs":
        return _span(str(mags[0]), str(mags[-1])) + "%"
    if op == "within":
        return f"{mags[-1]}%"
    raise ValueError(f"unknown operation {op!r} (signed, abs, within)")


# -- the transfer table ------------------------------------------------------------------------
TRANSFER = ("<!-- transfer:start -->", "<!-- transfer:end -->")
TRANSFER_COLUMNS = {("in", "median"): 2, ("in", "p90"): 3, ("out", "median"): 4, ("out", "p90"): 5}


def _cell(x: float) -> str:
    return f"{100 * x:.1f}%"


def transfer_table() -> str:
    """The extra published rows (chips the base set lacks) per chip: with the shipped
    calibration and held out by chip (leave one chip out over both files: each chip's rows
    predicted by a calibration fitted on the other chips)."""
    from chipmix.catalog import load_catalog
    from chipmix.validate.cases import DEFAULT_CASES, EXTRA_CASES, read_case_files
    from chipmix.validate.crossval import cross_validate
    from chipmix.validate.score import Scorecard, score_cases

    catalog = load_catalog()
    both = read_case_files([DEFAULT_CASES, EXTRA_CASES])
    extra = read_case_files([EXTRA_CASES])
    fitted = score_cases(extra, catalog).rows
    ids = {c.id for c in extra}
    held = [r for r in cross_validate(both, catalog, "chip").rows if r.id in ids]
    lines = [
        "| chip | rows | shipped calibration: median | p90 | held out by chip: median | p90 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    chips = sorted({c.row.chip for c in extra})
    for chip in [*chips, "all"]:
        pair = [[r for r in rows if chip in ("all", r.chip)] for rows in (fitted, held)]
        a, b = (Scorecard(rows).summary() for rows in pair)
        name = f"all {len(extra)} extra rows" if chip == "all" else chip
        lines.append(
            f"| {name} | {a['count']} | {_cell(a['median_abs_error'])} | "
            f"{_cell(a['p90_abs_error'])} | {_cell(b['median_abs_error'])} | "
            f"{_cell(b['p90_abs_error'])} |"
        )
    return "\n".join(lines)


def with_transfer_table(text: str) -> str:
    """``text`` with the transfer table recomputed between its markers."""
    start, end = TRANSFER
    head, rest = text.split(start, 1)
    return f"{head}{start}\n{transfer_table()}\n{end}{rest.split(end, 1)[1]}"


def transfer(chip: str, column: str, stat: str) -> str:
    start, end = TRANSFER
    block = README.read_text(encoding="utf-8").split(start, 1)[1].split(end, 1)[0]
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == chip or (chip == "all" and cells[0].startswith("all ")):
            return f"{_round(_percent(cells[TRANSFER_COLUMNS[column, stat]]))}%"
    raise ValueError(f"no line of the transfer table for {chip!r}")


# -- figures computed by chipmix ---------------------------------------------------------------
@cache
def _coverage(kind: str) -> tuple[dict[str, bool], dict[str, str], set[str]]:
    from chipmix.uncertainty.interval import error_model, serving_error_model
    from chipmix.validate.prediction_error import nested_coverage

    model = serving_error_model() if kind == "serving" else error_model()
    covered = nested_coverage(model.residuals)
    source = {r.id: r.source for r in model.residuals}
    few = {r.id for r in model.residuals if model.envelope.chip_rows.get(r.chip, 0) <= 3}
    return covered, source, few


def _share(oks: list[bool]) -> str:
    return f"{_round(Decimal(100 * sum(oks)) / Decimal(len(oks)))}%"


def coverage(what: str) -> str:
    covered, source, few = _coverage("serving" if what.startswith("serving") else "training")
    if what == "training":
        return f"{_share(list(covered.values()))} of the published values ({len(covered)} rows)"
    if what == "training-sparse":
        return _share([ok for i, ok in covered.items() if i in few])
    oks = list(covered.values())
    if what == "serving":
        return f"{sum(oks)} of {len(oks)} published serving values ({_share(oks)})"
    counts: dict[str, int] = {}
    for i in covered:
        counts[source[i]] = counts.get(source[i], 0) + 1
    largest = max(counts, key=lambda s: counts[s])
    misses = [i for i, ok in covered.items() if not ok]
    if what == "serving-largest":
        mine = sum(source[i] == largest for i in misses)
        return (
            f"{mine} of the {len(misses)} misses are rows of {largest}, which holds "
            f"{counts[largest]} of the {len(oks)} rows"
        )
    if what == "serving-others":
        others = [ok for i, ok in covered.items() if source[i] != largest]
        return f"{sum(others)} of {len(others)}"
    raise ValueError(f"unknown coverage {what!r}")


def evidence(model: str, system: str, chips: str) -> str:
    import chipmix

    e = chipmix.estimate(model, system, int(chips), seq_len=4096, global_batch=256)
    assert e.evidence is not None
    return f"`{e.evidence.describe()}`"


def cases(kind: str) -> str:
    if kind == "training":
        from chipmix.validate.cases import DEFAULT_CASES, read_cases

        return f"{len(read_cases(DEFAULT_CASES))} rows"
    if kind == "serving":
        from chipmix.validate.serve_cases import read_serve_cases

        return f"{len(read_serve_cases())} rows"
    raise ValueError(f"unknown case file {kind!r} (training, serving)")


def fp8_gain(model: str, system: str, chips: str) -> str:
    import chipmix

    rate = {
        p: chipmix.estimate(
            model, system, int(chips), precision=p, seq_len=4096, global_batch=64, tp=1, pp=1
        ).tokens_per_s
        for p in ("bf16", "fp8")
    }
    return f"{rate['fp8'] / rate['bf16']:.1f}×"


BENCH = ROOT / "measurements" / "h200-2026-11-29"
BENCH_STORES = (  # (results file, the file its calibration is fitted from: None = itself)
    ("llama3.2-1b-quick-and-check.sqlite", None),
    ("llama3-8b-shapes-quick.sqlite", None),
    ("check-llama3-8b-scaled.sqlite", "llama3-8b-shapes-quick.sqlite"),
)


def bench(what: str) -> str:
    import math

    from chipmix.bench.score import score_bench

    if what != "within":
        raise ValueError(f"unknown bench figure {what!r} (within)")
    errors = [
        abs(row.error or 0.0)
        for db, fit in BENCH_STORES
        for row in score_bench(BENCH / db, fit_db=None if fit is None else BENCH / fit).card.rows
    ]
    return f"{math.ceil(100 * max(errors))}%"


def figure(spec: str, text: str) -> str:
    """The value a marker's SPEC stands for, computed from ``text`` (the README) and chipmix."""
    words = spec.split()
    handlers: dict[str, Callable[..., str]] = {
        "coverage": coverage,
        "evidence": evidence,
        "cases": cases,
        "fp8-gain": fp8_gain,
        "bench": bench,
        "transfer": transfer,
    }
    if words and words[0] in TABLES and len(words) == 4:
        return from_table(text, *words)
    if words and words[0] in handlers:
        return handlers[words[0]](*words[1:])
    raise ValueError(f"README figure marker {spec!r}: unknown kind")


def fill(text: str) -> str:
    """``text`` with every figure marker's value recomputed."""
    return FIG.sub(lambda m: f"<!--fig {m['spec']}-->{figure(m['spec'], text)}<!--/fig-->", text)


def markers(text: str) -> list[tuple[str, str]]:
    """(spec, value) of every figure marker in ``text``."""
    return [(m["spec"], m["value"]) for m in FIG.finditer(text)]


def _claim() -> Any:
    spec = importlib.util.spec_from_file_location("readme_claim", ROOT / "scripts/readme_claim.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["readme_claim"] = module
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a figure is stale")
    parser.add_argument("--no-claim", action="store_true", help="leave the vendor claim alone")
    parser.add_argument(
        "--transfer", action="store_true", help="recompute the transfer table (a minute or two)"
    )
    args = parser.parse_args(argv)
    stale = False
    if args.transfer and not args.check:
        README.write_text(with_transfer_table(README.read_text(encoding="utf-8")), "utf-8")
    if not args.no_claim:
        stale |= _claim().update(README, check=args.check)
    text = README.read_text(encoding="utf-8")
    new = fill(text)
    if new != text:
        stale = True
        if not args.check:
            README.write_text(new, encoding="utf-8")
    if args.check and stale:
        print("README.md: figures are stale; run scripts/update-readme")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
