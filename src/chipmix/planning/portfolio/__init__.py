"""The portfolio optimizer: many jobs over a horizon on a mix of chip offers.

In the order a plan is made: `scenario_file` reads the scenario file (its format:
`schema`; the line of each key: `lines`), `resolve` checks it against the catalog and
returns a `scenario.Scenario`; `placements` lists each job's candidate runs; `problem`
holds them as arrays, `formulation` writes the MILP, `solver` solves it with HiGHS;
`objective` solves for the scenario's objective; `occupancy` moves runs and repairs
plans; `planner` is the entry point (``chipmix.plan``), with `explain` (why no plan
exists), `sensitivity` (binding constraints, single-vendor baselines, the Pareto front)
and `results` (the typed result).
"""
