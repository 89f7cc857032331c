"""Microbenchmarks: matmul (bf16, fp8 where supported), attention, copy and read bandwidth,
and the eager norm and SwiGLU kernels a PyTorch step runs.

Each function times one op with `chipmix.bench.timing.measure` (inputs made up front,
calls back to back, device events where the device has them; see there) and returns a
`Result` whose FLOPs and bytes are counted exactly as `chipmix.perf.ops` counts them, so
the fitter compares like with like, and whose ``method`` says how it was timed:

- matmul ``(m × k) · (k × n)``: ``2·m·k·n`` FLOPs, into a preallocated output;
- attention (scaled-dot-product, causal, forward + backward, grouped-query heads handled
  by the kernel, ``enable_gqa``): the forward's useful FLOPs ``2·b·s·(s/2)·heads·(d_qk +
  d_v)`` (the causal mask halves the work) times 3.5, since the backward costs 2.5
  forwards (FlashAttention-2, Dao 2023, arXiv 2307.08691 §3.1);
- what the hardware streams: copy counts bytes read + written (BabelStream's convention,
  Deakin et al. 2016), read a sum over the buffer (bytes read);
- what an eager step runs: ``rms_norm`` / ``layer_norm`` (input read, output written) and
  SwiGLU as ``silu(gate) * up`` (two kernels). Their ``bytes`` count what a fused kernel
  moves (what `chipmix.perf.ops` charges); ``extra`` holds the kernels and bytes as run,
  from which `chipmix.bench.fit_eager` fits the eager stack's per-kernel cost.

torch is imported inside each function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chipmix.bench.detect import Device, synchronize
from chipmix.bench.store import Result
from chipmix.bench.timing import Event, Timing, input_sets, measure

__all__ = [
    "DTYPES",
    "TimingConfig",
    "attention",
    "attention_flops",
    "copy",
    "device_event",
    "elementwise",
    "matmul",
    "matmul_fp8",
    "norm",
    "read",
]

DTYPES = ("bf16", "fp16", "fp32")


@dataclass(frozen=True, kw_only=True, slots=True)
class TimingConfig:
    """How hard to look: warm-up calls, timed samples, shortest sample."""

    warmup: int = 2
    repeats: int = 5
    min_sample_s: float = 0.0


def _torch_dtype(dtype: str) -> Any:
    import torch

    table = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    if dtype not in table:
        raise ValueError(f"dtype {dtype!r} is not one of {', '.join(table)}")
    return table[dtype]


def _element_size(dtype: str) -> int:
    return {"bf16": 2, "fp16": 2, "fp32": 4}[dtype]


def device_event(device: Device) -> Callable[[], Event] | None:
    """Device events where the device has them (CUDA, ROCm)."""
    if device.kind not in ("cuda", "rocm"):
        return None
    import torch

    return lambda: torch.cuda.Event(enable_timing=True)


def _time(
    device: Device, run: Any, make: Any, cfg: TimingConfig, *, operand_bytes: float = 0.0
) -> Timing:
    buffers, l2 = input_sets(operand_bytes, device.l2_bytes or None)
    return measure(
        run,
        make,
        lambda: synchronize(device),
        warmup=cfg.warmup,
        repeats=cfg.repeats,
        min_sample_s=cfg.min_sample_s,
        event=device_event(device),
        buffers=buffers,
        l2=l2,
    )


def _result(kind: str, name: str, dtype: str, shape: dict[str, Any], t: Timing,
            flops: float = 0.0, nbytes: float = 0.0, **extra: Any) -> Result:  # fmt: skip
    return Result(
        kind=kind,
        name=name,
        dtype=dtype,
        shape=shape,
        median_s=t.median_s,
        min_s=t.min_s,
        repeats=t.repeats,
        flops=flops,
        bytes=nbytes,
        extra={"inner": t.inner, "max_s": t.max_s, "l2": t.l2, **extra},
        method=t.method,
    )


def matmul(
    device: Device, m: int, k: int, n: int, *, dtype: str = "bf16", name: str = "square",
    cfg: TimingConfig = TimingConfig(),
) -> Result:  # fmt: skip
    """``(m × k) · (k × n)`` in ``dtype`` into a preallocated output."""
    import torch

    dt = _torch_dtype(dtype)
    dev = torch.device(device.torch_device)
    out = torch.empty(m, n, device=dev, dtype=dt)

    def make() -> tuple[Any, Any]:
        return torch.randn(m, k, device=dev, dtype=dt), torch.randn(k, n, device=dev, dtype=dt)

    def run(ab: tuple[Any, Any]) -> None:
        torch.matmul(ab[0], ab[1], out=out)

    size = _element_size(dtype)
    t = _time(device, run, make, cfg, operand_bytes=float(size * (m * k + k * n)))
    return _result("matmul", name, dtype, {"m": m, "k": k, "n": n}, t, flops=2.0 * m * k * n)


def matmul_fp8(
    device: Device, m: int, k: int, n: int, *, name: str = "square",
    cfg: TimingConfig = TimingConfig(),
) -> Result | None:  # fmt: skip
    """The same GEMM with fp8 (e4m3) operands on the matrix units (``torch._scaled_mm``,
    bf16 output, unit scales); None where the device or this torch build has no fp8 GEMM."""
    if not device.fp8:
        return None
    import torch

    dev = torch.device(device.torch_device)
    fp8 = torch.float8_e4m3fnuz if device.kind == "rocm" else torch.float8_e4m3fn
    scale = torch.tensor(1.0, device=dev)

    def make() -> tuple[Any, Any]:
        a = torch.randn(m, k, device=dev).to(fp8)
        b = torch.randn(n, k, device=dev).to(fp8).t()  # column-major, as cuBLASLt wants
        return a, b

    def run(ab: tuple[Any, Any]) -> None:
        torch._scaled_mm(ab[0], ab[1], scale_a=scale, scale_b=scale, out_dtype=torch.bfloat16)

    try:
        t = _time(device, run, make, cfg, operand_bytes=float(m * k + k * n))
    except (RuntimeError, TypeError, AttributeError):
        return None
    return _result("matmul", name, "fp8", {"m": m, "k": k, "n": n}, t, flops=2.0 * m * k * n)


def attention_flops(batch: int, heads: int, seq_len: int, head_dim: int) -> float:
    """Useful forward FLOPs of causal attention (QKᵀ and PV), as `chipmix.perf.ops`."""
    return 2.0 * batch * seq_len * (seq_len / 2.0) * heads * (2.0 * head_dim)


def attention(
    device: Device, batch: int, heads: int, kv_heads: int, seq_len: int, head_dim: int, *,
    dtype: str = "bf16", cfg: TimingConfig = TimingConfig(),
) -> Result:  # fmt: skip
    """Causal ``scaled_dot_product_attention`` forward and backward (flash / memory-efficient
    kernels where the backend has them), grouped-query heads passed to the kernel as they
    are (``enable_gqa``; torch < 2.5 expands them with ``repeat_interleave``, recorded in
    ``extra["gqa"]``)."""
    import torch
    from torch.nn import functional

    dt = _torch_dtype(dtype)
    dev = torch.device(device.torch_device)
    groups = heads // kv_heads
    gqa = "kernel"

    def make() -> tuple[Any, Any, Any, Any]:
        q = torch.randn(batch, heads, seq_len, head_dim, device=dev, dtype=dt)
        kv = [
            torch.randn(batch, kv_heads, seq_len, head_dim, device=dev, dtype=dt) for _ in range(2)
        ]
        grad = torch.randn(batch, heads, seq_len, head_dim, device=dev, dtype=dt)
        return q.requires_grad_(), kv[0].requires_grad_(), kv[1].requires_grad_(), grad

    def run(qkvg: tuple[Any, Any, Any, Any]) -> None:
        nonlocal gqa
        q, k, v, grad = qkvg
        if groups > 1 and gqa == "kernel":
            try:
                out = functional.scaled_dot_product_attention(
                    q, k, v, is_causal=True, enable_gqa=True
                )
            except TypeError:
                gqa = "repeat_interleave"
        if groups > 1 and gqa == "repeat_interleave":
            ke, ve = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
            out = functional.scaled_dot_product_attention(q, ke, ve, is_causal=True)
        elif groups == 1:
            out = functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        torch.autograd.grad(out, (q, k, v), grad)

    size = _element_size(dtype) * batch * seq_len * head_dim
    t = _time(device, run, make, cfg, operand_bytes=float(size * (2 * heads + 2 * kv_heads)))
    forward = attention_flops(batch, heads, seq_len, head_dim)
    shape = {
        "batch": batch, "heads": heads, "kv_heads": kv_heads, "seq_len": seq_len,
        "head_dim": head_dim,
    }  # fmt: skip
    return _result(
        "attention", "sdpa_causal_fwd_bwd", dtype, shape, t, flops=3.5 * forward,
        forward_flops=forward, gqa=gqa if groups > 1 else "none",
    )  # fmt: skip


def copy(device: Device, nbytes: int, *, cfg: TimingConfig = TimingConfig()) -> Result:
    """``dst.copy_(src)`` of ``nbytes``: the streaming bandwidth of the hardware (read +
    write). The buffers should outsize every cache (the suites make them ≥ 16 × L2)."""
    import torch

    dev = torch.device(device.torch_device)
    count = max(nbytes // 4, 1)
    src = torch.ones(count, device=dev, dtype=torch.float32)
    dst = torch.empty_like(src)

    def run(_: None) -> None:
        dst.copy_(src)

    t = _time(device, run, lambda: None, cfg)
    size = count * 4
    return _result("copy", "copy", "fp32", {"bytes": size}, t, nbytes=2.0 * size)


def read(device: Device, nbytes: int, *, cfg: TimingConfig = TimingConfig()) -> Result:
    """``src.sum()`` over ``nbytes`` of fp32: the read bandwidth of the hardware."""
    import torch

    dev = torch.device(device.torch_device)
    count = max(nbytes // 4, 1)
    src = torch.ones(count, device=dev, dtype=torch.float32)
    out = torch.empty((), device=dev, dtype=torch.float32)

    def run(_: None) -> None:
        torch.sum(src, dim=0, out=out)

    t = _time(device, run, lambda: None, cfg)
    return _result("read", "sum", "fp32", {"bytes": count * 4}, t, nbytes=float(count * 4))


def norm(
    device: Device, tokens: int, hidden: int, *, kind: str = "rmsnorm", dtype: str = "bf16",
    cfg: TimingConfig = TimingConfig(),
) -> Result:  # fmt: skip
    """RMSNorm or LayerNorm forward over ``tokens × hidden``, as eager PyTorch runs it."""
    import torch
    from torch.nn import functional

    dt = _torch_dtype(dtype)
    dev = torch.device(device.torch_device)
    weight = torch.ones(hidden, device=dev, dtype=dt)

    def run(x: Any) -> None:
        if kind == "layernorm":
            functional.layer_norm(x, (hidden,), weight)
        else:
            functional.rms_norm(x, (hidden,), weight)

    nbytes = 2.0 * tokens * hidden * _element_size(dtype)
    make = lambda: torch.randn(tokens, hidden, device=dev, dtype=dt)  # noqa: E731
    t = _time(device, run, make, cfg, operand_bytes=nbytes / 2.0)
    shape = {"tokens": tokens, "hidden": hidden}
    return _result("norm", kind, dtype, shape, t, nbytes=nbytes, kernels=1, bytes_as_run=nbytes)


def elementwise(
    device: Device, tokens: int, width: int, *, dtype: str = "bf16",
    cfg: TimingConfig = TimingConfig(),
) -> Result:  # fmt: skip
    """The SwiGLU product ``silu(gate) · up`` over ``tokens × width``, as eager PyTorch
    runs it: silu (read, write) then the product (read two, write one)."""
    import torch
    from torch.nn import functional

    dt = _torch_dtype(dtype)
    dev = torch.device(device.torch_device)

    def make() -> tuple[Any, Any]:
        return (
            torch.randn(tokens, width, device=dev, dtype=dt),
            torch.randn(tokens, width, device=dev, dtype=dt),
        )

    def run(ab: tuple[Any, Any]) -> None:
        functional.silu(ab[0]) * ab[1]

    plane = float(tokens * width * _element_size(dtype))
    t = _time(device, run, make, cfg, operand_bytes=2.0 * plane)
    return _result("elementwise", "swiglu", dtype, {"tokens": tokens, "width": width}, t,
                   nbytes=3.0 * plane, kernels=2, bytes_as_run=5.0 * plane)  # fmt: skip
