"""Serving in the budget: what a commitment buys in served output tokens.

For every offer the serving search (`chipmix.serve`, as ``chipmix serve search`` on
``search_chips`` chips of the offer's system) finds the replica layout that serves the most
output tokens per second per chip under the p99 targets; one chip-hour then serves
``v_o = tokens/s per chip × 3600`` output tokens. These are the LP's values for serving
options (`chipmix.planning.budget.budget`): the budget's chip-hours are spent where a dollar
serves the most tokens, under the same availability and vendor caps. With a training job
too, each offer appears twice (training and serving), the two share its availability, and
the serving options take ``share`` of the spend (a mix row of the LP), the training ones the
rest; the objective sums both blocks' values, each relative to its best offer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from chipmix.catalog.catalog import Catalog
from chipmix.catalog.offer import Offer, PriceTier
from chipmix.errors import InfeasibleError, InputError
from chipmix.planning.budget.options import Option, buy_options
from chipmix.serve.precision import KVPrecision, WeightPrecision
from chipmix.workload.model import ModelSpec

__all__ = ["ServeRequest", "serving_options"]


@dataclass(frozen=True)
class ServeRequest:
    """What a budget should serve: a model, its mean request lengths, the p99 targets and,
    beside a training model, serving's share of the spend.

    >>> import chipmix
    >>> serve = chipmix.ServeRequest("llama3-70b", ttft_p99_ms=2000, tpot_p99_ms=100)
    >>> chipmix.budget(1e9, 1, serve=serve).served_tokens_per_day

    Each offer serves at the serving search's best replica layout under the targets
    (`chipmix.serve_search` on ``search_chips`` chips of its system).
    """

    model: str | ModelSpec
    """Preset id, model file, or a `ModelSpec`."""
    input_len: int = 2000
    """Mean prompt tokens per request."""
    output_len: int = 300
    """Mean generated tokens per request."""
    precision: WeightPrecision = "bf16"
    """Served weights: bf16, fp8, int8 or fp4."""
    kv_precision: KVPrecision | None = None
    """KV cache: bf16 or fp8 (None: fp8 for fp8/fp4 weights, else bf16)."""
    stack: str | None = None
    """Serving stack (vllm, sglang, trt-llm, …; None: each vendor's default stack)."""
    ttft_p99_ms: float | None = None
    """p99 time to first token target (None: no target)."""
    tpot_p99_ms: float | None = None
    """p99 time per output token target (None: no target)."""
    share: float | None = None
    """Share of the spend for serving when a training job is given too (0–1)."""
    search_chips: int = 64
    """Chips the layout search spreads over: the largest replica it considers."""

    def slo(self) -> str:
        parts = [f"p99 TTFT ≤ {self.ttft_p99_ms:g} ms"] if self.ttft_p99_ms else []
        parts += [f"p99 TPOT ≤ {self.tpot_p99_ms:g} ms"] if self.tpot_p99_ms else []
        return ", ".join(parts) or "no latency target"


def serving_options(
    cat: Catalog,
    pool: list[Offer],
    tiers: tuple[PriceTier, ...],
    max_chips: int | None,
    hours: float,
    serve: ServeRequest,
    skipped: dict[str, str],
) -> list[Option]:
    """One serving option per offer and tier whose system meets the targets. Raises
    `InfeasibleError` when none does, with each system's reason."""
    from chipmix.serve.public import serve_job, serve_search

    if serve.share is not None and not 0 < serve.share < 1:
        raise InputError(f"the serving share must lie in (0, 1) (got {serve.share:g})")
    # Bad values are the user's, not an offer's: refuse them before any search.
    serve_job(
        serve.model, input_len=serve.input_len, output_len=serve.output_len,
        precision=serve.precision, kv_precision=serve.kv_precision, stack=serve.stack,
    )  # fmt: skip
    found: dict[str, tuple[float, str] | str] = {}
    out = []
    for opt in buy_options(cat, pool, tiers, None, 1, max_chips, hours, {}):
        system = opt.offer.system
        if system not in found:
            try:
                best = serve_search(
                    serve.model, system, serve.search_chips, top=1, catalog=cat,
                    ttft_p99_ms=serve.ttft_p99_ms, tpot_p99_ms=serve.tpot_p99_ms,
                    input_len=serve.input_len, output_len=serve.output_len,
                    precision=serve.precision, kv_precision=serve.kv_precision,
                    stack=serve.stack,
                ).best  # fmt: skip
                lay = best.layout
                found[system] = (
                    best.tokens_per_s_per_chip * 3600.0,
                    f"{lay.replica_chips} chips: tp{lay.tp} pp{lay.pp} ep{lay.ep} "
                    f"batch {lay.batch}",
                )
            except (InfeasibleError, InputError) as exc:
                found[system] = str(exc)
        got = found[system]
        if isinstance(got, str):
            skipped[f"{opt.offer.id} (serving)"] = got
            continue
        per_chip_hour, replica = got
        out.append(
            replace(
                opt, value=per_chip_hour, served_tokens_per_chip_hour=per_chip_hour,
                replica=replica,
            )
        )  # fmt: skip
    if not out:
        name = serve.model if isinstance(serve.model, str) else serve.model.name
        reasons = "; ".join(f"{s}: {r}" for s, r in found.items() if isinstance(r, str))
        raise InfeasibleError(
            f"no offer serves {name} at {serve.slo()}: {reasons or 'no offer is priced'}"
        )
    return out
