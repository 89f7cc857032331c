"""Look-ups by name with a "did you mean" on a miss."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from chipmix.errors import UnknownNameError

__all__ = ["lookup"]

T = TypeVar("T")


def lookup(registry: Mapping[str, T], name: str, kind: str) -> T:
    """Return ``registry[name]``; raise `UnknownNameError` listing close names otherwise."""
    try:
        return registry[name]
    except KeyError:
        lowered = {k.lower(): v for k, v in registry.items()}
        if name.lower() in lowered:
            return lowered[name.lower()]
        raise UnknownNameError(kind, name, registry.keys()) from None
