"""Published training runs as validation cases: one CSV row, one self-contained case.

The schema is fixed by the header of ``data/published_training.csv`` (architecture columns
make every row self-contained; ``metric`` is ``tokens_per_s`` or ``step_time_s``; parallel
degrees in chips; an empty layout cell leaves that axis to the search). The shipped file is
the project's copy of the shared published-measurement set, attribution columns kept.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chipmix.common.files import format_validation_error
from chipmix.errors import FileFormatError
from chipmix.workload.model import MLPKind, ModelSpec, MoE

__all__ = ["DEFAULT_CASES", "Case", "CaseRow", "read_cases"]

DEFAULT_CASES = Path(__file__).parent / "data" / "published_training.csv"

REQUIRED_COLUMNS = tuple(
    "id source url stack model layers hidden ffn_hidden heads kv_heads head_dim vocab seq_len "
    "mlp tied_embeddings moe_experts moe_top_k moe_expert_ffn_hidden moe_shared_experts "
    "moe_dense_layers mode chip chips precision tp pp dp cp ep vpp zero recompute "
    "global_batch_seqs micro_batch metric value".split()
)

LAYOUT_COLUMNS = {
    "tp": "tp",
    "pp": "pp",
    "dp": "dp",
    "cp": "cp",
    "ep": "ep",
    "vpp": "vpp",
    "zero": "zero",
    "recompute": "recompute",
    "micro_batch": "micro_batch",
}


def _blank_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and value.strip() == "" else value


class CaseRow(BaseModel):
    """One row of the published-measurement schema, typed."""

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
    vocab: int = Field(gt=0)
    seq_len: int = Field(gt=0)
    mlp: MLPKind = "swiglu"
    tied_embeddings: bool = False
    moe_experts: int | None = None
    moe_top_k: int | None = None
    moe_expert_ffn_hidden: int | None = None
    moe_shared_experts: int | None = None
    moe_dense_layers: int | None = None
    mode: Literal["pretrain", "finetune", "lora"] = "pretrain"
    chip: str
    chips: int = Field(gt=0)
    precision: Literal["bf16", "fp8", "int8"] = "bf16"
    tp: int | None = Field(None, gt=0)
    pp: int | None = Field(None, gt=0)
    dp: int | None = Field(None, gt=0)
    cp: int | None = Field(None, gt=0)
    ep: int | None = Field(None, gt=0)
    vpp: int | None = Field(None, gt=0)
    zero: int | None = Field(None, ge=0, le=3)
    recompute: Literal["none", "selective", "full"] | None = None
    global_batch_seqs: int | None = Field(None, gt=0)
    micro_batch: int | None = Field(None, gt=0)
    metric: Literal["tokens_per_s", "step_time_s"]
    value: float = Field(gt=0)
    notes: str = ""
    confidence: str = ""


@dataclass(frozen=True)
class Case:
    """A row turned into what chipmix predicts from: a model, a job shape and pins."""

    row: CaseRow
    model: ModelSpec

    @property
    def id(self) -> str:
        return self.row.id

    @property
    def pinned_layout(self) -> dict[str, int | str]:
        """The layout axes the row states (the rest are left to the search)."""
        out: dict[str, int | str] = {}
        for column, axis in LAYOUT_COLUMNS.items():
            value = getattr(self.row, column)
            if value is not None:
                out[axis] = value
        return out

    @property
    def tokens_per_step(self) -> int | None:
        gb = self.row.global_batch_seqs
        return None if gb is None else gb * self.row.seq_len

    def published_tokens_per_s(self) -> float | None:
        """The published figure as tokens/s (step times converted by the batch)."""
        if self.row.metric == "tokens_per_s":
            return self.row.value
        tokens = self.tokens_per_step
        return None if tokens is None else tokens / self.row.value


def _model_from_row(row: CaseRow) -> ModelSpec:
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
        name=name,
        display_name=row.model or row.id,
        source=row.url,
        num_layers=row.layers,
        hidden_size=row.hidden,
        ffn_hidden_size=row.ffn_hidden,
        num_heads=row.heads,
        num_kv_heads=row.kv_heads or row.heads,
        head_dim=row.head_dim or row.hidden // row.heads,
        vocab_size=row.vocab,
        max_seq_len=row.seq_len,
        mlp=row.mlp,
        tied_embeddings=row.tied_embeddings,
        moe=moe,
    )


def read_cases(path: str | Path = DEFAULT_CASES) -> list[Case]:
    """Read a CSV in the published-measurement schema. Malformed rows raise
    `FileFormatError` naming the line and the column."""
    path = Path(path)
    try:
        handle = path.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise FileFormatError(f"{path}: cannot read ({exc.strerror})") from None
    with handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise FileFormatError(
                f"{path}: missing columns {missing}; the schema is the "
                f"header of the shipped published_training.csv"
            )
        cases = []
        seen: set[str] = set()
        for line, raw in enumerate(reader, start=2):
            clean = {k: _blank_to_none(v) for k, v in raw.items() if k is not None}
            try:
                row = CaseRow.model_validate(clean)
                model = _model_from_row(row)
            except ValidationError as exc:
                raise FileFormatError(format_validation_error(f"{path} line {line}", exc)) from None
            if row.id in seen:
                raise FileFormatError(f"{path} line {line}: duplicate id {row.id!r}")
            seen.add(row.id)
            cases.append(Case(row, model))
    return cases
