"""Published serving measurements as validation cases: one CSV row, one self-contained case.

The schema is the header of ``data/published_inference.csv`` (the project's copy of the
shared published-serving set, attribution columns kept): the architecture in the row,
the chip count and any layout in chips, the scenario (offline, server, single-stream,
fixed-batch), request lengths, and one metric. Where a row leaves something out the case
states the assumption it predicts with (`ServeCase.assumptions`).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import Field

from chipmix.common.files import read_text
from chipmix.errors import FileFormatError
from chipmix.serve.job import ServeJob
from chipmix.serve.precision import KVPrecision, WeightPrecision
from chipmix.validate.case_columns import (
    SHARED_COLUMNS,
    ArchitectureColumns,
    model_from_columns,
    read_files,
    read_rows,
)

__all__ = [
    "DEFAULT_SERVE_CASES",
    "SERVE_COLUMNS",
    "ServeCase",
    "ServeCaseRow",
    "is_serving_file",
    "read_serve_case_files",
    "read_serve_cases",
]

DEFAULT_SERVE_CASES = Path(__file__).parent / "data" / "published_inference.csv"

SERVE_COLUMNS = (
    *SHARED_COLUMNS,
    *(
        "attention precision precision_detail tp pp dp ep scenario input_len output_len "
        "concurrency_or_batch ttft_p99_ms tpot_p99_ms metric value"
    ).split(),
)

Metric = Literal[
    "output_tokens_per_s", "total_tokens_per_s", "ttft_ms", "tpot_ms", "requests_per_s"
]
Scenario = Literal["offline", "server", "single-stream", "fixed-batch"]


class ServeCaseRow(ArchitectureColumns):
    """One row of the published-serving schema, typed (the shared attribution and
    architecture columns in `ArchitectureColumns`)."""

    attention: Literal["mha", "gqa", "mla"] = "gqa"
    precision: WeightPrecision = "bf16"
    precision_detail: str = ""
    tp: int | None = Field(None, gt=0)
    pp: int | None = Field(None, gt=0)
    dp: int | None = Field(None, gt=0)
    ep: int | None = Field(None, gt=0)
    scenario: Scenario
    input_len: float | None = Field(None, gt=0)
    output_len: float = Field(gt=0)
    concurrency_or_batch: int | None = Field(None, gt=0)
    ttft_p99_ms: float | None = Field(None, gt=0)
    tpot_p99_ms: float | None = Field(None, gt=0)
    metric: Metric
    value: float = Field(gt=0)
    num_prompts: int | None = Field(None, gt=0)
    """Optional trailing column: requests the benchmark sends in all (a closed-loop or
    offline run of a finite prompt set); empty for a steady-state figure (MLPerf)."""


@dataclass(frozen=True)
class ServeCase:
    """A row turned into what chipmix predicts from: a serving job, pins and assumptions."""

    row: ServeCaseRow
    job: ServeJob
    pins: dict[str, int]
    assumptions: list[str] = field(default_factory=list)
    refusal: str | None = None
    """The feature the row needs that the model lacks (None when it can be predicted)."""

    @property
    def id(self) -> str:
        return self.row.id


def _kv_precision(row: ServeCaseRow) -> tuple[KVPrecision, str | None]:
    """The KV cache's precision: as the row's precision detail states it, else fp8 for
    MLPerf submissions with fp8/fp4 weights (their recipes quantize the KV cache), else
    bf16 (vLLM's default ``kv_cache_dtype=auto`` keeps the model's dtype)."""
    detail = row.precision_detail.lower()
    if re.search(r"fp8[^,;]*kv|kv[^,;]*fp8", detail):
        return "fp8", None
    if row.stack.startswith("mlperf-") and row.precision in ("fp8", "fp4"):
        return "fp8", "KV cache assumed fp8 (MLPerf recipes with fp8/fp4 weights quantize it)"
    return "bf16", None


def _case(row: ServeCaseRow) -> ServeCase:
    assumptions = []
    refusal = None
    if row.attention == "mla":
        refusal = "multi-head latent attention: the latent sizes are not in the row's columns"
    output = max(round(row.output_len), 1)
    if row.input_len is None:
        input_len = output
        assumptions.append("mean input length not published; assumed equal to the output")
    else:
        input_len = max(round(row.input_len), 1)
    kv, why = _kv_precision(row)
    if why:
        assumptions.append(why)
    job = ServeJob(
        model=model_from_columns(row), input_len=input_len, output_len=output,
        precision=row.precision, kv_precision=kv,
        weight_only="weight-only" in row.precision_detail.lower(), stack=row.stack,
    )  # fmt: skip
    pins = {k: v for k in ("tp", "pp", "ep") if (v := getattr(row, k)) is not None}
    if row.scenario == "single-stream":
        pins["batch"] = 1
    return ServeCase(row, job, pins, assumptions, refusal)


def is_serving_file(path: str | Path) -> bool:
    """True when the CSV's header is the published-serving schema."""
    try:  # an unreadable file is not a serving file: the training reader says why
        header = next(csv.reader(io.StringIO(read_text(Path(path)), newline="")), [])
    except (FileFormatError, csv.Error):
        return False
    return "scenario" in header and "output_len" in header


def read_serve_cases(path: str | Path = DEFAULT_SERVE_CASES) -> list[ServeCase]:
    """Read a CSV in the published-serving schema; malformed rows raise `FileFormatError`
    naming the line and the column."""
    return read_rows(
        Path(path),
        SERVE_COLUMNS,
        "published_inference.csv",
        lambda clean: _case(ServeCaseRow.model_validate(clean)),
        lambda c: c.id,
    )


def read_serve_case_files(paths: Sequence[str | Path]) -> list[ServeCase]:
    """The rows of several files in the published-serving schema; ids unique across them."""
    return read_files(paths, read_serve_cases, lambda c: c.id)
