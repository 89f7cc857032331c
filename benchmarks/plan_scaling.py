"""How the portfolio MILP scales: 50 jobs × 200 offers, then more jobs (issue 5).

A synthetic year: 200 offers (every current catalog offer with an on-demand price, copied
into regions with prices within ±15 % and availability caps of 512 to 8,192 chips, plus a
committed-1y tier at 65 % of on-demand on a third of them), and jobs drawn from five model
shapes with random sizes, release dates and windows of 6 to 20 weeks, three chip counts
each; a 50 % NVIDIA spend cap, at least three vendors and a power cap. Goal: 50 jobs × 200
offers solved to optimality (or a stated gap ≤ 1 %) in under 10 s.

The layout searches run once per (shape, system, chips) and are cached, so the first size
pays for them ("placements" below) and the rest reuse them; the MILP's time is HiGHS's
(model building included). Sensitivity, baselines and the Pareto front are off: they are
re-solves of the same model.

    .venv/bin/python benchmarks/plan_scaling.py [--jobs 50,100,200,500] [--offers 200]
        [--gap 1e-4] [--time-limit 60] [--seed 0]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import time
from typing import Any

from chipmix.catalog import load_catalog
from chipmix.planning.portfolio.objective import solve_objective
from chipmix.planning.portfolio.placements import SearchCache, candidates
from chipmix.planning.portfolio.problem import Problem
from chipmix.planning.portfolio.scenario_file import parse_scenario

SHAPES = [
    {"model": "llama3-8b", "seq_len": 8192, "global_batch": 512, "tokens": (0.5e12, 3e12)},
    {"model": "mistral-7b", "seq_len": 4096, "global_batch": 1024, "tokens": (0.5e12, 3e12)},
    {"model": "llama2-13b", "seq_len": 4096, "global_batch": 1024, "tokens": (0.3e12, 2e12)},
    {"model": "llama3-70b", "seq_len": 8192, "global_batch": 1024, "tokens": (0.2e12, 1e12)},
    {"model": "mixtral-8x7b", "seq_len": 4096, "global_batch": 1024, "tokens": (0.3e12, 2e12)},
]
COUNTS = [256, 512, 1024]
START = dt.date(2026, 1, 1)


def offers(count: int, rng: random.Random) -> list[dict[str, Any]]:
    cat = load_catalog()
    base = sorted(
        (o for o in cat.offers.values() if o.current and "on-demand" in o.usd_per_unit_hour),
        key=lambda o: o.id,
    )
    out = []
    for i in range(count):
        o = base[i % len(base)]
        price = o.usd_per_unit_hour["on-demand"] * rng.uniform(0.85, 1.15)
        prices = {"on-demand": round(price, 4)}
        if i % 3 == 0:
            prices["committed-1y"] = round(price * 0.65, 4)
        out.append(
            {
                "id": f"{o.id}-r{i // len(base)}",
                "system": o.system,
                "cloud": o.cloud,
                "region": f"{o.region}-{i // len(base)}",
                "chips_per_unit": o.chips_per_unit,
                "usd_per_unit_hour": prices,
                "source": "benchmark: synthetic copy of the catalog price",
                "max_chips": rng.choice([512, 1024, 2048, 4096, 8192]),
            }
        )
    return out


def jobs(count: int, rng: random.Random) -> list[dict[str, Any]]:
    out = []
    for i in range(count):
        shape = dict(rng.choice(SHAPES))
        low, high = shape.pop("tokens")
        release = START + dt.timedelta(days=rng.randrange(0, 230))
        window = dt.timedelta(weeks=rng.randrange(6, 21))
        out.append(
            {
                "name": f"job-{i:03d}",
                **shape,
                "tokens": float(f"{rng.uniform(low, high):.3g}"),
                "start": release,
                "deadline": min(release + window, dt.date(2026, 12, 31)),
                "chip_counts": COUNTS,
            }
        )
    return out


def scenario(
    num_jobs: int,
    num_offers: int,
    seed: int,
    gap: float,
    limit: float,
    presolve: str,
    threads: int,
) -> Any:
    rng = random.Random(seed)
    return {
        "name": f"bench-{num_jobs}x{num_offers}",
        "start": START,
        "end": dt.date(2026, 12, 31),
        "offers": offers(num_offers, rng),
        "jobs": jobs(num_jobs, rng),
        "constraints": {"vendor_caps": {"nvidia": 0.5}, "min_vendors": 3, "power_cap_mw": 60},
        "solver": {
            "gap": gap,
            "time_limit_s": limit,
            "presolve": presolve,
            "threads": threads,
            "sensitivity": False,
            "single_vendor_baseline": False,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", default="50,100,200,500")
    parser.add_argument("--offers", type=int, default=200)
    parser.add_argument("--gap", type=float, default=1e-4)
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--presolve", choices=("light", "full", "off"), default="light")
    parser.add_argument("--threads", type=int, default=1, help="HiGHS threads (0: its pool)")
    args = parser.parse_args()
    cat = load_catalog()
    cache = SearchCache.shared(cat)
    print(
        f"{'jobs':>5} {'offers':>6} {'placements':>10} {'columns':>9} {'rows':>7} "
        f"{'nonzeros':>9} {'searches':>8} {'placem. s':>9} {'MILP s':>7} {'status':>9} "
        f"{'gap':>7} {'cost $M':>9}"
    )
    for n in (int(x) for x in args.jobs.split(",")):
        spec = scenario(
            n, args.offers, args.seed, args.gap, args.time_limit, args.presolve, args.threads
        )
        sc = parse_scenario(spec, catalog=cat)
        started = time.perf_counter()
        cands = candidates(sc, cache)
        placed = time.perf_counter() - started
        pb = Problem.of(sc, cands)
        sol = solve_objective(pb, "min-cost")
        cost = f"{sol.objective / 1e6:,.1f}" if sol.ok else "—"
        print(
            f"{n:>5} {args.offers:>6} {pb.num_placements:>10,} {sol.num_cols:>9,} "
            f"{sol.num_rows:>7,} {sol.nonzeros:>9,} {cands.searches:>8,} {placed:>9.1f} "
            f"{sol.seconds:>7.2f} {sol.status:>9} {sol.gap:>7.2%} {cost:>9}"
        )


if __name__ == "__main__":
    main()
