"""Where each key of a YAML document sits: the line of every mapping key and sequence item.

PyYAML's composer keeps a ``start_mark`` on every node; walking the composed tree gives the
1-based line of each path (``("jobs", 2, "deadline")``). Validation errors use it to name
the line and the key. Duplicate keys, which ``yaml.safe_load`` silently collapses to the
last one, are reported here with both lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from chipmix.errors import FileFormatError, UnknownNameError

__all__ = ["KeyLines", "Path", "Problems", "format_path"]

_COMPOSER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""LibYAML's composer when PyYAML has it (the same nodes and marks, ~25x faster)."""

Path = tuple[str | int, ...]
"""A location in the document: mapping keys and sequence indices, outermost first."""


def format_path(path: Iterable[str | int]) -> str:
    """``("jobs", 2, "deadline")`` → ``jobs[2].deadline``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


@dataclass
class KeyLines:
    """The 1-based line of every key path of one YAML document."""

    lines: dict[Path, int] = field(default_factory=dict)
    duplicates: list[tuple[Path, int, int]] = field(default_factory=list)
    """(path, first line, repeated line) of every key given twice in one mapping."""

    @staticmethod
    def of(text: str) -> KeyLines:
        """Compose ``text`` (syntax errors propagate as `yaml.YAMLError`) and map its keys."""
        out = KeyLines()
        root = yaml.compose(text, Loader=_COMPOSER)
        if root is not None:
            out.lines[()] = root.start_mark.line + 1
            out._walk(root, ())
        return out

    def _walk(self, node: yaml.Node, path: Path) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
                sub = (*path, key)
                line = key_node.start_mark.line + 1
                if sub in self.lines:
                    self.duplicates.append((sub, self.lines[sub], line))
                    continue
                self.lines[sub] = line
                self._walk(value_node, sub)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                sub = (*path, index)
                self.lines[sub] = item.start_mark.line + 1
                self._walk(item, sub)

    def line(self, loc: Iterable[str | int]) -> int | None:
        """The line of the deepest part of ``loc`` found in the document.

        Parts that are not keys of the document (a pydantic union's tag, say) are skipped,
        so an error located at ``("offers", 0, "inline", "tiers", 1)`` finds
        ``offers[0].tiers[1]``."""
        path: Path = ()
        for part in loc:
            candidate = (*path, part)
            if candidate in self.lines:
                path = candidate
        return self.lines.get(path)

    def known(self, loc: Iterable[str | int]) -> Path:
        """The part of ``loc`` that names keys of the document (tags dropped)."""
        path: Path = ()
        for part in loc:
            if (*path, part) in self.lines:
                path = (*path, part)
        return path


class Problems:
    """Problems found while validating, each with the line and key it is about."""

    def __init__(self, origin: str, lines: KeyLines | None) -> None:
        self.origin, self.lines = origin, lines
        self.found: list[tuple[int, str]] = []

    def where(self, path: Sequence[str | int]) -> str:
        line = self.lines.line(path) if self.lines is not None else None
        shown = self.lines.known(path) if self.lines is not None else tuple(path)
        at = f" line {line}" if line is not None else ""
        return f"{self.origin}{at}, {format_path(shown if shown else path)}"

    def add(self, path: Sequence[str | int], message: str) -> None:
        line = self.lines.line(path) if self.lines is not None else None
        self.found.append((line or 0, f"{self.where(path)}: {message}"))

    def unknown(
        self, path: Sequence[str | int], kind: str, name: str, valid: Sequence[str]
    ) -> UnknownNameError:
        """An `UnknownNameError` whose message starts with the file, line and key."""
        error = UnknownNameError(kind, name, valid)
        error.args = (f"{self.where(path)}: {error.args[0]}",)
        return error

    def raise_if_any(self) -> None:
        if self.found:
            ordered = [m for _, m in sorted(self.found, key=lambda lm: lm[0])]
            if len(ordered) == 1:
                raise FileFormatError(ordered[0])
            raise FileFormatError(
                f"{self.origin}: {len(ordered)} problems:\n" + "\n".join(f"  {m}" for m in ordered)
            )
