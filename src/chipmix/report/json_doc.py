"""One JSON document on stdout: what every ``--json`` prints. Kept apart from the rich
tables (`chipmix.report.render`) so a ``--json`` command never loads rich."""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["clean", "print_json"]


def clean(value: Any) -> Any:
    """``value`` with NaN and infinities as None and every key a string (strict JSON)."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


def print_json(data: Any) -> None:
    """One JSON document on stdout (NaN/inf become null)."""
    print(json.dumps(clean(data), indent=2, sort_keys=False))
