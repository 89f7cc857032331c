"""The public functions of the layout search, as ``chipmix.estimate``, ``chipmix.search``
and ``chipmix.make_job``, and of serving (`chipmix.serve.public`), as
``chipmix.serve_estimate``, ``chipmix.serve_search`` and ``chipmix.serve_compare``.
The work is done in the rooms: `chipmix.layouts.best` (find or
check a layout, price it) and `chipmix.workload.make` (build the job); inner rooms import
those, never this façade.
"""

from __future__ import annotations

from chipmix.layouts.best import estimate, search
from chipmix.serve.public import serve_compare, serve_estimate, serve_search
from chipmix.workload.make import make_job

__all__ = ["estimate", "make_job", "search", "serve_compare", "serve_estimate", "serve_search"]
