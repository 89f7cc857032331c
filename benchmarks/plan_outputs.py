"""The `plan --json` documents of the examples, written to a folder: to check that a change
to the planner's speed leaves its answers alone.

Four documents, each from a fresh process with nothing cached (``CHIPMIX_CACHE_DIR=""``):
the training example (`frontier-lab-2026`), the same with ``--pareto`` and with
``--futures 20``, and the serving example (`serving-lab-2026`). ``stats`` (timings, solve
counts, cache hits) is dropped from each; everything else is written as sorted JSON, so two
folders compare with ``diff -r``. Run it once on each version (an older one through
``PYTHONPATH`` on an export of its commit) and compare:

    .venv/bin/python benchmarks/plan_outputs.py OUT_DIR
    PYTHONPATH=/path/to/old/src .venv/bin/python benchmarks/plan_outputs.py OLD_DIR
    diff -r OLD_DIR OUT_DIR && echo same
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FRONTIER = "examples/frontier-lab-2026.yaml"
SERVING = "examples/serving-lab-2026.yaml"
CASES = {
    "frontier": [FRONTIER],
    "frontier-pareto": [FRONTIER, "--pareto"],
    "frontier-futures-20": [FRONTIER, "--futures", "20"],
    "serving": [SERVING],
}


def document(args: list[str]) -> dict[str, object]:
    """One `plan --json` document, ``stats`` dropped."""
    env = {**os.environ, "CHIPMIX_CACHE_DIR": ""}
    done = subprocess.run(
        [sys.executable, "-m", "chipmix.cli", "plan", *args, "--json"],
        cwd=ROOT, check=True, capture_output=True, text=True, env=env,
    )  # fmt: skip
    doc = json.loads(done.stdout)
    assert isinstance(doc, dict)
    doc.pop("stats", None)
    return doc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write the documents to")
    parser.add_argument("--only", choices=sorted(CASES), action="append", help="some cases")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.only or CASES:
        doc = document(CASES[name])
        path = args.out / f"{name}.json"
        path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"{path}", file=sys.stderr)


if __name__ == "__main__":
    main()
