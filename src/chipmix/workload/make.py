"""Build a validated `Job` from a model (preset id, file or spec) and the run's numbers."""

from __future__ import annotations

from pydantic import ValidationError

from chipmix.common.units import Precision
from chipmix.errors import InputError
from chipmix.workload.job import Job, Mode
from chipmix.workload.model import ModelSpec
from chipmix.workload.registry import load_model

__all__ = ["make_job"]


def make_job(
    model: str | ModelSpec,
    *,
    mode: Mode = "pretrain",
    seq_len: int = 4096,
    global_batch: int = 1024,
    precision: Precision = "bf16",
    tokens: float | None = None,
    stack: str | None = None,
    lora_rank: int = 16,
    precision_recipe: str | None = None,
    loss_tiles: int | None = None,
) -> Job:
    """A validated `Job`; bad numbers raise `InputError` naming the field and the range."""
    spec = model if isinstance(model, ModelSpec) else load_model(model)
    try:
        return Job(
            model=spec,
            mode=mode,
            seq_len=seq_len,
            global_batch=global_batch,
            precision=precision,
            tokens=tokens,
            stack=stack,
            lora_rank=lora_rank,
            precision_recipe=precision_recipe,
            loss_tiles=loss_tiles,
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'job'}: {e['msg']} (got {e['input']!r})"
            for e in exc.errors()
        )
        raise InputError(f"invalid job: {problems}") from None
