"""A cache of parsed shipped data, in the user's cache folder, keyed by the files.

Reading the shipped catalog (twenty-odd YAML files, a few hundred validated entries) costs
more than the rest of a small command together, and so does fitting the prediction-error
model from its residuals; each parsed result is pickled once and read back while the files
stay the same. The key is a hash of every file's path, size and modification time, of
chipmix's modules that define the cached classes, and of Python's version: change a file,
edit or upgrade chipmix, and the key changes. A cache that cannot be read or written, or
whose content is not what was written (a truncated or corrupted file), is ignored: the
catalog is read from its files, and the entry rewritten. ``CHIPMIX_CACHE_DIR`` names
another folder; set it empty to turn the cache off. The file is the user's own (mode 0600,
in their folder): unpickling it trusts nothing another user could write.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TypeVar

__all__ = ["CACHE_ENV", "cache_dir", "cached", "fingerprint", "load", "store"]

CACHE_ENV = "CHIPMIX_CACHE_DIR"
"""Environment variable naming the cache folder; empty turns the cache off."""

T = TypeVar("T")


def cache_dir() -> Path | None:
    """The cache folder: ``$CHIPMIX_CACHE_DIR``, else ``$XDG_CACHE_HOME/chipmix``, else
    ``~/.cache/chipmix``; None when turned off."""
    given = os.environ.get(CACHE_ENV)
    if given is not None:
        return Path(given) if given else None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "chipmix"


def fingerprint(folder: Path, skip: frozenset[str] = frozenset()) -> str:
    """A hash of every file under ``folder`` (path, size, mtime), of chipmix's code that
    defines what is pickled (`_CODE`) and of Python's version; files under a folder named
    in ``skip`` (``__pycache__``) left out."""
    digest = hashlib.sha256(f"{sys.version}|{pickle.HIGHEST_PROTOCOL}".encode())
    digest.update(_code_stamp().encode())
    digest.update(_stamp(folder, skip).encode())
    return digest.hexdigest()[:32]


@cache
def _code_stamp() -> str:
    """`_stamp` of the modules of `_CODE`'s rooms (read once per process: every cached
    value of a command shares them)."""
    package = Path(__file__).parents[1]
    return "".join(_stamp(package / room, frozenset(), only=".py", under=room) for room in _CODE)


def _stamp(folder: Path, skip: frozenset[str], only: str = "", under: str = "") -> str:
    """One line per file under ``folder`` (its path relative to ``folder``, size and mtime),
    sorted; with ``only``, the files of ``folder`` itself ending so, named ``under/NAME``.
    Walked with `os.scandir` (a tenth of `Path.rglob`'s time); symbolic links to folders
    are not followed."""
    lines = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [] if only else [d for d in dirs if d not in skip]
        relative = os.path.relpath(root, folder)
        prefix = under if relative == "." else f"{under}/{relative}".lstrip("/")
        for name in files:
            if not name.endswith(only) or name in skip:
                continue
            path = os.path.join(root, name)
            if not os.path.isfile(path):
                continue
            stat = os.stat(path)
            lines.append(f"{prefix}/{name}".lstrip("/") + f"|{stat.st_size}|{stat.st_mtime_ns}\n")
    return "".join(sorted(lines))


_CODE = ("catalog", "common", "uncertainty")
"""The rooms whose classes the cached values are made of: a change to one of their modules
(an edit, an upgrade) is a new key, so a pickle never meets a class it was not made from."""


def load(name: str, kind: type[T]) -> T | None:
    """The ``kind`` pickled as ``name`` in the cache folder; None when there is none (or it
    is unreadable, corrupted, or the cache is off)."""
    where = cache_dir()
    if where is None:
        return None
    try:
        with (where / name).open("rb") as stored:
            value = pickle.load(stored)
    except Exception:  # absent, unreadable, truncated, corrupted
        return None
    return value if isinstance(value, kind) else None


def store(name: str, value: object) -> None:
    """Pickle ``value`` as ``name`` in the cache folder (atomically; nothing on failure)."""
    where = cache_dir()
    if where is None:
        return
    try:
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # not picklable: nothing kept
        return
    try:
        where.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("wb", dir=where, delete=False) as fresh:
            fresh.write(data)
        os.replace(fresh.name, where / name)  # a reader sees the old file or the new one
    except OSError:
        pass


def cached(folder: Path, kind: type[T], read: Callable[[], T]) -> T:
    """``read()``, or its result pickled earlier for the same files of ``folder``."""
    where = cache_dir()
    if where is None:
        return read()
    try:
        path = where / f"{kind.__name__.lower()}-{fingerprint(folder)}.pickle"
    except OSError:
        return read()
    try:
        with path.open("rb") as stored:
            value = pickle.load(stored)
        if isinstance(value, kind):
            return value
    except Exception:  # absent, unreadable, truncated, corrupted: read the files instead
        pass
    value = read()
    try:
        where.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("wb", dir=where, delete=False) as fresh:
            pickle.dump(value, fresh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(fresh.name, path)  # atomic: a reader sees the old file or the new one
    except OSError:
        pass
    return value
