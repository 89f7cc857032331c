"""The floor under ``chipmix estimate``'s start-up: what any typer + pydantic command line
with the same options pays, chipmix or not (``benchmarks/startup.py --floor``).

A typer app with ``estimate``'s 27 options, of the same types (typer 0.29 builds a pydantic
``TypeAdapter`` for each to coerce its value), whose command validates two small pydantic
models (a model and a job holding it, as ``estimate`` validates its ``Job``) and prints
them as JSON. It imports what the bare baseline imports (numpy, pydantic, yaml, typer) and
nothing of chipmix.

    python benchmarks/floor_app.py -m llama3-8b -s h100-sxm -n 64 --tokens 1e12 --json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy  # noqa: F401  (the baseline's imports: every chipmix command loads them)
import typer
import yaml  # noqa: F401
from pydantic import BaseModel, ConfigDict, Field


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    layers: int = Field(32, ge=1)
    hidden: int = Field(4096, ge=1)
    heads: int = Field(32, ge=1)
    kv_heads: int = Field(8, ge=1)
    ffn: int = Field(14336, ge=1)
    vocab: int = Field(128256, ge=1)
    experts: int | None = None


class Task(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: Spec
    seq_len: int = Field(ge=1)
    global_batch: int = Field(ge=1)
    precision: str
    mode: str
    tokens: float | None = Field(None, gt=0)
    stack: str | None = None


Int = Annotated[int | None, typer.Option()]
Str = Annotated[str | None, typer.Option()]


def estimate(
    model: Annotated[str, typer.Option("--model", "-m")],
    system: Annotated[str, typer.Option("--system", "-s")],
    chips: Annotated[int | None, typer.Option("--chips", "-n")] = None,
    seq_len: Annotated[int, typer.Option()] = 4096,
    global_batch: Annotated[int, typer.Option()] = 1024,
    precision: Annotated[str, typer.Option()] = "bf16",
    precision_recipe: Str = None,
    loss_tiles: Annotated[int | None, typer.Option(min=1, max=4096)] = None,
    mode: Annotated[str, typer.Option()] = "pretrain",
    tokens: Annotated[float | None, typer.Option()] = None,
    price_tier: Annotated[str, typer.Option()] = "on-demand",
    stack: Str = None,
    tp: Int = None,
    pp: Int = None,
    dp: Int = None,
    cp: Int = None,
    ep: Int = None,
    vpp: Int = None,
    micro_batch: Int = None,
    zero: Int = None,
    recompute: Str = None,
    offload: Str = None,
    explain: Annotated[bool, typer.Option("--explain")] = False,
    json_out: Annotated[bool, typer.Option("--json")] = False,
    fmt: Annotated[str, typer.Option("--format")] = "table",
    catalog: Annotated[Path | None, typer.Option()] = None,
    prices_as_of: Str = None,
) -> None:
    """Validate the job and print it."""
    task = Task.model_validate(
        {
            "model": {"name": model},
            "seq_len": seq_len,
            "global_batch": global_batch,
            "precision": precision,
            "mode": mode,
            "tokens": tokens,
            "stack": stack,
        }
    )
    print(json.dumps({"system": system, "chips": chips, **task.model_dump()}, indent=2))


if __name__ == "__main__":
    typer.run(estimate)
