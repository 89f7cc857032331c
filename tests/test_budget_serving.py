"""`budget` with a served model: output tokens per chip-hour at the serving search's best
layout, the split with a training job, and the refusals."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import chipmix
from chipmix.cli import app
from chipmix.errors import InfeasibleError, InputError
from chipmix.planning.budget.budget import budget
from chipmix.planning.budget.serving import ServeRequest

runner = CliRunner()

OFFERS = ["aws-p5.48xlarge-us-east-1-2025-06", "azure-nd-mi300x-v5-2026-04"]
SYSTEMS = {OFFERS[0]: "p5.48xlarge", OFFERS[1]: "azure-nd-mi300x-v5"}
SERVE = ServeRequest("llama3-8b", ttft_p99_ms=2000, tpot_p99_ms=100)


def test_served_tokens_per_line_are_chip_hours_at_the_search_rate() -> None:
    r = budget(1e8, 1, offers=OFFERS, tiers=["on-demand"], max_chips=2048, serve=SERVE)
    assert r.spend_usd == pytest.approx(1e8, rel=1e-6)
    for line in r.lines:
        best = chipmix.serve_estimate(
            "llama3-8b", SYSTEMS[line.offer], 64, ttft_p99_ms=2000, tpot_p99_ms=100
        )
        assert line.served_tokens == pytest.approx(
            line.chip_hours * best.tokens_per_s_per_chip * 3600, rel=1e-9
        )
    assert r.served_tokens == pytest.approx(sum(line.served_tokens or 0 for line in r.lines))
    assert r.served_tokens_per_day == pytest.approx(r.served_tokens / 365.25)
    assert r.tokens is None


def test_split_between_training_and_serving() -> None:
    serve = ServeRequest("llama3-8b", ttft_p99_ms=2000, tpot_p99_ms=100, share=0.3)
    r = budget(1e9, 1, offers=OFFERS, tiers=["on-demand"], max_chips=4096, model="llama3-8b",
               tokens=1e12, chips=256, serve=serve)  # fmt: skip
    assert r.serve_spend_usd == pytest.approx(0.3 * r.spend_usd, rel=1e-6)
    assert r.runs is not None
    assert r.runs > 0
    held: dict[str, float] = {}
    for line in r.lines:
        held[line.offer] = held.get(line.offer, 0.0) + line.chips_held
    assert max(held.values()) <= 4096 * (1 + 1e-9)  # both uses share an offer's chips


def test_refusals() -> None:
    with pytest.raises(InputError, match="serving share"):
        budget(1e9, 1, offers=OFFERS, model="llama3-8b", tokens=1e12, serve=SERVE)
    with pytest.raises(InputError, match="needs a budget"):
        budget(None, 1, runs=2, offers=OFFERS, model="llama3-8b", tokens=1e12, serve=SERVE)
    with pytest.raises(InfeasibleError, match=r"p99 TPOT ≤ 0.1 ms: .* reaches"):
        budget(1e9, 1, offers=OFFERS, serve=ServeRequest("llama3-8b", tpot_p99_ms=0.1))


def test_cli_json_and_unused_options() -> None:
    args = ["budget", "--usd", "1e8", "--offers", ",".join(OFFERS), "--serve-model",
            "llama3-8b", "--ttft-p99-ms", "2000", "--tpot-p99-ms", "100"]  # fmt: skip
    out = runner.invoke(app, [*args, "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["serving"]["output_tokens_per_day"] > 0
    assert any(line["served_tokens"] for line in data["lines"])
    table = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert "served tokens/day" in table.output
    lone = runner.invoke(app, ["budget", "--usd", "1e8", "--serve-share", "0.3"])
    assert isinstance(lone.exception, InputError)  # the entry point exits 2 on it
    assert "--serve-model" in str(lone.exception)


def test_serve_request_is_public_and_typed() -> None:
    """A Python user asks for serving in a budget with `chipmix.ServeRequest`."""
    from chipmix import ServeRequest as Public

    assert Public is ServeRequest
    assert Public.__doc__
    assert "WeightPrecision" in str(Public.__annotations__["precision"])
    serve = Public("llama3-8b", ttft_p99_ms=2000, tpot_p99_ms=100, precision="fp8")
    r = chipmix.budget(1e7, 1, offers=OFFERS[:1], tiers=["on-demand"], serve=serve)
    assert r.served_tokens is not None
    assert r.served_tokens > 0


def test_serve_request_carries_kv_precision_and_stack() -> None:
    """The KV-cache precision and the stack reach the serving search, as `serve` has them."""
    serve = ServeRequest(
        "llama3-8b", ttft_p99_ms=2000, tpot_p99_ms=100, precision="fp8", kv_precision="bf16",
        stack="sglang",
    )  # fmt: skip
    r = budget(1e7, 1, offers=OFFERS[:1], tiers=["on-demand"], serve=serve)
    best = chipmix.serve_estimate(
        "llama3-8b", SYSTEMS[OFFERS[0]], 64, ttft_p99_ms=2000, tpot_p99_ms=100,
        precision="fp8", kv_precision="bf16", stack="sglang",
    )  # fmt: skip
    (line,) = r.lines
    assert line.served_tokens == pytest.approx(
        line.chip_hours * best.tokens_per_s_per_chip * 3600, rel=1e-9
    )
    bad = ServeRequest("llama3-8b", kv_precision="int4")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="KV-cache precision"):
        budget(1e7, 1, offers=OFFERS[:1], serve=bad)


def test_cli_passes_the_kv_cache_and_the_stack() -> None:
    args = ["budget", "--usd", "1e7", "--offers", OFFERS[0], "--serve-model", "llama3-8b",
            "--serve-kv-precision", "fp8", "--serve-stack", "vllm", "--json"]  # fmt: skip
    out = runner.invoke(app, args)
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["serving"]["output_tokens_per_day"] > 0
    lone = runner.invoke(app, ["budget", "--usd", "1e8", "--serve-stack", "vllm"])
    assert isinstance(lone.exception, InputError)
    assert "--serve-model" in str(lone.exception)


def test_an_unknown_serving_stack_is_refused_with_the_valid_ones() -> None:
    with pytest.raises(InputError, match=r"Did you mean 'vllm'\?.*sglang"):
        chipmix.serve_estimate("llama3-8b", "p5.48xlarge", 8, stack="vlm")
    with pytest.raises(InputError, match="serving stack"):
        budget(1e7, 1, offers=OFFERS[:1], serve=ServeRequest("llama3-8b", stack="vlm"))
