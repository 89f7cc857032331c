"""Start-up of the command line, and the example plan (issue 16).

Two figures, each the best of ``--repeat`` fresh processes (the minimum is the figure least
disturbed by other load on the machine):

- ``chipmix estimate`` for one small job, as a ratio to a bare
  ``python -c "import numpy, pydantic, yaml, typer"`` (the libraries every command needs).
  Goal: at most 1.5x. Both are measured in the same loop, interleaved, so a change in the
  machine's load moves both.
- ``chipmix plan examples/frontier-lab-2026.yaml`` end to end (scenario, catalog, layout
  searches, the MILP, its sensitivity and baselines), with nothing cached
  (``CHIPMIX_CACHE_DIR=""``: the catalog parsed, every search run) and as it runs again
  (the catalog and the searches read from the cache folder). Goal: at most 2 s.

CPU time (user + system, of the child) is printed beside wall time: on a shared machine it
is the steadier of the two. The medians are printed beside the bests. The children write
Python's bytecode (``PYTHONDONTWRITEBYTECODE`` is dropped from their environment), as an
installed chipmix has it: without it every run compiles chipmix's modules from source.

``--instructions`` counts instead the machine instructions each of the two start-ups runs
(Valgrind's cachegrind, when installed; about a minute), the median of three runs each: a
figure that other load on the machine does not move, for comparing two versions on a busy
machine. It skips the plan. The children run with ``OPENBLAS_NUM_THREADS=1``: numpy's
OpenBLAS otherwise starts a thread per core at import, whose spinning Valgrind counts by
however the host schedules it (±5 % run to run instead of ±0.1 %).

``--floor`` adds a third start-up, ``benchmarks/floor_app.py``: a typer app with
``estimate``'s options and two small pydantic models, after the same bare imports and
without chipmix (typer builds a pydantic ``TypeAdapter`` per option): the part of the ratio
that any typer + pydantic command line pays, against which chipmix's own share is measured.

    .venv/bin/python benchmarks/startup.py [--repeat 7] [--instructions] [--floor]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = [sys.executable, "-c", "import numpy, pydantic, yaml, typer"]
ESTIMATE = [sys.executable, "-m", "chipmix.cli", "estimate", "-m", "llama3-8b", "-s",
            "h100-sxm", "-n", "64", "--tokens", "1e12", "--json"]  # fmt: skip
PLAN = [sys.executable, "-m", "chipmix.cli", "plan", "examples/frontier-lab-2026.yaml", "--json"]
FLOOR = [sys.executable, "benchmarks/floor_app.py", *ESTIMATE[4:]]


ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
COUNTING_ENV = {**ENV, "OPENBLAS_NUM_THREADS": "1"}
RUNS = 3
"""Cachegrind runs of each start-up (the median is reported)."""


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, env=env or ENV)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def instructions(argv: list[str]) -> int:
    """Machine instructions one run executes, counted by Valgrind's cachegrind."""
    done = subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
         *argv],
        cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env=COUNTING_ENV,
    )  # fmt: skip
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if found is None:
        raise SystemExit("cachegrind printed no instruction count")
    return int(found.group(1).replace(",", ""))


def count_instructions(floor: bool) -> None:
    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs Valgrind (apt-get install valgrind)")
    programs = {"baseline": BASELINE, "estimate": ESTIMATE} | ({"floor": FLOOR} if floor else {})
    for argv in programs.values():
        timed(argv)  # bytecode written, catalog cached
    counts = {name: [instructions(argv) for _ in range(RUNS)] for name, argv in programs.items()}
    median = {name: statistics.median(runs) for name, runs in counts.items()}
    for name, runs in counts.items():
        spread = ", ".join(f"{n / 1e6:.0f}" for n in runs)
        print(f"{name:9s} {median[name] / 1e6:8.0f} M instructions (median of {spread})")
    base = median["baseline"]
    print(f"estimate / baseline: {median['estimate'] / base:.2f}x instructions (goal <= 1.5x)")
    if floor:
        print(f"floor / baseline: {median['floor'] / base:.2f}x instructions")
        print(
            f"estimate - floor: {(median['estimate'] - median['floor']) / base:+.2f}x of baseline"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions (Valgrind); no plan"
    )
    parser.add_argument(
        "--floor", action="store_true", help="also the floor: typer + pydantic without chipmix"
    )
    args = parser.parse_args()
    if args.instructions:
        count_instructions(args.floor)
        return
    timed(ESTIMATE)  # warm the file cache and the bytecode
    runs: dict[str, list[tuple[float, float]]] = {"baseline": [], "estimate": []}
    if args.floor:
        timed(FLOOR)
        runs["floor"] = []
    for _ in range(args.repeat):
        runs["baseline"].append(timed(BASELINE))
        runs["estimate"].append(timed(ESTIMATE))
        if args.floor:
            runs["floor"].append(timed(FLOOR))
    runs["plan"] = []
    cold = [timed(PLAN, {**ENV, "CHIPMIX_CACHE_DIR": ""}) for _ in range(2)]  # no cache
    for _ in range(max(3, args.repeat // 2)):
        runs["plan"].append(timed(PLAN))
    best = {k: (min(w for w, _ in v), min(c for _, c in v)) for k, v in runs.items()}
    median = {
        k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
        for k, v in runs.items()
    }
    for name in runs:
        (wall, cpu), (mwall, mcpu) = best[name], median[name]
        print(
            f"{name:9s} best wall {wall:6.3f} s   best CPU {cpu:6.3f} s   "
            f"median wall {mwall:6.3f} s   median CPU {mcpu:6.3f} s"
        )
    for label, figures in (("best", best), ("median", median)):
        wall_ratio = figures["estimate"][0] / figures["baseline"][0]
        cpu_ratio = figures["estimate"][1] / figures["baseline"][1]
        print(
            f"estimate / baseline ({label}): {wall_ratio:.2f}x wall, {cpu_ratio:.2f}x CPU "
            "(goal <= 1.5x)"
        )
        if args.floor:
            print(
                f"floor / baseline ({label}): {figures['floor'][0] / figures['baseline'][0]:.2f}x "
                f"wall, {figures['floor'][1] / figures['baseline'][1]:.2f}x CPU"
            )
    wall, cpu = min(w for w, _ in cold), min(c for _, c in cold)
    print(f"plan, nothing cached (best of 2): {wall:.2f} s wall, {cpu:.2f} s CPU")
    print(
        f"plan, searches kept by an earlier run: {best['plan'][0]:.2f} s wall, "
        f"{best['plan'][1]:.2f} s CPU (goal <= 2 s)"
    )


if __name__ == "__main__":
    main()
