"""Which device the bench runs on, and which catalog chip it is.

Detection order when no ``--device`` is given: CUDA (NVIDIA, and AMD through PyTorch's ROCm
build, which answers to ``torch.cuda`` and sets ``torch.version.hip``), then XLA (TPU, and
Trainium / Inferentia through torch-neuronx) when ``torch_xla`` imports and reports an
accelerator, then the CPU. The device name is matched to a catalog chip id by the patterns
below; ``--chip`` overrides the match, and an unknown accelerator without ``--chip`` is an
error that lists the ids.

The CPU is the chip ``cpu``: nothing about it is looked up. Its dense peak is *derived*
from the instruction set (``/proc/cpuinfo`` flags), the clock and the threads PyTorch uses;
the bench then measures what it reaches (`chipmix.bench.fit`).

torch is imported inside functions only: importing this module costs nothing.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from chipmix.errors import InputError, UnknownNameError

__all__ = [
    "CHIP_PATTERNS",
    "CPU_CHIP",
    "CpuInfo",
    "Device",
    "DeviceKind",
    "cpu_info",
    "detect",
    "match_chip",
    "synchronize",
]

DeviceKind = Literal["cuda", "rocm", "xla", "cpu"]
CPU_CHIP = "cpu"
"""Chip id of the machine's own processor (DESIGN: "its figures measured rather than
looked up")."""

CHIP_PATTERNS: tuple[tuple[str, str], ...] = (
    # Most specific first. Names as drivers report them: "NVIDIA H100 80GB HBM3",
    # "NVIDIA H100 PCIe", "NVIDIA A100-SXM4-40GB", "AMD Instinct MI300X", "gfx942", AWS
    # instance types from DMI ("trn1.32xlarge"), TPU accelerator types ("v5litepod-8").
    (r"gb300", "gb300"),
    (r"gb200", "gb200"),
    (r"b300", "b300"),
    (r"b200", "b200"),
    (r"h200", "h200"),
    (r"h800", "h800"),
    (r"h100.*(pcie|nvl)", "h100-pcie"),
    (r"h100", "h100-sxm"),
    (r"a100.*80\s*gb", "a100-80gb"),
    (r"a100", "a100-40gb"),
    (r"mi355", "mi355x"),
    (r"mi350", "mi350x"),
    (r"mi325", "mi325x"),
    (r"mi300x|gfx942", "mi300x"),
    (r"mi250|gfx90a", "mi250x"),
    (r"gaudi\s*3|hl-325", "gaudi3"),
    (r"gaudi\s*2|hl-225", "gaudi2"),
    (r"trn3", "trn3"),
    (r"trn2", "trn2"),
    (r"trn1", "trn1"),
    (r"inf2", "inf2"),
    (r"v7|ironwood", "tpu-v7"),
    (r"v6e|trillium", "tpu-v6e"),
    (r"v5p", "tpu-v5p"),
    (r"v5e|v5lite", "tpu-v5e"),
    (r"v4", "tpu-v4"),
)
"""Regular expressions (case-insensitive) over the device name → catalog chip id."""

# Dense FLOP per cycle per core by instruction set, from the vendors' optimization manuals:
# an FMA is 2 FLOP; AVX-512 holds 16 fp32 lanes and cores issue two 512-bit FMAs per
# cycle (Intel 64 and IA-32 Architectures Optimization Reference Manual, ch. 2; AMD
# Software Optimization Guide for the Zen 4/5 microarchitecture, FP unit); AVX2 8 lanes × 2
# FMA pipes; AVX512_BF16's VDPBF16PS does 32 bf16 pair-products (64 FLOP) per instruction;
# AMX-BF16 (Sapphire Rapids) 1,024 bf16 FLOP per cycle per core (Intel AMX programming
# reference). What it ignores: clocks fall under wide-vector load, and VMs hide turbo.
_FP32_FLOP_PER_CYCLE = (("avx512f", 64.0), ("avx2", 32.0), ("sse2", 8.0))
_BF16_FLOP_PER_CYCLE = (("amx_bf16", 1024.0), ("avx512_bf16", 128.0))


@dataclass(frozen=True, kw_only=True, slots=True)
class CpuInfo:
    """What the operating system says about the processor, and the peaks derived from it."""

    model_name: str
    """``model name`` from ``/proc/cpuinfo`` (or the platform's processor string)."""
    threads: int
    """Threads PyTorch runs matmuls on (``torch.get_num_threads()``)."""
    ghz: float
    """Highest clock the OS reports (cpufreq maximum, else ``cpu MHz``); 0 when unknown."""
    flags: tuple[str, ...]
    """Instruction-set flags that decide the FLOP per cycle."""
    memory_bytes: float
    """Physical memory."""

    def derived_peak_flops(self) -> dict[str, float]:
        """Dense peak FLOP/s per precision: threads × clock × FLOP per cycle (0 if unknown)."""
        fp32 = next((v for f, v in _FP32_FLOP_PER_CYCLE if f in self.flags), 2.0)
        bf16 = next((v for f, v in _BF16_FLOP_PER_CYCLE if f in self.flags), fp32)
        per_cycle = self.threads * self.ghz * 1e9
        return {"fp32": per_cycle * fp32, "bf16": per_cycle * bf16}

    def as_dict(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "threads": self.threads,
            "ghz": self.ghz,
            "flags": list(self.flags),
            "memory_bytes": self.memory_bytes,
            "derived_peak_flops": self.derived_peak_flops(),
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class Device:
    """The device one bench process measures."""

    kind: DeviceKind
    torch_device: str
    """What ``torch.device`` takes: ``cuda:0``, ``xla:0``, ``cpu``."""
    name: str
    """The name the driver reports (``NVIDIA H100 80GB HBM3``, ``AMD EPYC``)."""
    chip: str
    """Catalog chip id (``h100-sxm``, ``mi300x``, ``trn2``, ``cpu``)."""
    count: int = 1
    """Devices of this kind visible to the process (one node)."""
    memory_bytes: float = 0.0
    l2_bytes: float = 0.0
    """Last-level on-chip cache (the GPU's L2), where the driver says; 0 unknown."""
    versions: dict[str, str] = field(default_factory=dict)
    """torch, CUDA / HIP / XLA / Neuron, cuDNN, NCCL, driver: what produced the numbers."""
    fp8: bool = False
    """True where fp8 matmuls run on matrix units (Hopper and later, MI300 and later)."""
    cpu: CpuInfo | None = None
    """For the CPU: what the peaks are derived from."""

    def info(self) -> dict[str, Any]:
        """Everything about the device worth storing beside a result."""
        return {
            "kind": self.kind,
            "torch_device": self.torch_device,
            "name": self.name,
            "chip": self.chip,
            "count": self.count,
            "memory_bytes": self.memory_bytes,
            "l2_bytes": self.l2_bytes,
            "fp8": self.fp8,
            "cpu": self.cpu.as_dict() if self.cpu is not None else None,
        }


def match_chip(name: str, known: Iterable[str]) -> str | None:
    """The catalog chip id whose pattern matches ``name`` first, if that id is known."""
    ids = set(known)
    lowered = name.lower()
    for pattern, chip in CHIP_PATTERNS:
        if re.search(pattern, lowered) and chip in ids:
            return chip
    return None


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


def cpu_info(threads: int | None = None) -> CpuInfo:
    """Read the processor's name, clock, flags and memory from the operating system."""
    text = _read("/proc/cpuinfo")
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    khz = _read("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    ghz = float(khz) / 1e6 if khz.isdigit() else float(fields.get("cpu MHz", "0") or 0) / 1e3
    wanted = {f for f, _ in (*_FP32_FLOP_PER_CYCLE, *_BF16_FLOP_PER_CYCLE)}
    flags = tuple(sorted(set(fields.get("flags", "").split()) & wanted))
    try:
        memory = float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        memory = 0.0
    if threads is None:
        import torch

        threads = int(torch.get_num_threads())
    return CpuInfo(
        model_name=fields.get("model name") or platform.processor() or platform.machine(),
        threads=threads,
        ghz=ghz,
        flags=flags,
        memory_bytes=memory,
    )


def _torch_versions() -> dict[str, str]:
    import torch

    versions = {"torch": str(torch.__version__), "python": platform.python_version()}
    if torch.version.cuda:
        versions["cuda"] = str(torch.version.cuda)
    hip = getattr(torch.version, "hip", None)
    if hip:
        versions["hip"] = str(hip)
    return versions


def _gpu(index: int, chip: str | None, known: Iterable[str]) -> Device:
    import torch

    count = torch.cuda.device_count()
    if index >= count:
        raise InputError(f"--device cuda:{index}: only {count} CUDA/ROCm devices are visible")
    props = torch.cuda.get_device_properties(index)
    name = str(props.name)
    rocm = bool(getattr(torch.version, "hip", None))
    versions = _torch_versions()
    arch = str(getattr(props, "gcnArchName", ""))
    if rocm:
        versions["gcn_arch"] = arch
        driver = _read("/sys/module/amdgpu/version")
        fp8 = arch.startswith(("gfx94", "gfx95"))
    else:
        driver = _read("/sys/module/nvidia/version")
        fp8 = (props.major, props.minor) >= (8, 9)
        versions["compute_capability"] = f"{props.major}.{props.minor}"
    if driver:
        versions["driver"] = driver
    if torch.backends.cudnn.is_available():
        versions["cudnn"] = str(torch.backends.cudnn.version())
    with contextlib.suppress(AttributeError, RuntimeError):
        versions["nccl"] = ".".join(str(v) for v in torch.cuda.nccl.version())
    matched = chip or match_chip(f"{name} {arch}", known)
    if matched is None:
        raise InputError(
            f"cannot tell which catalog chip {name!r} is; name it with --chip "
            f"(one of: {', '.join(sorted(known))})"
        )
    return Device(
        kind="rocm" if rocm else "cuda",
        torch_device=f"cuda:{index}",
        name=name,
        chip=matched,
        count=count,
        memory_bytes=float(props.total_memory),
        l2_bytes=float(getattr(props, "L2_cache_size", 0) or 0),
        versions=versions,
        fp8=fp8,
    )


def _xla(chip: str | None, known: Iterable[str]) -> Device | None:
    """The XLA device (TPU, Trainium, Inferentia) when torch_xla imports and has one."""
    try:
        import torch_xla
        import torch_xla.core.xla_model as xm
    except ImportError:
        return None
    device = xm.xla_device()
    hw = str(xm.xla_device_hw(device)).upper()
    if hw in ("CPU", ""):
        return None
    versions = _torch_versions()
    versions["torch_xla"] = str(getattr(torch_xla, "__version__", "?"))
    if hw == "NEURON":
        try:
            import torch_neuronx

            versions["torch_neuronx"] = str(getattr(torch_neuronx, "__version__", "?"))
        except ImportError:
            pass
        # AWS exposes the instance type as the DMI product name ("trn2.48xlarge").
        name = _read("/sys/devices/virtual/dmi/id/product_name") or "AWS Neuron device"
    else:
        name = os.environ.get("TPU_ACCELERATOR_TYPE", "") or f"{hw} device"
    matched = chip or match_chip(name, known)
    if matched is None:
        raise InputError(
            f"cannot tell which catalog chip the {hw} device {name!r} is; name it with "
            f"--chip (one of: {', '.join(sorted(known))})"
        )
    count = len(xm.get_xla_supported_devices()) if hasattr(xm, "get_xla_supported_devices") else 1
    return Device(
        kind="xla",
        torch_device=str(device),
        name=name,
        chip=matched,
        count=max(int(count), 1),
        versions=versions,
    )


def _cpu(chip: str | None, threads: int | None) -> Device:
    import torch

    if threads is not None:
        if threads < 1:
            raise InputError(f"--threads must be at least 1 (got {threads})")
        torch.set_num_threads(threads)
    info = cpu_info()
    versions = _torch_versions()
    versions["cpu_capability"] = str(torch.backends.cpu.get_cpu_capability())
    return Device(
        kind="cpu",
        torch_device="cpu",
        name=info.model_name,
        chip=chip or CPU_CHIP,
        count=1,
        memory_bytes=info.memory_bytes,
        versions=versions,
        fp8=False,
        cpu=info,
    )


def detect(
    device: str | None = None,
    chip: str | None = None,
    known: Iterable[str] = (),
    *,
    threads: int | None = None,
) -> Device:
    """The device to measure: ``device`` (``cpu``, ``cuda``, ``cuda:1``, ``xla``) or the
    first accelerator found; ``chip`` names its catalog id instead of the name match;
    ``threads`` sets the CPU's intra-op threads (fewer are steadier on a busy machine).

    ``known`` are the catalog's chip ids (plus ``cpu``)."""
    import torch

    known = set(known) | {CPU_CHIP}
    if chip is not None and chip not in known:
        raise UnknownNameError("chip", chip, known)
    wanted = (device or "").lower()
    if wanted.startswith(("cuda", "rocm", "gpu")):
        if not torch.cuda.is_available():
            raise InputError(f"--device {device}: PyTorch sees no CUDA/ROCm device")
        _, _, index = wanted.partition(":")
        return _gpu(int(index) if index.isdigit() else _local_rank(), chip, known)
    if wanted.startswith("xla"):
        found = _xla(chip, known)
        if found is None:
            raise InputError(f"--device {device}: torch_xla is not installed or sees no device")
        return found
    if wanted == "cpu":
        return _cpu(chip, threads)
    if wanted:
        raise UnknownNameError("device", device or "", ("cpu", "cuda", "cuda:N", "xla"))
    if torch.cuda.is_available():
        return _gpu(_local_rank(), chip, known)
    return _xla(chip, known) or _cpu(chip, threads)


def _local_rank() -> int:
    """The GPU of this process under torchrun (LOCAL_RANK), else the first."""
    value = os.environ.get("LOCAL_RANK", "0")
    return int(value) if value.isdigit() else 0


def synchronize(device: Device) -> None:
    """Wait until every kernel queued on ``device`` has finished."""
    if device.kind in ("cuda", "rocm"):
        import torch

        torch.cuda.synchronize(device.torch_device)
    elif device.kind == "xla":
        import torch_xla.core.xla_model as xm

        xm.mark_step()
        xm.wait_device_ops()
