"""The continuity simulator: failures per component, spot reclaims, planned maintenance,
outages, checkpoints, restarts and migration to another system, as Monte Carlo replicas.

``chipmix.sim.simulate`` is the entry point; the modules, one per noun: `failures` (rates
per cause), `checkpoint` (size, write time, Young/Daly), `restart` (what an interruption
costs), `scenario` (outage files), `timeline` (phases of a run), `engine` (the vectorized
event loop), `montecarlo` (replicas, statistics, interval sweep), `results`.
"""

from chipmix.sim.results import CheckpointPolicy, SimulationResult
from chipmix.sim.scenario import ContinuityScenario, load_scenario
from chipmix.sim.simulate import simulate

__all__ = [
    "CheckpointPolicy",
    "ContinuityScenario",
    "SimulationResult",
    "load_scenario",
    "simulate",
]
