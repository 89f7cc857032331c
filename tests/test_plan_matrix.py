"""The MILP's constraint matrix in compressed sparse columns (`formulation._Matrix.csc`) is
what scipy's COO-to-CSC conversion gives, without importing scipy.sparse at plan time."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import coo_matrix

from chipmix.planning.portfolio.formulation import _Matrix


@pytest.mark.parametrize("seed", range(20))
def test_csc_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    num_rows, num_cols = (int(x) for x in rng.integers(1, 30, 2))
    n = int(rng.integers(0, 200))
    rows, cols = rng.integers(0, num_rows, n), rng.integers(0, num_cols, n)
    # at most two entries per cell: their sum does not depend on the order of addition
    cell = rows * num_cols + cols
    _, at, count = np.unique(cell, return_index=True, return_counts=True)
    keep = np.isin(cell, cell[at[count <= 2]])
    rows, cols = rows[keep], cols[keep]
    vals = rng.normal(size=len(rows)) * 10.0 ** rng.integers(-4, 5, len(rows))
    vals[rng.random(len(rows)) < 0.2] = 0.0  # explicit zeros are kept, as scipy keeps them
    matrix = _Matrix()
    for _ in range(num_rows):
        matrix.add(0.0, 1.0, "row")
    half = len(rows) // 2
    matrix.entries(rows[:half], cols[:half], vals[:half])
    matrix.entries(rows[half:], cols[half:], vals[half:])
    expected = coo_matrix((vals, (rows, cols)), shape=(num_rows, num_cols)).tocsc()
    expected.sum_duplicates()
    start, index, value = matrix.csc(num_cols)
    assert np.array_equal(start, expected.indptr)
    assert np.array_equal(index, expected.indices)
    assert np.array_equal(value, expected.data)
