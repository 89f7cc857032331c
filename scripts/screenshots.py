"""Make every command's HTML report from the examples below, check it in headless
Chromium and save a screenshot of its top in docs/reports/<command>.png (see
scripts/screenshots)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from reportbrowser import find_chromium, open_reports  # noqa: E402

OUT = ROOT / "docs" / "reports"
INPUTS = Path("docs/reports/inputs")
"""Relative to the repository root, where the commands run (so the reports show short paths)."""
HTML = ROOT / "build" / "reports"
"""Where the HTML reports are written (ignored by git)."""
JOB = ["-m", "llama3-70b", "--tokens", "15e12", "--seq-len", "8192", "--global-batch", "2048"]

EXAMPLES: dict[str, list[str]] = {
    "compare": ["compare", *JOB],
    "search": ["search", *JOB, "-s", "h100-sxm", "-n", "1024"],
    "plan": ["plan", str(INPUTS / "plan.yaml"), "--pareto"],
    "budget": ["budget", "--usd", "50e6", "--years", "2", *JOB[:4], "--cap", "google=50%"],
    "simulate": [
        "simulate", *JOB, "-s", "h100-sxm", "-n", "1024",
        "--scenario", str(INPUTS / "outage.yaml"), "--sweep", "--deadline-days", "150",
    ],
    "validate": ["validate", "--cross-validate", "source"],
}  # fmt: skip
"""The command line of each report (as the README shows them)."""


def has_report(chipmix: Path, command: str) -> bool:
    help_text = subprocess.run(
        [str(chipmix), command, "--help"], capture_output=True, text=True, check=False
    ).stdout
    return "--report" in help_text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--html", type=Path, default=HTML, help="folder for the HTML reports (build/reports)"
    )
    parser.add_argument("--only", help="comma-separated commands (default: all)")
    parser.add_argument("--max-height", type=int, default=2200, help="pixels of each page")
    args = parser.parse_args()
    if find_chromium() is None:
        print("no Chromium: apt-get install chromium (or set CHIPMIX_CHROMIUM)", file=sys.stderr)
        return 2
    chipmix = Path(sys.executable).parent / "chipmix"
    names = args.only.split(",") if args.only else list(EXAMPLES)
    folder = args.html.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for name in names:
        if not has_report(chipmix, name):
            print(f"skip {name}: `chipmix {name}` has no --report yet", file=sys.stderr)
            continue
        path = folder / f"{name}.html"
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        argv = ["chipmix", *EXAMPLES[name], "--report", str(shown)]
        print("$ " + " ".join(argv), file=sys.stderr)
        subprocess.run([str(chipmix), *argv[1:]], check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
        made.append(path)
    failed = False
    for seen in open_reports(made, screenshots=OUT, max_height=args.max_height):
        problems = seen.console_errors + seen.requests + seen.empty_plots
        status = "ok" if not problems else f"PROBLEMS {problems}"
        size = seen.path.stat().st_size / 1e6
        print(f"{seen.path.name}: {size:.1f} MB, {len(seen.plots)} plots, {status}")
        failed |= bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
