"""Wall time of a futures analysis: serially and on Ray's local workers (issue 17).

    .venv/bin/python benchmarks/futures_scaleout.py [--futures 200] [--seed 1] [--workers 1 2]

Runs `chipmix.planning.futures.analysis.futures` on examples/frontier-lab-2026.yaml once per
worker count (1 = serial, no Ray), checks that every run gives the same result dict, and
prints the wall time, the recourse solves and the seconds per solve, with the load average
of the machine (it is shared) before and after each run.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from chipmix.catalog.catalog import load_catalog
from chipmix.planning.futures.analysis import futures
from chipmix.planning.portfolio.placements import SearchCache

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "frontier-lab-2026.yaml"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--futures", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--json", type=Path, help="Also write the first run's result here.")
    args = ap.parse_args()
    cat = load_catalog()
    cache = SearchCache.shared(cat)
    futures(EXAMPLE, 1, seed=args.seed, catalog=cat, cache=cache)  # warm the layout cache
    first = None
    for w in args.workers:
        load0 = os.getloadavg()[0]
        t = time.perf_counter()
        r = futures(EXAMPLE, args.futures, seed=args.seed, workers=w, catalog=cat, cache=cache)
        wall = time.perf_counter() - t
        load1 = os.getloadavg()[0]
        same = first is None or json.dumps(r.to_dict()) == first
        first = first or json.dumps(r.to_dict())
        if args.json is not None and w == args.workers[0]:
            args.json.write_text(json.dumps(r.to_dict(), indent=1))
        print(
            f"workers={w} mode={r.mode} futures={r.futures} solves={r.solves} "
            f"wall={wall:.1f}s per-solve={wall / r.solves:.2f}s load={load0:.1f}->{load1:.1f} "
            f"same-result={same} det P={r.stage(r.deterministic).p_all_met:.3f} "
            f"robust={r.robust!r} P={r.stage(r.robust).p_all_met:.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
