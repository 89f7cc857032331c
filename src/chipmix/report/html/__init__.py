"""Self-contained HTML reports with plots, one per command (``--report FILE.html``).

Each ``*_page`` function turns a command's result into a `Page`; `write_page` writes it.
plotly is imported only here, and only when a report is made.
"""

from chipmix.report.html.budget import budget_page
from chipmix.report.html.compare import compare_page
from chipmix.report.html.page import Page, Table, write_page
from chipmix.report.html.plan import plan_page
from chipmix.report.html.search import search_page
from chipmix.report.html.simulate import simulate_page
from chipmix.report.html.validate import validate_page

__all__ = [
    "Page",
    "Table",
    "budget_page",
    "compare_page",
    "plan_page",
    "search_page",
    "simulate_page",
    "validate_page",
    "write_page",
]
