"""Checkpoints: their size, how long they take to write and read, and how often to take them.

Size: the training state that a restart needs, mixed-precision Adam (Micikevicius et al.
2018; ZeRO, Rajbhandari et al. 2020, §3): bf16 weights (2 B/param) + fp32 master weights
and two Adam moments (12 B/param) = 14 B per trained parameter, the same constants as
`chipmix.perf.memory`; gradients are not saved. LoRA saves the adapters and their
optimizer state only (the frozen base model is already on disk). Data-loader and RNG state
are negligible.

Time: a distributed checkpoint writes each shard once from the chip that owns it, so the
write bandwidth is ``min(chips × per-chip bandwidth, storage aggregate)``. A synchronous
checkpoint blocks training for ``size / bandwidth``. An asynchronous one (PyTorch DCP
``async_save``, Megatron's async checkpointing, Orbax) blocks only for the device-to-host
copy of each chip's shard and persists in the background; it is durable only once the
write ends, and the next one cannot start before.

Interval: Young (1974, "A first order approximation to the optimum checkpoint interval",
CACM 17(9)) ``τ = √(2·δ·M)``; Daly (2006, "A higher order estimate of the optimum checkpoint
interval for restart dumps", FGCS 22(3), eq. 37) ``τ = √(2δM)·[1 + ⅓·√(δ/2M) + ⅑·(δ/2M)] − δ``
for ``δ < 2M``, else ``τ = M``; ``δ`` the time a checkpoint costs the job, ``M`` the mean time
between interruptions that lose work, ``τ`` the compute time between checkpoints. Both
assume exponential failures, a constant ``δ`` and restart cost; the optimum does not depend
on the restart cost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from chipmix.catalog.reliability import StorageFigures
from chipmix.errors import InputError
from chipmix.perf.memory import OPTIMIZER_BYTES, WEIGHT_BYTES, lora_params_per_layer
from chipmix.workload.job import Job

__all__ = [
    "CHECKPOINT_BYTES_PER_PARAM",
    "POLICIES",
    "CheckpointSpec",
    "checkpoint_bytes",
    "checkpoint_spec",
    "daly_interval",
    "parse_interval",
    "young_interval",
]

CHECKPOINT_BYTES_PER_PARAM = WEIGHT_BYTES + OPTIMIZER_BYTES
"""bf16 weights + fp32 master weights + Adam first and second moments: 14 bytes."""


def checkpoint_bytes(job: Job) -> float:
    """Bytes of one full checkpoint of ``job``'s training state."""
    model = job.model
    if job.mode == "lora":
        moe = model.num_moe_layers
        adapters = (model.num_layers - moe) * lora_params_per_layer(
            model, job.lora_rank, False
        ) + moe * lora_params_per_layer(model, job.lora_rank, True)
        return adapters * CHECKPOINT_BYTES_PER_PARAM
    return float(model.num_params()) * CHECKPOINT_BYTES_PER_PARAM


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckpointSpec:
    """How one checkpoint of one job behaves on one system."""

    size_bytes: float
    write_s: float
    """Persisting the whole checkpoint to storage."""
    snapshot_s: float
    """Device-to-host copy of each chip's shard (what an asynchronous checkpoint blocks)."""
    load_s: float
    """Reading it back on a restart."""
    asynchronous: bool

    @property
    def blocking_s(self) -> float:
        """Training time each checkpoint costs: δ in Young's and Daly's formulas."""
        return self.snapshot_s if self.asynchronous else self.write_s

    @property
    def persist_s(self) -> float:
        """From the end of the blocking part until the checkpoint is durable."""
        return self.write_s if self.asynchronous else 0.0

    def min_interval_s(self) -> float:
        """An asynchronous checkpoint cannot start before the previous one is durable."""
        return self.persist_s

    def as_dict(self) -> dict[str, float | bool]:
        return {
            "size_gib": self.size_bytes / 2**30,
            "write_s": self.write_s,
            "snapshot_s": self.snapshot_s,
            "load_s": self.load_s,
            "blocking_s": self.blocking_s,
            "asynchronous": self.asynchronous,
        }


def checkpoint_spec(
    job: Job, chips: int, storage: StorageFigures, *, asynchronous: bool
) -> CheckpointSpec:
    """Size and timings of ``job``'s checkpoint on ``chips`` chips with ``storage``."""
    size = checkpoint_bytes(job)
    write_bw = min(chips * storage.write_gb_s_per_chip.value, storage.aggregate_write_gb_s.value)
    read_bw = min(chips * storage.read_gb_s_per_chip.value, storage.aggregate_read_gb_s.value)
    snapshot_bw = storage.snapshot_gb_s_per_chip.value
    return CheckpointSpec(
        size_bytes=size,
        write_s=_seconds(size, write_bw),
        snapshot_s=_seconds(size / chips, snapshot_bw),
        load_s=_seconds(size, read_bw),
        asynchronous=asynchronous,
    )


def _seconds(size: float, gb_s: float) -> float:
    return math.inf if gb_s <= 0 else size / (gb_s * 1e9)


def young_interval(delta_s: float, mtbf_s: float) -> float:
    """Young (1974): ``τ = √(2·δ·M)`` seconds of compute between checkpoints."""
    if math.isinf(mtbf_s):
        return math.inf
    return math.sqrt(2.0 * delta_s * mtbf_s)


def daly_interval(delta_s: float, mtbf_s: float) -> float:
    """Daly (2006), eq. 37: ``√(2δM)·[1 + ⅓√(δ/2M) + ⅑(δ/2M)] − δ`` for ``δ < 2M``, else M."""
    if math.isinf(mtbf_s):
        return math.inf
    if delta_s >= 2.0 * mtbf_s:
        return mtbf_s
    x = delta_s / (2.0 * mtbf_s)
    return math.sqrt(2.0 * delta_s * mtbf_s) * (1.0 + math.sqrt(x) / 3.0 + x / 9.0) - delta_s


_UNITS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "hr": 3600.0}
POLICIES = ("daly", "young")


def parse_interval(value: float | str | None) -> float | str:
    """A checkpoint interval: seconds as a number, a string with a unit (``"30m"``,
    ``"900s"``, ``"1.5h"``), or a policy name (``"daly"``, the default, or ``"young"``)."""
    if value is None:
        return "daly"
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = str(value).strip().lower()
        if text in POLICIES:
            return text
        number = text.rstrip("abcdefghijklmnopqrstuvwxyz")
        unit = text[len(number) :]
        if unit not in _UNITS:
            raise InputError(
                f"checkpoint interval {value!r}: give a number with a unit (30m, 900s, 1.5h) "
                f"or a policy ({', '.join(POLICIES)})"
            )
        try:
            seconds = float(number) * _UNITS[unit]
        except ValueError:
            raise InputError(f"checkpoint interval {value!r} is not a number") from None
    if not 0 < seconds < math.inf:
        raise InputError(f"checkpoint interval must be positive (got {value!r})")
    return seconds
