"""The fit's regularization is chosen inside the training rows (nested cross-validation)."""

from __future__ import annotations

import numpy as np

from chipmix.validate.hierarchy import MIN_ROWS
from chipmix.validate.tuning import (
    DEFAULT_REGULARIZATION,
    GRID,
    choose_regularization,
    group_weights,
    inner_folds,
)


def test_inner_folds_keep_groups_whole_and_balance_rows() -> None:
    groups = ["a"] * 6 + ["b"] * 4 + ["c"] * 3 + ["d"] * 3 + ["e"] * 2 + ["f"] * 2
    folds = inner_folds(groups, k=3)
    for g in set(groups):
        assert len({int(folds[i]) for i, x in enumerate(groups) if x == g}) == 1
    sizes = np.bincount(folds)
    assert sizes.max() - sizes.min() <= 2


def test_the_default_is_a_candidate_and_wins_ties() -> None:
    assert GRID[0] == DEFAULT_REGULARIZATION
    assert len(set(GRID)) == len(GRID)


def _problem(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    n, slots = 40, 6
    incidence = rng.random((n, slots)) < 0.6
    incidence[:, 0] = True
    mask = np.ones(n, dtype=bool)
    mask[30:] = False  # the rows a fold predicts
    active = incidence[mask].sum(axis=0) >= MIN_ROWS
    train = int(mask.sum())
    return {
        "u": rng.normal(0, 0.1, slots),
        "active": active,
        "mask": mask,
        "errors": rng.normal(0, 0.2, train),
        "slopes": rng.normal(0, 1, (train, int(active.sum()))),
        "incidence": incidence,
        "tau": np.full(slots, 1.0),
        "groups": [f"g{i // 4}" for i in range(n)],
    }


def test_the_choice_never_reads_the_rows_it_predicts() -> None:
    args = _problem(1)
    reg, start = choose_regularization(**args)
    changed = dict(args)
    incidence = args["incidence"].copy()
    incidence[~args["mask"]] = ~incidence[~args["mask"]]
    changed["incidence"] = incidence
    changed["groups"] = args["groups"][:30] + [f"other{i}" for i in range(10)]
    reg2, start2 = choose_regularization(**changed)
    assert reg2 == reg
    np.testing.assert_allclose(start2, start)


def test_a_candidate_is_chosen_and_only_active_slots_move() -> None:
    args = _problem(2)
    reg, start = choose_regularization(**args)
    assert reg in GRID
    np.testing.assert_array_equal(start[~args["active"]], args["u"][~args["active"]])


def test_every_held_out_group_weighs_the_same() -> None:
    groups = ["big"] * 16 + ["a", "a", "b", "c"]
    weights = group_weights(groups)
    assert abs(weights.sum() - 1.0) < 1e-12
    per_group = {g: weights[[i for i, x in enumerate(groups) if x == g]].sum() for g in groups}
    np.testing.assert_allclose(list(per_group.values()), 0.25)
