"""``estimate`` finds its layout with the pruned search (`chipmix.layouts.prune`): the same
estimate, every figure of it, as the best of the exhaustive search, on dense and MoE models,
fused and eager stacks, pinned axes and a price."""

from __future__ import annotations

from typing import Any

import pytest

from chipmix.catalog import load_catalog
from chipmix.layouts.best import estimate, search

CAT = load_catalog()

CASES: list[tuple[str, str, int, dict[str, Any]]] = [
    ("llama3-8b", "h100-sxm", 64, {"tokens": 1e12}),
    ("llama3-70b", "trn2.48xlarge", 256, {"seq_len": 8192, "global_batch": 1024}),
    ("mixtral-8x7b", "azure-nd-mi300x-v5", 256, {"global_batch": 512, "recompute": "full"}),
    ("llama3-8b", "tpu-v6e-256", 512, {"seq_len": 8192, "global_batch": 512, "zero": 1}),
    ("llama3-8b", "h100-sxm", 16, {"global_batch": 256, "stack": "pytorch"}),  # eager
]


@pytest.mark.parametrize(("model", "system", "chips", "kwargs"), CASES)
def test_estimate_is_the_exhaustive_searchs_best(
    model: str, system: str, chips: int, kwargs: dict[str, Any]
) -> None:
    found = estimate(model, system, chips, catalog=CAT, **kwargs)
    best = search(model, system, chips, top=1, catalog=CAT, prune=False, **kwargs).best
    assert found.to_dict() == best.to_dict()
