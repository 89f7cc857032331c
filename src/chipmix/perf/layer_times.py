"""One transformer layer's forward and backward seconds for one micro-batch on one chip,
per layout: its GEMMs in the recipe's formats (`chipmix.perf.precision`), its attention core
and elementwise traffic (the roofline of `chipmix.perf.roofline`), and the same by op for the
recomputation policies (`chipmix.perf.rerun`). A long batch times each distinct shape of the
layer once (`layer_shapes`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from chipmix.perf.layout import LayoutBatch, distinct
from chipmix.perf.ops import LayerWork
from chipmix.perf.precision import gemm_pass_times
from chipmix.perf.rerun import ELEMENTWISE_OPS, op_times
from chipmix.perf.roofline import ChipRates
from chipmix.workload.model import ModelSpec
from chipmix.workload.precision import PrecisionRecipe

__all__ = ["SHARED_LAYER_MIN", "LayerTimes", "layer_shapes", "layer_times"]

Array = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class LayerTimes:
    """One layer's forward (and GEMM backward) seconds for one micro-batch, per layout."""

    gemm_fwd: Array
    gemm_bwd: Array
    attention_fwd: Array
    elementwise_fwd: Array
    cast: Array
    """Per-micro-batch quantize/cast traffic of a low-precision recipe, in seconds."""
    weight_cast: Array
    """Per-step cast of the layer's weights to the recipe's format, in seconds."""
    ops: dict[str, Array]
    """Forward seconds by op, for the recomputation policies (`chipmix.perf.rerun`)."""

    def take(self, rows: NDArray[np.intp]) -> LayerTimes:
        """The times of layouts ``rows`` (each a row of this one's layouts)."""
        return LayerTimes(
            gemm_fwd=self.gemm_fwd[rows],
            gemm_bwd=self.gemm_bwd[rows],
            attention_fwd=self.attention_fwd[rows],
            elementwise_fwd=self.elementwise_fwd[rows],
            cast=self.cast[rows],
            weight_cast=self.weight_cast[rows],
            ops={op: t[rows] for op, t in self.ops.items()},
        )


SHARED_LAYER_MIN = 256
"""Batches at least this long time one layer once per distinct shape (`layer_shapes`)."""


def layer_shapes(batch: LayoutBatch) -> tuple[LayoutBatch, NDArray[np.intp]] | None:
    """One layout per distinct shape of a layer's work (what `layer_work` reads: tp, cp,
    micro-batch, ep and the expert tp, which reads dp; and whether ep divides dp, which sets
    the expert all-to-all's rank stride) and each layout's row among them: a search's
    thousands of layouts hold a few dozen shapes. None for a short batch, or where a
    degree is negative or past `WIDEST` (the shapes are counted in a table, not sorted)."""
    if len(batch) < SHARED_LAYER_MIN:
        return None
    inside = (batch.dp % batch.ep == 0).astype(np.int64)
    key = np.zeros(len(batch), dtype=np.intp)
    size = 1
    for column in (batch.tp, batch.cp, batch.micro_batch, batch.ep, inside):
        if int(column.min()) < 0 or int(column.max()) > WIDEST:
            return None
        values, at = distinct(column)
        key = key * len(values) + at
        size *= len(values)
    if size > WIDEST:
        return None
    present = np.flatnonzero(np.bincount(key, minlength=size))
    if len(present) * 4 > len(batch):
        return None
    row = np.zeros(size, dtype=np.intp)
    row[present] = np.arange(len(present))
    rows = row.take(key)
    first = np.zeros(len(present), dtype=np.intp)
    first[rows] = np.arange(len(batch))  # a layout of each shape (any one: they share it)
    return batch.take(first), rows


WIDEST = 1 << 16
"""The largest degree, and the most combinations of degrees, `layer_shapes` counts."""


def layer_times(
    model: ModelSpec,
    work: LayerWork,
    rates: ChipRates,
    low: ChipRates | None,
    recipe: PrecisionRecipe,
    frozen: bool,
) -> LayerTimes:
    passes = gemm_pass_times(work.gemms, work.adapter_gemms, frozen, recipe, rates, low)
    ops = op_times(model, work, rates, rates)
    # The recomputation policies re-run GEMMs by op at the recipe's forward rate: scale the
    # bf16 op times by the ratio of the recipe's forward GEMM time to the bf16 one.
    not_gemm = {"attn", *ELEMENTWISE_OPS.values()}
    zero = np.zeros_like(work.attention_flops)
    bf16_fwd = sum((t for op, t in ops.items() if op not in not_gemm), start=zero)
    adapters = sum(
        (rates.gemm_time(g.m, g.k, g.n) * g.count for g in work.adapter_gemms), start=zero
    )
    scale = np.where(bf16_fwd > 0, (passes.forward - adapters) / np.maximum(bf16_fwd, 1e-30), 1.0)
    ops = {op: (t if op in not_gemm else t * scale) for op, t in ops.items()}
    return LayerTimes(
        gemm_fwd=passes.forward,
        gemm_bwd=passes.backward,
        attention_fwd=ops["attn"],
        elementwise_fwd=rates.memory_time(work.elementwise_bytes),
        cast=rates.memory_time(passes.cast_bytes),
        weight_cast=rates.memory_time(passes.weight_cast_bytes),
        ops=ops,
    )
