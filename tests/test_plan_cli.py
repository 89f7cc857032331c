"""`chipmix plan` end to end: tables, JSON, the infeasible case, bad files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chipmix.cli import app, main

runner = CliRunner()

SCENARIO = """\
name: cli
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
  - {name: b, model: llama3.2-1b, tokens: 3e11, global_batch: 256, deadline: 2026-02-01,
     chip_counts: [16, 32]}
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return str(path)


def test_tables(tmp_path: Path) -> None:
    out = runner.invoke(app, ["plan", write(tmp_path, SCENARIO), "--pareto"],
                        env={"COLUMNS": "160"})  # fmt: skip
    assert out.exit_code == 0, out.output
    for title in ("chipmix plan", "allocation", "layouts", "vendors", "single-vendor plans",
                  "cost vs makespan", "solver"):  # fmt: skip
        assert title in out.output, title


def test_json(tmp_path: Path) -> None:
    out = runner.invoke(app, ["plan", write(tmp_path, SCENARIO), "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["status"] == "optimal"
    assert data["pareto"] is None
    assert {a["job"] for a in data["allocations"]} == {"a", "b"}
    assert sum(v["spend_share"] for v in data["vendors"]) == pytest.approx(1.0)


def test_infeasible_json_exits_2(tmp_path: Path) -> None:
    tight = SCENARIO.replace("tokens: 3e11", "tokens: 3e12")
    out = runner.invoke(app, ["plan", write(tmp_path, tight), "--json"])
    assert out.exit_code == 2
    data = json.loads(out.output)
    assert data["status"] == "infeasible"
    assert data["conflicts"]


def test_bad_file_is_one_line_naming_line_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = SCENARIO.replace("max_chips: 16", "max_chip: 16")
    monkeypatch.setattr(sys, "argv", ["chipmix", "plan", write(tmp_path, bad)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "line 8, offers[1].max_chip: unknown key 'max_chip'" in err
    assert "Did you mean 'max_chips'" in err
