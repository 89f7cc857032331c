"""Reading users' and shipped data files, and saying what is wrong in them, one line each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from chipmix.errors import FileFormatError

__all__ = ["format_validation_error", "read_yaml"]


def read_yaml(path: Path) -> Any:
    """Parse a YAML file, turning syntax errors into `FileFormatError` with the line."""
    try:
        with path.open(encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise FileFormatError(f"{path}{where}: not valid YAML ({exc})") from None
    except OSError as exc:
        raise FileFormatError(f"{path}: cannot read ({exc.strerror})") from None


def format_validation_error(path: Path | str, exc: ValidationError) -> str:
    """One line per problem: the key path, what is wrong, the value given."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        shown = err["type"] != "missing" and err["loc"]
        given = f" (got {err['input']!r})" if shown else ""
        lines.append(f"  {loc}: {err['msg']}{given}")
    return f"{path}: invalid entries:\n" + "\n".join(lines)
