"""What to do with a model: pretrain, finetune fully or with LoRA, on how many tokens."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from chipmix.common.files import NoBoolNumbers
from chipmix.common.units import Precision
from chipmix.workload.model import ModelSpec
from chipmix.workload.precision import PrecisionRecipe, recipe_for

__all__ = ["MODES", "TRAIN_PRECISIONS", "Job", "Mode"]

Mode = Literal["pretrain", "finetune", "lora"]
MODES: tuple[Mode, ...] = ("pretrain", "finetune", "lora")
TRAIN_PRECISIONS: tuple[Precision, ...] = ("bf16", "fp8", "int8", "fp4")


class Job(NoBoolNumbers):
    """One training job: the model, its batch and sequence shape, precision and token budget."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: ModelSpec
    mode: Mode = "pretrain"
    seq_len: int = Field(4096, gt=0, le=2**21)
    """Tokens per sequence."""
    global_batch: int = Field(1024, gt=0, le=2**24)
    """Sequences per optimizer step, all data-parallel replicas together."""
    precision: Precision = "bf16"
    """Matmul precision: bf16, or fp8/int8/fp4 where the stack runs matmuls in them
    (weights, gradients and optimizer state stay in bf16/fp32: mixed precision)."""
    tokens: float | None = Field(None, gt=0, le=1e16)
    """Total tokens to train on; None to estimate one step only."""
    lora_rank: int = Field(16, gt=0)
    """Adapter rank for ``mode="lora"`` (adapters on every attention and MLP projection)."""
    stack: str | None = None
    """Software stack (megatron, torchtitan, maxtext, neuronx-distributed, ...)."""
    precision_recipe: str | None = None
    """How the stack runs the low-precision GEMMs (`chipmix.workload.precision.RECIPES`:
    fp8-delayed, fp8-tensorwise, mxfp8, nvfp4, mxfp4, maxtext-fp8, aqt-int8); None for
    the precision's default recipe."""
    loss_tiles: int | None = Field(None, ge=1, le=4096)
    """Tiles of tokens the output layer and loss are computed in, one at a time, so only
    one tile's logits are live (MaxText ``num_vocab_tiling``); 1 materializes them whole.
    None (not stated): a stack that tiles the loss takes the fewest tiles with which each
    layout fits, any other stack keeps them whole."""

    @model_validator(mode="after")
    def _precision_trains(self) -> Job:
        if self.precision not in TRAIN_PRECISIONS:
            raise ValueError(
                f"precision {self.precision!r} is not a training precision; "
                f"valid: {', '.join(TRAIN_PRECISIONS)}"
            )
        recipe_for(self.precision, self.precision_recipe)  # names the valid ones if wrong
        return self

    @property
    def recipe(self) -> PrecisionRecipe:
        """The precision recipe the job runs (its own or its precision's default)."""
        return recipe_for(self.precision, self.precision_recipe)

    @property
    def tokens_per_step(self) -> int:
        return self.seq_len * self.global_batch

    @property
    def num_steps(self) -> float | None:
        return None if self.tokens is None else self.tokens / self.tokens_per_step
