"""The cache of parsed data files now lives in `chipmix.common.cache` (the prediction-error
model uses it too); these names stay importable from here."""

from __future__ import annotations

from chipmix.common.cache import CACHE_ENV, cache_dir, cached, fingerprint

__all__ = ["CACHE_ENV", "cache_dir", "cached", "fingerprint"]
