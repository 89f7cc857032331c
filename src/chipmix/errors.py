"""The exceptions chipmix raises, as one tree.

    ChipmixError                  anything chipmix reports to a user (never a traceback)
    ├── InputError                a value the user gave is wrong
    │   ├── UnknownNameError      a chip, system, model, offer or stack that does not exist
    │   └── FileFormatError       a catalog, model or case file that cannot be read
    └── InfeasibleError           the request is valid but cannot be carried out
        └── LayoutError           a parallel layout that does not divide, multiply or fit

Every message names the value, the valid choices and, where it helps, the way out.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "ChipmixError",
    "FileFormatError",
    "InfeasibleError",
    "InputError",
    "LayoutError",
    "UnknownNameError",
    "did_you_mean",
]


class ChipmixError(Exception):
    """Base of every error chipmix reports to a user."""


class InputError(ChipmixError, ValueError):
    """A value given by the user is out of range, malformed or inconsistent."""


class UnknownNameError(InputError, KeyError):
    """A name that is not in its registry; the message lists close matches."""

    def __init__(self, kind: str, name: str, valid: Iterable[str]) -> None:
        choices = sorted(valid)
        close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
        hint = did_you_mean(name, choices)
        shown = ", ".join(choices[:40]) + (", …" if len(choices) > 40 else "")
        super().__init__(f"unknown {kind} {name!r}.{hint} Valid {kind}s: {shown}.")
        self.kind = kind
        self.name = name
        self.close_matches = close

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """`` Did you mean 'x' or 'y'?`` naming the choices closest to ``name``; empty when
    none is close."""
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.5)
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


class FileFormatError(InputError):
    """A data file (catalog, model, scenario, cases) that cannot be parsed or validated."""


class InfeasibleError(ChipmixError):
    """A valid request that cannot be met (no layout fits, deadline unreachable, ...)."""


class LayoutError(InfeasibleError):
    """A parallel layout that is invalid for this model and system.

    ``reason`` is a short key the search counts by (e.g. ``"memory"``, ``"tp_heads"``).
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
