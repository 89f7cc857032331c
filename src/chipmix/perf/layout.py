"""A parallel layout: how a job is split over chips (Megatron-LM's axes, in chips).

``tp × pp × dp × cp = chips``; expert parallelism ``ep`` divides ``dp`` (experts are
sharded over part of the data-parallel group, as in Megatron-Core MoE); ``vpp`` virtual
stages per pipeline rank (interleaved 1F1B, Narayanan et al. 2021, arXiv 2104.04473 §2.2);
``zero`` the ZeRO stage (Rajbhandari et al. 2020, arXiv 1910.02054; 3 = FSDP);
``recompute`` none, selective (attention core) or full (Korthikanti et al. 2022,
arXiv 2205.05198 §5).

`LayoutBatch` holds many layouts as arrays so `perf` evaluates thousands at once.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from chipmix.errors import InputError

__all__ = ["RECOMPUTE", "Layout", "LayoutBatch", "Recompute", "stage_layers"]

Recompute = Literal["none", "selective", "full"]
RECOMPUTE: tuple[Recompute, ...] = ("none", "selective", "full")

IntArray = NDArray[np.int64]


@dataclass(frozen=True, kw_only=True, slots=True)
class Layout:
    """One parallel layout. Degrees are in chips."""

    tp: int = 1
    """Tensor parallel degree (with sequence parallelism), inside the scale-up domain."""
    pp: int = 1
    """Pipeline stages."""
    dp: int = 1
    """Data-parallel replicas (including the expert-parallel ranks)."""
    cp: int = 1
    """Context parallel degree: the sequence split over chips (ring attention)."""
    ep: int = 1
    """Expert parallel degree: routed experts sharded over ``ep`` of the ``dp`` ranks."""
    vpp: int = 1
    """Virtual pipeline stages per rank (interleaved schedule); 1 = plain 1F1B."""
    micro_batch: int = 1
    """Sequences per micro-batch per data-parallel replica."""
    zero: int = 1
    """ZeRO stage: 0 replicated, 1 optimizer sharded, 2 + gradients, 3 + weights (FSDP)."""
    recompute: Recompute = "none"
    """Activation recomputation: none, selective (attention core) or full (whole layer)."""

    def __post_init__(self) -> None:
        for name in ("tp", "pp", "dp", "cp", "ep", "vpp", "micro_batch"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InputError(f"layout {name} must be a whole number ≥ 1 (got {value!r})")
        if self.zero not in (0, 1, 2, 3):
            raise InputError(f"layout zero must be 0, 1, 2 or 3 (got {self.zero!r})")
        if self.recompute not in RECOMPUTE:
            raise InputError(
                f"layout recompute must be one of {', '.join(RECOMPUTE)} (got {self.recompute!r})"
            )

    @property
    def chips(self) -> int:
        return self.tp * self.pp * self.dp * self.cp

    def as_dict(self) -> dict[str, int | str]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __str__(self) -> str:
        parts = [f"tp{self.tp}", f"pp{self.pp}", f"dp{self.dp}"]
        if self.cp > 1:
            parts.append(f"cp{self.cp}")
        if self.ep > 1:
            parts.append(f"ep{self.ep}")
        if self.vpp > 1:
            parts.append(f"vpp{self.vpp}")
        parts += [f"mb{self.micro_batch}", f"zero{self.zero}", f"rc-{self.recompute}"]
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class LayoutBatch:
    """Many layouts as parallel integer arrays (``recompute`` coded 0/1/2)."""

    tp: IntArray
    pp: IntArray
    dp: IntArray
    cp: IntArray
    ep: IntArray
    vpp: IntArray
    micro_batch: IntArray
    zero: IntArray
    recompute: IntArray

    @staticmethod
    def of(layouts: list[Layout]) -> LayoutBatch:
        def col(name: str) -> IntArray:
            return np.array([getattr(x, name) for x in layouts], dtype=np.int64)

        rc = np.array([RECOMPUTE.index(x.recompute) for x in layouts], dtype=np.int64)
        return LayoutBatch(
            col("tp"), col("pp"), col("dp"), col("cp"), col("ep"), col("vpp"),
            col("micro_batch"), col("zero"), rc,
        )  # fmt: skip

    def __len__(self) -> int:
        return int(self.tp.shape[0])

    def layout(self, i: int) -> Layout:
        return Layout(
            tp=int(self.tp[i]), pp=int(self.pp[i]), dp=int(self.dp[i]), cp=int(self.cp[i]),
            ep=int(self.ep[i]), vpp=int(self.vpp[i]), micro_batch=int(self.micro_batch[i]),
            zero=int(self.zero[i]), recompute=RECOMPUTE[int(self.recompute[i])],
        )  # fmt: skip

    def take(self, index: NDArray[np.intp] | NDArray[np.bool_]) -> LayoutBatch:
        return LayoutBatch(*(getattr(self, f.name)[index] for f in fields(self)))


def stage_layers(num_layers: int, batch: LayoutBatch) -> NDArray[np.float64]:
    """Layers on the fullest pipeline rank: ``vpp`` virtual stages of
    ``⌈L / (pp · vpp)⌉`` layers each (uneven splits put the remainder on fewer ranks)."""
    virtual = (batch.pp * batch.vpp).astype(np.float64)
    return np.asarray(np.ceil(num_layers / virtual) * batch.vpp)
