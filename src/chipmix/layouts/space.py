"""The layout space: small generators over named axes, crossed into a `LayoutBatch`.

Axes that depend on each other (tp, cp, pp, dp, ep: their product is the chip count) are
enumerated together — a few hundred combinations at most; the independent axes (virtual
stages, micro-batch, ZeRO stage, recomputation) are crossed with them as numpy arrays.
An axis the user fixes is a one-value axis.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
from numpy.typing import NDArray

from chipmix.catalog.system import ResolvedSystem
from chipmix.perf.layout import LayoutBatch
from chipmix.perf.offload import offload_code
from chipmix.perf.recompute import policy_code
from chipmix.perf.stacks import stack_traits
from chipmix.perf.validity import DEGREE_RULES, RULES, violations
from chipmix.workload.job import Job

__all__ = ["AXES", "SearchSpace"]

AXES = ("tp", "pp", "dp", "cp", "ep", "vpp", "micro_batch", "zero", "recompute", "offload")
MAX_CP = 32
MAX_VPP = 8
MAX_MICRO_BATCH = 16


@lru_cache(maxsize=4096)
def divisors(n: int) -> tuple[int, ...]:
    """The divisors of ``n``, ascending (kept: a plan's searches ask for the same few)."""
    small = [d for d in range(1, int(n**0.5) + 1) if n % d == 0]
    return tuple(sorted(set(small + [n // d for d in small])))


@dataclass(frozen=True)
class SearchSpace:
    """Every candidate layout for ``job`` on ``chips`` chips of ``system``."""

    job: Job
    system: ResolvedSystem
    chips: int
    fixed: Mapping[str, int | str]
    stack: str | None = None
    """The stack the job runs on (its recomputation policies are searched)."""

    # -- generators, one per axis --------------------------------------------------------
    def tp_values(self) -> Iterator[int]:
        """Tensor parallel degrees: powers of two that divide the heads, within the domain
        (a multiple of the KV heads where the stack replicates them)."""
        if "tp" in self.fixed:
            yield int(self.fixed["tp"])
            return
        m = self.job.model
        kv = m.num_heads if m.mla else m.num_kv_heads
        replicate = stack_traits(self.stack or self.job.stack).kv_replication
        for t in divisors(self.chips):
            heads = m.num_heads % t == 0 and (kv % t == 0 or (replicate and t % kv == 0))
            if t & (t - 1) == 0 and t <= self.system.scaleup_domain_chips and heads:
                yield t

    def cp_values(self, rest: int) -> Iterator[int]:
        """Context parallel degrees (powers of two) that split the sequence evenly."""
        if "cp" in self.fixed:
            yield int(self.fixed["cp"])
            return
        for c in divisors(rest):
            even_split = self.job.seq_len % (2 * c) == 0
            if c == 1 or (c & (c - 1) == 0 and c <= MAX_CP and even_split):
                yield c

    def pp_values(self, rest: int) -> Iterator[int]:
        """Pipeline stages: any divisor up to the number of layers (uneven last stages)."""
        if "pp" in self.fixed:
            yield int(self.fixed["pp"])
            return
        for p in divisors(rest):
            if p <= self.job.model.num_layers:
                yield p

    def ep_values(self, dp: int, tp: int = 1, cp: int = 1) -> Iterator[int]:
        """Expert parallel degrees dividing the expert count and dp — or tp × cp × dp where
        the stack folds experts over them (Megatron-Core MoE parallel folding)."""
        if "ep" in self.fixed:
            yield int(self.fixed["ep"])
            return
        moe = self.job.model.moe
        if moe is None:
            yield 1
            return
        fold = stack_traits(self.stack or self.job.stack).ep_folding
        for e in divisors(tp * cp * dp if fold else dp):
            if moe.num_experts % e == 0:
                yield e

    def vpp_values(self) -> list[int]:
        if "vpp" in self.fixed:
            return [int(self.fixed["vpp"])]
        return [v for v in (1, 2, 3, 4, 5, 6, 8) if v <= MAX_VPP]

    def micro_batch_values(self) -> list[int]:
        if "micro_batch" in self.fixed:
            return [int(self.fixed["micro_batch"])]
        return [b for b in (1, 2, 4, 8, 16) if b <= MAX_MICRO_BATCH]

    def zero_values(self) -> list[int]:
        return [int(self.fixed["zero"])] if "zero" in self.fixed else [0, 1, 2, 3]

    def recompute_values(self) -> list[int]:
        """None, selective and full, and one intermediate policy of the stack: MaxText's
        ``minimal`` and ``save_dot_except_mlp``; Megatron-Core's ``mlp`` module (``moe_act``
        for a model whose every layer is MoE). Other policies are evaluated when pinned."""
        family = stack_traits(self.stack or self.job.stack).family
        if "recompute" in self.fixed:
            name = str(self.fixed["recompute"])
            # MaxText's selective policy is "minimal" (every projection saved).
            return [policy_code("minimal" if family == "maxtext" and name == "selective" else name)]
        if family == "maxtext":
            names = ["none", "minimal", "save_dot_except_mlp", "full"]
        elif family == "megatron":
            model = self.job.model
            middle = "mlp" if model.num_dense_layers else "moe_act"
            names = ["none", "selective", middle, "full"]
        else:
            names = ["none", "selective", "full"]
        return [policy_code(n) for n in names]

    def offload_values(self) -> list[int]:
        """Host offload is evaluated when pinned; the search keeps everything on device."""
        return [offload_code(str(self.fixed["offload"]))] if "offload" in self.fixed else [0]

    # -- the degrees -------------------------------------------------------------------
    def degrees(self) -> list[tuple[int, int, int, int, int]]:
        """(tp, cp, pp, dp, ep) combinations whose product is the chip count (when dp is
        free) — dp fixed by the user may leave a product ≠ chips, which `perf.validity`
        rejects with its reason."""
        out = []
        for tp in self.tp_values():
            if self.chips % tp:
                continue
            for cp in self.cp_values(self.chips // tp):
                if (self.chips // tp) % cp:
                    continue
                for pp in self.pp_values(self.chips // (tp * cp)):
                    if "dp" in self.fixed:
                        dp = int(self.fixed["dp"])
                    elif (self.chips // (tp * cp)) % pp:
                        continue
                    else:
                        dp = self.chips // (tp * cp * pp)
                    out += [(tp, cp, pp, dp, ep) for ep in self.ep_values(dp, tp, cp)]
        return out

    def batch(self) -> LayoutBatch:
        """Every (tp, cp, pp, dp, ep) combination crossed with every (vpp, micro-batch,
        ZeRO, recompute) one, as contiguous columns (outer axes repeated, inner tiled)."""
        return self._crossed(self.zero_values(), self.recompute_values())

    def size(self) -> int:
        """The number of layouts of `batch`."""
        return len(self._degrees) * len(self._inner(self.zero_values(), self.recompute_values()))

    def layouts(self, rows: NDArray[np.intp]) -> LayoutBatch:
        """``batch().take(rows)``, without building the whole batch."""
        return self._crossed(self.zero_values(), self.recompute_values(), rows)

    # -- groups: the layouts that differ only in ZeRO stage and recomputation -------------
    # batch's row ((degrees · V + vpp_mb) · Z·R + zero_rc) · O + offload belongs to
    # floor_batch's row (degrees · V + vpp_mb) · O + offload (V vpp × micro-batch values,
    # Z ZeRO stages, R recomputation policies, O offload values).
    def floor_batch(self) -> LayoutBatch:
        """One layout per (tp, cp, pp, dp, ep, vpp, micro-batch, offload) of `batch`, with
        ZeRO stage 0 and no recomputation (`chipmix.layouts.prune`)."""
        return self._floor_batch

    @cached_property
    def _floor_batch(self) -> LayoutBatch:
        return self._crossed([0], [policy_code("none")])

    def floor_violations(self, topology: bool = True) -> dict[str, NDArray[np.bool_]]:
        """`chipmix.perf.validity.violations` of `floor_batch`, the rules that read the
        degrees alone checked once per combination of degrees."""
        inner = self._inner([0], [policy_code("none")])
        d = self._degrees
        ones = np.ones(len(d), dtype=np.int64)
        degrees = LayoutBatch(
            tp=d[:, 0], pp=d[:, 2], dp=d[:, 3], cp=d[:, 1], ep=d[:, 4], vpp=ones,
            micro_batch=ones, zero=0 * ones, recompute=0 * ones,
        )  # fmt: skip
        job, system = self.job, self.system
        outer = violations(job, system, self.chips, degrees, topology=topology, only=DEGREE_RULES)
        rest = [r.reason for r in RULES if r.reason not in DEGREE_RULES]
        crossed = violations(
            job, system, self.chips, self.floor_batch(), topology=topology, only=rest
        )
        every = [r.reason for r in RULES if r.reason in outer or r.reason in crossed]
        return {
            reason: np.repeat(outer[reason], len(inner)) if reason in outer else crossed[reason]
            for reason in every
        }

    def floor_rows(self, rows: NDArray[np.intp]) -> NDArray[np.intp]:
        """The row of `floor_batch` (the group) of each layout ``rows`` of `batch`."""
        dropped = len(self.zero_values()) * len(self.recompute_values())
        offloads = len(self.offload_values())
        vpp_mb_zero_rc, offload = np.divmod(rows, offloads)
        return np.asarray((vpp_mb_zero_rc // dropped) * offloads + offload)

    def members(self, groups: NDArray[np.intp]) -> NDArray[np.intp]:
        """The rows of `batch` in the groups ``groups`` (rows of `floor_batch`), in order."""
        dropped = len(self.zero_values()) * len(self.recompute_values())
        offloads = len(self.offload_values())
        vpp_mb, offload = np.divmod(np.asarray(groups, dtype=np.int64), offloads)
        within = np.arange(dropped, dtype=np.int64)
        rows = (vpp_mb[:, None] * dropped + within[None, :]) * offloads + offload[:, None]
        return np.sort(rows.ravel())

    # -- the cross product ---------------------------------------------------------------
    @cached_property
    def _degrees(self) -> NDArray[np.int64]:
        found = self.degrees()
        flat = itertools.chain.from_iterable(found)
        return np.fromiter(flat, dtype=np.int64, count=5 * len(found)).reshape(-1, 5)

    @cached_property
    def _inners(self) -> dict[tuple[tuple[int, ...], tuple[int, ...]], NDArray[np.int64]]:
        return {}

    def _inner(self, zero: list[int], recompute: list[int]) -> NDArray[np.int64]:
        key = (tuple(zero), tuple(recompute))
        known = self._inners.get(key)
        if known is None:
            axes = (self.vpp_values(), self.micro_batch_values(), zero, recompute,
                    self.offload_values())  # fmt: skip
            # itertools.product's order: the last axis fastest.
            grid = np.meshgrid(*(np.asarray(a, dtype=np.int64) for a in axes), indexing="ij")
            known = self._inners[key] = np.stack([g.ravel() for g in grid], axis=1)
        return known

    def _crossed(
        self, zero: list[int], recompute: list[int], rows: NDArray[np.intp] | None = None
    ) -> LayoutBatch:
        degrees = self._degrees
        inner = self._inner(zero, recompute)
        if rows is None:

            def outer(k: int) -> NDArray[np.int64]:
                return np.repeat(degrees[:, k], len(inner))

            def crossed(k: int) -> NDArray[np.int64]:
                return np.tile(inner[:, k], len(degrees))

        else:
            outer_rows, inner_rows = np.divmod(np.asarray(rows, dtype=np.int64), len(inner))

            def outer(k: int) -> NDArray[np.int64]:
                return degrees[:, k][outer_rows]

            def crossed(k: int) -> NDArray[np.int64]:
                return inner[:, k][inner_rows]

        return LayoutBatch(
            tp=outer(0), pp=outer(2), dp=outer(3), cp=outer(1), ep=outer(4),
            vpp=crossed(0), micro_batch=crossed(1), zero=crossed(2), recompute=crossed(3),
            offload=crossed(4),
        )  # fmt: skip
