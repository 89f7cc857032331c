"""The public functions of the layout search, as ``chipmix.estimate``, ``chipmix.search``
and ``chipmix.make_job``, and of serving (`chipmix.serve.public`), as
``chipmix.serve_estimate``, ``chipmix.serve_search`` and ``chipmix.serve_compare``.
The work is done in the rooms: `chipmix.layouts.best` (find or
check a layout, price it) and `chipmix.workload.make` (build the job); inner rooms import
those, never this façade. The serving functions load on first use (`chipmix estimate`
does not need the serving model).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chipmix.layouts.best import estimate, search
from chipmix.workload.make import make_job

if TYPE_CHECKING:
    from chipmix.serve.public import serve_compare, serve_estimate, serve_search

__all__ = ["estimate", "make_job", "search", "serve_compare", "serve_estimate", "serve_search"]

_SERVING = frozenset({"serve_compare", "serve_estimate", "serve_search"})


def __getattr__(name: str) -> Any:
    """A serving function, imported on first use."""
    if name in _SERVING:
        from chipmix.serve import public

        value = getattr(public, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
