"""Turn stored bench results into a chip's calibration parameters, and write them as a
catalog overlay.

Each parameter is fitted from the results that isolate it, in the order they depend on
each other, predicting every result with the same code that predicts training
(`chipmix.perf.roofline.ChipRates`) and the fitting machinery of `chipmix.validate.fit`
(transforms, soft-L1 loss, priors from ``calibration.yaml``):

1. ``memory_efficiency`` = geometric mean over the streaming kernels the model charges to
   it (large copy, the workload's norm and SwiGLU) of achieved / the chip's bandwidth.
2. ``matmul_efficiency`` and ``matmul_half_dim``: robust least squares on
   ``log(ChipRates.gemm_time(m, k, n) / measured)`` over every bf16 matmul (square sweep
   and the workload's own shapes), regularized toward the priors.
3. ``attention_efficiency`` = geometric mean of ``3.5 · forward FLOPs / (time · peak)``
   over the attention results (the model's `ChipRates.attention_time`, inverted).
4. ``scaleup_efficiency`` (one node) or ``scaleout_efficiency`` (several): median bus
   bandwidth of the largest all-reduce / all-gather / reduce-scatter messages over the
   link bandwidth; ``collective_latency_s`` from the smallest all-reduce.

For the chip ``cpu`` nothing is looked up: its dense peak is the larger of the peak derived
from the instruction set and clock (`chipmix.bench.detect.CpuInfo`) and the best matmul rate
measured, its memory bandwidth the best copy measured, its capacity the machine's memory.
Those figures become ``chips/cpu.yaml`` and ``systems/cpu.yaml`` in the overlay folder, the
fitted parameters its ``calibration.yaml`` — the layer of measured priors, which overrides
the shipped calibration for the chips it names.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from numpy.typing import NDArray

from chipmix.bench.detect import CPU_CHIP
from chipmix.bench.fit_eager import attention_core_s, fit_launch_s
from chipmix.bench.store import Result, Store, StoredResult
from chipmix.catalog.calibration import Calibration, ChipCalibration, StackCalibration
from chipmix.catalog.catalog import PRIOR_CALIBRATION, Catalog
from chipmix.catalog.chip import Chip
from chipmix.catalog.eager import EagerCalibration
from chipmix.catalog.system import System
from chipmix.common.files import read_yaml
from chipmix.errors import InputError
from chipmix.perf import collectives as coll
from chipmix.perf.roofline import ChipRates
from chipmix.validate.fit import (
    FIT_PARAMETERS,
    from_fit_space,
    robust_residuals,
    to_fit_space,
)

__all__ = ["BENCH_SOURCE", "BenchFit", "ChipFit", "fit_chip", "fit_from_store", "write_overlay"]

BENCH_SOURCE = "chipmix-bench"
"""Source key of the figures the bench measured (in the overlay's chip and system files)."""

_LOW, _HIGH = 0.02, 1.0
EAGER_STACK = "pytorch"
"""The stack whose per-kernel cost the eager-kernel microbenchmarks fit."""

MEASUREMENT_LOG_SIGMA = 0.05
"""Typical scatter of a bench median in log terms (≈5% run to run): each matmul's log error
is divided by it before the soft-L1 loss, so tens of measured shapes outweigh the priors,
which `chipmix.validate.fit` sized for a handful of published runs."""


@dataclass(frozen=True)
class Peaks:
    """The chip figures the fit divides by."""

    bf16_flops: float
    hbm_bytes_per_s: float
    scaleup_bytes_per_s: float
    scaleout_bytes_per_s: float
    scaleup_domain_chips: int


@dataclass(frozen=True)
class ChipFit:
    """One chip's fitted parameters and what they were fitted from."""

    chip: str
    calibration: ChipCalibration
    """Only the fitted fields are set (``model_fields_set``)."""
    parameters: list[dict[str, str | float | int]]
    """Per fitted parameter: name, prior, fitted value, results behind it."""
    residuals: dict[str, float] = field(default_factory=dict)
    """log(predicted / measured) per matmul shape after the fit."""
    chip_entry: Chip | None = None
    """For ``cpu``: the measured chip."""
    system_entry: System | None = None
    """For ``cpu``: its one-chip reference system."""
    device_name: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    launch_s: float | None = None
    """The ``pytorch`` stack's per-kernel cost fitted from the eager kernels, if measured."""
    launch_rows: int = 0


@dataclass(frozen=True)
class BenchFit:
    """Every chip fitted from one results store."""

    chips: list[ChipFit]
    db: str

    def calibration(self) -> Calibration:
        """The fitted fields of every chip, with provenance (what the overlay holds)."""
        today = date.today().isoformat()
        stacks: dict[str, StackCalibration] = {}
        launches = [f for f in self.chips if f.launch_s is not None]
        eager_parameters: list[dict[str, str | float | int]] = []
        if launches:
            value = statistics.median(float(f.launch_s or 0.0) for f in launches)
            rows = sum(f.launch_rows for f in launches)
            note = "median per-kernel time of the eager norm / SwiGLU kernels beyond their traffic"
            stacks[EAGER_STACK] = StackCalibration(
                eager=EagerCalibration(launch_s=value, source=f"launch_s: {note} ({rows} results)")
            )
            eager_parameters.append({"scope": "stack", "key": EAGER_STACK, "name": "launch_s",
                                     "prior": EagerCalibration().launch_s, "fitted": value,
                                     "rows": rows, "note": note})  # fmt: skip
        return Calibration(
            chips={f.chip: f.calibration for f in self.chips},
            stacks=stacks,
            provenance={
                "command": "chipmix calibrate --from-bench",
                "date": today,
                "db": self.db,
                "chips": ", ".join(f.chip for f in self.chips),
                "method": "chipmix.bench.fit: copy bandwidth, robust least squares over "
                "matmul shapes (ChipRates.gemm_time), attention and collective bandwidth",
            },
            parameters=[
                {"scope": "chip", "key": f.chip, **p} for f in self.chips for p in f.parameters
            ]
            + eager_parameters,
        )


def _results(stored: Sequence[StoredResult], kind: str, dtype: str | None = None) -> list[Result]:
    return [
        s.result
        for s in stored
        if s.result.kind == kind
        and s.result.median_s > 0
        and (dtype is None or s.result.dtype == dtype)
    ]


def _cpu_peaks(stored: Sequence[StoredResult]) -> tuple[Peaks, Chip, System]:
    """Measured / derived figures of the machine's processor."""
    infos = [s.device.get("cpu") or {} for s in stored]
    derived = max((float(i.get("derived_peak_flops", {}).get("bf16", 0.0)) for i in infos),
                  default=0.0)  # fmt: skip
    derived32 = max((float(i.get("derived_peak_flops", {}).get("fp32", 0.0)) for i in infos),
                    default=0.0)  # fmt: skip
    bf16 = _results(stored, "matmul", "bf16")
    fp32 = _results(stored, "matmul", "fp32")
    best = max((r.flops_per_s for r in bf16), default=0.0)
    best32 = max((r.flops_per_s for r in fp32), default=0.0)
    copies = _results(stored, "copy")
    if not copies or not (best or derived):
        raise InputError(
            "the results for chip 'cpu' lack a copy or a matmul measurement; run "
            "`chipmix bench --device cpu` (any suite) first"
        )
    bandwidth = max(r.bytes_per_s for r in copies)
    info = next((i for i in infos if i), {})
    threads, ghz = int(info.get("threads", 0)), float(info.get("ghz", 0.0))
    flags = ", ".join(info.get("flags", [])) or "no vector flags"
    memory = max(float(s.device.get("memory_bytes", 0.0)) for s in stored)
    peak = max(derived, best)
    peak32 = max(derived32, best32) or peak
    how = (
        f"derived {threads} threads × {ghz:.3g} GHz × FLOP/cycle of ({flags}) = "
        f"{derived / 1e12:.4g} TFLOP/s; best measured {best / 1e12:.4g}; the larger is used"
    )
    name = str(info.get("model_name") or stored[0].device_name)
    chip = Chip.model_validate(
        {
            "id": CPU_CHIP,
            "name": f"{name} ({threads} thread{'s' if threads != 1 else ''})",
            "vendor": "cpu",
            "year": date.today().year,
            "peak_tflops_dense": {
                "bf16": {"value": peak / 1e12, "source": BENCH_SOURCE, "estimated": True,
                         "note": how},
                "fp32": {"value": peak32 / 1e12, "source": BENCH_SOURCE, "estimated": True,
                         "note": f"derived {derived32 / 1e12:.4g}; measured "
                                 + (f"{best32 / 1e12:.4g}" if best32 else "none (bf16 suite)")},
            },
            "hbm_gib": {"value": memory / 2**30, "source": BENCH_SOURCE,
                        "note": "physical memory of the machine"},
            "hbm_tb_s": {"value": bandwidth / 1e12, "source": BENCH_SOURCE,
                         "note": f"best large-copy bandwidth measured over {len(copies)} "
                                 "results (read + write); no datasheet figure is assumed"},
            "scaleup_gb_s_per_direction": {
                "value": bandwidth / 1e9, "source": BENCH_SOURCE, "estimated": True,
                "note": "no scale-up fabric: processes on one CPU exchange through memory, so "
                        "the measured copy bandwidth stands in"},
            "scaleup_domain_chips": {"value": 1, "source": BENCH_SOURCE},
            "note": "The machine the bench ran on: figures measured or derived, not looked up.",
        }
    )  # fmt: skip
    system = System(
        id=CPU_CHIP,
        name=f"{name}, one processor",
        chip=CPU_CHIP,
        provider="on-prem",
        kind="reference",
        chips_per_node=1,
        reference=True,
        max_chips=1,
        note="Written by chipmix calibrate --from-bench.",
    )
    peaks = Peaks(peak, bandwidth, bandwidth, 1.0, 1)
    return peaks, chip, system


def _catalog_peaks(chip_id: str, catalog: Catalog) -> Peaks:
    system = catalog.system(chip_id)
    return Peaks(
        system.chip.peak_flops("bf16"),
        system.chip.hbm_bytes_per_s,
        system.scaleup_bytes_per_s,
        system.scaleout_bytes_per_s,
        system.scaleup_domain_chips,
    )


def _sigma(name: str) -> float:
    return next((p.sigma for p in FIT_PARAMETERS if p.name == name), 2.0)


def _clamp(value: float) -> float:
    return min(max(value, _LOW), _HIGH)


def _fit_matmul(
    results: Sequence[Result], peaks: Peaks, prior: ChipCalibration, memory_efficiency: float
) -> tuple[float, float, dict[str, float]]:
    """(matmul_efficiency, matmul_half_dim, log residuals) by robust least squares."""
    from scipy.optimize import least_squares

    m = np.array([r.shape["m"] for r in results], dtype=np.float64)
    k = np.array([r.shape["k"] for r in results], dtype=np.float64)
    n = np.array([r.shape["n"] for r in results], dtype=np.float64)
    measured = np.array([r.median_s for r in results])
    stack = StackCalibration(compute_efficiency=1.0)
    x0 = np.array(
        [to_fit_space("logit", prior.matmul_efficiency), to_fit_space("log", prior.matmul_half_dim)]
    )
    sigma = np.array([_sigma("matmul_efficiency"), _sigma("matmul_half_dim")])
    # With one GEMM size only the efficiency is identifiable: hold d_half at its prior.
    free = np.array([True, len(set(np.minimum(np.minimum(m, k), n))) > 1])

    def predict(x: NDArray[np.float64]) -> NDArray[np.float64]:
        cal = prior.model_copy(
            update={
                "matmul_efficiency": from_fit_space("logit", float(x[0])),
                "matmul_half_dim": from_fit_space("log", float(x[1])),
                "memory_efficiency": memory_efficiency,
            }
        )
        rates = ChipRates(peaks.bf16_flops, peaks.hbm_bytes_per_s, cal, stack, 2.0)
        return rates.gemm_time(m, k, n)

    def residuals(x: NDArray[np.float64]) -> NDArray[np.float64]:
        full = np.where(free, x, x0)
        errors = np.log(predict(full) / measured) / MEASUREMENT_LOG_SIGMA
        return np.concatenate([robust_residuals(errors), (full - x0)[free] / sigma[free]])

    # matmul_efficiency is the maximum achievable fraction of peak: the fitted curve may not
    # climb above both the prior (the public maximum-achievable figure) and the best GEMM
    # measured here, however far a flat set of sizes would extrapolate it.
    best = float(np.max(2.0 * m * k * n / measured)) / peaks.bf16_flops
    ceiling = to_fit_space("logit", min(max(prior.matmul_efficiency, best), 0.999))
    upper = np.array([ceiling, np.inf])
    start = np.minimum(x0, upper - 1e-6)
    solution = least_squares(
        residuals, start, diff_step=1e-3, max_nfev=400, bounds=(np.array([-np.inf] * 2), upper)
    )
    x = np.where(free, solution.x, x0)
    errors = np.log(predict(x) / measured)
    labels = [f"{r.name} {r.shape['m']}×{r.shape['k']}×{r.shape['n']}" for r in results]
    return (
        from_fit_space("logit", float(x[0])),
        from_fit_space("log", float(x[1])),
        dict(zip(labels, (float(e) for e in errors), strict=True)),
    )


def _collectives(
    results: Sequence[Result], peaks: Peaks, prior: ChipCalibration
) -> dict[str, tuple[float, int]]:
    """Fitted collective parameters with the count of results behind each."""
    out: dict[str, tuple[float, int]] = {}
    bulk = [r for r in results if r.name in ("all_reduce", "all_gather", "reduce_scatter")]
    if not bulk:
        return out
    largest = max(r.bytes for r in bulk)
    big = [r for r in bulk if r.bytes >= largest / 4]
    nodes = max(int(r.shape.get("nodes", 1)) for r in big)
    if nodes == 1:
        ratios = [r.extra["busbw_bytes_per_s"] / peaks.scaleup_bytes_per_s for r in big]
        out["scaleup_efficiency"] = (_clamp(statistics.median(ratios)), len(big))
    else:
        # Hierarchical model: the inner all-reduce over the scale-up domain at the prior
        # efficiency, the rest of the measured time is the outer one across nodes.
        ratios = []
        for r in big:
            if r.name != "all_reduce":
                continue
            n, k = int(r.shape["world_size"]), int(r.shape["local_world_size"])
            up = peaks.scaleup_bytes_per_s * prior.scaleup_efficiency
            inner = float(coll.all_reduce_time(k, r.bytes, up, prior.collective_latency_s))
            outer_bytes = 2.0 * (n // k - 1) / (n // k) * r.bytes / k
            left = r.median_s - inner
            if left > 0 and peaks.scaleout_bytes_per_s > 1:
                ratios.append(outer_bytes / left / peaks.scaleout_bytes_per_s)
        if ratios:
            out["scaleout_efficiency"] = (_clamp(statistics.median(ratios)), len(ratios))
    small = [r for r in results if r.name == "all_reduce"]
    if small:
        r = min(small, key=lambda x: x.bytes)
        n = int(r.shape["world_size"])
        if r.bytes <= 1 << 20 and n > 1:
            bw = r.extra["busbw_bytes_per_s"]
            steps = 2.0 * (n - 1)
            alpha = max(r.median_s - 2.0 * (n - 1) / n * r.bytes / max(bw, 1.0), 0.0) / steps
            out["collective_latency_s"] = (alpha, 1)
    return out


def fit_chip(chip_id: str, stored: Sequence[StoredResult], catalog: Catalog) -> ChipFit:
    """Fit ``chip_id``'s parameters from its stored results."""
    if not stored:
        raise InputError(f"no stored bench results for chip {chip_id!r}")
    chip_entry: Chip | None = None
    system_entry: System | None = None
    if chip_id == CPU_CHIP:
        peaks, chip_entry, system_entry = _cpu_peaks(stored)
    else:
        peaks = _catalog_peaks(chip_id, catalog)
    prior = catalog.prior_calibration.for_chip(chip_id)
    fitted: dict[str, float] = {}
    parameters: list[dict[str, str | float | int]] = []

    def record(name: str, value: float, rows: int, note: str) -> None:
        fitted[name] = value
        parameters.append({"name": name, "prior": float(getattr(prior, name)),
                           "fitted": float(value), "rows": rows, "note": note})  # fmt: skip

    streaming = [*_results(stored, "copy"), *_results(stored, "read")]
    memory_efficiency = prior.memory_efficiency
    if streaming:
        logs = [math.log(r.bytes_per_s / peaks.hbm_bytes_per_s) for r in streaming]
        memory_efficiency = _clamp(math.exp(statistics.fmean(logs)))
        record("memory_efficiency", memory_efficiency, len(streaming),
               "geometric mean of copy / read bandwidth over memory bandwidth (the hardware; "
               "eager norm and SwiGLU kernels fit the pytorch stack's launch_s)")  # fmt: skip
    elif eager_kernels := _results(stored, "norm") + _results(stored, "elementwise"):
        # No copy measured: the eager kernels are the only streaming figures there are.
        logs = [math.log(r.bytes_per_s / peaks.hbm_bytes_per_s) for r in eager_kernels]
        memory_efficiency = _clamp(math.exp(statistics.fmean(logs)))
        record("memory_efficiency", memory_efficiency, len(eager_kernels),
               "geometric mean of eager norm / SwiGLU bandwidth (no copy measured)")  # fmt: skip
    residuals: dict[str, float] = {}
    matmuls = _results(stored, "matmul", "bf16")
    if matmuls:
        eff, half, residuals = _fit_matmul(matmuls, peaks, prior, memory_efficiency)
        record("matmul_efficiency", eff, len(matmuls), "least squares over matmul shapes")
        record("matmul_half_dim", half, len(matmuls), "least squares over matmul shapes")
    attention = _results(stored, "attention", "bf16")
    if attention:
        stream = peaks.hbm_bytes_per_s * memory_efficiency
        logs = [math.log(r.flops / (attention_core_s(r, stream) * peaks.bf16_flops))
                for r in attention]  # fmt: skip
        value = _clamp(math.exp(statistics.fmean(logs)))
        record("attention_efficiency", value, len(attention), "geometric mean over shapes")
    for name, (value, rows) in _collectives(_results(stored, "collective"), peaks, prior).items():
        record(name, value, rows, "collective bus bandwidth / link bandwidth")
    if not fitted:
        raise InputError(
            f"the stored results for chip {chip_id!r} hold no copy, matmul, attention or "
            "collective measurement to fit from"
        )
    launch_s = fit_launch_s(
        [*_results(stored, "norm"), *_results(stored, "elementwise")],
        peaks.hbm_bytes_per_s * memory_efficiency,
    )
    launch_rows = len(_results(stored, "norm")) + len(_results(stored, "elementwise"))
    last = stored[-1]
    versions = ", ".join(f"{k} {v}" for k, v in sorted(last.versions.items()))
    runs = sorted({s.run_id for s in stored})
    source = (
        f"measured by chipmix bench on {last.device_name} ({versions}); "
        f"{', '.join(sorted(fitted))} fitted by chipmix calibrate --from-bench on "
        f"{date.today().isoformat()} from {len(stored)} results of runs {runs}"
    )
    calibration = ChipCalibration(**fitted, source=source)
    return ChipFit(
        chip=chip_id,
        calibration=calibration,
        parameters=parameters,
        residuals=residuals,
        chip_entry=chip_entry,
        system_entry=system_entry,
        device_name=last.device_name,
        versions=last.versions,
        launch_s=launch_s if fitted else None,
        launch_rows=launch_rows,
    )


def fit_from_store(store: Store, catalog: Catalog, chips: Sequence[str] | None = None) -> BenchFit:
    """Fit every chip with results in ``store`` (or only ``chips``)."""
    available = store.chips()
    wanted = list(chips) if chips else available
    if not wanted:
        raise InputError(f"{store.path} holds no bench results; run `chipmix bench` first")
    missing = [c for c in wanted if c not in available]
    if missing:
        raise InputError(
            f"{store.path} holds no results for {', '.join(missing)}; it has: "
            f"{', '.join(available) or 'nothing'}"
        )
    return BenchFit([fit_chip(c, store.results(chip=c), catalog) for c in wanted], str(store.path))


def _dump(doc: Any) -> str:
    return yaml.safe_dump(_plain(doc), sort_keys=False, allow_unicode=True, width=100)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return float(f"{value:.6g}")
    return value


def write_overlay(fit: BenchFit, folder: str | Path) -> list[Path]:
    """Write the fit as a catalog overlay folder (``--catalog DIR`` / ``$CHIPMIX_CATALOG``):
    its ``calibration.yaml`` (merged over one already there), and for ``cpu`` its chip and
    system files. Returns the files written."""
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    path = root / PRIOR_CALIBRATION
    new = fit.calibration()
    if path.exists():
        old = Calibration.model_validate(read_yaml(path) or {})
        keep = [p for p in old.parameters if p.get("key") not in new.chips]
        new = old.overlay(new).model_copy(update={"parameters": keep + new.parameters})
    doc = new.model_dump(exclude_unset=True)
    doc.pop("default_chip", None)
    doc.pop("default_stack", None)
    doc["chips"] = {k: v.model_dump(exclude_unset=True) for k, v in new.chips.items()}
    doc["stacks"] = {k: v.model_dump(exclude_unset=True) for k, v in new.stacks.items()}
    if not doc["stacks"]:
        doc.pop("stacks")
    doc["parameters"] = new.parameters
    header = (
        "# Written by `chipmix calibrate --from-bench`: chip parameters measured on real\n"
        "# devices. Use it with --catalog THIS_FOLDER or CHIPMIX_CATALOG=THIS_FOLDER.\n"
    )
    path.write_text(header + _dump(doc), encoding="utf-8")
    written = [path]
    for f in fit.chips:
        if f.chip_entry is None or f.system_entry is None:
            continue
        source = {
            BENCH_SOURCE: {
                "title": f"Measured by chipmix bench on {f.device_name}",
                "url": "",
                "as_of": date.today().isoformat(),
            }
        }
        for kind, entry in (("chips", f.chip_entry), ("systems", f.system_entry)):
            out = root / kind / f"{f.chip}.yaml"
            out.parent.mkdir(exist_ok=True)
            body = {"sources": source, kind: [entry.model_dump(exclude_defaults=True)]}
            out.write_text(
                "# Written by `chipmix calibrate --from-bench`.\n" + _dump(body), encoding="utf-8"
            )
            written.append(out)
    return written
