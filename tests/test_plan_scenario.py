"""Scenario files (issue 5): every bad file gets an error naming the line and the key.

Each case is a small scenario with one mistake, the line it is on, the key path the
message must name, and why it is wrong. Unknown names raise `UnknownNameError` with a "did
you mean"; everything else `FileFormatError`; both are `InputError`s, so the CLI prints one
line and exits with status 2.
"""

from __future__ import annotations

import textwrap
from datetime import date
from pathlib import Path

import pytest

from chipmix.errors import FileFormatError, InputError, UnknownNameError
from chipmix.planning.portfolio.scenario_file import load_scenario, parse_scenario

GOOD = """\
name: tiny
start: 2026-01-01
end: 2026-03-31
offers:
  - catalog: aws-p5.48xlarge-us-east-1-2025-06
    max_chips: 64
  - id: mi300x-own
    system: azure-nd-mi300x-v5
    usd_per_unit_hour: {on-demand: 40.0}
    source: "assumption for a test"
jobs:
  - name: a
    model: llama3.2-1b
    tokens: 1e10
    deadline: 2026-02-28
    chip_counts: [8, 16]
constraints:
  vendor_caps: {nvidia: 60%}
"""


def _with(old: str, new: str) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new, 1)


CASES = [
    # (id, text, line, key, error type, text the message must contain, reason)
    ("unknown-top-level-key", _with("end: 2026-03-31", "end: 2026-03-31\nobjectiv: min-cost"),
     4, "objectiv", FileFormatError, "Did you mean 'objective'",
     "a misspelt key would otherwise be silently ignored"),
    ("unknown-job-key", _with("    deadline: 2026-02-28", "    dedline: 2026-02-28"),
     15, "jobs[0].dedline", FileFormatError, "Did you mean 'deadline'",
     "a misspelt deadline would leave the job without one"),
    ("unknown-offer",
     _with("aws-p5.48xlarge-us-east-1-2025-06", "aws-p5.48xlarge-us-east-1-2025-6"),
     5, "offers[0].catalog", UnknownNameError, "Did you mean 'aws-p5.48xlarge-us-east-1-2025-06'",
     "offers come from the catalog"),
    ("unknown-system", _with("system: azure-nd-mi300x-v5", "system: azure-nd-mi300-v5"),
     8, "offers[1].system", UnknownNameError, "azure-nd-mi300x-v5",
     "a user offer rents a catalog system"),
    ("unknown-model", _with("model: llama3.2-1b", "model: llama3.2-1bb"),
     13, "jobs[0].model", UnknownNameError, "Did you mean 'llama3.2-1b'",
     "models are presets or files"),
    ("deadline-before-start",
     _with("    deadline: 2026-02-28", "    start: 2026-02-10\n    deadline: 2026-02-01"),
     16, "jobs[0].deadline", FileFormatError, "before the job's start 2026-02-10",
     "a window that ends before it opens"),
    ("caps-sum-below-100",
     _with("vendor_caps: {nvidia: 60%}", "vendor_caps: {nvidia: 60%, amd: 30%}"),
     18, "constraints.vendor_caps", FileFormatError, "sum to 90%",
     "caps on every vendor the offers hold must leave room for the whole plan"),
    ("unknown-vendor-in-caps", _with("vendor_caps: {nvidia: 60%}", "vendor_caps: {nvdia: 60%}"),
     18, "constraints.vendor_caps.nvdia", UnknownNameError, "Did you mean 'nvidia'",
     "a cap on a vendor that does not exist caps nothing"),
    ("tier-not-priced", _with("    max_chips: 64", "    max_chips: 64\n    tiers: [owned]"),
     7, "offers[0].tiers[0]", FileFormatError, "no owned price",
     "a tier the offer does not price"),
    ("wrong-type", _with("tokens: 1e10", "tokens: lots"),
     14, "jobs[0].tokens", FileFormatError, "valid number",
     "numbers must be numbers"),
    ("duplicate-key",
     _with("    chip_counts: [8, 16]", "    chip_counts: [8, 16]\n    tokens: 2e10"),
     17, "jobs[0].tokens", FileFormatError, "given twice (first at line 14)",
     "YAML keeps the last of two keys silently"),
    ("deadline-after-end", _with("    deadline: 2026-02-28", "    deadline: 2026-04-30"),
     15, "jobs[0].deadline", FileFormatError, "after the horizon's end",
     "a deadline the horizon does not reach"),
    ("too-few-vendors", _with("  vendor_caps: {nvidia: 60%}", "  min_vendors: 3"),
     18, "constraints.min_vendors", FileFormatError, "only 2 vendors",
     "asking for more vendors than the offers hold"),
    ("max-tokens-without-budget",
     _with("end: 2026-03-31", "end: 2026-03-31\nobjective: max-tokens"),
     4, "objective", FileFormatError, "needs constraints.budget_usd",
     "maximizing tokens needs a budget to stop at"),
    ("bad-percent", _with("vendor_caps: {nvidia: 60%}", "vendor_caps: {nvidia: 160%}"),
     18, "constraints.vendor_caps.nvidia", FileFormatError, "less than or equal to 1",
     "a share above 100%"),
    ("unknown-job-system",
     _with("    chip_counts: [8, 16]", "    chip_counts: [8, 16]\n    systems: [h100]"),
     17, "jobs[0].systems[0]", UnknownNameError, "h100-sxm",
     "jobs may be limited to chips or systems the catalog knows"),
    ("misspelt-choice", _with("end: 2026-03-31", "end: 2026-03-31\nobjective: min-cots"),
     4, "objective", FileFormatError, "(got 'min-cots'). Did you mean 'min-cost'",
     "a word outside a fixed set of choices is named with the closest ones"),
    ("yaml-syntax", _with("  vendor_caps: {nvidia: 60%}", "  vendor_caps: {nvidia: 60%"),
     19, "", FileFormatError, "not valid YAML",
     "syntax errors name their line too"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "line", "key", "kind", "says"),
    [pytest.param(*case[1:6], id=case[0]) for case in CASES],
)
def test_bad_scenario_names_line_and_key(
    text: str, line: int, key: str, kind: type[Exception], says: str
) -> None:
    with pytest.raises(InputError) as caught:
        parse_scenario(text, origin="lab.yaml")
    message = str(caught.value)
    assert isinstance(caught.value, kind), message
    assert f"lab.yaml line {line}" in message, message
    assert key in message, message
    assert says in message, message


def test_reasons_are_given() -> None:
    assert all(len(case) == 7 and case[6] for case in CASES)
    assert len({case[0] for case in CASES}) == len(CASES)


def test_good_scenario_resolves(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(GOOD)
    sc = load_scenario(path)
    assert sc.name == "tiny"
    assert [o.id for o in sc.offers] == ["aws-p5.48xlarge-us-east-1-2025-06", "mi300x-own"]
    mine = sc.offer("mi300x-own")
    assert mine.inline
    assert mine.vendor == "amd"
    assert mine.chips_per_unit == 8
    assert mine.usd_per_chip_hour == {"on-demand": 5.0}
    assert sc.constraints.vendor_caps == {"nvidia": 0.6}
    job = sc.jobs[0]
    assert job.release == date(2026, 1, 1)
    assert job.deadline == date(2026, 2, 28)
    assert job.tokens == 1e10
    assert job.required
    assert job.chip_counts == (8, 16)
    assert sc.deadline_h(job) == (31 + 28) * 24  # the end of the deadline day
    assert sc.num_periods == 13  # 90 days in weeks, the last one partial


def test_select_offers_and_discount() -> None:
    text = GOOD.replace(
        "  - catalog: aws-p5.48xlarge-us-east-1-2025-06\n    max_chips: 64",
        "  - select: {cloud: gcp, chip: [tpu-v5p, tpu-v6e]}\n    discount: 20%",
    )
    sc = parse_scenario(text)
    chosen = {o.id: o for o in sc.offers}
    assert "gcp-tpu-v5p-us-central1-2025-01" in chosen
    v6e = chosen["gcp-tpu-v6e-us-east-2024-12"]
    assert v6e.tiers == ("on-demand", "committed-1y", "committed-3y")  # spot left out
    assert v6e.usd_per_chip_hour["on-demand"] == pytest.approx(2.7 * 0.8)
    assert v6e.term_days["committed-1y"] == 365


def test_capacity_schedule_and_window() -> None:
    text = GOOD.replace(
        "    max_chips: 64",
        textwrap.indent(
            "max_chips: 64\ncapacity:\n  - {from: 2026-02-01, chips: 128}\n"
            "available_to: 2026-03-15",
            "    ",
        ),
    )
    offer = parse_scenario(text).offers[0]
    assert offer.chips_on(date(2026, 1, 15)) == 64
    assert offer.chips_on(date(2026, 2, 15)) == 128
    assert offer.chips_on(date(2026, 3, 20)) == 0
    assert offer.chips_between(date(2026, 1, 25), date(2026, 2, 5)) == 64
