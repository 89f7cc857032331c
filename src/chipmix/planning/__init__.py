"""Planning: what to buy or rent, and where each job should run.

- `comparison/`: one job on every system: time, cost and chips of each (``chipmix.compare``).
- `budget/`: what a yearly budget buys across clouds and tiers (``chipmix.budget``).
- `portfolio/`: many jobs over months on a chip portfolio, as a MILP (``chipmix.plan``).
- `cost.py`: the old home of the run-cost names, now in `chipmix.pricing` (re-exported here).
"""
