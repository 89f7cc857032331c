"""Reading users' and shipped data files, and saying what is wrong in them, one line each.

Every file goes through the same gate (`read_text`): a regular file, at most
`MAX_FILE_BYTES`, UTF-8 text, no NUL bytes. Every parsed document goes through
`check_values`: nested at most `MAX_DEPTH` deep, every number finite and within
±`MAX_NUMBER`. YAML is parsed by libyaml's C loader when PyYAML has it (ten times faster
than the pure-Python one), the safe loader either way (no tag is ever executed)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from chipmix.errors import FileFormatError, did_you_mean

__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "MAX_NUMBER",
    "NoBoolNumbers",
    "check_values",
    "choice_hint",
    "format_validation_error",
    "parse_yaml",
    "read_json",
    "read_text",
    "read_yaml",
]

MAX_FILE_BYTES = 32 * 2**20
"""The largest data file read (32 MiB): catalog, model and scenario files are kilobytes."""
MAX_DEPTH = 64
"""The deepest nesting of lists and mappings accepted in a data file."""
MAX_NODES = 1_000_000
"""The most values (numbers, strings, lists, mappings) in one data file; YAML aliases count
each time they are used, so a "billion laughs" file is refused instead of expanded."""
MAX_NUMBER = 1e30
"""The largest magnitude of a number in a data file (tokens, dollars and FLOP/s stay far
below it; anything above is a typo or an attack on the arithmetic)."""

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_text(path: Path, what: str = "file") -> str:
    """The text of ``path``, refused with one line if it is not a readable UTF-8 text file."""
    try:
        if path.is_dir():
            raise FileFormatError(f"{what} {path} is a folder; give a file")
        if not path.is_file():
            raise FileFormatError(f"{what} {path} does not exist (or is not a regular file)")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise FileFormatError(
                f"{what} {path} is {size / 2**20:.0f} MiB; at most "
                f"{MAX_FILE_BYTES // 2**20} MiB is read"
            )
        data = path.read_bytes()
    except OSError as exc:
        raise FileFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if b"\0" in data:
        raise FileFormatError(f"{what} {path} is binary (NUL bytes); give a UTF-8 text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileFormatError(
            f"{what} {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None


def check_values(data: Any, origin: str) -> Any:
    """``data`` unchanged, or `FileFormatError` on deep nesting or a non-finite or huge number."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    seen = 0
    while stack:
        value, depth = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            raise FileFormatError(f"{origin}: more than {MAX_NODES:,} values; too large to read")
        if isinstance(value, dict | list):
            if depth >= MAX_DEPTH:
                raise FileFormatError(
                    f"{origin}: nested more than {MAX_DEPTH} levels deep; flatten it"
                )
            items = value.values() if isinstance(value, dict) else value
            stack.extend((v, depth + 1) for v in items)
            if isinstance(value, dict):
                stack.extend((k, depth + 1) for k in value if not isinstance(k, str))
        elif isinstance(value, float | int) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise FileFormatError(f"{origin}: {value} is not a finite number")
            if abs(value) > MAX_NUMBER:
                raise FileFormatError(
                    f"{origin}: number {_short(value)} is out of range (at most ±{MAX_NUMBER:g})"
                )
    return data


def _short(value: float | int) -> str:
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return text if len(text) <= 24 else f"{float(value):.3g}"


def parse_yaml(text: str, origin: str) -> Any:
    """Parse YAML text, turning syntax errors into `FileFormatError` with the line."""
    try:
        raw = yaml.load(text, Loader=_LOADER)  # a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context, start = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and start is not None:
            problem += f" {context} at line {start.line + 1}"
        raise FileFormatError(f"{origin}{where}: not valid YAML ({problem})") from None
    except (RecursionError, MemoryError):
        raise FileFormatError(f"{origin}: nested too deeply to read; flatten it") from None
    except (OverflowError, ValueError):  # e.g. an integer of more than 4,300 digits
        raise FileFormatError(f"{origin}: a number is out of range") from None
    return check_values(raw, origin)


def read_yaml(path: Path) -> Any:
    """Parse a YAML file (see `read_text` and `check_values` for what is refused)."""
    return parse_yaml(read_text(path), str(path))


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def read_json(path: Path) -> Any:
    """Parse a JSON file (NaN and Infinity refused, like deep nesting and huge numbers)."""
    text = read_text(path)
    try:
        raw = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise FileFormatError(f"{path} line {exc.lineno}: not valid JSON ({exc.msg})") from None
    except ValueError as exc:  # NaN/Infinity, or an integer too long to convert
        raise FileFormatError(f"{path}: not valid JSON ({exc})") from None
    except RecursionError:
        raise FileFormatError(f"{path}: nested too deeply to read; flatten it") from None
    return check_values(raw, str(path))


def format_validation_error(path: Path | str, exc: ValidationError) -> str:
    """One line per problem: the key path, what is wrong, the value given."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        shown = err["type"] != "missing" and err["loc"]
        given = f" (got {_given(err['input'])})" if shown else ""
        lines.append(f"  {loc}: {err['msg']}{given}{choice_hint(err)}")
    return f"{path}: invalid entries:\n" + "\n".join(lines)


def choice_hint(err: Mapping[str, Any]) -> str:
    """``. Did you mean 'light'?`` for a word outside a fixed set of choices (pydantic's
    ``literal_error`` and ``enum`` errors, whose context lists the choices quoted); empty
    for any other error."""
    given = err.get("input")
    if err.get("type") not in ("literal_error", "enum") or not isinstance(given, str):
        return ""
    expected = str((err.get("ctx") or {}).get("expected", ""))
    hint = did_you_mean(given, re.findall(r"'([^']*)'", expected))
    return f".{hint}" if hint else ""


def _given(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "…"


def _is_number_type(annotation: Any) -> bool:
    """int or float, alone, optional, or in a list/tuple/dict value."""
    if annotation in (int, float):
        return True
    args = getattr(annotation, "__args__", ())
    return bool(args) and bool not in args and any(_is_number_type(a) for a in args)


def _bools_in(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, list | tuple):
        return any(isinstance(v, bool) for v in value)
    if isinstance(value, dict):
        return any(isinstance(v, bool) for v in value.values())
    return False


class NoBoolNumbers(BaseModel):
    """A model whose number fields refuse ``true``/``false`` (which pydantic would read as
    1 and 0): a boolean where a number belongs is a mistake in the file."""

    model_config = ConfigDict(defer_build=True)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_numbers(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, info in cls.model_fields.items():
                key = info.alias if info.alias in data else name
                if key in data and _is_number_type(info.annotation) and _bools_in(data[key]):
                    raise ValueError(f"{key}: give a number, not true/false")
        return data
