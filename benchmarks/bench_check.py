"""How close ``chipmix bench --check`` lands: measured against predicted, per term.

    .venv/bin/python benchmarks/bench_check.py --stored   # the H200 stores in measurements/
    .venv/bin/python benchmarks/bench_check.py [--tries 3]  # this machine's CPU, live

``--stored`` needs no device and no torch: for every end-to-end step stored in the H200
results files it prints the measurement, the prediction with the shipped priors (no
calibration) and with the calibration fitted from the store's microbenchmarks
(`chipmix validate --from-bench`), each with its breakdown by term.

Without it, the CPU is measured: the smoke suite into a temporary results file, the
calibration fitted from it, then ``--tries`` checks of a small model, each printing the
error. It is a benchmark, not a test: on a machine shared with other work a step and the
kernels it was predicted from are not measured under the same load (issue 16).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from chipmix.bench.check import compare
from chipmix.bench.score import score_bench
from chipmix.bench.store import Store
from chipmix.catalog import load_catalog

ROOT = Path(__file__).resolve().parent.parent
H200 = ROOT / "measurements" / "h200-2026-11-29"
STORES = [
    ("llama3.2-1b-quick-and-check.sqlite", None),
    ("check-llama3-8b-scaled.sqlite", "llama3-8b-shapes-quick.sqlite"),
]
TINY = {
    "name": "tiny", "num_layers": 2, "hidden_size": 512, "ffn_hidden_size": 2048,
    "num_heads": 8, "num_kv_heads": 4, "head_dim": 64, "vocab_size": 512,
}  # fmt: skip


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:8.1f}"


def stored() -> None:
    catalog = load_catalog()
    for db, fit_db in STORES:
        scored = score_bench(H200 / db, fit_db=H200 / fit_db if fit_db else None)
        with Store(H200 / db, readonly=True) as store:
            steps = {f"{Path(db).stem}#{s.id}": s for s in store.results(kind="e2e")}
        for row in scored.card.rows:
            step = steps[row.id]
            prior = compare(catalog, step.chip, step.result)
            check = scored.checks[row.id]
            print(f"\n{row.id} ({check.model}, {check.params / 1e9:.2f}B weights, "
                  f"batch {check.batch} × {check.seq_len}, {step.chip})")  # fmt: skip
            print(f"{'':18}{'priors':>9}{'fitted':>9}")
            terms = [k for k, v in check.predicted.breakdown.items() if v > 0]
            for term in terms:
                print(f"{term:18}{_ms(prior.predicted.breakdown.get(term, 0.0))} "
                      f"{_ms(check.predicted.breakdown[term])}")  # fmt: skip
            print(f"{'predicted':18}{_ms(prior.predicted.step_time_s)} "
                  f"{_ms(check.predicted.step_time_s)}")  # fmt: skip
            print(f"{'measured':18}{_ms(row.published)} {_ms(row.published)}")
            print(f"{'error':18}{prior.error:+9.1%}{check.error:+9.1%}")
        print(
            "fitted:", json.dumps({p["name"]: p["fitted"] for p in scored.to_dict()["calibration"]})
        )


def live(tries: int) -> None:
    from chipmix.bench.commands import calibrate_from_bench, run_bench, run_check

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "tiny.json").write_text(json.dumps(TINY))
        db, overlay = root / "bench.sqlite", root / "catalog"
        options = {"device": "cpu", "threads": 1, "suite": "smoke", "seq_len": 128, "batch": 8}
        run_bench(model=str(root / "tiny.json"), db=db, **options)  # type: ignore[arg-type]
        calibrate_from_bench(db=db, out=overlay)
        for i in range(tries):
            model = str(root / "tiny.json")
            _, check = run_check(model=model, db=db, catalog=overlay, **options)  # type: ignore[arg-type]
            measured, predicted = check.measured_step_time_s, check.predicted.step_time_s
            print(f"try {i + 1}: measured {measured * 1e3:.1f} ms, "
                  f"predicted {predicted * 1e3:.1f} ms ({check.error:+.1%})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stored", action="store_true", help="the H200 stores, no device")
    parser.add_argument("--tries", type=int, default=3)
    args = parser.parse_args()
    if args.stored:
        stored()
    else:
        live(args.tries)


if __name__ == "__main__":
    main()
