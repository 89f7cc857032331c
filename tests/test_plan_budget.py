"""The budget view (issue 5): what a budget buys, what a goal costs, and that the two agree."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from chipmix.catalog import load_catalog
from chipmix.cli import app
from chipmix.errors import InfeasibleError, InputError, UnknownNameError
from chipmix.planning.budget.budget import HOURS_PER_YEAR, budget

OFFERS = [
    "aws-p5.48xlarge-us-east-1-2025-06",
    "aws-trn2.48xlarge-us-east-2-2024-12",
    "azure-nd-mi300x-v5-2026-04",
    "gcp-tpu-v6e-us-east-2024-12",
]
RUN = {"model": "llama3.2-1b", "tokens": 1e12, "chips": 64, "seq_len": 4096,
       "global_batch": 256}  # fmt: skip


@pytest.mark.parametrize(
    ("caps", "max_chips"),
    [({}, None), ({"amd": 0.5}, None), ({"amd": 0.4, "nvidia": 0.3}, 512)],
    ids=["free", "amd-capped", "capped-and-scarce"],
)
def test_forward_and_reverse_agree(caps: dict[str, float], max_chips: int | None) -> None:
    forward = budget(2e7, 2, offers=OFFERS, vendor_caps=caps, max_chips=max_chips, **RUN)
    assert forward.runs is not None
    assert forward.runs > 0
    assert forward.spend_usd == pytest.approx(2e7, rel=1e-6)  # the budget binds
    for vendor, share in forward.vendor_shares.items():
        assert share <= caps.get(vendor, 1.0) + 1e-6
    reverse = budget(None, 2, runs=forward.runs, offers=OFFERS, vendor_caps=caps,
                     max_chips=max_chips, **RUN)  # fmt: skip
    assert reverse.direction == "reverse"
    assert reverse.usd == pytest.approx(2e7, rel=1e-5)
    assert reverse.runs == pytest.approx(forward.runs, rel=1e-6)


def test_lines_add_up() -> None:
    r = budget(1e7, 1, offers=OFFERS, vendor_caps={"amd": 0.5}, **RUN)
    assert sum(line.spend_usd for line in r.lines) == pytest.approx(r.spend_usd)
    assert sum(line.share for line in r.lines) == pytest.approx(1.0)
    for line in r.lines:
        assert line.chip_hours == pytest.approx(line.spend_usd / line.usd_per_chip_hour)
        assert line.chips_held == pytest.approx(line.chip_hours / HOURS_PER_YEAR)
        assert line.runs == pytest.approx((line.tokens or 0) / 1e12)


def test_peak_compute_without_a_model() -> None:
    r = budget(1e6, 1, offers=OFFERS)
    cat = load_catalog()
    assert r.runs is None
    assert r.tokens is None
    for line in r.lines:
        peak = cat.chips[line.chip].peak_flops("bf16")
        assert line.pflop_days == pytest.approx(line.chip_hours * peak / 1e15 / 24)


def test_mix_fixes_the_shares() -> None:
    r = budget(1e7, 1, offers=None, mix={"nvidia": 0.5, "google": 0.3, "amd": 0.2}, **RUN)
    assert r.vendor_shares == pytest.approx({"nvidia": 0.5, "google": 0.3, "amd": 0.2})


def test_commitment_renews_and_bills_its_last_term_whole() -> None:
    r = budget(1e6, 2, offers=["gcp-tpu-v6e-us-east-2024-12"], tiers=["committed-3y"])
    (line,) = r.lines
    assert line.usd_per_chip_hour == pytest.approx(1.22 * 3 / 2)  # 3 years billed for 2


def test_scarce_capacity_is_explained() -> None:
    with pytest.raises(InfeasibleError, match="capacity holds at most"):
        budget(None, 0.1, runs=1000, offers=OFFERS[:2], max_chips=64, **RUN)


@pytest.mark.parametrize(
    ("kwargs", "error", "says"),
    [
        ({"usd": 1e6, "runs": 2.0, **RUN}, InputError, "exactly one"),
        ({"usd": None, **RUN}, InputError, "exactly one"),
        ({"usd": 1e6, "model": "llama3.2-1b"}, InputError, "model and tokens together"),
        ({"usd": 1e6, "offers": ["aws-p5.48xlarge-us-east-1-2025-6"]}, UnknownNameError,
         "Did you mean"),
        ({"usd": 1e6, "vendor_caps": {"nvdia": 0.5}}, UnknownNameError, "nvidia"),
        ({"usd": 1e6, "mix": {"nvidia": 0.7, "amd": 0.6}}, InputError, "sum to 130%"),
        ({"usd": 1e6, "tiers": ["reserved"]}, UnknownNameError, "price tier"),
        ({"usd": -5.0}, InputError, "positive"),
    ],
    ids=["both", "neither", "model-without-tokens", "unknown-offer", "unknown-vendor",
         "mix-over-100", "unknown-tier", "negative"],
)  # fmt: skip
def test_bad_requests(kwargs: dict[str, object], error: type[Exception], says: str) -> None:
    usd = kwargs.pop("usd")
    with pytest.raises(error, match=says):
        budget(usd, 1, **kwargs)  # type: ignore[arg-type]


def test_cli_forward_and_reverse() -> None:
    runner = CliRunner()
    args = ["budget", "--years", "1", "--offers", ",".join(OFFERS), "--cap", "amd=50%",
            "--model", "llama3.2-1b", "--tokens", "1e12", "--chips", "64",
            "--global-batch", "256", "--json"]  # fmt: skip
    forward = runner.invoke(app, [*args, "--usd", "1e7"])
    assert forward.exit_code == 0, forward.output
    data = json.loads(forward.output)
    assert data["direction"] == "forward"
    assert data["vendor_shares"].get("amd", 0.0) <= 0.5 + 1e-9
    reverse = runner.invoke(app, [*args, "--runs", str(data["runs"])])
    assert json.loads(reverse.output)["usd"] == pytest.approx(1e7, rel=1e-5)
    table = runner.invoke(app, ["budget", "--usd", "1e9", "--years", "4"])
    assert table.exit_code == 0
    assert "what $1B buys over 4 years" in table.output
