"""Start-up of the command line, and the example plan (issue 16).

Two figures, each the best of ``--repeat`` fresh processes (the minimum is the figure least
disturbed by other load on the machine):

- ``chipmix estimate`` for one small job, as a ratio to a bare
  ``python -c "import numpy, pydantic, yaml, typer"`` (the libraries every command needs).
  Goal: at most 1.5x. Both are measured in the same loop, interleaved, so a change in the
  machine's load moves both.
- ``chipmix plan examples/frontier-lab-2026.yaml`` end to end (scenario, catalog, layout
  searches, the MILP, its sensitivity and baselines). Goal: at most 2 s.

CPU time (user + system, of the child) is printed beside wall time: on a shared machine it
is the steadier of the two.

    .venv/bin/python benchmarks/startup.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = [sys.executable, "-c", "import numpy, pydantic, yaml, typer"]
ESTIMATE = [sys.executable, "-m", "chipmix.cli", "estimate", "-m", "llama3-8b", "-s",
            "h100-sxm", "-n", "64", "--tokens", "1e12", "--json"]  # fmt: skip
PLAN = [sys.executable, "-m", "chipmix.cli", "plan", "examples/frontier-lab-2026.yaml", "--json"]


def timed(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, env=os.environ)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    timed(ESTIMATE)  # warm the file cache and the bytecode
    runs: dict[str, list[tuple[float, float]]] = {"baseline": [], "estimate": [], "plan": []}
    for _ in range(args.repeat):
        runs["baseline"].append(timed(BASELINE))
        runs["estimate"].append(timed(ESTIMATE))
    for _ in range(max(3, args.repeat // 2)):
        runs["plan"].append(timed(PLAN))
    best = {k: (min(w for w, _ in v), min(c for _, c in v)) for k, v in runs.items()}
    for name, (wall, cpu) in best.items():
        print(f"{name:9s} best wall {wall:6.3f} s   best CPU {cpu:6.3f} s")
    wall_ratio = best["estimate"][0] / best["baseline"][0]
    cpu_ratio = best["estimate"][1] / best["baseline"][1]
    print(f"estimate / baseline: {wall_ratio:.2f}x wall, {cpu_ratio:.2f}x CPU (goal <= 1.5x)")
    print(f"plan: {best['plan'][0]:.2f} s wall, {best['plan'][1]:.2f} s CPU (goal <= 2 s)")


if __name__ == "__main__":
    main()
