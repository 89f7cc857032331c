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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chipmix.common.files import format_validation_error, read_text
from chipmix.errors import FileFormatError
from chipmix.serve.job import ServeJob
from chipmix.serve.precision import KVPrecision, WeightPrecision
from chipmix.workload.model import MLPKind, ModelSpec, MoE

__all__ = [
    "DEFAULT_SERVE_CASES",
    "SERVE_COLUMNS",
    "ServeCase",
    "ServeCaseRow",
    "is_serving_file",
    "read_serve_cases",
]

DEFAULT_SERVE_CASES = Path(__file__).parent / "data" / "published_inference.csv"

SERVE_COLUMNS = tuple(
    "id source url stack model layers hidden ffn_hidden heads kv_heads head_dim attention vocab "
    "mlp tied_embeddings moe_experts moe_top_k moe_expert_ffn_hidden moe_shared_experts "
    "moe_dense_layers chip chips precision precision_detail tp pp dp ep scenario input_len "
    "output_len concurrency_or_batch ttft_p99_ms tpot_p99_ms metric value".split()
)

Metric = Literal[
    "output_tokens_per_s", "total_tokens_per_s", "ttft_ms", "tpot_ms", "requests_per_s"
]
Scenario = Literal["offline", "server", "single-stream", "fixed-batch"]


class ServeCaseRow(BaseModel):
    """One row of the published-serving schema, typed."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str
    source: str
    url: str = ""
    stack: str
    model: str = ""
    layers: int = Field(gt=0)
    hidden: int = Field(gt=0)
    ffn_hidden: int = Field(gt=0)
    heads: int = Field(gt=0)
    kv_heads: int | None = Field(None, gt=0)
    head_dim: int | None = Field(None, gt=0)
    attention: Literal["mha", "gqa", "mla"] = "gqa"
    vocab: int = Field(gt=0)
    mlp: MLPKind = "swiglu"
    tied_embeddings: bool = False
    moe_experts: int | None = None
    moe_top_k: int | None = None
    moe_expert_ffn_hidden: int | None = None
    moe_shared_experts: int | None = None
    moe_dense_layers: int | None = None
    chip: str
    chips: int = Field(gt=0)
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
    notes: str = ""
    confidence: str = ""


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


def _model(row: ServeCaseRow) -> ModelSpec:
    moe = None
    if row.moe_experts:
        moe = MoE(
            num_experts=row.moe_experts,
            top_k=row.moe_top_k or 1,
            expert_ffn_hidden_size=row.moe_expert_ffn_hidden or row.ffn_hidden,
            num_shared_experts=row.moe_shared_experts or 0,
            num_dense_layers=row.moe_dense_layers or 0,
        )
    name = re.sub(r"[^a-z0-9.\-_]", "-", row.id.lower()).strip("-") or "case"
    return ModelSpec(
        name=name, display_name=row.model or row.id, source=row.url,
        num_layers=row.layers, hidden_size=row.hidden, ffn_hidden_size=row.ffn_hidden,
        num_heads=row.heads, num_kv_heads=row.kv_heads or row.heads,
        head_dim=row.head_dim or row.hidden // row.heads, vocab_size=row.vocab,
        mlp=row.mlp, tied_embeddings=row.tied_embeddings, moe=moe,
    )  # fmt: skip


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
        model=_model(row), input_len=input_len, output_len=output, precision=row.precision,
        kv_precision=kv, weight_only="weight-only" in row.precision_detail.lower(),
        stack=row.stack,
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
    path = Path(path)
    handle = io.StringIO(read_text(path, "cases file"), newline="")
    try:
        reader = csv.DictReader(handle)
        missing = [c for c in SERVE_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise FileFormatError(
                f"{path}: missing columns {missing}; the schema is the header of the shipped "
                f"published_inference.csv"
            )
        cases, seen = [], set()
        for line, raw in enumerate(reader, start=2):
            clean: dict[str, Any] = {
                k: (None if isinstance(v, str) and not v.strip() else v)
                for k, v in raw.items()
                if k is not None
            }
            try:
                case = _case(ServeCaseRow.model_validate(clean))
            except (ValidationError, ValueError) as exc:
                message = (
                    format_validation_error(f"{path} line {line}", exc)
                    if isinstance(exc, ValidationError)
                    else f"{path} line {line}: {exc}"
                )
                raise FileFormatError(message) from None
            if case.id in seen:
                raise FileFormatError(f"{path} line {line}: duplicate id {case.id!r}")
            seen.add(case.id)
            cases.append(case)
    except csv.Error as exc:
        raise FileFormatError(f"{path}: not valid CSV ({exc})") from None
    if not cases:
        raise FileFormatError(f"{path}: no cases (only a header); add at least one row")
    return cases
