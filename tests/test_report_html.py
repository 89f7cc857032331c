"""HTML reports (issue 8): one self-contained file per command with the inputs, the catalog
version, the tables and the plots; no request leaves the page. The browser side is in
test_report_browser.py; here the files themselves, built from small inputs."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import chipmix
from chipmix.catalog.version import catalog_version
from chipmix.cli import app
from chipmix.planning.comparison.pareto import pareto_front
from chipmix.report.html import Page, Table, write_page

runner = CliRunner()

SMALL_CASES = (
    "meg_h100_1.7B",
    "narayanan21_1.7B",
    "maxtext_v5e_16b_1x256",
    "mlperf_v4.0_gpt3_Google_512_tput",
    "mlperf_v5.0_lora_AMD_MI300X_8_tput",
    "trn1_Llama2-7B_752349fd",
    "mlperf_v5.0_l405_NVIDIA_GB200_512_step",
)
"""Seven published rows: five vendors' chips, both metrics."""

PLAN = """\
name: small
start: 2026-01-01
end: 2026-03-31
offers:
  - {catalog: aws-p5.48xlarge-us-east-1-2025-06, max_chips: 512}
  - {catalog: gcp-tpu-v5p-us-central1-2025-01, max_chips: 512}
jobs:
  - {name: pre-8b, model: llama3-8b, tokens: 2e11, deadline: 2026-02-28, chip_counts: [128, 256]}
  - {name: ft-8b, model: llama3-8b, mode: finetune, tokens: 2e10, start: 2026-02-01,
     deadline: 2026-03-15, chip_counts: [64]}
constraints:
  vendor_caps: {nvidia: 70%}
  min_vendors: 2
"""

OFFERS = "aws-p5.48xlarge-us-east-1-2025-06,gcp-tpu-v5p-us-central1-2025-01,trn2"

SCENARIO = """\
name: test outage
outages:
  - {name: region down, start_day: 2, duration_days: 1, capacity_lost: 1.0}
migration: {system: tpu-v5p, chips: 128}
"""

# Small inputs for every command that writes a report: (name, arguments, plots drawn).
COMMANDS: list[tuple[str, list[str], int]] = [
    ("search", ["search", "-m", "llama3-8b", "-s", "h100-sxm", "-n", "64", "--tokens", "1e11"], 2),
    (
        "compare",
        ["compare", "-m", "llama3-8b", "--tokens", "1e12", "-n", "128",
         "--systems", "h100-sxm,trn2,tpu-v5p,mi300x,gaudi3"],
        2,
    ),
    ("validate", ["validate", "--cases", "{cases}"], 2),
    ("plan", ["plan", "{plan}", "--pareto"], 3),
    (
        "budget",
        ["budget", "--usd", "1e6", "-m", "llama3-8b", "--tokens", "1e12", "-n", "256",
         "--offers", OFFERS, "--cap", "nvidia=40%"],
        2,
    ),
    (
        "simulate",
        ["simulate", "-m", "llama3-8b", "-s", "h100-sxm", "-n", "128", "--tokens", "2e11",
         "--replicas", "64", "--scenario", "{scenario}", "--sweep", "--deadline-days", "9"],
        3,
    ),
]  # fmt: skip


def small_cases(folder: Path) -> Path:
    """A case file with `SMALL_CASES` only, in the shipped schema."""
    from chipmix.validate.cases import DEFAULT_CASES

    with DEFAULT_CASES.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = [r for r in reader if r["id"] in SMALL_CASES]
        fields = reader.fieldnames
    assert fields is not None
    assert len(rows) == len(SMALL_CASES)
    out = folder / "cases.csv"
    with out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fields)
        writer.writeheader()
        writer.writerows(rows)
    return out


def make_reports(folder: Path) -> dict[str, tuple[Path, int]]:
    """Run every command with --report into ``folder``: name → (file, plots expected)."""
    folder.mkdir(parents=True, exist_ok=True)
    cases = small_cases(folder)
    scenario = folder / "scenario.yaml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    plan = folder / "plan.yaml"
    plan.write_text(PLAN, encoding="utf-8")
    out = {}
    for name, args, plots in COMMANDS:
        path = folder / f"{name}.html"
        argv = [a.format(cases=cases, scenario=scenario, plan=plan) for a in args]
        result = runner.invoke(app, [*argv, "--report", str(path)])
        assert result.exit_code == 0, (name, result.output)
        out[name] = (path, plots)
    return out


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, int]]:
    return make_reports(tmp_path_factory.mktemp("reports"))


@pytest.mark.parametrize("name", [c[0] for c in COMMANDS])
def test_report_is_one_self_contained_file(reports: dict[str, tuple[Path, int]], name: str) -> None:
    path, plots = reports[name]
    text = path.read_text(encoding="utf-8")
    # plotly.js embedded once; no script, style or image fetched from anywhere.
    assert text.count("<script") == plots + 2  # plotly.js, one per plot, the data
    assert len(re.findall(r"<script[^>]*\bsrc=", text)) == 0
    assert "<link" not in text
    assert "Content-Security-Policy" in text
    assert "default-src 'none'" in text
    assert len(re.findall(r'class="plotly-graph-div"', text)) == plots
    # Outside the library itself nothing names a place to load from.
    from plotly.offline import get_plotlyjs

    assert text.count(get_plotlyjs()) == 1
    own = text.replace(get_plotlyjs(), "")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//|url\(|@import""", own)
    assert 3_000_000 < path.stat().st_size < 8_000_000
    # Inputs, catalog version and tables.
    fingerprint = catalog_version(chipmix.load_catalog()).fingerprint
    assert fingerprint in text
    assert "<h3>Inputs</h3>" in text
    assert "<h3>Catalog</h3>" in text
    assert "<table>" in text
    # The result travels with the page as JSON.
    data = re.search(r'<script type="application/json" id="chipmix-data">(.*?)</script>', text)
    assert data is not None
    assert json.loads(data.group(1))


def test_search_report_draws_the_layouts_tried(reports: dict[str, tuple[Path, int]]) -> None:
    text = reports["search"][0].read_text(encoding="utf-8")
    result = chipmix.search("llama3-8b", "h100-sxm", 64, tokens=1e11)
    assert f"{result.feasible:,} layouts that fit, of {result.tried:,} tried" in text
    assert str(result.best.layout) in text
    assert "Step-time breakdown of the top layouts" in text


def test_compare_report_has_the_front_and_the_tiers(reports: dict[str, tuple[Path, int]]) -> None:
    text = reports["compare"][0].read_text(encoding="utf-8")
    assert "Pareto front" in text
    assert "US$ per million tokens, by price tier" in text
    assert "Systems that cannot do this job" in text or "gaudi3" in text


def test_validate_report_lists_every_row(reports: dict[str, tuple[Path, int]]) -> None:
    text = reports["validate"][0].read_text(encoding="utf-8")
    for case in SMALL_CASES:
        assert case in text
    assert "±10%" in text


def test_simulate_report_has_the_sample_run(reports: dict[str, tuple[Path, int]]) -> None:
    text = reports["simulate"][0].read_text(encoding="utf-8")
    assert "A sample run (replica" in text
    assert "region down" in text
    assert "Checkpoint interval: mean ETTR" in text


def test_plan_report_shows_the_scenario_and_the_allocation(
    reports: dict[str, tuple[Path, int]],
) -> None:
    text = reports["plan"][0].read_text(encoding="utf-8")
    assert "The scenario file (" in text
    assert "min_vendors: 2" in text  # the file as written
    assert "Allocation over time" in text
    assert "Cost against completion" in text
    assert "pre-8b" in text
    assert "ft-8b" in text


def test_budget_report_has_the_purchases(reports: dict[str, tuple[Path, int]]) -> None:
    text = reports["budget"][0].read_text(encoding="utf-8")
    assert "What $1M buys over 1 year" in text
    assert "runs of llama3-8b" in text
    assert "Spend per vendor" in text


def test_simulate_plan_mode_refuses_a_report(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN, encoding="utf-8")
    args = ["simulate", "--plan", str(plan), "--report", str(tmp_path / "x.html")]
    result = runner.invoke(app, args)
    assert result.exit_code != 0
    assert "not available with --plan" in str(result.exception)


def test_report_shows_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from chipmix.cli import main

    path = tmp_path / "s.html"
    argv = ["search", "-m", "llama3-8b", "-s", "h100-sxm", "-n", "8", "--global-batch", "64"]
    monkeypatch.setattr("sys.argv", ["chipmix", *argv, "--report", str(path)])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 0
    assert "report: " in capsys.readouterr().err
    text = path.read_text(encoding="utf-8")
    assert f'class="cmd">chipmix {" ".join(argv)} --report {path}</code>' in text


def test_report_with_json_keeps_stdout_json(tmp_path: Path) -> None:
    path = tmp_path / "s.html"
    args = ["search", "-m", "llama3-8b", "-s", "h100-sxm", "-n", "8", "--global-batch", "64"]
    result = runner.invoke(app, [*args, "--json", "--report", str(path)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["tried"] > 0
    assert path.exists()


def test_page_escapes_text_and_keeps_scripts_closed(tmp_path: Path) -> None:
    page = Page(
        title="<b>x</b>", inputs=[("a", "<script>alert(1)</script>")], data={"s": "</script>"}
    )
    page.table(Table(["col"], [["<i>"]], title="t & u"))
    text = write_page(page, tmp_path / "p.html").read_text(encoding="utf-8")
    assert "<b>x</b>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;i&gt;" in text
    assert '"<\\/script>"' in text


@pytest.mark.parametrize(
    ("points", "front", "why"),
    [
        ([], [], "nothing"),
        ([(1.0, 1.0)], [0], "one point"),
        ([(1.0, 5.0), (2.0, 3.0), (3.0, 4.0), (4.0, 1.0)], [0, 1, 3], "(3, 4) beaten by (2, 3)"),
        ([(2.0, 2.0), (1.0, 3.0), (2.0, 2.0)], [1, 0, 2], "equal points both kept"),
        ([(1.0, 2.0), (1.0, 3.0), (2.0, 2.0)], [0], "same x or same y, larger: dominated"),
    ],
)
def test_pareto_front(points: list[tuple[float, float]], front: list[int], why: str) -> None:
    assert pareto_front(points) == front, why


def test_catalog_fingerprint_follows_the_files(tmp_path: Path) -> None:
    shipped = catalog_version(chipmix.load_catalog())
    again = catalog_version(chipmix.load_catalog())
    assert shipped.fingerprint == again.fingerprint
    assert re.fullmatch(r"[0-9a-f]{12}", shipped.fingerprint)
    assert shipped.num_chips >= 26
    assert shipped.newest_source >= "2025"
    (tmp_path / "offers").mkdir()
    (tmp_path / "offers" / "none.yaml").write_text("offers: []\n", encoding="utf-8")
    overlaid = catalog_version(chipmix.load_catalog(tmp_path))
    assert overlaid.fingerprint != shipped.fingerprint
    assert overlaid.folders[-1] == str(tmp_path)


# -- in the browser ---------------------------------------------------------------------------
def _browser_or_skip() -> None:
    """Skip when no Chromium (or Playwright) is installed, except in CI, which must have
    both: scripts/check installs Debian's chromium and the dev extra brings Playwright."""
    import importlib.util
    import os

    from reportbrowser import find_chromium

    missing = []
    if importlib.util.find_spec("playwright") is None:
        missing.append("the playwright package (pip install -e '.[dev]')")
    if find_chromium() is None:
        missing.append("Chromium (apt-get install chromium, or set CHIPMIX_CHROMIUM)")
    if not missing:
        return
    reason = "no browser to open the reports: install " + " and ".join(missing)
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; scripts/check installs them in CI")
    pytest.skip(reason)


@pytest.mark.browser
def test_reports_open_in_headless_chromium(reports: dict[str, tuple[Path, int]]) -> None:
    """Each report opens with no console error and no network request, and every plot
    draws (an SVG with traces and drawn marks)."""
    _browser_or_skip()
    from reportbrowser import open_reports

    names = list(reports)
    seen = open_reports([reports[n][0] for n in names])
    for name, opened in zip(names, seen, strict=True):
        assert opened.console_errors == [], name
        assert opened.requests == [], name
        assert len(opened.plots) == reports[name][1], name
        assert opened.empty_plots == [], (name, opened.plots)
