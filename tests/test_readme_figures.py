"""The README's figures agree with chipmix.

Every figure the README quotes from a chipmix run is computed by ``scripts/update-readme``
(``scripts/readme_figures.py``, ``scripts/readme_claim.py``). These tests recompute them
and fail when the README disagrees beyond its own rounding: run ``scripts/update-readme``.
The validation tables themselves take a cross-validated fit to recompute (a minute);
the prose figures are checked against them here, the tables against the model by the
validation tests' measured bounds.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _script(name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


figures = _script("readme_figures")
claim = _script("readme_claim")
MARKERS = figures.markers(README)


def test_the_readme_quotes_its_figures_through_markers() -> None:
    specs = [spec for spec, _ in MARKERS]
    assert any(s.startswith("training ") for s in specs)
    assert any(s.startswith("serving ") for s in specs)
    assert any(s.startswith("coverage ") for s in specs)
    assert claim.START in README
    assert claim.END in README


@pytest.mark.parametrize(("spec", "value"), MARKERS, ids=[s for s, _ in MARKERS])
def test_every_quoted_figure_is_what_chipmix_gives(spec: str, value: str) -> None:
    assert figures.figure(spec, README) == value, "run scripts/update-readme"


# -- the worked vendor claim -----------------------------------------------------------------
def _section() -> str:
    return README[README.index(claim.START) : README.index(claim.END)]


_CELL = re.compile(r"(\d+\.\d\d)× \[(\d+\.\d\d)–(\d+\.\d\d)\]")


def test_the_vendor_claim_table_is_what_compare_gives_within_rounding() -> None:
    computed = claim.compute()
    shown = [tuple(float(x) for x in m.groups()) for m in _CELL.finditer(_section())]
    cells = [
        computed["before"]["chips"],
        computed["after"]["chips"],
        computed["before"]["deadline"],
        computed["after"]["deadline"],
    ]
    assert len(shown) == len(cells)
    for (ratio, p10, p90), cell in zip(shown, cells, strict=True):
        assert ratio == pytest.approx(cell.ratio, abs=0.0051), "run scripts/update-readme"
        assert p10 == pytest.approx(cell.p10, abs=0.0051)
        assert p90 == pytest.approx(cell.p90, abs=0.0051)
    deadline = computed["after"]["deadline"]
    assert f"trn2 needs {deadline.chips:,} chips, P5en {deadline.baseline_chips:,}" in " ".join(
        _section().split()
    )
    price_then, _ = computed["price_before"]
    price_now, _ = computed["price_after"]
    assert f"${price_then:,.2f}/h" in _section()
    assert f"${price_now:,.2f}/h" in _section()


def test_the_vendor_claim_prose_follows_the_tables_numbers() -> None:
    """The verb (holds / shrinks / turns) is chosen from the ratio shown in the table."""
    text = " ".join(_section().split())
    ratios = [float(m.group(1)) for m in _CELL.finditer(_section())]
    before_chips, after_chips, before_deadline, after_deadline = ratios
    assert f"the claim {claim.verdict(before_chips)};" in text
    assert f"after P5en's price cut it {claim.verdict(after_chips)}." in text
    assert f"it {claim.verdict(before_deadline)} at the old price" in text
    assert f"and {claim.verdict(after_deadline)} at today's." in text


@pytest.mark.parametrize(
    ("ratio", "words"),
    [
        (1.37, "holds (+37 %)"),
        (1.30, "holds (+30 %)"),
        (1.45, "holds and more (+45 %)"),
        (1.02, "shrinks to +2 %"),
        (1.004, "vanishes (±0 %)"),
        (0.92, "turns into −8 %"),
    ],
)
def test_the_verdict_is_chosen_by_the_sign_and_size_of_the_advantage(
    ratio: float, words: str
) -> None:
    assert claim.verdict(ratio) == words


# -- the marker language ---------------------------------------------------------------------
_TABLE = """<!-- validation:start -->
| case | chip | stack | published | predicted | error | LOSO error | LOCO error |
|---|---|---|---:|---:|---:|---:|---:|
| a_1 | c | s | 1 | 1 | +24.5% | -3.0% | -40.4% |
| a_2 | c | s | 1 | 1 | +20.2% | +6.6% | -35.6% |
| b_1 | c | s | 1 | 1 | -0.4% | +0.4% | +1.0% |
<!-- validation:end -->"""


@pytest.mark.parametrize(
    ("spec", "value"),
    [
        ("training error signed a_*", "+20–25%"),  # 24.5 rounds half away from zero
        ("training loso signed a_*", "−3% to +7%"),
        ("training loco signed a_*", "−36% to −40%"),
        ("training loco abs a_1,b_1", "1–40%"),
        ("training error within *", "25%"),
        ("training error signed b_1", "±0%"),
        ("training loso signed a_1", "−3%"),
    ],
)
def test_a_table_figure_is_read_from_the_generated_table(spec: str, value: str) -> None:
    assert figures.figure(spec, _TABLE) == value
    assert figures.fill(f"x <!--fig {spec}-->?<!--/fig--> y\n{_TABLE}").startswith(
        f"x <!--fig {spec}-->{value}<!--/fig--> y"
    )


def test_a_marker_naming_no_row_or_no_kind_is_an_error() -> None:
    with pytest.raises(ValueError, match="no row"):
        figures.figure("training error signed zz_*", _TABLE)
    with pytest.raises(ValueError, match="unknown kind"):
        figures.figure("nonsense", _TABLE)
