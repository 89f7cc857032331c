"""What a small command loads (issue 16): ``chipmix estimate --json`` imports neither the
planner, the simulator, the serving model, HiGHS, plotly nor rich, and no other command's
module; a ``--json`` prints without rich. Checked in a fresh interpreter (no timing)."""

from __future__ import annotations

import json
import subprocess
import sys

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
