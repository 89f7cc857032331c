"""chipmix side by side with Calculon (calculon-ai/calculon) on the issue-3 case: Llama 3.1
405B, 8,192-token sequences, 2,048 sequences per step, 16,384 H100s. See README.md here for
the whole procedure; this script does chipmix's half and reads Calculon's answer.

    .venv/bin/python benchmarks/calculon_case.py --write-calculon-model MODEL.json
    .venv/bin/python benchmarks/calculon_case.py [--calculon-output OUT.json]
        [--calculon-wall S] [--calculon-cpu S]

Calculon's application schema has no grouped-query attention (its layout search runs
multi-head attention) and a two-matrix (GELU) MLP. The Calculon model written here keeps
Llama's hidden size, heads, head size, layers and sequence, and gives the MLP the width that
matches SwiGLU's weights (3 × 53,248 = 2 × 79,872 per hidden unit); with full-size K and V
projections it has ~469B parameters instead of 405B. chipmix is timed on the real model and
on the same Calculon-shaped one (MHA, GELU MLP of 79,872), so both tools answer the same
question once.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import chipmix  # noqa: E402
from chipmix.catalog import load_catalog  # noqa: E402

CHIPS, SYSTEM = 16384, "h100-sxm"
JOB = {"seq_len": 8192, "global_batch": 2048}


def calculon_shaped() -> chipmix.ModelSpec:
    """Llama 3.1 405B as Calculon's schema can say it: MHA, a GELU MLP of equal weights."""
    real = chipmix.load_model("llama3.1-405b")
    return real.model_copy(
        update={
            "name": "llama3.1-405b-calculon-shape",
            "display_name": "Llama 3.1 405B, Calculon-shaped (MHA, GELU MLP)",
            "num_kv_heads": real.num_heads,
            "mlp": "gelu",
            "ffn_hidden_size": real.ffn_hidden_size * 3 // 2,
            "params_published": None,
        }
    )


def calculon_application(model: chipmix.ModelSpec) -> dict[str, int]:
    """Calculon's application JSON (its ``models/*.json`` schema)."""
    return {
        "hidden": model.hidden_size,
        "feedforward": model.ffn_hidden_size,
        "seq_size": JOB["seq_len"],
        "attn_heads": model.num_heads,
        "attn_size": model.head_dim,
        "num_blocks": model.num_layers,
    }


def time_search(
    model: str | chipmix.ModelSpec, repeat: int
) -> tuple[float, float, chipmix.SearchResult]:
    """Best wall and best CPU seconds of ``repeat`` searches, and the result."""
    cat = load_catalog()
    wall, cpu, result = float("inf"), float("inf"), None
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        result = chipmix.search(model, SYSTEM, CHIPS, top=1, catalog=cat, **JOB)
        wall = min(wall, time.perf_counter() - w)
        cpu = min(cpu, time.process_time() - c)
    assert result is not None
    return wall, cpu, result


def describe(label: str, wall: float, cpu: float, result: chipmix.SearchResult) -> None:
    e = result.best
    print(f"chipmix, {label}: {wall * 1e3:.0f} ms wall, {cpu * 1e3:.0f} ms CPU for "
          f"{result.tried:,} layouts ({result.feasible:,} feasible)")  # fmt: skip
    print(f"  best {e.layout}: {e.tokens_per_s / 1e6:.2f}M tokens/s, {e.step_time_s:.2f} s/step, "
          f"MFU {e.mfu:.1%}, {e.memory_gib_per_chip:.1f} GiB/chip")  # fmt: skip


def describe_calculon(
    path: Path, wall: float | None, cpu: float | None, chipmix_wall: float, chipmix_cpu: float
) -> None:
    out = json.loads(path.read_text())
    best = out["0"]
    exe, stats = best["execution"], best["stats"]
    rate = float(stats["sample_rate"])
    layout = (
        f"tp{exe['tensor_par']} pp{exe['pipeline_par']} dp{exe['data_par']} "
        f"vpp{exe['pipeline_interleaving']} mb{exe['microbatch_size']} "
        f"recompute-{exe['activation_recompute']} optimizer-sharding-{exe['optimizer_sharding']} "
        f"tp-comm-{exe['tensor_par_comm_type']} offload(weights {exe['weight_offload']}, "
        f"activations {exe['activations_offload']}, optimizer {exe['optimizer_offload']})"
    )
    print(f"Calculon, Calculon-shaped model: best {layout}")
    print(f"  {rate * JOB['seq_len'] / 1e6:.2f}M tokens/s ({rate:.1f} sequences/s), "
          f"{exe['batch_size'] / rate:.2f} s/step")  # fmt: skip
    if wall is not None:
        print(f"  search {wall:,.0f} s wall: {wall / chipmix_wall:,.0f}× chipmix's wall time")
    if cpu is not None:
        print(f"  search {cpu:,.0f} s CPU: {cpu / chipmix_cpu:,.0f}× chipmix's CPU time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write-calculon-model", type=Path, metavar="PATH")
    parser.add_argument("--calculon-output", type=Path, metavar="PATH")
    parser.add_argument("--calculon-wall", type=float, metavar="S", help="its wall seconds")
    parser.add_argument("--calculon-cpu", type=float, metavar="S", help="its user+sys seconds")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    shaped = calculon_shaped()
    if args.write_calculon_model is not None:
        args.write_calculon_model.write_text(json.dumps(calculon_application(shaped), indent=2))
        print(f"wrote {args.write_calculon_model}")
        return
    print(f"case: {CHIPS:,} × {SYSTEM}, seq {JOB['seq_len']}, {JOB['global_batch']} sequences/step;"
          f" Calculon-shaped model: {shaped.num_params() / 1e9:.0f}B parameters")  # fmt: skip
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    real_wall, real_cpu, real = time_search("llama3.1-405b", args.repeat)
    wall, cpu, same = time_search(shaped, args.repeat)
    describe("Llama 3.1 405B as published (GQA, SwiGLU)", real_wall, real_cpu, real)
    describe("Calculon-shaped model", wall, cpu, same)
    if args.calculon_output is not None:
        describe_calculon(args.calculon_output, args.calculon_wall, args.calculon_cpu, wall, cpu)


if __name__ == "__main__":
    main()
