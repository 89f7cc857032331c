"""Reading a scenario file: YAML text or a mapping in, a resolved `Scenario` out.

Structural problems (unknown keys, wrong types) come from the schema
(`chipmix.planning.portfolio.schema`); names and dates are checked by
`chipmix.planning.portfolio.resolve`. Every error names the file, the line and the key.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from chipmix.catalog.catalog import Catalog, load_catalog
from chipmix.common.files import choice_hint, parse_yaml, read_text
from chipmix.errors import FileFormatError
from chipmix.planning.portfolio.lines import KeyLines, Problems, format_path
from chipmix.planning.portfolio.resolve import Resolver
from chipmix.planning.portfolio.scenario import Scenario
from chipmix.planning.portfolio.schema import (
    ScenarioSpec,
)

__all__ = ["load_scenario", "parse_scenario"]


def load_scenario(path: str | Path, catalog: Catalog | str | Path | None = None) -> Scenario:
    """Read and validate a scenario file."""
    file = Path(path)
    text = read_text(file, "scenario")
    return parse_scenario(text, origin=str(file), base_dir=file.parent, catalog=catalog)


def parse_scenario(
    source: str | Mapping[str, Any],
    *,
    origin: str = "<scenario>",
    base_dir: Path | None = None,
    catalog: Catalog | str | Path | None = None,
) -> Scenario:
    """Validate a scenario given as YAML text or as a mapping (the file's structure)."""
    cat = catalog if isinstance(catalog, Catalog) else load_catalog(catalog)
    if isinstance(source, str):
        raw = parse_yaml(source, origin)  # first: it refuses nesting and alias bombs
        try:
            lines: KeyLines | None = KeyLines.of(source)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark is not None else ""
            raise FileFormatError(f"{origin}{where}: not valid YAML ({exc})") from None
    else:
        lines, raw = None, dict(source)
    problems = Problems(origin, lines)
    if lines is not None:
        for path, first, again in lines.duplicates:
            problems.found.append(
                (again, f"{origin} line {again}, {format_path(path)}: key given twice "
                        f"(first at line {first}); the second would silently win")
            )  # fmt: skip
    if not isinstance(raw, dict):
        raise FileFormatError(f"{origin}: expected a mapping with name, start, offers and jobs")
    try:
        spec = ScenarioSpec.model_validate(raw)
    except ValidationError as exc:
        _structure_problems(problems, exc)
        problems.raise_if_any()
        raise AssertionError("unreachable") from None
    problems.raise_if_any()
    return Resolver(spec, cat, problems, base_dir or Path.cwd(), origin).scenario()


def _structure_problems(problems: Problems, exc: ValidationError) -> None:
    for err in exc.errors():
        loc = tuple(err["loc"])
        if err["type"] == "unknown_key":
            ctx = err.get("ctx") or {}
            valid = list(ctx.get("valid", []))
            for key in ctx.get("keys", []):
                close = difflib.get_close_matches(key, valid, n=2, cutoff=0.6)
                hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
                problems.add(
                    (*loc, key), f"unknown key {key!r}.{hint} Valid keys: {', '.join(valid)}."
                )
            continue
        given = err.get("input")
        shown = "" if err["type"] == "missing" else f" (got {given!r})"
        if isinstance(given, dict | list):
            shown = ""
        problems.add(loc, f"{err['msg']}{shown}{choice_hint(err)}")
