"""How fast `chipmix compare` is over every chip in the catalog for one model: Llama 3 70B
on 15T tokens, 8,192-token sequences, 2,048 sequences per step (the README's example).
Goal: under 3 s on one core.

    .venv/bin/python benchmarks/compare_speed.py [--repeat 3]

Times the three sizings — the default (1,024 chips everywhere), ``--deadline-days 30`` and
``--budget-usd 30e6`` — and counts the layout searches each needed. The catalog is loaded
once beforehand (its time is printed apart). Pinned to one core, numpy on one thread.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from importlib.metadata import version  # noqa: E402
from typing import Any  # noqa: E402

import chipmix  # noqa: E402
from chipmix.catalog import load_catalog  # noqa: E402

JOB: dict[str, Any] = {"tokens": 15e12, "seq_len": 8192, "global_batch": 2048}
SIZINGS: dict[str, dict[str, Any]] = {
    "default (1,024 chips)": {},
    "deadline 30 days": {"deadline_days": 30},
    "budget $30M": {"budget_usd": 30e6},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    pinned = "not pinned"
    if hasattr(os, "sched_setaffinity"):
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        pinned = f"pinned to core {core}"

    t0 = time.perf_counter()
    cat = load_catalog()
    setup = time.perf_counter() - t0
    print(f"chipmix {version('chipmix')} compare benchmark — Python {platform.python_version()}, "
          f"{pinned}; catalog load {setup * 1e3:.0f} ms (once)")  # fmt: skip
    print(f"case: llama3-70b, 15T tokens, seq 8192, 2048 sequences/step, {len(cat.chips)} chips")
    for label, sizing in SIZINGS.items():
        walls, cpus = [], []
        for _ in range(args.repeat):
            w, c = time.perf_counter(), time.process_time()
            result = chipmix.compare("llama3-70b", catalog=cat, **JOB, **sizing)
            walls.append(time.perf_counter() - w)
            cpus.append(time.process_time() - c)
        searches = sum(r.counts_searched for r in result.rows)
        best = min(walls)
        print(f"{label:<22} {best:6.2f} s wall (first {walls[0]:.2f}, {min(cpus):.2f} s CPU), "
              f"{searches:>3} searches, {len(result.feasible)}/{len(result.rows)} rows with a "
              f"plan — goal 3 s {'met' if best < 3 else 'NOT met'}")  # fmt: skip
        cheapest, fastest = result.cheapest, result.fastest
        if cheapest is not None and fastest is not None:
            print(f"{'':<22} cheapest {cheapest.system.chip.id} ({cheapest.chips:,} chips), "
                  f"fastest {fastest.system.chip.id} ({fastest.chips:,} chips)")  # fmt: skip


if __name__ == "__main__":
    main()
