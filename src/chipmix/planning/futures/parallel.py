"""Running the per-future solves: in this process (``workers=1``) or as Ray tasks.

Ray (the optional extra ``chipmix[scale]``) starts in-process on this machine's cores by
default (``workers`` of them), or joins an existing cluster (``address``). Each task gets
the shared context (put once in Ray's object store) and one item; the results come back in
the items' order, so the answer is the same serially, on one Ray worker or on many.
"""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Generic, TypeVar

from chipmix.errors import InputError

__all__ = ["Pool", "ray_available"]

C = TypeVar("C")
T = TypeVar("T")
R = TypeVar("R")


def ray_available() -> bool:
    try:
        importlib.import_module("ray")
    except ImportError:
        return False
    return True


def _ray() -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module("ray")
    except ImportError:
        raise InputError(
            "--workers > 1 and --ray-address need Ray: pip install 'chipmix[scale]' "
            "(or run serially with --workers 1)"
        ) from None


class Pool(Generic[C]):
    """Maps a function over items, serially or on Ray; a context manager."""

    def __init__(self, context: C, *, workers: int = 1, address: str | None = None) -> None:
        if workers < 1:
            raise InputError(f"--workers must be at least 1 (got {workers})")
        self.context = context
        self.workers = workers
        self.address = address
        self.ray: Any = None
        self._started = False
        self._shared: Any = None

    @property
    def mode(self) -> str:
        return "serial" if self.ray is None else "ray"

    def __enter__(self) -> Pool[C]:
        if self.workers == 1 and self.address is None:
            return self
        ray = _ray()
        if not ray.is_initialized():
            os.environ.setdefault("RAY_DEDUP_LOGS", "0")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ray.init(
                    address=self.address,
                    num_cpus=None if self.address else self.workers,
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level="error",
                )
            self._started = True
        self.ray = ray
        self._shared = ray.put(self.context)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._started and self.ray is not None:
            self.ray.shutdown()
        self.ray = None

    def map(self, fn: Callable[[C, T], R], items: Sequence[T]) -> list[R]:
        """``[fn(context, item) for item in items]``, in the items' order."""
        if self.ray is None:
            return [fn(self.context, item) for item in items]
        remote = self.ray.remote(num_cpus=1)(fn)
        refs = [remote.remote(self._shared, item) for item in items]
        return list(self.ray.get(refs))
