"""Property tests try the same examples on every run (issue 16: a CI that cannot flake).

Hypothesis draws its examples from a fixed seed and keeps no database of earlier failures,
so a run's outcome depends only on the code. ``HYPOTHESIS_PROFILE=explore`` draws fresh
random examples on each run, to look for new counterexamples; one it finds belongs in the
test as an ``@example``."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))
