"""`chipmix validate --cross-validate` and `chipmix calibrate` (issue 16): CPU time of the
whole command (imports, reading, fitting, printing) as a fresh process, median of N.
Goal: each cross-validation at most 8 s of CPU.

    .venv/bin/python benchmarks/crossval_speed.py [--repeat 3] [--save DIR] [--compare DIR]

``--save DIR`` keeps each command's output (the cross-validations' JSON documents, the
fitted calibration file); ``--compare DIR`` checks this run's outputs against saved ones:
every number within 1e-9 relative, everything else equal. Save on one commit, compare on
another with the same model code, to show a speed-up changed no number.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

RELATIVE = 1e-9
COMMANDS: dict[str, list[str]] = {
    "cv-source.json": ["validate", "--cross-validate", "source", "--json"],
    "cv-chip.json": ["validate", "--cross-validate", "chip", "--json"],
    "calibration.yaml": ["calibrate", "--out"],
}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(name: str, out: Path) -> float:
    """CPU seconds of one command; its output written to ``out / name``."""
    args = [sys.executable, "-m", "chipmix.cli", *COMMANDS[name]]
    target = out / name
    before = _children_cpu()
    if name.endswith(".yaml"):
        subprocess.run([*args, str(target)], check=True, stdout=subprocess.DEVNULL)
    else:
        with target.open("w") as stdout:
            subprocess.run(args, check=True, stdout=stdout)
    return _children_cpu() - before


def _same(a: Any, b: Any, where: str) -> float:
    """The largest relative difference between two JSON documents' numbers."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            raise SystemExit(f"{where}: keys differ")
        return max([_same(a[k], b[k], f"{where}.{k}") for k in a], default=0.0)
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            raise SystemExit(f"{where}: lengths differ")
        pairs = enumerate(zip(a, b, strict=True))
        return max([_same(x, y, f"{where}[{i}]") for i, (x, y) in pairs], default=0.0)
    if isinstance(a, float) and isinstance(b, float):
        worst = abs(a - b) / max(abs(a), abs(b), 1e-300)
        if worst > RELATIVE:
            raise SystemExit(f"{where}: {a!r} against {b!r}")
        return worst
    if a != b:
        raise SystemExit(f"{where}: {a!r} against {b!r}")
    return 0.0


def compare(saved: Path, now: Path) -> None:
    for name in COMMANDS:
        if name.endswith(".json"):
            worst = _same(json.loads((saved / name).read_text()),
                          json.loads((now / name).read_text()), name)  # fmt: skip
            print(f"{name}: every number within {RELATIVE:g} (largest difference {worst:.1e})")
        elif (saved / name).read_bytes() != (now / name).read_bytes():
            raise SystemExit(f"{name}: differs")
        else:
            print(f"{name}: identical")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--save", type=Path)
    parser.add_argument("--compare", type=Path)
    args = parser.parse_args()
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed copy has its bytecode
    with tempfile.TemporaryDirectory() as tmp:
        out = args.save or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        print(f"load average {os.getloadavg()[0]:.1f} before")
        for name, command in COMMANDS.items():
            times = [run(name, out) for _ in range(args.repeat)]
            print(f"chipmix {' '.join(command[:3])}: CPU median {statistics.median(times):.2f} s"
                  f" (min {min(times):.2f}, max {max(times):.2f}, n={args.repeat})")  # fmt: skip
        print(f"load average {os.getloadavg()[0]:.1f} after")
        if args.compare is not None:
            compare(args.compare, out)


if __name__ == "__main__":
    main()
