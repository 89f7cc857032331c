"""chipmix: plan transformer training across accelerator vendors.

    >>> import chipmix
    >>> e = chipmix.estimate("llama3-70b", "h100-sxm", 64, seq_len=8192, global_batch=128)
    >>> e.tokens_per_s, e.layout, e.to_dict()["breakdown"]
    >>> c = chipmix.compare("llama3-70b", tokens=15e12, seq_len=8192, global_batch=2048)
    >>> c.cheapest.system.chip.id, c.to_dataframe()
    >>> chipmix.plan("examples/frontier-lab-2026.yaml").to_dict()["totals"]
    >>> chipmix.simulate("llama3-70b", "h100-sxm", 1024, tokens=1e12).to_dict()
    >>> s = chipmix.serve_compare("llama3-70b", input_len=2000, output_len=300,
    ...                           ttft_p99_ms=2000, tpot_p99_ms=100)
    >>> s.to_dataframe()[["chip", "tokens_per_s_per_chip", "usd_per_m_tokens_on-demand"]]

The public functions return typed results with ``to_dict()`` and ``to_dataframe()``.
"""

from chipmix.api import estimate, make_job, search, serve_compare, serve_estimate, serve_search
from chipmix.catalog import load_catalog
from chipmix.errors import (
    ChipmixError,
    FileFormatError,
    InfeasibleError,
    InputError,
    LayoutError,
    UnknownNameError,
)
from chipmix.perf.layout import Layout
from chipmix.planning.budget.budget import BudgetResult, budget
from chipmix.planning.comparison.compare import compare
from chipmix.planning.comparison.result import Comparison, ComparisonRow
from chipmix.planning.portfolio.planner import plan
from chipmix.planning.portfolio.results import PlanResult
from chipmix.results import Estimate, SearchResult
from chipmix.serve.results import ServeComparison, ServeEstimate, ServeSearchResult
from chipmix.sim import SimulationResult, simulate
from chipmix.workload import Job, ModelSpec, load_model, preset_names

__all__ = [
    "BudgetResult",
    "ChipmixError",
    "Comparison",
    "ComparisonRow",
    "Estimate",
    "FileFormatError",
    "InfeasibleError",
    "InputError",
    "Job",
    "Layout",
    "LayoutError",
    "ModelSpec",
    "PlanResult",
    "SearchResult",
    "ServeComparison",
    "ServeEstimate",
    "ServeSearchResult",
    "SimulationResult",
    "UnknownNameError",
    "budget",
    "compare",
    "estimate",
    "load_catalog",
    "load_model",
    "make_job",
    "plan",
    "preset_names",
    "search",
    "serve_compare",
    "serve_estimate",
    "serve_search",
    "simulate",
]
