"""What an interruption costs besides the lost work: noticing it, getting nodes, relaunching,
loading the checkpoint, warming up. Per cause (see `chipmix.sim.failures.CAUSES`):

- hardware (accelerator, HBM, host, network): detect + node swap + load + warm-up; the node
  swap takes a hot spare when one is free (``hot_spare_swap_s``), else waits for the first
  repaired spare or a replacement node, whichever comes first (``replace_node_s``);
- software: detect + relaunch on the same nodes + load + warm-up;
- planned maintenance: a checkpoint is written first (no lost work), then relaunch + load +
  warm-up;
- spot reclaim: if a checkpoint persists within the provider's warning, nothing is lost;
  then wait for capacity (``spot_reacquire_s``) + load + warm-up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from chipmix.catalog.reliability import RestartFigures
from chipmix.errors import InputError
from chipmix.sim.checkpoint import CheckpointSpec
from chipmix.sim.failures import CAUSES, HARDWARE_CAUSES

__all__ = ["RestartPolicy", "restart_policy"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RestartPolicy:
    """Restart costs of one job on one system, in seconds."""

    detect_s: float
    relaunch_s: float
    swap_s: float
    replace_s: float
    warmup_s: float
    repair_s: float
    spot_reacquire_s: float
    spot_warning_s: float
    hot_spare_nodes: int
    """Spare nodes kept warm for the job (0: every hardware failure waits for a new node)."""

    def __post_init__(self) -> None:
        for name in ("detect_s", "relaunch_s", "swap_s", "replace_s", "warmup_s", "repair_s",
                     "spot_reacquire_s", "spot_warning_s"):  # fmt: skip
            value = getattr(self, name)
            if not value >= 0 or math.isinf(value):
                raise InputError(f"restart {name} must be a finite number >= 0 (got {value})")
        if self.hot_spare_nodes < 0:
            raise InputError(f"hot spare nodes must be >= 0 (got {self.hot_spare_nodes})")

    def base_downtime(self, ckpt: CheckpointSpec) -> NDArray[np.float64]:
        """Downtime per cause (order of `CAUSES`), node swaps excluded for hardware causes
        (the engine adds the swap, which depends on the spare pool)."""
        tail = ckpt.load_s + self.warmup_s
        out = []
        for cause in CAUSES:
            if cause in HARDWARE_CAUSES:
                out.append(self.detect_s + tail)
            elif cause == "software":
                out.append(self.detect_s + self.relaunch_s + tail)
            elif cause == "planned":
                out.append(ckpt.write_s + self.relaunch_s + tail)
            else:  # spot reclaim
                out.append(self.spot_reacquire_s + tail)
        return np.asarray(out, dtype=np.float64)

    def spot_checkpoint_fits(self, ckpt: CheckpointSpec) -> bool:
        """Whether an emergency checkpoint persists within the reclaim warning."""
        return (
            ckpt.snapshot_s + ckpt.write_s <= self.spot_warning_s
            if ckpt.asynchronous
            else (ckpt.write_s <= self.spot_warning_s)
        )


def restart_policy(
    figures: RestartFigures, nodes: int, spot_warning_s: float, hot_spare_nodes: int | None
) -> RestartPolicy:
    """The policy from the reliability file; ``hot_spare_nodes`` None takes the file's share
    of the job's nodes, rounded up."""
    spares = (
        math.ceil(nodes * figures.hot_spare_fraction.value)
        if hot_spare_nodes is None
        else hot_spare_nodes
    )
    return RestartPolicy(
        detect_s=figures.detect_s.value,
        relaunch_s=figures.relaunch_s.value,
        swap_s=figures.hot_spare_swap_s.value,
        replace_s=figures.replace_node_s.value,
        warmup_s=figures.warmup_s.value,
        repair_s=figures.repair_h.value * 3600.0,
        spot_reacquire_s=figures.spot_reacquire_s.value,
        spot_warning_s=spot_warning_s,
        hot_spare_nodes=spares,
    )
