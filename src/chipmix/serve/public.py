"""The work behind ``chipmix.serve_estimate``, ``chipmix.serve_search`` and
``chipmix.serve_compare``: check the user's values, build the job, load the catalog and
the serving calibration, call the serving model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chipmix.catalog.catalog import Catalog, load_catalog
from chipmix.catalog.offer import PRICE_TIERS, PriceTier
from chipmix.errors import UnknownNameError
from chipmix.serve.calibration import load_serve_calibration
from chipmix.serve.estimate import compare_serving, search_serving, targets_ms
from chipmix.serve.job import SERVE_STACKS, ServeJob
from chipmix.serve.precision import KV_PRECISIONS, WEIGHT_PRECISIONS
from chipmix.serve.results import ServeComparison, ServeEstimate, ServeSearchResult
from chipmix.workload.model import ModelSpec
from chipmix.workload.registry import load_model

__all__ = ["serve_compare", "serve_estimate", "serve_job", "serve_search"]


def serve_job(
    model: str | ModelSpec,
    *,
    input_len: int = 2000,
    output_len: int = 300,
    precision: str = "bf16",
    kv_precision: str | None = None,
    stack: str | None = None,
) -> ServeJob:
    """A validated serving job. The KV cache defaults to fp8 when the weights are fp8 or
    fp4, else to the weights' bf16."""
    if precision not in WEIGHT_PRECISIONS:
        raise UnknownNameError("weight precision", precision, WEIGHT_PRECISIONS)
    kv = kv_precision or ("fp8" if precision in ("fp8", "fp4") else "bf16")
    if kv not in KV_PRECISIONS:
        raise UnknownNameError("KV-cache precision", kv, KV_PRECISIONS)
    if stack is not None and stack not in SERVE_STACKS:
        raise UnknownNameError("serving stack", stack, SERVE_STACKS)
    spec = model if isinstance(model, ModelSpec) else load_model(model)
    return ServeJob(
        model=spec, input_len=input_len, output_len=output_len, precision=precision,
        kv_precision=kv, stack=stack,
    )  # fmt: skip


def _catalog(catalog: Catalog | str | Path | None) -> Catalog:
    return catalog if isinstance(catalog, Catalog) else load_catalog(catalog)


def _tier(tier: str) -> PriceTier:
    if tier not in PRICE_TIERS:
        raise UnknownNameError("price tier", tier, PRICE_TIERS)
    return tier


def serve_search(
    model: str | ModelSpec,
    system: str,
    chips: int,
    *,
    ttft_p99_ms: float | None = None,
    tpot_p99_ms: float | None = None,
    top: int = 5,
    catalog: Catalog | str | Path | None = None,
    tp: int | None = None,
    pp: int | None = None,
    ep: int | None = None,
    batch: int | None = None,
    **job: Any,
) -> ServeSearchResult:
    """The best replica layouts and batches for serving ``model`` on ``chips`` chips of
    ``system`` under p99 latency targets, best (most output tokens/s per chip) first.
    Keyword arguments are `serve_job`'s (input_len, output_len, precision, kv_precision,
    stack); tp, pp, ep, batch pin those axes."""
    return search_serving(
        _catalog(catalog), load_serve_calibration(), serve_job(model, **job), system, chips,
        targets=targets_ms(ttft_p99_ms, tpot_p99_ms),
        pins={"tp": tp, "pp": pp, "ep": ep, "batch": batch}, top=top,
    )  # fmt: skip


def serve_estimate(
    model: str | ModelSpec,
    system: str,
    chips: int,
    *,
    ttft_p99_ms: float | None = None,
    tpot_p99_ms: float | None = None,
    catalog: Catalog | str | Path | None = None,
    tp: int | None = None,
    pp: int | None = None,
    ep: int | None = None,
    batch: int | None = None,
    **job: Any,
) -> ServeEstimate:
    """One serving prediction: the pinned layout, or the best one under the targets."""
    return serve_search(
        model, system, chips, ttft_p99_ms=ttft_p99_ms, tpot_p99_ms=tpot_p99_ms, top=1,
        catalog=catalog, tp=tp, pp=pp, ep=ep, batch=batch, **job,
    ).best  # fmt: skip


def serve_compare(
    model: str | ModelSpec,
    *,
    chips: int = 64,
    systems: list[str] | None = None,
    ttft_p99_ms: float | None = None,
    tpot_p99_ms: float | None = None,
    price_tier: str = "on-demand",
    tokens_per_day: float | None = None,
    catalog: Catalog | str | Path | None = None,
    **job: Any,
) -> ServeComparison:
    """Every chip (its reference system, or ``systems``) serving ``model`` on ``chips``
    chips: tokens/s per chip, chips for ``tokens_per_day``, $ per million output tokens per
    tier; ranked by $ per million in ``price_tier``. Each row equals `serve_estimate` for
    that system with the same arguments."""
    return compare_serving(
        _catalog(catalog), load_serve_calibration(), serve_job(model, **job),
        systems=systems, chips=chips, targets=targets_ms(ttft_p99_ms, tpot_p99_ms),
        price_tier=_tier(price_tier), tokens_per_day=tokens_per_day,
    )  # fmt: skip
