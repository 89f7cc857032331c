"""Write a fitted calibration as the YAML file the catalog reads back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from chipmix.catalog.calibration import Calibration

__all__ = ["write_fitted"]


def write_fitted(fitted: Calibration, parameters: list[dict[str, Any]], path: str | Path) -> None:
    """Write the fitted fields, their sources, the fitted unknowns (``parameters``), the
    evidence of every resolved parameter and the provenance as a calibration file."""
    doc: dict[str, Any] = {
        "chips": {k: v.model_dump(exclude_unset=True) for k, v in fitted.chips.items()},
        "stacks": {k: v.model_dump(exclude_unset=True) for k, v in fitted.stacks.items()},
        "provenance": fitted.provenance,
        "parameters": parameters,
        "evidence": [e.model_dump() for e in fitted.evidence],
    }
    header = (
        "# Written by `chipmix calibrate`; do not edit by hand. Regenerate with:\n"
        "#   chipmix calibrate --out src/chipmix/catalog/data/calibration-fitted.yaml\n"
    )
    body = yaml.safe_dump(_plain(doc), sort_keys=False, allow_unicode=True, width=100)
    Path(path).write_text(header + body, encoding="utf-8")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return float(f"{value:.6g}")
    return value
