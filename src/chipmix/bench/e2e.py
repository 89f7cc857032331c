"""End-to-end: one training step of a real transformer, timed like the microbenchmarks.

The model is the requested architecture (a preset or a model file) built in PyTorch by
`chipmix.bench.nn`, scaled down to fit the device when it does not (`scale_model`): depth
first, so the per-layer GEMM shapes stay those of the real model, then width (heads, hidden
and MLP halved together, head size kept), then the vocabulary. A step is forward,
cross-entropy, backward and AdamW, under bf16 autocast with fp32 master weights (the mixed
precision `chipmix.perf.memory` assumes), on random tokens made before timing (two sets,
alternated), optionally through ``torch.compile``; timed as the microbenchmarks are
(`chipmix.bench.timing`: steps back to back, device events where there are). Tokens/s
and MFU follow DESIGN.md (PaLM appendix B model FLOPs).
"""

from __future__ import annotations

from typing import Any

from chipmix.bench.detect import Device, synchronize
from chipmix.bench.micro import TimingConfig, device_event
from chipmix.bench.store import Result
from chipmix.bench.timing import measure
from chipmix.perf.step import model_flops_per_token
from chipmix.workload.job import Job
from chipmix.workload.model import ModelSpec

__all__ = ["MIN_LAYERS", "scale_model", "train_step"]

MIN_LAYERS = 2
"""Depth below which `scale_model` narrows the model instead."""


def _halve_width(spec: ModelSpec) -> ModelSpec | None:
    """Half the heads, hidden and MLP sizes (same head size, same GQA ratio), or None."""
    if spec.num_heads < 2:
        return None
    heads = spec.num_heads // 2
    kv = max(1, spec.num_kv_heads // 2)
    while heads % kv:
        kv -= 1
    hidden = max(spec.hidden_size // 2, heads * spec.head_dim // 2, 8)
    update: dict[str, Any] = {
        "num_heads": heads,
        "num_kv_heads": kv,
        "hidden_size": hidden,
        "ffn_hidden_size": max(spec.ffn_hidden_size // 2, 8),
    }
    if spec.moe is not None:
        moe = spec.moe.model_copy(
            update={"expert_ffn_hidden_size": max(spec.moe.expert_ffn_hidden_size // 2, 8)}
        )
        update["moe"] = moe
    return spec.model_copy(update=update)


def scale_model(spec: ModelSpec, *, max_params: float, max_vocab: int | None = None) -> ModelSpec:
    """``spec`` itself when it has at most ``max_params`` weights (and ``max_vocab``
    tokens), else a smaller model of the same architecture named ``<name>-bench``."""
    scaled = spec
    if max_vocab is not None and scaled.vocab_size > max_vocab:
        scaled = scaled.model_copy(update={"vocab_size": max_vocab})
    while scaled.num_params() > max_params:
        if scaled.num_layers > MIN_LAYERS:
            layers = max(MIN_LAYERS, scaled.num_layers // 2)
            update: dict[str, Any] = {"num_layers": layers}
            if scaled.moe is not None and scaled.moe.num_dense_layers >= layers:
                update["moe"] = scaled.moe.model_copy(update={"num_dense_layers": 0})
            scaled = scaled.model_copy(update=update)
            continue
        narrower = _halve_width(scaled)
        if narrower is not None:
            scaled = narrower
            continue
        if scaled.vocab_size > 256:
            scaled = scaled.model_copy(update={"vocab_size": scaled.vocab_size // 2})
            continue
        break
    if scaled is spec:
        return spec
    # Re-validate (model_copy skips validators) under the new name.
    data = scaled.model_dump()
    data.update(name=f"{spec.name}-bench", params_published=None, active_params_published=None)
    data["display_name"] = f"{spec.display_name or spec.name} (scaled for the bench)"
    return ModelSpec.model_validate(data)


def train_step(
    device: Device,
    spec: ModelSpec,
    *,
    seq_len: int,
    batch: int,
    compile: bool = False,
    peak_flops: float | None = None,
    cfg: TimingConfig = TimingConfig(),
) -> Result:
    """Time one optimizer step of ``spec`` on ``batch`` sequences of ``seq_len`` tokens."""
    import torch

    from chipmix.bench.nn import TransformerLM

    dev = torch.device(device.torch_device)
    torch.manual_seed(0)
    model = TransformerLM(spec).to(dev)
    fused = device.kind in ("cuda", "rocm")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=fused)
    forward: Any = torch.compile(model) if compile else model
    autocast_type = "cuda" if device.kind in ("cuda", "rocm") else device.kind
    losses: list[Any] = []

    def make() -> tuple[Any, Any]:
        tokens = torch.randint(0, spec.vocab_size, (batch, seq_len + 1), device=dev)
        return tokens[:, :-1], tokens[:, 1:]

    def run(xy: tuple[Any, Any]) -> None:
        with torch.autocast(device_type=autocast_type, dtype=torch.bfloat16):
            loss = forward(*xy)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.detach())

    t = measure(
        run,
        make,
        lambda: synchronize(device),
        warmup=cfg.warmup + (2 if compile else 0),
        repeats=cfg.repeats,
        event=device_event(device),
        buffers=2,
        l2="two token sets alternated; weights and activations outsize the L2",
    )
    tokens = batch * seq_len
    job = Job(model=spec, seq_len=seq_len, global_batch=batch)
    flops = model_flops_per_token(job) * tokens
    extra: dict[str, Any] = {
        "tokens_per_s": tokens / t.median_s,
        "loss": float(losses[-1].float().item()) if losses else None,
        "params": spec.num_params(),
        "max_s": t.max_s,
        "l2": t.l2,
    }
    if peak_flops:
        extra["mfu"] = flops / t.median_s / peak_flops
    shape = {
        "model": spec.model_dump(mode="json"),
        "seq_len": seq_len,
        "batch": batch,
        "compile": compile,
    }
    return Result(
        kind="e2e",
        name="train_step_compiled" if compile else "train_step",
        dtype="bf16",
        shape=shape,
        median_s=t.median_s,
        min_s=t.min_s,
        repeats=t.repeats,
        flops=flops,
        extra=extra,
        method=t.method,
    )
