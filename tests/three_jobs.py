"""A small planning scenario several planner tests share: three jobs of Llama 3.2 1B on
H100, Trainium2 and MI300X offers (the MI300X the cheapest, holding one run at a time),
with the constraints and solver options a test gives."""

from __future__ import annotations

from datetime import date
from typing import Any

SHAPE = {"model": "llama3.2-1b", "seq_len": 4096, "global_batch": 256, "chip_counts": [16, 32]}


def three_jobs(constraints: dict[str, Any], **solver: Any) -> dict[str, Any]:
    """The scenario's structure, exact optimum (gap 0), no single-vendor baselines."""
    return {
        "name": "three-jobs", "start": date(2026, 1, 5), "end": date(2026, 3, 15),
        "offers": [
            {"catalog": "aws-p5.48xlarge-us-east-1-2025-06", "max_chips": 32,
             "tiers": ["on-demand"]},
            {"catalog": "aws-trn2.48xlarge-us-east-2-2024-12", "max_chips": 32,
             "tiers": ["on-demand"]},
            {"catalog": "azure-nd-mi300x-v5-2026-04", "max_chips": 16, "tiers": ["on-demand"]},
        ],
        "jobs": [
            {"name": "a", **SHAPE, "tokens": 7.5e11, "deadline": date(2026, 1, 25)},
            {"name": "b", **SHAPE, "tokens": 7.5e11, "start": date(2026, 1, 12),
             "deadline": date(2026, 2, 1)},
            {"name": "c", **SHAPE, "tokens": 5e11, "deadline": date(2026, 1, 31)},
        ],
        "constraints": constraints,
        "solver": {"gap": 0.0, "single_vendor_baseline": False, **solver},
    }  # fmt: skip
