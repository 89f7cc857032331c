"""Paths the user names on the command line, checked before any work starts: a file to
read, a folder to read, a file to write. Each problem is one `InputError` line naming the
path, what was expected and the way out."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from chipmix.errors import InputError

__all__ = ["describe_os_error", "input_file", "input_folder", "output_file", "output_folder"]

_MAX_NAME = 255
"""The longest file name (one path component) most file systems allow (POSIX NAME_MAX)."""
_MAX_PATH = 4096
"""The longest path Linux accepts (PATH_MAX)."""
_SPECIAL = ("/proc", "/sys", "/dev")
"""Pseudo-file systems: never a model, scenario, catalog or report."""


def describe_os_error(exc: OSError) -> str:
    """One line for an operating-system error on a file the user named."""
    name = exc.filename if exc.filename is not None else "a file"
    reason = exc.strerror or type(exc).__name__
    return f"{name}: {reason}; check the path and its permissions"


def _common(path: Path, option: str) -> Path:
    text = str(path)
    if not text or "\0" in text:
        raise InputError(f"{option}: {text!r} is not a valid path")
    if len(text) > _MAX_PATH or any(len(part) > _MAX_NAME for part in path.parts):
        raise InputError(
            f"{option}: path too long ({len(text)} characters; at most {_MAX_NAME} per "
            f"name and {_MAX_PATH} in all)"
        )
    resolved = os.path.abspath(text)
    if any(resolved == s or resolved.startswith(s + "/") for s in _SPECIAL):
        raise InputError(f"{option}: {text} is a system pseudo-file; give a regular file or folder")
    return path


def input_file(path: Path | None, option: str) -> Path | None:
    """A file that must exist and be readable (not a folder)."""
    if path is None:
        return None
    _common(path, option)
    try:
        if path.is_dir():
            raise InputError(f"{option}: {path} is a folder; give a file")
        if not path.is_file():
            raise InputError(f"{option}: {path} does not exist (or is not a regular file)")
        if not os.access(path, os.R_OK):
            raise InputError(f"{option}: {path} is not readable (permission denied)")
    except OSError as exc:
        raise InputError(f"{option}: {describe_os_error(exc)}") from None
    return path


def input_folder(path: Path | None, option: str) -> Path | None:
    """A folder that must exist and be readable."""
    if path is None:
        return None
    _common(path, option)
    try:
        if not path.exists():
            raise InputError(f"{option}: folder {path} does not exist")
        if not path.is_dir():
            raise InputError(f"{option}: {path} is a file; give a folder")
        if not os.access(path, os.R_OK | os.X_OK):
            raise InputError(f"{option}: folder {path} is not readable (permission denied)")
    except OSError as exc:
        raise InputError(f"{option}: {describe_os_error(exc)}") from None
    return path


def _writable_parent(path: Path, option: str) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    for up in (parent, *parent.parents):
        if up.exists():
            if not up.is_dir():
                raise InputError(f"{option}: {up} is a file, so {path} cannot be created in it")
            if not os.access(up, os.W_OK | os.X_OK):
                raise InputError(f"{option}: cannot write in {up} (permission denied)")
            return


def output_file(path: Path | None, option: str, *, make_folder: bool = True) -> Path | None:
    """A file to write: not a folder, its folder writable, and existing unless the writer
    makes it (``make_folder``)."""
    if path is None:
        return None
    _common(path, option)
    try:
        if path.is_dir():
            raise InputError(f"{option}: {path} is a folder; give a file name")
        if path.exists() and not os.access(path, os.W_OK):
            raise InputError(f"{option}: {path} is not writable (permission denied)")
        parent = path.parent if str(path.parent) else Path(".")
        if not make_folder and not parent.is_dir():
            raise InputError(f"{option}: folder {parent} does not exist; create it first")
        _writable_parent(path, option)
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise InputError(f"{option}: path too long") from None
        raise InputError(f"{option}: {describe_os_error(exc)}") from None
    return path


def output_folder(path: Path | None, option: str) -> Path | None:
    """A folder to write into: not a file, creatable and writable."""
    if path is None:
        return None
    _common(path, option)
    try:
        if path.exists() and not path.is_dir():
            raise InputError(f"{option}: {path} is a file; give a folder")
        if path.is_dir() and not os.access(path, os.W_OK | os.X_OK):
            raise InputError(f"{option}: cannot write in {path} (permission denied)")
        _writable_parent(path, option)
    except OSError as exc:
        raise InputError(f"{option}: {describe_os_error(exc)}") from None
    return path
