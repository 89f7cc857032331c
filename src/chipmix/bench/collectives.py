"""Collectives over ``torch.distributed``: all-reduce, all-gather, reduce-scatter,
all-to-all and point-to-point, for several processes launched by ``torchrun``::

    torchrun --nproc-per-node 8 -m chipmix.cli bench --db bench.sqlite
    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-endpoint HOST:29500 -m chipmix.cli bench

Bandwidths follow nccl-tests' conventions (``doc/PERFORMANCE.md``): algorithm bandwidth
``algbw = M / t`` with ``M`` the full (gathered) message, bus bandwidth ``busbw = algbw ·
2(n−1)/n`` for all-reduce and ``algbw · (n−1)/n`` for all-gather, reduce-scatter and
all-to-all, so that ``busbw`` is the per-link rate the alpha-beta model of
`chipmix.perf.collectives` divides by. A group inside one node measures the scale-up
fabric, one across nodes the scale-out network. Rank 0 reports; every rank takes part.

The group lives as long as the measurements (`process_group`): every rank meets at a barrier
and destroys it before it returns, as ``torch.distributed`` asks of a program (its
"Shutdown" documentation). A gloo group left to the interpreter's exit keeps its worker
threads running into the interpreter's teardown; one that still drops a finished work's
tensors then needs the GIL, is ended by the finalizing interpreter, and the process aborts
("terminate called without an active exception", SIGABRT; pytorch/pytorch#190489). It is
a race, more likely on a loaded machine, and it hits the rank that exits first (the ones
that do not report). Destroying the group joins those threads while the interpreter is whole.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from chipmix.bench.detect import Device, synchronize
from chipmix.bench.micro import TimingConfig
from chipmix.bench.store import Result
from chipmix.bench.timing import measure

__all__ = [
    "COLLECTIVES", "World", "bus_factor", "init", "process_group", "run_collectives", "world",
]  # fmt: skip

COLLECTIVES = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "p2p")


@dataclass(frozen=True, slots=True)
class World:
    """The process group as torchrun describes it in the environment."""

    rank: int
    size: int
    local_size: int

    @property
    def nodes(self) -> int:
        return max(self.size // max(self.local_size, 1), 1)

    @property
    def scope(self) -> str:
        """``scaleup`` inside one node, ``scaleout`` across nodes."""
        return "scaleup" if self.nodes == 1 else "scaleout"


def world() -> World:
    """RANK / WORLD_SIZE / LOCAL_WORLD_SIZE as torchrun sets them (1 process otherwise)."""

    def env(name: str, default: int) -> int:
        value = os.environ.get(name, "")
        return int(value) if value.isdigit() else default

    size = env("WORLD_SIZE", 1)
    return World(env("RANK", 0), size, env("LOCAL_WORLD_SIZE", size))


def bus_factor(name: str, n: int) -> float:
    """busbw / algbw for ``name`` over ``n`` ranks (nccl-tests)."""
    if name == "all_reduce":
        return 2.0 * (n - 1) / n
    if name in ("all_gather", "reduce_scatter", "all_to_all"):
        return (n - 1) / n
    return 1.0


def init(device: Device) -> None:
    """Join the process group: NCCL (RCCL on ROCm) for GPUs, XLA's backend, gloo on CPU."""
    import torch.distributed as dist

    if dist.is_initialized():
        return
    if device.kind in ("cuda", "rocm"):
        backend = "nccl"
    elif device.kind == "xla":
        import torch_xla.distributed.xla_backend  # noqa: F401  (registers "xla")

        backend = "xla"
    else:
        backend = "gloo"
    dist.init_process_group(backend=backend)


@contextmanager
def process_group(device: Device) -> Iterator[World]:
    """The process group for the block (joined with `init`), destroyed on the way out.

    On a normal exit every rank first meets at a barrier, so no rank closes its connections
    while a peer still completes the last exchange, then destroys the group while the
    interpreter is whole: its worker threads are joined here, not in the interpreter's
    teardown (module docstring). After an exception the group is left alone: a peer may be
    blocked in a collective, and a barrier or a teardown that joins a blocked worker would
    hang instead of failing (torchtitan destroys the group on success only, for the same
    reason). A group that was already there is the caller's, and stays."""
    import torch.distributed as dist

    owned = not dist.is_initialized()
    init(device)
    yield world()
    if owned and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _op(
    name: str, n: int, rank: int, count: int, dev: Any
) -> tuple[Callable[[], None], Callable[[None], None], int]:
    """For collective ``name`` on a message of about ``count`` elements: the factory of its
    fresh inputs, the call itself, and the full message size in bytes."""
    import torch
    import torch.distributed as dist

    dt = torch.bfloat16 if dev.type != "cpu" else torch.float32
    shard = max(count // n, 1)
    full = shard * n
    state: dict[str, Any] = {}
    # torch 2.13 renames the tensor forms *_single; older releases have only the old names.
    all_gather = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
    reduce_scatter = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor

    def make() -> None:
        if name == "reduce_scatter":
            state["inp"] = torch.randn(full, device=dev, dtype=dt)
            state["out"] = torch.empty(shard, device=dev, dtype=dt)
        elif name == "all_gather":
            state["inp"] = torch.randn(shard, device=dev, dtype=dt)
            state["out"] = torch.empty(full, device=dev, dtype=dt)
        else:
            state["inp"] = torch.randn(full, device=dev, dtype=dt)
            state["out"] = torch.empty(full, device=dev, dtype=dt)
        # Start together: the barrier is outside the timed region (nccl-tests times
        # back-to-back collectives without one).
        dist.barrier()

    def run(_: None) -> None:
        inp, out = state["inp"], state["out"]
        if name == "all_reduce":
            dist.all_reduce(inp)
        elif name == "all_gather":
            all_gather(out, inp)
        elif name == "reduce_scatter":
            reduce_scatter(out, inp)
        elif name == "all_to_all":
            dist.all_to_all_single(out, inp)
        else:  # p2p: ranks pair up (0↔1, 2↔3, …) and exchange the message both ways
            peer = rank ^ 1
            if peer < n:
                ops = [dist.P2POp(dist.isend, inp, peer), dist.P2POp(dist.irecv, out, peer)]
                for request in dist.batch_isend_irecv(ops):
                    request.wait()

    return make, run, full * torch.finfo(dt).bits // 8


def run_collectives(
    device: Device, sizes: tuple[int, ...], *, cfg: TimingConfig = TimingConfig()
) -> Iterator[Result]:
    """Every collective at every message size (bytes); yields on every rank, rank 0's
    results are the ones to store."""
    with process_group(device) as w:
        yield from _measure_all(device, w, sizes, cfg)


def _measure_all(
    device: Device, w: World, sizes: tuple[int, ...], cfg: TimingConfig
) -> Iterator[Result]:
    """`run_collectives` inside the group ``w``."""
    import torch
    import torch.distributed as dist

    dev = torch.device(device.torch_device)
    if device.kind in ("cuda", "rocm"):
        torch.cuda.set_device(dev)
    element = 4 if dev.type == "cpu" else 2
    for name in COLLECTIVES:
        if name == "p2p" and w.size % 2:
            continue
        for nbytes in sizes:
            make, call, full_bytes = _op(name, w.size, w.rank, max(nbytes // element, 1), dev)

            def sync() -> None:
                synchronize(device)

            try:
                t = measure(call, make, sync, warmup=cfg.warmup, repeats=cfg.repeats)
            except (RuntimeError, NotImplementedError, ValueError) as exc:
                # gloo lacks some collectives (reduce-scatter on older builds): say so.
                yield Result(
                    kind="collective", name=name, dtype="-", shape={"bytes": nbytes},
                    median_s=0.0, min_s=0.0, repeats=0,
                    extra={"unsupported": str(exc).splitlines()[0][:200]},
                )  # fmt: skip
                break
            algbw = full_bytes / t.median_s
            yield Result(
                kind="collective",
                name=name,
                dtype="bf16" if element == 2 else "fp32",
                shape={
                    "bytes": full_bytes,
                    "world_size": w.size,
                    "local_world_size": w.local_size,
                    "nodes": w.nodes,
                },
                median_s=t.median_s,
                min_s=t.min_s,
                repeats=t.repeats,
                bytes=float(full_bytes),
                extra={
                    "algbw_bytes_per_s": algbw,
                    "busbw_bytes_per_s": algbw * bus_factor(name, w.size),
                    "scope": w.scope,
                    "backend": str(dist.get_backend()),
                },
            )
