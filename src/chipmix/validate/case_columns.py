"""What the published training and serving case files share: the attribution and
model-architecture columns, the model they describe, and the row-by-row CSV reading.

Both schemas (``data/published_training.csv``, ``data/published_inference.csv``) make every
row self-contained: the architecture sits in the row. `ArchitectureColumns` types those
columns once; `model_from_columns` turns them into a `ModelSpec`; `read_rows` reads a file
of either schema, checks its header and ids, and names the line and column of a bad cell.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chipmix.common.files import format_validation_error, read_text
from chipmix.errors import FileFormatError, InputError
from chipmix.workload.model import MLPKind, ModelSpec, MoE

__all__ = [
    "ARCHITECTURE_COLUMNS",
    "SHARED_COLUMNS",
    "ArchitectureColumns",
    "model_from_columns",
    "read_files",
    "read_rows",
]

ARCHITECTURE_COLUMNS = tuple(
    "layers hidden ffn_hidden heads kv_heads head_dim vocab mlp tied_embeddings moe_experts "
    "moe_top_k moe_expert_ffn_hidden moe_shared_experts moe_dense_layers".split()
)
"""The model-architecture columns both schemas carry, in the files' order."""

SHARED_COLUMNS = ("id", "source", "url", "stack", "model", *ARCHITECTURE_COLUMNS, "chip", "chips")
"""The columns both schemas require (each adds its own: lengths, layout, metric)."""


class ArchitectureColumns(BaseModel):
    """The columns every published-case row carries: attribution, the model's
    architecture, the chip and its count, and the free-text notes."""

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
    mlp: MLPKind = "swiglu"
    tied_embeddings: bool = False
    moe_experts: int | None = None
    moe_top_k: int | None = None
    moe_expert_ffn_hidden: int | None = None
    moe_shared_experts: int | None = None
    moe_dense_layers: int | None = None
    chip: str
    chips: int = Field(gt=0)
    notes: str = ""
    confidence: str = ""


def model_from_columns(row: ArchitectureColumns, max_seq_len: int | None = None) -> ModelSpec:
    """The model a row's architecture columns describe (named after the row's id)."""
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
    extra: dict[str, Any] = {} if max_seq_len is None else {"max_seq_len": max_seq_len}
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
        mlp=row.mlp,
        tied_embeddings=row.tied_embeddings,
        moe=moe,
        **extra,
    )


T = TypeVar("T")


def read_rows(
    path: Path,
    required: Iterable[str],
    schema_file: str,
    build: Callable[[dict[str, Any]], T],
    case_id: Callable[[T], str],
) -> list[T]:
    """Read a published-case CSV: the header must hold every ``required`` column (the
    schema is ``schema_file``'s header); each row, blank cells as missing, goes through
    ``build``; a bad cell, a duplicate id or an empty file raises `FileFormatError`
    naming the line and column."""
    handle = io.StringIO(read_text(path, "cases file"), newline="")
    reader = csv.DictReader(handle)
    out: list[T] = []
    try:
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise FileFormatError(
                f"{path}: missing columns {missing}; the schema is the header of the "
                f"shipped {schema_file}"
            )
        seen: set[str] = set()
        for line, raw in enumerate(reader, start=2):
            clean = {
                k: (None if isinstance(v, str) and not v.strip() else v)
                for k, v in raw.items()
                if k is not None
            }
            try:
                item = build(clean)
            except ValidationError as exc:
                raise FileFormatError(format_validation_error(f"{path} line {line}", exc)) from None
            except (InputError, ValueError) as exc:
                raise FileFormatError(f"{path} line {line}: {exc}") from None
            if case_id(item) in seen:
                raise FileFormatError(f"{path} line {line}: duplicate id {case_id(item)!r}")
            seen.add(case_id(item))
            out.append(item)
    except csv.Error as exc:
        raise FileFormatError(f"{path} line {reader.line_num}: not valid CSV ({exc})") from None
    if not out:
        raise FileFormatError(f"{path}: no cases (only a header); add at least one row")
    return out


def read_files(
    paths: Iterable[str | Path], read: Callable[[Path], list[T]], case_id: Callable[[T], str]
) -> list[T]:
    """The rows of several case files read by ``read``, in order; an id must be unique
    across the files (`FileFormatError` naming both files otherwise)."""
    out: list[T] = []
    seen: dict[str, Path] = {}
    for path in map(Path, paths):
        for item in read(path):
            key = case_id(item)
            if key in seen:
                raise FileFormatError(
                    f"{path}: case id {key!r} is also in {seen[key]}; ids must be unique "
                    "across the --cases files"
                )
            seen[key] = path
            out.append(item)
    return out
