"""What to serve: a model, request lengths, the weights' and KV cache's precision."""

from __future__ import annotations

from dataclasses import dataclass

from chipmix.errors import InputError
from chipmix.serve.precision import (
    KV_PRECISIONS,
    WEIGHT_PRECISIONS,
    KVPrecision,
    WeightPrecision,
)
from chipmix.workload.model import ModelSpec

__all__ = ["SERVE_STACKS", "ServeJob"]

MAX_TOKENS = 2**21

SERVE_STACKS = (
    "vllm", "sglang", "trt-llm", "tgi", "jetstream", "neuronx-vllm", "transformers-neuronx",
    "mlperf-nvidia", "mlperf-amd", "mlperf-google", "mlperf-intel", "other",
)  # fmt: skip
"""Serving stacks a request may name (the published serving runs' stacks); a stack
without fitted parameters takes the serving defaults."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ServeJob:
    """A serving workload: every request has the mean input and output lengths."""

    model: ModelSpec
    input_len: int
    """Prompt tokens per request (mean)."""
    output_len: int
    """Generated tokens per request (mean)."""
    precision: WeightPrecision = "bf16"
    """Weight storage precision."""
    kv_precision: KVPrecision = "bf16"
    """KV-cache element precision."""
    weight_only: bool = False
    """Weights stored in ``precision`` but multiplied in bf16 (weight-only quantization)."""
    stack: str | None = None
    """Serving stack (vllm, sglang, trt-llm, jetstream, neuronx-vllm, mlperf-*, ...)."""

    def __post_init__(self) -> None:
        for name in ("input_len", "output_len"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or not 1 <= value <= MAX_TOKENS
            ):
                raise InputError(f"{name} must be a whole number of tokens between 1 and "
                                 f"{MAX_TOKENS:,} (got {value!r})")  # fmt: skip
        if self.precision not in WEIGHT_PRECISIONS:
            raise InputError(
                f"weight precision {self.precision!r} is not one of {', '.join(WEIGHT_PRECISIONS)}"
            )
        if self.kv_precision not in KV_PRECISIONS:
            raise InputError(
                f"KV-cache precision {self.kv_precision!r} is not one of {', '.join(KV_PRECISIONS)}"
            )

    @property
    def max_context(self) -> int:
        """Tokens a request holds in the KV cache when it finishes."""
        return self.input_len + self.output_len

    @property
    def mean_context(self) -> float:
        """Mean KV length a decode step attends to: the prompt plus half the output."""
        return self.input_len + self.output_len / 2.0
