"""The three things a user asks of the bench, as functions the CLI (and Python) call:
measure a suite, check the model against one measured step, calibrate from the store."""

from __future__ import annotations

from pathlib import Path

from chipmix.bench.check import CheckResult, compare
from chipmix.bench.detect import CPU_CHIP, Device, detect
from chipmix.bench.fit import BenchFit, fit_from_store, write_overlay
from chipmix.bench.runner import BenchRun, Progress, Suite, plan, plan_collectives, run_tasks
from chipmix.bench.store import Store, default_db
from chipmix.catalog.catalog import Catalog, load_catalog
from chipmix.errors import InputError
from chipmix.workload.registry import load_model

__all__ = ["calibrate_from_bench", "default_overlay", "require_torch", "run_bench", "run_check"]

INSTALL_HINT = "pip install 'chipmix[bench]'"


def require_torch() -> None:
    """Raise a one-line `InputError` saying how to install PyTorch when it is missing."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):  # blocked (sys.modules["torch"] = None) or broken
        spec = None
    if spec is None:
        raise InputError(f"chipmix bench needs PyTorch, which is not installed: {INSTALL_HINT}")


def default_overlay() -> Path:
    """Where ``calibrate --from-bench`` writes without ``--out``: a ``catalog`` folder
    beside the default results file."""
    return default_db().parent / "catalog"


def _device(catalog: Catalog, device: str | None, chip: str | None, threads: int | None) -> Device:
    return detect(device, chip, catalog.chips, threads=threads)


def run_bench(
    *,
    model: str = "llama3.2-1b",
    suite: Suite = "quick",
    device: str | None = None,
    chip: str | None = None,
    threads: int | None = None,
    seq_len: int | None = None,
    batch: int | None = None,
    compile: bool = False,
    db: str | Path | None = None,
    catalog: str | Path | None = None,
    progress: Progress | None = None,
) -> BenchRun:
    """Measure ``suite`` on the device and store every result in ``db`` as it completes.
    Under torchrun (WORLD_SIZE > 1) the suite is the collectives; rank 0 stores."""
    from chipmix.bench.collectives import world

    require_torch()
    cat = load_catalog(catalog)
    spec = load_model(model)
    dev = _device(cat, device, chip, threads)
    w = world()
    if w.size > 1:
        tasks = plan_collectives(dev, suite)
    else:
        tasks = plan(dev, suite, spec, catalog=cat, seq_len=seq_len, batch=batch, compile=compile)
    if w.rank != 0:
        return run_tasks(dev, tasks, None, suite=suite)
    with Store(db or default_db()) as store:
        return run_tasks(dev, tasks, store, suite=suite, progress=progress)


def run_check(
    *,
    model: str = "llama3.2-1b",
    suite: Suite = "quick",
    device: str | None = None,
    chip: str | None = None,
    threads: int | None = None,
    seq_len: int | None = None,
    batch: int | None = None,
    compile: bool = False,
    db: str | Path | None = None,
    catalog: str | Path | None = None,
    progress: Progress | None = None,
) -> tuple[BenchRun, CheckResult]:
    """Measure one end-to-end step (stored like any result) and predict it with the
    catalog in use (``catalog`` / ``$CHIPMIX_CATALOG``)."""
    require_torch()
    cat = load_catalog(catalog)
    dev = _device(cat, device, chip, threads)
    if dev.chip not in cat.chips:
        hint = (
            "the CPU's figures are measured: run `chipmix bench --device cpu`, then "
            "`chipmix calibrate --from-bench --out DIR`, then `chipmix bench --check "
            "--catalog DIR`"
            if dev.chip == CPU_CHIP
            else "add it in a catalog overlay (--catalog DIR)"
        )
        raise InputError(f"chip {dev.chip!r} is not in the catalog in use; {hint}")
    spec = load_model(model)
    tasks = plan(
        dev, suite, spec, catalog=cat, seq_len=seq_len, batch=batch, compile=compile,
        micro_benchmarks=False,
    )  # fmt: skip
    with Store(db or default_db()) as store:
        run = run_tasks(dev, tasks, store, suite=f"{suite}-check", progress=progress)
    return run, compare(cat, dev.chip, run.results[-1])


def calibrate_from_bench(
    *,
    db: str | Path | None = None,
    out: str | Path | None = None,
    catalog: str | Path | None = None,
    chips: list[str] | None = None,
) -> tuple[BenchFit, list[Path]]:
    """Fit every chip in the results file (or ``chips``) and write the overlay folder."""
    path = Path(db) if db is not None else default_db()
    if not path.exists():
        raise InputError(f"no bench results at {path}; run `chipmix bench` first (or give --db)")
    with Store(path) as store:
        fit = fit_from_store(store, load_catalog(catalog), chips)
    return fit, write_overlay(fit, out if out is not None else default_overlay())
