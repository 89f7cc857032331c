"""Generated bad input, in-process through the console entry point: every case must end
in one clear error (exit status 2, a line starting "error:"), never an uncaught exception,
an internal error or a success.

The categories: bad numbers in every numeric option (NaN, infinities, huge, negative,
zero, booleans, text), bad paths where a file or a folder is read or written (folders,
missing parents, files used as folders, over-long names, /proc, NUL bytes), unreadable
files (binary, not UTF-8, nesting and alias bombs, non-finite and huge numbers), and
mutated model files, plan and outage scenarios, cases files and catalog overlays (bad
figures, zero prices, booleans as numbers, malformed entries). Hypothesis runs with a fixed
seed (derandomized, no example database), so every CI run tries the same cases.
"""

from __future__ import annotations

import copy
import io
import itertools
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chipmix.catalog.catalog import DATA_DIR
from chipmix.cli.commands import run
from chipmix.workload.registry import PRESET_DIR

CASES = settings(
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_counter = itertools.count()
WORK = Path(tempfile.mkdtemp(prefix="chipmix-bad-input-"))


@pytest.fixture(autouse=True)
def _no_user_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHIPMIX_CATALOG", raising=False)
    monkeypatch.setenv("COLUMNS", "100")


def fresh(name: str) -> Path:
    """A new empty folder for one example, holding ``name`` later."""
    folder = WORK / f"case{next(_counter)}"
    folder.mkdir()
    return folder / name


TRIED: dict[str, int] = {}
"""Cases tried per generated test, checked against `MIN_CASES` at the end of the module."""
MIN_CASES = 2000
GENERATED = ("test_bad_numbers_in_options", "test_bad_paths", "test_unreadable_files",
             "test_mutated_documents", "test_malformed_overlays")  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def _enough_cases(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every run of the whole module tries at least `MIN_CASES` generated cases."""
    yield
    if set(TRIED) == set(GENERATED) and not request.session.testsfailed:
        assert sum(TRIED.values()) >= MIN_CASES, TRIED


def refused(argv: list[str]) -> None:
    """``chipmix ARGV`` ends in one clear error: status 2, nothing on stdout."""
    test = os.environ.get("PYTEST_CURRENT_TEST", "").split("::")[-1].split(" ")[0]
    TRIED[test] = TRIED.get(test, 0) + 1
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = run(argv)
    shown = f"chipmix {' '.join(argv)[:300]}\nstdout: {out.getvalue()[-300:]}\n"
    shown += f"stderr: {err.getvalue()[-600:]}"
    assert code == 2, shown
    assert err.getvalue().startswith("error: "), shown
    assert "internal error" not in err.getvalue(), shown
    assert "Traceback" not in err.getvalue(), shown


# -- numbers in options -------------------------------------------------------------------
MODEL = ["-m", "llama3.2-1b"]
JOB = [*MODEL, "-s", "h100-sxm", "-n", "8"]
BASES = {
    "estimate": ["estimate", *JOB],
    "search": ["search", *JOB],
    "compare": ["compare", *MODEL, "--tokens", "1e9", "--systems", "h100-sxm"],
    "simulate": ["simulate", *JOB, "--tokens", "1e9", "--replicas", "5"],
    "budget": ["budget", "--usd", "1e6"],
    "budget-model": ["budget", "--usd", "1e6", *MODEL, "--tokens", "1e9"],
    "serve-estimate": ["serve", "estimate", *JOB],
    "serve-search": ["serve", "search", *JOB],
    "serve-compare": ["serve", "compare", *MODEL, "--systems", "h100-sxm"],
}
NOT_NUMBERS = ["nan", "NaN", "inf", "-inf", "1e999", "true", "false", "", "abc", "1,000",
               "0x10", "½", "1e5x", "--"]  # fmt: skip
NEGATIVE = ["-1", "-0.5", "-1e300", f"-{10**40}"]
HUGE_INT = st.integers(min_value=10**8, max_value=10**400).map(str)
HUGE_FLOAT = st.sampled_from(["1e30", "1e300", "1.7e308", str(10**400), "9" * 40])
FLOATS = {"--tokens", "--deadline-days", "--budget-usd", "--usd", "--years", "--ttft-p99-ms",
          "--tpot-p99-ms", "--tokens-per-day"}  # fmt: skip
# (command base, option, kind): "pos" must be > 0, "nonneg" >= 0; each with its bad values.
NUMERIC = [
    *[(b, o, "pos") for b in ("estimate", "search")
      for o in ("--chips", "--seq-len", "--global-batch", "--tokens", "--tp", "--pp", "--dp",
                "--cp", "--ep", "--vpp", "--micro-batch")],
    ("estimate", "--zero", "stage"),
    ("search", "--top", "pos"),
    *[("compare", o, "pos") for o in ("--chips", "--deadline-days", "--budget-usd",
                                      "--seq-len", "--global-batch", "--tokens")],
    *[("simulate", o, "pos") for o in ("--chips", "--tokens", "--replicas", "--deadline-days",
                                       "--seq-len", "--global-batch")],
    ("simulate", "--seed", "nonneg"),
    ("simulate", "--hot-spares", "nonneg"),
    *[("budget", o, "pos") for o in ("--usd", "--years", "--max-chips")],
    *[("budget-model", o, "pos") for o in ("--chips", "--tokens", "--seq-len",
                                           "--global-batch")],
    *[("serve-estimate", o, "pos") for o in ("--chips", "--input-len", "--output-len",
                                             "--ttft-p99-ms", "--tpot-p99-ms", "--tp", "--batch")],
    ("serve-search", "--top", "pos"),
    *[("serve-compare", o, "pos") for o in ("--chips", "--tokens-per-day")],
]  # fmt: skip


@st.composite
def bad_number(draw: st.DrawFn, kind: str) -> str:
    huge = {"pos": HUGE_INT, "float": HUGE_FLOAT}.get(kind, st.integers(2**64, 10**400).map(str))
    pools: list[st.SearchStrategy[str]] = [st.sampled_from(NOT_NUMBERS), huge, HUGE_FLOAT]
    pools.append(st.sampled_from(NEGATIVE))
    if kind in ("pos", "float"):
        pools.append(st.sampled_from(["0", "0.0", "-0"]))
    if kind == "stage":
        pools.append(st.sampled_from(["4", "5", "-1", "99"]))
    return draw(st.one_of(pools))


@settings(CASES, max_examples=1300)
@given(case=st.sampled_from(NUMERIC), data=st.data())
def test_bad_numbers_in_options(case: tuple[str, str, str], data: st.DataObject) -> None:
    base, option, kind = case
    value = data.draw(bad_number("float" if option in FLOATS else kind))
    refused([*BASES[base], f"{option}={value}"])


# -- paths ----------------------------------------------------------------------------------
def _existing_file() -> Path:
    path = fresh("file.txt")
    path.write_text("x\n")
    return path


def bad_path(kind: str, suffix: str) -> str:
    """A path that cannot be used: ``kind`` says how."""
    if kind == "folder":
        return str(fresh("x").parent)
    if kind == "missing":
        return str(WORK / "no-such-folder" / f"missing{suffix}")
    if kind == "long":
        return str(WORK / ("n" * 300 + suffix))
    if kind == "long-path":
        return "/".join(["d" * 200] * 25) + suffix
    if kind == "proc":
        return "/proc/self/status" if suffix else "/proc/self"
    if kind == "under-file":
        return str(_existing_file() / f"x{suffix}")
    if kind == "nul":
        return f"bad\0name{suffix}"
    if kind == "empty":
        return ""
    raise AssertionError(kind)


PATH_KINDS = ["folder", "missing", "long", "long-path", "proc", "under-file", "nul", "empty"]
# (argv with {} for the path, suffix the path takes, path kinds that do not apply)
PATH_USES: list[tuple[list[str], str, set[str]]] = [
    (["search", *JOB, "--report", "{}"], ".html", {"missing"}),
    (["compare", *MODEL, "--tokens", "1e9", "--report", "{}"], ".html", {"missing"}),
    (["simulate", *JOB, "--tokens", "1e9", "--report", "{}"], ".html", {"missing"}),
    (["validate", "--report", "{}"], ".html", {"missing"}),
    (["validate", "--cases", "{}"], ".csv", set()),
    (["calibrate", "--out", "{}"], ".yaml", set()),
    (["catalog", "chips", "--catalog", "{}"], "", {"folder"}),
    (["estimate", "-m", "{}", "-s", "h100-sxm", "-n", "8"], ".yaml", set()),
    (["estimate", "-m", "{}", "-s", "h100-sxm", "-n", "8"], ".json", set()),
    (["plan", "{}"], ".yaml", set()),
    (["simulate", *JOB, "--tokens", "1e9", "--scenario", "{}"], ".yaml", set()),
    (["simulate", "--plan", "{}"], ".yaml", set()),
    (["plan", "{}", "--futures", "2"], ".yaml", set()),
    (["validate", "--from-bench", "{}"], ".sqlite", set()),
]


@settings(CASES, max_examples=250)
@given(use=st.sampled_from(PATH_USES), kind=st.sampled_from(PATH_KINDS))
def test_bad_paths(use: tuple[list[str], str, set[str]], kind: str) -> None:
    argv, suffix, skip = use
    if kind in skip:
        kind = "long"
    # a folder is right for --catalog: give it a file instead
    path = str(_existing_file()) if kind == "folder" and not suffix else bad_path(kind, suffix)
    refused([path if a == "{}" else a for a in argv])


# -- unreadable files -----------------------------------------------------------------------
def nesting(depth: int, json_style: bool) -> str:
    return "[" * depth + "1" + "]" * depth if json_style else "a:\n" + "[" * depth


BOMBS = [
    lambda: b"\x00\x01\x02binary\xff" * 100,
    lambda: "caf\xe9 = 1\n".encode("latin-1"),
    lambda: b"\xff\xfe" + "name: x\n".encode("utf-16-le"),
    lambda: nesting(5000, True).encode(),
    lambda: nesting(200, True).encode(),
    lambda: ("a: &a [1,1,1,1,1,1,1,1,1,1]\n" + "".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True))).encode(),  # billion laughs
    lambda: b"num_layers: .nan\n",
    lambda: b"num_layers: .inf\nhidden_size: -.inf\n",
    lambda: b"hidden_size: 1e400\n",
    lambda: ("hidden_size: " + "9" * 5000 + "\n").encode(),
    lambda: b'{"hidden_size": NaN}',
    lambda: b'{"hidden_size": Infinity}',
    lambda: ('{"hidden_size": ' + "9" * 5000 + "}").encode(),
    lambda: b"- [unclosed\n",
    lambda: b"",
    lambda: b"!!python/object/apply:os.system ['true']\n",
]  # fmt: skip
FILE_USES: list[tuple[list[str], str]] = [
    (["estimate", "-m", "{}", "-s", "h100-sxm", "-n", "8"], "model.yaml"),
    (["estimate", "-m", "{}", "-s", "h100-sxm", "-n", "8"], "config.json"),
    (["plan", "{}"], "scenario.yaml"),
    (["simulate", *JOB, "--tokens", "1e9", "--scenario", "{}"], "outages.yaml"),
    (["simulate", "--plan", "{}"], "scenario.yaml"),
    (["validate", "--cases", "{}"], "cases.csv"),
    (["catalog", "chips", "--catalog", "{dir}"], "chips/extra.yaml"),
    (["catalog", "offers", "--catalog", "{dir}"], "offers/extra.yaml"),
    (["catalog", "systems", "--catalog", "{dir}"], "calibration.yaml"),
]


def write_use(use: tuple[list[str], str], content: bytes) -> list[str]:
    argv, name = use
    folder = fresh("x").parent
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return [str(path) if a == "{}" else str(folder) if a == "{dir}" else a for a in argv]


@settings(CASES, max_examples=250)
@given(use=st.sampled_from(FILE_USES), bomb=st.sampled_from(BOMBS))
def test_unreadable_files(use: tuple[list[str], str], bomb: Any) -> None:
    content = bomb()
    if not content and use[1] == "calibration.yaml":  # an empty calibration changes nothing
        content = b"- [unclosed\n"
    refused(write_use(use, content))


# -- mutated documents ----------------------------------------------------------------------
BAD_VALUES: list[Any] = [True, False, float("nan"), float("inf"), -1, -1e300, 1e300, 10**40,
                         [], {}, "abc", [1, 2]]  # fmt: skip
BAD_FIGURES: list[Any] = [*BAD_VALUES, 0, 0.0, 1e-30, 1e-12]


def numeric_paths(doc: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The key paths of every number (not a boolean) in ``doc``."""
    if isinstance(doc, dict):
        return [p for k, v in doc.items() for p in numeric_paths(v, (*path, k))]
    if isinstance(doc, list):
        return [p for i, v in enumerate(doc) for p in numeric_paths(v, (*path, i))]
    if isinstance(doc, int | float) and not isinstance(doc, bool):
        return [path]
    return []


def mutated(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    out = copy.deepcopy(doc)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def dump(doc: Any) -> bytes:
    return yaml.safe_dump(doc, sort_keys=False).encode()


MODEL_DOC = yaml.safe_load((PRESET_DIR / "llama3-8b.yaml").read_text())
MOE_DOC = yaml.safe_load((PRESET_DIR / "mixtral-8x7b.yaml").read_text())
PLAN_DOC = {
    "name": "bad", "start": "2026-01-05", "end": "2026-02-15",
    "offers": [{"catalog": "aws-p5.48xlarge-us-east-1-2025-06", "max_chips": 32}],
    "jobs": [{"name": "a", "model": "llama3.2-1b", "tokens": 3e11, "global_batch": 256,
              "deadline": "2026-01-25", "chip_counts": [16, 32]}],
}  # fmt: skip
OUTAGE_DOC = {"outages": [{"start_day": 1, "duration_days": 2, "capacity_lost": 0.5}]}
_HOPPER = yaml.safe_load((DATA_DIR / "chips" / "nvidia-hopper.yaml").read_text())
CHIP_DOC = {"sources": _HOPPER["sources"], "chips": [_HOPPER["chips"][0]]}
_AWS = yaml.safe_load((DATA_DIR / "offers" / "aws.yaml").read_text())
OFFER_DOC = {
    "sources": _AWS["sources"],
    "offers": [o for o in _AWS["offers"] if o["id"] == "aws-p5.48xlarge-us-east-1-2025-06"],
}
OFFER_ID = OFFER_DOC["offers"][0]["id"]

DOC_USES: list[tuple[Any, list[str], str, list[Any]]] = [
    (MODEL_DOC, ["estimate", "-m", "{}", "-s", "h100-sxm", "-n", "8"], "m.yaml", BAD_VALUES),
    (MOE_DOC, ["estimate", "-m", "{}", "-s", "h100-sxm", "-n", "8"], "m.yaml", BAD_VALUES),
    (PLAN_DOC, ["plan", "{}", "--no-sensitivity", "--no-baseline"], "s.yaml", BAD_VALUES),
    (OUTAGE_DOC, ["simulate", *JOB, "--tokens", "1e9", "--replicas", "5", "--scenario", "{}"],
     "o.yaml", BAD_VALUES),
    (CHIP_DOC, ["estimate", *JOB, "--catalog", "{dir}"], "chips/h100.yaml", BAD_FIGURES),
    (OFFER_DOC, ["budget", "--usd", "1e6", "--offers", OFFER_ID, "--catalog", "{dir}"],
     "offers/aws.yaml", BAD_FIGURES),
]  # fmt: skip


@settings(CASES, max_examples=500)
@given(use=st.sampled_from(DOC_USES), data=st.data())
def test_mutated_documents(use: tuple[Any, list[str], str, list[Any]], data: Any) -> None:
    doc, argv, name, values = use
    paths = numeric_paths(doc)
    if name.startswith("chips/"):  # the figures (a year may be any number)
        paths = [p for p in paths if p[-1] == "value"]
    path = data.draw(st.sampled_from(paths))
    value = data.draw(st.sampled_from(values))
    refused(write_use((argv, name), dump(mutated(doc, path, value))))


# -- malformed catalog entries ----------------------------------------------------------------
JUNK: list[Any] = [None, 0, "text", [], {}, [1, 2], [None], ["text"], [{}], {"a": 1}, True]


@settings(CASES, max_examples=150)
@given(
    kind=st.sampled_from(["chips", "systems", "offers"]),
    key=st.sampled_from(["sources", "entries", "entry-id", "entry-field"]),
    junk=st.sampled_from(JUNK),
)
def test_malformed_overlays(kind: str, key: str, junk: Any) -> None:
    shipped = yaml.safe_load(
        (DATA_DIR / kind / ("nvidia-hopper.yaml" if kind == "chips" else "aws.yaml")).read_text()
    )
    doc: dict[str, Any] = {"sources": shipped["sources"], kind: [shipped[kind][0]]}
    if key == "sources":
        if junk is None or junk == {}:
            junk = [1, 2]
        doc["sources"] = junk
    elif key == "entries":
        if junk is None or junk == []:
            junk = "text"
        doc[kind] = junk
    elif key == "entry-id":
        doc[kind][0]["id"] = "Not An Id!" if isinstance(junk, str) else junk
    else:
        field = {"chips": "hbm_gib", "systems": "chips_per_node", "offers": "chips_per_unit"}
        doc[kind][0][field[kind]] = junk if junk is not None else [None]
    refused(write_use((["catalog", kind, "--catalog", "{dir}"], f"{kind}/x.yaml"), dump(doc)))


# -- files that parse but say nothing -----------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "content", "argv"),
    [
        ("cases.csv", b"id,model\n", ["validate", "--cases", "{}"]),
        ("model.json", json.dumps({"hidden_size": True}).encode(), ["estimate", "-m", "{}"]),
    ],
)
def test_empty_or_trivial_files(name: str, content: bytes, argv: list[str]) -> None:
    refused(write_use(([*argv, "-s", "h100-sxm", "-n", "8"] if "-m" in argv else argv, name),
                      content))  # fmt: skip


def test_header_only_cases_file() -> None:
    from chipmix.validate.cases import DEFAULT_CASES

    header = Path(DEFAULT_CASES).read_text().splitlines()[0] + "\n"
    refused(write_use((["validate", "--cases", "{}"], "cases.csv"), header.encode()))
