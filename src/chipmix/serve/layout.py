"""A serving layout: how the chips are cut into model replicas and how many requests each
replica runs at once.

One replica spans ``tp × pp`` chips: tensor parallelism inside the scale-up domain
(Megatron-LM, Shoeybi et al. 2019, arXiv 1909.08053), pipeline stages across it; for a
mixture-of-experts model the routed experts are sharded over ``ep`` of the replica's ``tp``
chips (expert parallelism inside the tensor-parallel group, as vLLM's
``--enable-expert-parallel``). ``replicas`` copies serve independent requests (data
parallelism); ``batch`` is the number of requests one replica runs concurrently under
continuous batching (Orca, Yu et al. 2022, OSDI).

`ReplicaBatch` holds many layouts as arrays so the search evaluates them at once.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import NDArray

from chipmix.errors import InputError

__all__ = ["ReplicaBatch", "ReplicaLayout"]

IntArray = NDArray[np.int64]


@dataclass(frozen=True, kw_only=True, slots=True)
class ReplicaLayout:
    """One serving layout. Degrees are in chips."""

    tp: int = 1
    """Tensor-parallel degree of one replica."""
    pp: int = 1
    """Pipeline stages of one replica."""
    ep: int = 1
    """Expert-parallel degree inside the tensor-parallel group (divides ``tp``)."""
    replicas: int = 1
    """Independent model replicas."""
    batch: int = 1
    """Requests one replica runs concurrently (continuous batching)."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"serving layout {f.name} must be a whole number ≥ 1 "
                                 f"(got {value!r})")  # fmt: skip
        if self.tp % self.ep:
            raise InputError(f"serving layout ep({self.ep}) must divide tp({self.tp})")

    @property
    def replica_chips(self) -> int:
        return self.tp * self.pp

    @property
    def chips(self) -> int:
        return self.tp * self.pp * self.replicas

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __str__(self) -> str:
        parts = [f"tp{self.tp}", f"pp{self.pp}"]
        if self.ep > 1:
            parts.append(f"ep{self.ep}")
        return " ".join([*parts, f"×{self.replicas}", f"batch {self.batch}"])


@dataclass(frozen=True, slots=True)
class ReplicaBatch:
    """Many serving layouts as parallel integer arrays."""

    tp: IntArray
    pp: IntArray
    ep: IntArray
    replicas: IntArray
    batch: IntArray

    @staticmethod
    def of(layouts: list[ReplicaLayout]) -> ReplicaBatch:
        def col(name: str) -> IntArray:
            return np.array([getattr(x, name) for x in layouts], dtype=np.int64)

        return ReplicaBatch(col("tp"), col("pp"), col("ep"), col("replicas"), col("batch"))

    def __len__(self) -> int:
        return int(self.tp.shape[0])

    def layout(self, i: int) -> ReplicaLayout:
        return ReplicaLayout(
            tp=int(self.tp[i]), pp=int(self.pp[i]), ep=int(self.ep[i]),
            replicas=int(self.replicas[i]), batch=int(self.batch[i]),
        )  # fmt: skip

    def take(self, index: NDArray[np.intp] | NDArray[np.bool_]) -> ReplicaBatch:
        return ReplicaBatch(*(getattr(self, f.name)[index] for f in fields(self)))

    @property
    def chips(self) -> IntArray:
        return np.asarray(self.tp * self.pp * self.replicas)
