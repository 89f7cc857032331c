"""Predict every published serving row and score it against the published figure.

``error = predicted / published − 1`` in the row's own metric. How each scenario is
predicted (the layout left open by a row is the one the serving search finds):

- ``offline``: the layout and batch with the most output tokens/s per chip (batch at most
  the row's concurrency, when it gives one);
- ``server``: the same under the row's p99 TTFT/TPOT limits, at the sustainable share of
  that throughput under Poisson arrivals (``server_utilization``);
- ``fixed-batch``: the row's concurrency spread over the replicas (as much of it as the KV
  memory holds; a closed-loop client keeps that many requests in flight);
- ``single-stream``: batch 1.

A run of a finite prompt set (``num_prompts`` N, offline or closed loop) on replicas that
hold B requests in all at once finishes in ⌈N / B⌉ rounds of a request's duration, the
last one part-filled: its throughput is the steady rate times (N / B) / ⌈N / B⌉
(`finite_run_share`; the round model of static batches, as the tail of a vLLM
``benchmark_serving`` run drains: requests of one length start and end together, so a
round costs a whole request's time however few requests it holds, exact for
weight-bandwidth-bound decode, an upper bound on the loss otherwise).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import replace

import numpy as np

from chipmix.catalog.catalog import Catalog
from chipmix.errors import ChipmixError
from chipmix.serve.batching import ServeMetrics, evaluate_serving
from chipmix.serve.calibration import ServeCalibration, load_serve_calibration
from chipmix.serve.forward import ServeSetup, serve_setup
from chipmix.serve.layout import ReplicaBatch, ReplicaLayout
from chipmix.serve.search import Targets, run_serve_search
from chipmix.validate.score import CaseScore, Scorecard
from chipmix.validate.serve_cases import ServeCase

__all__ = ["finite_run_share", "predict_serve_case", "score_serve_cases", "serve_case_setup"]


def serve_case_setup(case: ServeCase, catalog: Catalog, serving: ServeCalibration) -> ServeSetup:
    return serve_setup(case.job, catalog.system(case.row.chip), catalog.calibration, serving)


def _choose(case: ServeCase, s: ServeSetup) -> ReplicaLayout:
    row = case.row
    pins = dict(case.pins)
    replicas = row.dp or (row.chips // (pins["tp"] * pins.get("pp", 1)) if "tp" in pins else 1)
    cap = None
    if row.concurrency_or_batch is not None:
        cap = max(math.ceil(row.concurrency_or_batch / max(replicas, 1)), 1)
    targets = Targets()
    if row.scenario == "server":
        targets = Targets(
            None if row.ttft_p99_ms is None else row.ttft_p99_ms / 1e3,
            None if row.tpot_p99_ms is None else row.tpot_p99_ms / 1e3,
        )
    outcome = run_serve_search(s, row.chips, targets, pins, batch_cap=cap)
    return outcome.metrics.layouts.layout(0)


def finite_run_share(num_prompts: int | None, in_flight: int) -> float:
    """Share of the steady throughput a run of ``num_prompts`` requests keeps when
    ``in_flight`` run at once: (N / B) / ⌈N / B⌉ (1 when N is unknown)."""
    if num_prompts is None or in_flight < 1:
        return 1.0
    rounds = num_prompts / in_flight
    return rounds / math.ceil(rounds)


def _value(case: ServeCase, m: ServeMetrics) -> float:
    row, job = case.row, case.job
    tokens = float(m.output_tokens_per_s[0])
    if row.scenario == "server":
        tokens = float(m.server_tokens_per_s[0])
    else:
        in_flight = int(m.layouts.batch[0]) * int(m.layouts.replicas[0])
        tokens *= finite_run_share(row.num_prompts, in_flight)
    match row.metric:
        case "output_tokens_per_s":
            return tokens
        case "total_tokens_per_s":
            return tokens * (job.input_len + job.output_len) / job.output_len
        case "requests_per_s":
            return tokens / job.output_len
        case "ttft_ms":
            return float(m.ttft_s[0]) * 1e3
        case "tpot_ms":
            return float(m.tpot_s[0]) * 1e3
    raise AssertionError(row.metric)  # pragma: no cover


def predict_layout(
    case: ServeCase,
    catalog: Catalog,
    serving: ServeCalibration,
    layout: ReplicaLayout | None = None,
) -> tuple[CaseScore, ReplicaLayout | None]:
    """The row's prediction and the layout it used (``layout`` given: evaluated as is)."""
    row = case.row
    base = CaseScore(
        id=row.id, chip=row.chip, stack=row.stack, source=row.source, metric=row.metric,
        published=row.value,
    )  # fmt: skip
    if case.refusal is not None:
        return replace(base, reason=case.refusal), None
    try:
        s = serve_case_setup(case, catalog, serving)
        if layout is None:
            layout = _choose(case, s)
        m = evaluate_serving(s, ReplicaBatch.of([layout]))
    except ChipmixError as exc:
        return replace(base, reason=str(exc)), None
    value = _value(case, m)
    if not np.isfinite(value) or value <= 0:
        return replace(base, reason="the model predicts no throughput for this row"), None
    return replace(base, predicted=value), layout


def predict_serve_case(
    case: ServeCase, catalog: Catalog, serving: ServeCalibration | None = None
) -> CaseScore:
    """Predict one row with the shipped (or given) serving calibration."""
    return predict_layout(case, catalog, serving or load_serve_calibration())[0]


def score_serve_cases(
    cases: Iterable[ServeCase], catalog: Catalog, serving: ServeCalibration | None = None
) -> Scorecard:
    serving = serving or load_serve_calibration()
    cases = list(cases)
    notes = sorted({f"{a} ({sum(a in c.assumptions for c in cases)} rows)"
                    for c in cases for a in c.assumptions})  # fmt: skip
    return Scorecard([predict_serve_case(c, catalog, serving) for c in cases], notes=notes)
