"""What a suite measures, and running it into the results store.

A suite is a list of `Task`s planned from the device and the workload model: the square
matmul sweep that fixes the small-GEMM curve, the workload's own GEMM shapes (from
`chipmix.perf.ops.layer_work`, the shapes the model predicts with), fp8 where supported,
attention at the workload's heads and sequence, a large copy, norm and SwiGLU at the
workload's width, and the end-to-end step. Under ``torchrun`` (``WORLD_SIZE > 1``) the suite
is the collectives instead. Each finished task's results are committed before the next task
starts, so an interrupted run keeps them all.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from chipmix.bench import micro
from chipmix.bench.detect import Device
from chipmix.bench.micro import TimingConfig
from chipmix.bench.store import Result, RunInfo, Store
from chipmix.catalog.catalog import Catalog
from chipmix.errors import InputError
from chipmix.perf.layout import Layout, LayoutBatch
from chipmix.perf.ops import layer_work, logits_work
from chipmix.workload.model import ModelSpec

__all__ = [
    "SUITES",
    "BenchRun",
    "Progress",
    "Suite",
    "SuiteConfig",
    "Task",
    "plan",
    "run_tasks",
    "suite_config",
    "workload_gemms",
]

Suite = Literal["smoke", "quick", "full"]
SUITES: tuple[Suite, ...] = ("smoke", "quick", "full")
Progress = Callable[[str, int, int], None]
"""Called with (label of the task starting or done, tasks done, tasks in all)."""

MiB = 1 << 20
SWEEP_TOKENS = 16384
"""Tokens per attention-sweep shape: every sequence length sees the same batch of work."""


def _sweep(
    head_dims: tuple[int, ...], seqs: tuple[int, ...], kv_heads: tuple[int, ...], heads: int = 32
) -> tuple[tuple[int, int, int, int], ...]:
    """Every (head dim, sequence, heads, key-value heads) of the given axes."""
    return tuple((d, s, heads, kv) for d in head_dims for s in seqs for kv in kv_heads)


@dataclass(frozen=True, kw_only=True, slots=True)
class SuiteConfig:
    """Sizes and repeat counts of one suite on one kind of device."""

    square: tuple[int, ...]
    """Square matmul sizes (the small-GEMM sweep)."""
    preset_shapes: bool
    """Also time the unscaled model's GEMMs (accelerators; the full suite on CPU)."""
    copy_bytes: int
    seq_len: int
    batch: int
    max_params: float
    """Largest end-to-end model, in weights."""
    max_vocab: int | None
    attention_seqs: tuple[int, ...] = ()
    """Extra sequence lengths for attention at the model's heads."""
    attention_sweep: tuple[tuple[int, int, int, int], ...] = ()
    """Attention shapes measured whatever the model: (head dim, sequence, heads, key-value
    heads), each at ``SWEEP_TOKENS`` tokens (batch = tokens / sequence, at least 1)."""
    collective_bytes: tuple[int, ...] = (1 << 12, 1 << 20, 1 << 24, 1 << 28)
    timing: TimingConfig = field(default_factory=TimingConfig)
    e2e_timing: TimingConfig = field(default_factory=TimingConfig)


def suite_config(suite: Suite, device: Device) -> SuiteConfig:
    """The sizes of ``suite`` on ``device``: the CPU quick suite runs in under 2 minutes;
    ``smoke`` is seconds long (tests, CI); accelerators measure at full scale.

    On a CPU every microbenchmark sample lasts at least 50 ms, about as long as a training
    step: on a machine shared with other work a short sample often runs undisturbed while
    a long one always pays its share of the contention, which would make kernels look
    faster than the step they add up to."""
    if suite not in SUITES:
        from chipmix.errors import UnknownNameError

        raise UnknownNameError("suite", suite, SUITES)
    cpu = device.kind == "cpu"
    if suite == "smoke":
        return SuiteConfig(
            square=(64, 128, 256), preset_shapes=False, copy_bytes=16 * MiB, seq_len=64,
            batch=2, max_params=1e7, max_vocab=4096, collective_bytes=(1 << 10, 1 << 16),
            timing=TimingConfig(warmup=2, repeats=3, min_sample_s=0.05),
            e2e_timing=TimingConfig(warmup=2, repeats=5),
        )  # fmt: skip
    if cpu:
        full = suite == "full"
        return SuiteConfig(
            square=(128, 256, 512, 1024, 2048, 4096) if full else (256, 512, 1024, 2048),
            preset_shapes=full, copy_bytes=(1024 if full else 256) * MiB,
            seq_len=512 if full else 256, batch=8, max_params=64e6 if full else 16e6,
            max_vocab=32768 if full else 16384, attention_seqs=(512, 1024) if full else (),
            collective_bytes=(1 << 12, 1 << 20, 1 << 24),
            timing=TimingConfig(warmup=2, repeats=7 if full else 5, min_sample_s=0.05),
            e2e_timing=TimingConfig(warmup=1, repeats=5 if full else 3),
        )  # fmt: skip
    memory = device.memory_bytes or 16 * 2**30
    # fp32 weights + gradients + two Adam moments (16 B per weight) in 40% of the memory,
    # the rest for activations and the runtime.
    max_params = 0.4 * memory / 16.0
    if suite == "quick":
        return SuiteConfig(
            square=(1024, 2048, 4096, 8192), preset_shapes=True, copy_bytes=2048 * MiB,
            seq_len=2048, batch=4, max_params=max_params, max_vocab=None,
            attention_sweep=_sweep((64, 128), (2048, 8192), (8,)),
            timing=TimingConfig(warmup=3, repeats=10, min_sample_s=0.02),
            e2e_timing=TimingConfig(warmup=3, repeats=10),
        )  # fmt: skip
    return SuiteConfig(
        square=(256, 512, 1024, 2048, 4096, 8192, 16384), preset_shapes=True,
        copy_bytes=4096 * MiB, seq_len=4096, batch=2, max_params=max_params, max_vocab=None,
        attention_seqs=(1024, 2048, 4096, 8192, 16384),
        attention_sweep=_sweep((64, 128), (1024, 2048, 4096, 8192, 16384), (32, 8, 4)),
        collective_bytes=(1 << 10, 1 << 14, 1 << 18, 1 << 22, 1 << 26, 1 << 28, 1 << 30),
        timing=TimingConfig(warmup=5, repeats=20, min_sample_s=0.05),
        e2e_timing=TimingConfig(warmup=5, repeats=20),
    )  # fmt: skip


@dataclass(frozen=True)
class Task:
    """One benchmark to run: a label for the progress bar and the call that measures it."""

    label: str
    run: Callable[[], list[Result]]


def workload_gemms(model: ModelSpec, seq_len: int, batch: int) -> list[tuple[str, int, int, int]]:
    """The forward GEMMs of one layer and the logits, as `chipmix.perf.ops` shapes them for
    one chip (name, m, k, n), without repeats."""
    layout = LayoutBatch.of([Layout(micro_batch=batch)])
    shapes: dict[tuple[int, int, int], str] = {}
    work = layer_work(model, seq_len, layout, moe_layer=model.moe is not None)
    logits, _ = logits_work(model, seq_len, layout)
    for g in [*work.gemms, logits]:
        key = (int(g.m[0]), int(g.k if isinstance(g.k, float) else g.k[0]),
               int(g.n if isinstance(g.n, float) else g.n[0]))  # fmt: skip
        if min(key) >= 1:
            shapes.setdefault(key, g.name)
    return [(name, m, k, n) for (m, k, n), name in shapes.items()]


def bench_model(model: ModelSpec, cfg: SuiteConfig) -> ModelSpec:
    """The model the end-to-end step trains: ``model`` scaled to the suite's size."""
    from chipmix.bench.e2e import scale_model

    return scale_model(model, max_params=cfg.max_params, max_vocab=cfg.max_vocab)


def _one(result: Result | None) -> list[Result]:
    return [] if result is None else [result]


def plan(
    device: Device,
    suite: Suite,
    model: ModelSpec,
    *,
    catalog: Catalog | None = None,
    seq_len: int | None = None,
    batch: int | None = None,
    compile: bool = False,
    e2e: bool = True,
    micro_benchmarks: bool = True,
) -> list[Task]:
    """The tasks of ``suite`` for ``model`` on ``device``."""
    cfg = suite_config(suite, device)
    seq = seq_len or cfg.seq_len
    bsz = batch or cfg.batch
    if seq < 2 or bsz < 1:
        raise InputError(f"--seq-len must be at least 2 and --batch at least 1 (got {seq}, {bsz})")
    small = bench_model(model, cfg)
    t = cfg.timing
    tasks: list[Task] = []
    if micro_benchmarks:
        for d in cfg.square:
            tasks.append(Task(f"matmul bf16 {d}³", lambda d=d: [micro.matmul(  # type: ignore[misc]
                device, d, d, d, cfg=t)]))  # fmt: skip
        shapes = workload_gemms(small, seq, bsz)
        if cfg.preset_shapes and small is not model:
            shapes += workload_gemms(model, seq, bsz)
        seen: set[tuple[int, int, int]] = set()
        for name, m, k, n in shapes:
            if (m, k, n) in seen:
                continue
            seen.add((m, k, n))
            tasks.append(Task(f"matmul bf16 {name} {m}×{k}×{n}", lambda m=m, k=k, n=n, name=name:  # type: ignore[misc]
                              [micro.matmul(device, m, k, n, name=name, cfg=t)]))  # fmt: skip
        if device.fp8:
            for d in cfg.square[-2:]:
                tasks.append(Task(f"matmul fp8 {d}³", lambda d=d: _one(  # type: ignore[misc]
                    micro.matmul_fp8(device, d, d, d, cfg=t))))  # fmt: skip
        heads = {(small.num_heads, small.num_kv_heads, small.head_dim, seq)}
        if cfg.preset_shapes:
            heads.add((model.num_heads, model.num_kv_heads, model.head_dim, seq))
        for s in cfg.attention_seqs:
            heads.add((model.num_heads, model.num_kv_heads, model.head_dim, s))
        shapes4 = {(bsz, h, kv, s, hd) for h, kv, hd, s in heads}
        shapes4 |= {(max(1, SWEEP_TOKENS // s), h, kv, s, hd)
                    for hd, s, h, kv in cfg.attention_sweep}  # fmt: skip
        for b, h, kv, s, hd in sorted(shapes4):
            label = f"attention {b}×{h}h/{kv}kv×{s}×{hd}"
            tasks.append(Task(label, lambda b=b, h=h, kv=kv, hd=hd, s=s:  # type: ignore[misc]
                              [micro.attention(device, b, h, kv, s, hd, cfg=t)]))  # fmt: skip
        tasks.append(Task(f"copy {cfg.copy_bytes // MiB} MiB",
                          lambda: [micro.copy(device, cfg.copy_bytes, cfg=t)]))  # fmt: skip
        tasks.append(Task(f"read {cfg.copy_bytes // MiB} MiB",
                          lambda: [micro.read(device, cfg.copy_bytes, cfg=t)]))  # fmt: skip
        tokens = seq * bsz
        tasks.append(Task(f"{small.norm} {tokens}×{small.hidden_size}", lambda: [micro.norm(
            device, tokens, small.hidden_size, kind=small.norm, cfg=t)]))  # fmt: skip
        tasks.append(Task(f"swiglu {tokens}×{small.ffn_hidden_size}", lambda: [micro.elementwise(
            device, tokens, small.ffn_hidden_size, cfg=t)]))  # fmt: skip
    if e2e:
        peak = _peak(device, catalog)
        for compiled in (False, True) if compile else (False,):
            label = f"train step {small.name} ({small.num_params() / 1e6:.3g}M){' compiled' if compiled else ''}"  # noqa: E501

            def step(compiled: bool = compiled) -> list[Result]:
                from chipmix.bench.e2e import train_step

                return [train_step(device, small, seq_len=seq, batch=bsz, compile=compiled,
                                   peak_flops=peak, cfg=cfg.e2e_timing)]  # fmt: skip

            tasks.append(Task(label, step))
    return tasks


def plan_collectives(device: Device, suite: Suite) -> list[Task]:
    """The collectives of ``suite`` (run under torchrun, every rank)."""
    from chipmix.bench.collectives import run_collectives

    cfg = suite_config(suite, device)
    return [
        Task(
            f"collectives {len(cfg.collective_bytes)} sizes",
            lambda: list(run_collectives(device, cfg.collective_bytes, cfg=cfg.timing)),
        )
    ]


def _peak(device: Device, catalog: Catalog | None) -> float | None:
    """Dense bf16 peak for MFU: the catalog's for a known chip, the derived one for the CPU."""
    if device.cpu is not None and device.chip == "cpu":
        return device.cpu.derived_peak_flops()["bf16"] or None
    if catalog is not None and device.chip in catalog.chips:
        return catalog.chips[device.chip].peak_flops("bf16")
    return None


@dataclass
class BenchRun:
    """A finished (or interrupted) run: where it is stored and what it measured."""

    run_id: int
    device: Device
    suite: str
    db: str
    results: list[Result] = field(default_factory=list)


def run_tasks(
    device: Device,
    tasks: Sequence[Task],
    store: Store | None,
    *,
    suite: str,
    progress: Progress | None = None,
) -> BenchRun:
    """Run ``tasks`` in order, committing each result to ``store`` as soon as it exists
    (``store`` None: a rank other than 0 under torchrun, which measures but does not
    report)."""
    info = RunInfo(
        device_kind=device.kind,
        device_name=device.name,
        chip=device.chip,
        suite=suite,
        versions=device.versions,
        device=device.info(),
        command=" ".join(sys.argv),
    )
    run_id = store.start_run(info) if store is not None else 0
    out = BenchRun(run_id, device, suite, str(store.path) if store is not None else "")
    for i, task in enumerate(tasks):
        if progress is not None:
            progress(task.label, i, len(tasks))
        for result in task.run():
            if store is not None:
                store.add(run_id, result)
            out.results.append(result)
    if progress is not None:
        progress("done", len(tasks), len(tasks))
    if store is not None:
        store.finish_run(run_id)
    return out
