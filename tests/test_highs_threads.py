"""HiGHS's task scheduler is process-wide and sized by the first solve: a later solve with
another ``solver.threads`` must still solve (HiGHS alone stops it without a status)."""

from __future__ import annotations

import numpy as np

from chipmix.planning.portfolio.solver import highspy_module, new_highs


def _solve(threads: int) -> str:
    """max x + y, x + y ≤ 5, integers in [0, 10]: optimal at 5."""
    highspy = highspy_module()
    h = new_highs(highspy, threads)
    h.setOptionValue("time_limit", 30.0)
    h.addVars(2, np.zeros(2), np.full(2, 10.0))
    h.changeColsCost(2, np.array([0, 1]), np.array([-1.0, -1.0]))
    h.addRows(1, np.array([-highspy.kHighsInf]), np.array([5.0]), 2, np.array([0]),
              np.array([0, 1]), np.array([1.0, 1.0]))  # fmt: skip
    h.changeColsIntegrality(2, np.array([0, 1]), np.array([highspy.HighsVarType.kInteger] * 2))
    h.run()
    assert h.getInfo().objective_function_value == -5.0
    return str(h.modelStatusToString(h.getModelStatus()))


def test_solves_with_changing_thread_counts() -> None:
    assert [_solve(t) for t in (0, 1, 0, 2, 2, 1)] == ["Optimal"] * 6
