"""A parallel layout: how a job is split over chips (Megatron-LM's axes, in chips).

``tp × pp × dp × cp = chips``; expert parallelism ``ep`` divides ``dp`` (experts are
sharded over part of the data-parallel group, as in Megatron-Core MoE); ``vpp`` virtual
stages per pipeline rank (interleaved 1F1B, Narayanan et al. 2021, arXiv 2104.04473 §2.2);
``zero`` the ZeRO stage (Rajbhandari et al. 2020, arXiv 1910.02054; 3 = FSDP);
``recompute`` a recomputation policy: none, selective (attention core) or full (Korthikanti
et al. 2022, arXiv 2205.05198 §5), a Megatron-Core module list or a MaxText remat policy
(`chipmix.perf.recompute`); ``offload`` what lives in host memory (`chipmix.perf.offload`).

`LayoutBatch` holds many layouts as arrays so `perf` evaluates thousands at once.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from chipmix.errors import InputError
from chipmix.perf.offload import offload_code, offload_name
from chipmix.perf.recompute import GENERIC, policy_by_code, policy_code

__all__ = [
    "RECOMPUTE",
    "Layout",
    "LayoutBatch",
    "Recompute",
    "StageSplit",
    "distinct",
    "expert_tp",
    "pipeline_split",
    "stage_layers",
]

Recompute = str
RECOMPUTE: tuple[str, ...] = GENERIC
"""The generic recomputation modes; `chipmix.perf.recompute` lists every policy."""

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
    """Activation recomputation policy: none, selective (attention core), full (whole
    layer), Megatron-Core modules (``core_attn,mlp``) or a MaxText remat policy."""
    offload: str = "none"
    """Host offload: none, ``activations[:N]`` layers per stage, ``optimizer``."""

    def __post_init__(self) -> None:
        for name in ("tp", "pp", "dp", "cp", "ep", "vpp", "micro_batch"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InputError(f"layout {name} must be a whole number ≥ 1 (got {value!r})")
        if self.zero not in (0, 1, 2, 3):
            raise InputError(f"layout zero must be 0, 1, 2 or 3 (got {self.zero!r})")
        if not isinstance(self.recompute, str):
            raise InputError(f"layout recompute must be a policy name (got {self.recompute!r})")
        object.__setattr__(self, "recompute", policy_by_code(policy_code(self.recompute)).name)
        if not isinstance(self.offload, str):
            raise InputError(f"layout offload must be a string (got {self.offload!r})")
        object.__setattr__(self, "offload", offload_name(offload_code(self.offload)))

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
        if self.offload != "none":
            parts.append(f"offload-{self.offload}")
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class LayoutBatch:
    """Many layouts as parallel integer arrays (``recompute`` and ``offload`` coded as in
    `chipmix.perf.recompute` and `chipmix.perf.offload`; 0 = none)."""

    tp: IntArray
    pp: IntArray
    dp: IntArray
    cp: IntArray
    ep: IntArray
    vpp: IntArray
    micro_batch: IntArray
    zero: IntArray
    recompute: IntArray
    offload: IntArray | None = None

    def __post_init__(self) -> None:
        if self.offload is None:
            object.__setattr__(self, "offload", np.zeros_like(self.tp))

    @property
    def offload_codes(self) -> IntArray:
        assert self.offload is not None
        return self.offload

    @staticmethod
    def of(layouts: list[Layout]) -> LayoutBatch:
        def col(name: str) -> IntArray:
            return np.array([getattr(x, name) for x in layouts], dtype=np.int64)

        rc = np.array([policy_code(x.recompute) for x in layouts], dtype=np.int64)
        off = np.array([offload_code(x.offload) for x in layouts], dtype=np.int64)
        return LayoutBatch(
            col("tp"), col("pp"), col("dp"), col("cp"), col("ep"), col("vpp"),
            col("micro_batch"), col("zero"), rc, off,
        )  # fmt: skip

    def __len__(self) -> int:
        return int(self.tp.shape[0])

    def layout(self, i: int) -> Layout:
        return Layout(
            tp=int(self.tp[i]), pp=int(self.pp[i]), dp=int(self.dp[i]), cp=int(self.cp[i]),
            ep=int(self.ep[i]), vpp=int(self.vpp[i]), micro_batch=int(self.micro_batch[i]),
            zero=int(self.zero[i]), recompute=policy_by_code(int(self.recompute[i])).name,
            offload=offload_name(int(self.offload_codes[i])),
        )  # fmt: skip

    def take(self, index: NDArray[np.intp] | NDArray[np.bool_]) -> LayoutBatch:
        if index.dtype == np.bool_:
            return LayoutBatch(*(getattr(self, name)[index] for name in _BATCH_FIELDS))
        return LayoutBatch(*(getattr(self, name).take(index) for name in _BATCH_FIELDS))


_BATCH_FIELDS = tuple(f.name for f in fields(LayoutBatch))


def stage_layers(num_layers: int, batch: LayoutBatch) -> NDArray[np.float64]:
    """Layers on the fullest pipeline rank (see `pipeline_split`)."""
    return pipeline_split(num_layers, batch).middle


@dataclass(frozen=True, slots=True)
class StageSplit:
    """Transformer layers on the first, the fullest middle, and the last pipeline rank."""

    first: NDArray[np.float64]
    middle: NDArray[np.float64]
    last: NDArray[np.float64]


def pipeline_split(num_layers: int, batch: LayoutBatch) -> StageSplit:
    """How ``L`` layers spread over ``pp`` ranks of ``vpp`` virtual stages each.

    - ``L`` divisible by ``pp·vpp``: every rank holds ``L / pp``.
    - ``L + 2`` divisible by ``pp·vpp``: Megatron-Core
      ``--account-for-embedding-in-pipeline-split --account-for-loss-in-pipeline-split``
      counts the embedding and the loss as one layer each, so the first and last ranks hold
      one layer fewer (126 layers on 16 ranks: 7, 8 × 14, 7 — Llama 3 405B, Dubey et al.
      2024, arXiv 2407.21783 §3.3.2).
    - otherwise the middle ranks hold ``⌈L / (pp·vpp)⌉·vpp`` and the first and last share
      the rest (Megatron-Core ``--decoder-first-pipeline-num-layers`` /
      ``--decoder-last-pipeline-num-layers``; torchtitan's manual split points).
    """
    pp, vpp = batch.pp, batch.vpp
    if len(pp) and np.min(pp) >= 1 and np.min(vpp) >= 1:
        # A search's thousands of layouts hold a few dozen (pp, vpp) pairs: split every
        # pair up to the largest once and look the layouts up.
        grid_pp, grid_vpp = int(np.max(pp)), int(np.max(vpp))
        if 2 * grid_pp * grid_vpp < len(pp):
            first, middle, last = _grid(num_layers, grid_pp, grid_vpp)
            at = (pp - 1) * grid_vpp + (vpp - 1)
            return StageSplit(first.take(at), middle.take(at), last.take(at))
    return StageSplit(*_split(num_layers, pp, vpp))


@lru_cache(maxsize=256)
def _grid(
    num_layers: int, grid_pp: int, grid_vpp: int
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """`_split` of every (pp, vpp) up to (``grid_pp``, ``grid_vpp``), row
    ``(pp − 1) · grid_vpp + vpp − 1`` (kept: the searches of a plan ask for the same few;
    read-only)."""
    pairs_pp, pairs_vpp = np.divmod(np.arange(grid_pp * grid_vpp), grid_vpp)
    split = _split(num_layers, pairs_pp + 1, pairs_vpp + 1)
    for part in split:
        part.flags.writeable = False
    return split


def _split(
    num_layers: int, batch_pp: NDArray[np.int64], batch_vpp: NDArray[np.int64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """`pipeline_split` of each (pp, vpp), element by element."""
    pp = batch_pp.astype(np.float64)
    virtual = pp * batch_vpp
    vpp = batch_vpp.astype(np.float64)
    even = num_layers % virtual == 0
    account = ((num_layers + 2) % virtual == 0) & (pp > 1) & ~even
    ceil = np.ceil(num_layers / virtual) * vpp
    middle = np.where(even, num_layers / pp, np.where(account, (num_layers + 2) / pp, ceil))
    rest = np.maximum(num_layers - middle * np.maximum(pp - 2.0, 0.0), 0.0)
    first = np.where(pp > 1, np.minimum(np.floor(rest / 2.0), middle), num_layers)
    last = np.where(pp > 1, np.minimum(rest - first, middle), num_layers)
    first = np.where(account, middle - 1.0, np.where(even, middle, first))
    last = np.where(account, middle - 1.0, np.where(even, middle, last))
    return np.asarray(first, dtype=np.float64), np.asarray(middle), np.asarray(last)


def expert_tp(batch: LayoutBatch) -> NDArray[np.float64]:
    """Tensor-parallel degree of the expert layers: ``tp`` while ``ep`` divides ``dp``;
    1 when experts are folded over tp × cp × dp (Megatron-Core MoE parallel folding,
    ``--expert-tensor-parallel-size 1``; Liu et al. 2025, arXiv 2504.14960)."""
    return np.where(batch.dp % batch.ep == 0, batch.tp, 1).astype(np.float64)


def distinct(values: IntArray) -> tuple[IntArray, NDArray[np.intp]]:
    """The distinct values of a column of small non-negative integers (policy codes,
    degrees), ascending, and each element's index among them: a table lookup where
    ``np.unique`` would sort."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.intp)
    if int(values.min()) < 0 or int(values.max()) > 1 << 16:
        found, at = np.unique(values, return_inverse=True)
        return found.astype(np.int64), at.reshape(-1)
    present = np.flatnonzero(np.bincount(values))
    index = np.zeros(int(present[-1]) + 1, dtype=np.intp)
    index[present] = np.arange(len(present))
    return present.astype(np.int64), index.take(values)
