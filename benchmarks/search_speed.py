"""How fast the layout search is: Llama 3.1 405B, 8,192-token sequences, 2,048 sequences
(16M tokens) per step, on 16,384 H100s — the issue-3 case. Goal: the full search in under
one second on one core.

    .venv/bin/python benchmarks/search_speed.py [--repeat 20]

Prints the size of the space (layouts generated, passing the rules, fitting in memory),
the wall and CPU time of the whole search (generate, check, evaluate, rank; best of
``--repeat`` runs and the first, cold run), and layouts per second. The process is pinned
to one core and numpy to one thread.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from importlib.metadata import version  # noqa: E402

import numpy as np  # noqa: E402

import chipmix  # noqa: E402
from chipmix.catalog import load_catalog  # noqa: E402
from chipmix.layouts.search import _first_reason, run_search  # noqa: E402
from chipmix.layouts.space import SearchSpace  # noqa: E402
from chipmix.perf.step import evaluate  # noqa: E402
from chipmix.perf.validity import violations  # noqa: E402

MODEL, SYSTEM, CHIPS = "llama3.1-405b", "h100-sxm", 16384
JOB = {"seq_len": 8192, "global_batch": 2048}


def pin_to_one_core() -> str:
    if hasattr(os, "sched_setaffinity"):
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        return f"pinned to core {core}"
    return "not pinned (no sched_setaffinity)"


def timed(fn: object, repeat: int) -> tuple[float, float, float, float]:
    """(first wall, best wall, median wall, best CPU) seconds of ``repeat`` calls."""
    walls, cpus = [], []
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        fn()  # type: ignore[operator]
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return walls[0], min(walls), statistics.median(walls), min(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    pinned = pin_to_one_core()

    t0 = time.perf_counter()
    cat = load_catalog()
    job = chipmix.make_job(MODEL, **JOB)
    system = cat.system(SYSTEM)
    setup = time.perf_counter() - t0

    # The space, stage by stage (for the counts; timed as a whole below).
    batch = SearchSpace(job, system, CHIPS, {}).batch()
    masks = violations(job, system, CHIPS, batch)
    valid = batch.take(np.flatnonzero(_first_reason(masks, len(batch)) == len(masks)))
    outcome = run_search(job, system, CHIPS, cat.calibration, top=1)

    def search() -> None:
        run_search(job, system, CHIPS, cat.calibration, top=1)

    def api() -> None:
        chipmix.search(MODEL, SYSTEM, CHIPS, top=5, catalog=cat, **JOB)

    def evaluate_all() -> None:
        evaluate(job, system, cat.calibration, valid)

    first, best, median, cpu = timed(search, args.repeat)
    api_first, api_best, _, _ = timed(api, args.repeat)
    _, eval_best, _, _ = timed(evaluate_all, args.repeat)

    best_estimate = chipmix.search(MODEL, SYSTEM, CHIPS, top=1, catalog=cat, **JOB).best
    cpu_name = platform.processor() or platform.machine()
    print(f"chipmix {version('chipmix')} search benchmark — Python {platform.python_version()}, "
          f"numpy {np.__version__}, {cpu_name}, {pinned}")  # fmt: skip
    print(f"case: {MODEL} on {CHIPS:,} × {SYSTEM} ({system.id}), seq {JOB['seq_len']}, "
          f"{JOB['global_batch']} sequences/step")  # fmt: skip
    print(f"layouts generated            {len(batch):>10,}")
    print(f"  pass the rules             {len(valid):>10,}")
    print(f"  fit in memory (feasible)   {outcome.feasible:>10,}")
    print(f"catalog + job setup (once)   {setup * 1e3:>10.1f} ms")
    print(f"full search, first run       {first * 1e3:>10.1f} ms wall")
    print(f"full search, best / median   {best * 1e3:>10.1f} / {median * 1e3:.1f} ms wall "
          f"({cpu * 1e3:.1f} ms CPU)")  # fmt: skip
    print(f"chipmix.search (top 5)       {api_best * 1e3:>10.1f} ms wall "
          f"(first {api_first * 1e3:.1f})")  # fmt: skip
    print(f"layouts per second           {len(batch) / best:>10,.0f} generated and checked")
    print(f"step model alone             {len(valid) / eval_best:>10,.0f} layouts/s "
          f"({len(valid):,} in {eval_best * 1e3:.1f} ms)")  # fmt: skip
    e = best_estimate
    print(f"best layout                  {e.layout}")
    print(f"  predicts                   {e.tokens_per_s / 1e6:.2f}M tokens/s, "
          f"{e.step_time_s:.2f} s/step, MFU {e.mfu:.1%}, "
          f"{e.memory_gib_per_chip:.1f} GiB/chip")  # fmt: skip
    print(f"goal: under 1 s — {'met' if best < 1.0 else 'NOT met'} ({1.0 / best:.0f}× margin)")


if __name__ == "__main__":
    main()
