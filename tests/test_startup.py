"""What a small command loads (issue 16): ``chipmix estimate --json`` imports neither the
planner, the simulator, the serving model, HiGHS, plotly nor rich, and no other command's
module; a ``--json`` prints without rich. Checked in a fresh interpreter (no timing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
import contextlib, io, json, sys
from chipmix.cli.commands import run
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = run(["estimate", "-m", "llama3-8b", "-s", "h100-sxm", "-n", "64", "--tokens", "1e12",
                "--json"])
print(json.dumps({"code": code, "out": out.getvalue(), "modules": sorted(sys.modules)}))
"""

NOT_LOADED = (
    "chipmix.planning.portfolio",
    "chipmix.planning.comparison",
    "chipmix.sim",
    "chipmix.serve",
    "chipmix.cli.plan",
    "chipmix.cli.serve",
    "chipmix.cli.simulate",
    "chipmix.cli.validate",
    "chipmix.cli.bench",
    "highspy",
    "plotly",
    "rich",
    "torch",
)


def test_estimate_json_loads_only_what_it_uses() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=300
    )
    report = json.loads(done.stdout)
    assert report["code"] == 0
    assert json.loads(report["out"])["tokens_per_s"] > 0
    loaded = [
        m for m in report["modules"] for name in NOT_LOADED if m == name or m.startswith(name + ".")
    ]
    assert not loaded, loaded


BUILT = """
import contextlib, io, json, sys
from pydantic import BaseModel
from chipmix.cli.commands import run
with contextlib.redirect_stdout(io.StringIO()):
    run(["estimate", "-m", "llama3-8b", "-s", "h100-sxm", "-n", "64", "--json"])
def subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)
print(json.dumps(sorted(
    c.__name__ for c in subclasses(BaseModel)
    if c.__module__.startswith("chipmix.") and c.__pydantic_complete__
)))
"""


def test_estimate_builds_only_the_models_it_validates(tmp_path: Path) -> None:
    """The catalog's models come from the cache already valid: their validators are built
    on first use (``defer_build``), so ``estimate`` builds only those of its input."""
    env = {**os.environ, "CHIPMIX_CACHE_DIR": str(tmp_path)}
    argv = [sys.executable, "-c", BUILT]
    subprocess.run(argv, capture_output=True, check=True, timeout=300, env=env)  # fills it
    done = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=300, env=env)
    assert json.loads(done.stdout) == ["Job", "ModelSpec"]


BLAS_PROBE = """
import json, os
from chipmix.cli.commands import _numpy_on_one_blas_thread
_numpy_on_one_blas_thread()
import numpy, threadpoolctl
info = threadpoolctl.threadpool_info()
pools = [p["num_threads"] for p in info if p["internal_api"] == "openblas"]
print(json.dumps({"pools": pools, "env": os.environ.get("OPENBLAS_NUM_THREADS")}))
"""


def _blas(env_value: str | None) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if env_value is not None:
        env["OPENBLAS_NUM_THREADS"] = env_value
    done = subprocess.run(
        [sys.executable, "-c", BLAS_PROBE], capture_output=True, text=True, env=env, check=True
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_the_command_line_runs_numpy_on_one_blas_thread_and_leaves_the_environment() -> None:
    assert _blas(None) == {"pools": [1], "env": None}


def test_a_thread_count_the_user_chose_is_kept() -> None:
    assert _blas("2") == {"pools": [2], "env": "2"}


MALLOC_PROBE = """
import json
from chipmix.cli.commands import _malloc_keeps_freed_memory
print(json.dumps(_malloc_keeps_freed_memory()))
"""


def _malloc(env_extra: dict[str, str]) -> bool:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.pop("GLIBC_TUNABLES", None)
    done = subprocess.run(
        [sys.executable, "-c", MALLOC_PROBE], capture_output=True, text=True,
        env=env | env_extra, check=True,
    )  # fmt: skip
    result: bool = json.loads(done.stdout)
    return result


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_the_command_line_keeps_freed_memory_unless_the_user_tuned_malloc() -> None:
    assert _malloc({}) is True
    assert _malloc({"MALLOC_ARENA_MAX": "2"}) is False
    assert _malloc({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1000000"}) is False
