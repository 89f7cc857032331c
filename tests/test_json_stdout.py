"""Every command with ``--json`` run as a separate process, as a user's script would: stdout
is one JSON document and nothing else (no solver banner from a native library, no progress
bar, no warning), parsed with `json.loads`.

The in-process tests cannot see what a C library writes to file descriptor 1; only a real
process can. (``bench`` measures a device for a minute and has its own stdout test.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chipmix.validate.cases import DEFAULT_CASES

SCENARIO = """\
name: json-stdout
start: 2026-01-05
end: 2026-02-15
offers:
  - catalog: aws-p5.48xlarge-us-east-1-2025-06
    max_chips: 32
  - catalog: azure-nd-mi300x-v5-2026-04
    max_chips: 16
jobs:
  - {name: a, model: llama3.2-1b, tokens: 3e11, global_batch: 256, deadline: 2026-01-25,
     chip_counts: [16, 32]}
"""

JOB = ["-m", "llama3.2-1b", "-s", "h100-sxm", "-n", "8"]
COMMANDS = {
    "estimate": ["estimate", *JOB, "--tokens", "1e9"],
    "search": ["search", *JOB, "--top", "2"],
    "compare": ["compare", "-m", "llama3.2-1b", "--tokens", "1e9", "--systems", "h100-sxm,trn2"],
    "catalog chips": ["catalog", "chips"],
    "catalog systems": ["catalog", "systems"],
    "catalog offers": ["catalog", "offers", "--all-vintages"],
    "models": ["models"],
    "validate": ["validate"],
    "calibrate": ["calibrate", "--cases", "{cases}", "--out", "{tmp}/fitted.yaml"],
    "simulate": ["simulate", *JOB, "--tokens", "1e9", "--replicas", "20"],
    "plan": ["plan", "{scenario}", "--no-sensitivity"],
    "plan infeasible": ["plan", "{infeasible}"],
    "budget": ["budget", "--usd", "1e8", "--years", "1"],
    "budget runs": ["budget", "--runs", "2", "-m", "llama3.2-1b", "--tokens", "1e11"],
    "serve compare": ["serve", "compare", "-m", "llama3.2-1b", "--systems", "h100-sxm,mi300x"],
}


def chipmix(args: list[str], tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CHIPMIX_CATALOG"}
    env["COLUMNS"] = "80"
    return subprocess.run(
        [sys.executable, "-m", "chipmix.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize("name", list(COMMANDS))
def test_json_stdout_is_one_document(name: str, tmp_path: Path) -> None:
    (tmp_path / "scenario.yaml").write_text(SCENARIO)
    (tmp_path / "infeasible.yaml").write_text(SCENARIO.replace("tokens: 3e11", "tokens: 3e14"))
    rows = Path(DEFAULT_CASES).read_text(encoding="utf-8").splitlines()
    (tmp_path / "cases.csv").write_text("\n".join(rows[:9]) + "\n", encoding="utf-8")
    fill = {
        "{tmp}": str(tmp_path),
        "{scenario}": str(tmp_path / "scenario.yaml"),
        "{infeasible}": str(tmp_path / "infeasible.yaml"),
        "{cases}": str(tmp_path / "cases.csv"),
    }
    args = []
    for arg in COMMANDS[name]:
        for key, value in fill.items():
            arg = arg.replace(key, value)
        args.append(arg)
    done = chipmix([*args, "--json"], tmp_path)
    assert done.returncode == (2 if name == "plan infeasible" else 0), done.stderr[-2000:]
    data = json.loads(done.stdout)  # the whole of stdout, banner-free
    assert isinstance(data, dict | list)
    assert data
    if done.returncode == 0:
        assert "Traceback" not in done.stderr
