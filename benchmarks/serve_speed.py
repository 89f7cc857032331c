"""The serving layout search (issue 14): Llama 3 70B on 64 H100s, 2,000 input and 300
output tokens, p99 TTFT 2 s and TPOT 100 ms, end to end through `chipmix.serve_search`
(job, calibration, every replica layout × batch, targets, ranking, the top estimates with
their curves) and the vectorized model alone. Goal: under 1 s on one core.

    .venv/bin/python benchmarks/serve_speed.py [--repeat 20]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import chipmix  # noqa: E402
from chipmix.catalog import load_catalog  # noqa: E402
from chipmix.serve.calibration import load_serve_calibration  # noqa: E402
from chipmix.serve.forward import serve_setup  # noqa: E402
from chipmix.serve.public import serve_job  # noqa: E402
from chipmix.serve.search import Targets, run_serve_search  # noqa: E402

MODEL, SYSTEM, CHIPS = "llama3-70b", "h100-sxm", 64
JOB = {"input_len": 2000, "output_len": 300}
TARGETS = {"ttft_p99_ms": 2000.0, "tpot_p99_ms": 100.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    cat = load_catalog()
    first = time.perf_counter()
    result = chipmix.serve_search(MODEL, SYSTEM, CHIPS, catalog=cat, **TARGETS, **JOB)
    first = time.perf_counter() - first
    walls, cpus = [], []
    for _ in range(args.repeat):
        w, c = time.perf_counter(), time.process_time()
        chipmix.serve_search(MODEL, SYSTEM, CHIPS, catalog=cat, **TARGETS, **JOB)
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    s = serve_setup(serve_job(MODEL, **JOB), cat.system(SYSTEM), cat.calibration,
                    load_serve_calibration())  # fmt: skip
    targets = Targets(TARGETS["ttft_p99_ms"] / 1e3, TARGETS["tpot_p99_ms"] / 1e3)
    model = []
    for _ in range(args.repeat):
        w = time.perf_counter()
        outcome = run_serve_search(s, CHIPS, targets)
        model.append(time.perf_counter() - w)
    best = result.best
    print(
        f"candidates (replica layout × batch): {result.tried:,}, meeting targets "
        f"{result.feasible:,}, rejected {result.rejected}"
    )
    print(
        f"serve_search end to end: best {min(walls) * 1e3:.1f} ms wall, "
        f"{min(cpus) * 1e3:.1f} ms CPU, median {statistics.median(walls) * 1e3:.1f} ms "
        f"(first run {first * 1e3:.0f} ms)"
    )
    print(
        f"search alone (run_serve_search): best {min(model) * 1e3:.1f} ms, "
        f"{outcome.tried / min(model) / 1e3:,.0f} k candidates/s"
    )
    print(
        f"best: {best.layout}: {best.tokens_per_s_per_chip:,.0f} output tokens/s per chip, "
        f"TTFT p99 {best.ttft_p99_ms:,.0f} ms, TPOT p99 {best.tpot_p99_ms:,.1f} ms"
    )


if __name__ == "__main__":
    main()
