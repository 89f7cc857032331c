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

from importlib import import_module as _import_module
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

if _TYPE_CHECKING:
    from chipmix.api import (
        estimate,
        make_job,
        search,
        serve_compare,
        serve_estimate,
        serve_search,
    )
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
    from chipmix.planning.budget.serving import ServeRequest
    from chipmix.planning.comparison.compare import compare
    from chipmix.planning.comparison.result import Comparison, ComparisonRow
    from chipmix.planning.portfolio.planner import plan
    from chipmix.planning.portfolio.results import PlanResult
    from chipmix.results import Estimate, SearchResult
    from chipmix.serve.results import ServeComparison, ServeEstimate, ServeSearchResult
    from chipmix.sim import SimulationResult, simulate
    from chipmix.workload import Job, ModelSpec, load_model, preset_names

# The public names, imported on first use: `chipmix estimate` needs neither the planner nor
# the simulator (nor HiGHS, plotly), and `import chipmix` should not pay for them.
_WHERE = {
    "estimate": "chipmix.api", "make_job": "chipmix.api", "search": "chipmix.api",
    "serve_compare": "chipmix.api", "serve_estimate": "chipmix.api",
    "serve_search": "chipmix.api", "ServeComparison": "chipmix.serve.results",
    "ServeEstimate": "chipmix.serve.results", "ServeSearchResult": "chipmix.serve.results",
    "load_catalog": "chipmix.catalog",
    "ChipmixError": "chipmix.errors", "FileFormatError": "chipmix.errors",
    "InfeasibleError": "chipmix.errors", "InputError": "chipmix.errors",
    "LayoutError": "chipmix.errors", "UnknownNameError": "chipmix.errors",
    "Layout": "chipmix.perf.layout",
    "BudgetResult": "chipmix.planning.budget.budget", "budget": "chipmix.planning.budget.budget",
    "ServeRequest": "chipmix.planning.budget.serving",
    "compare": "chipmix.planning.comparison.compare",
    "Comparison": "chipmix.planning.comparison.result",
    "ComparisonRow": "chipmix.planning.comparison.result",
    "plan": "chipmix.planning.portfolio.planner",
    "PlanResult": "chipmix.planning.portfolio.results",
    "Estimate": "chipmix.results", "SearchResult": "chipmix.results",
    "SimulationResult": "chipmix.sim", "simulate": "chipmix.sim",
    "Job": "chipmix.workload", "ModelSpec": "chipmix.workload",
    "load_model": "chipmix.workload", "preset_names": "chipmix.workload",
}  # fmt: skip


def __getattr__(name: str) -> _Any:
    """A public name from its module, or a subpackage (``chipmix.sim``), on first use."""
    where = _WHERE.get(name)
    if where is not None:
        value = getattr(_import_module(where), name)
    else:
        try:
            value = _import_module(f"{__name__}.{name}")
        except ModuleNotFoundError:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])


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
    "ServeRequest",
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
