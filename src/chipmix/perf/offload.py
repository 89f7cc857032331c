"""Host offload: activations or optimizer state kept in host memory instead of device HBM.

- ``activations:N``: the saved activations of ``N`` layers of each pipeline stage go to
  host memory during forward and come back for backward — Megatron-Core / Transformer
  Engine ``--cpu-offloading --cpu-offloading-num-layers N`` (``cpu_offloading_num_layers``
  in NeMo and Megatron-Bridge; TE ``get_cpu_offload_context``, double-buffered per layer).
  ``activations`` alone offloads every layer but the ones in flight.
- ``optimizer``: fp32 master weights and Adam moments in host memory, the update on the
  CPU — Megatron-Core ``--optimizer-cpu-offload`` (HybridDeviceOptimizer with
  ``--optimizer-offload-fraction 1.0``) and DeepSpeed ZeRO-Offload (Ren et al. 2021,
  arXiv 2101.06840).

MaxText offloads named tensors through its remat policy instead (``custom:…=offload``,
``qkv_proj_offloaded``; see `chipmix.perf.recompute`). The host transfers are taken to be
hidden behind compute, as these stacks overlap them; a transfer slower than the layer it
hides behind is not modelled.

A layout carries its offload as one integer: ``2 · layers + optimizer``.
"""

from __future__ import annotations

import re

from chipmix.errors import InputError

__all__ = ["ALL_LAYERS", "OFFLOADS", "canonical_offload", "offload_code", "offload_from_text",
           "offload_name"]  # fmt: skip

ALL_LAYERS = 4095
"""The layer count that stands for every layer of the stage."""
OFFLOADS: tuple[str, ...] = ("none", "activations", "activations:N", "optimizer")


def offload_code(text: str) -> int:
    """Parse ``none``, ``optimizer``, ``activations``, ``activations:N`` or a comma-joined
    pair into its code; errors name the valid values."""
    layers, optimizer = 0, 0
    for part in filter(None, (p.strip() for p in text.strip().lower().split(","))):
        if part == "none":
            continue
        if part == "optimizer":
            optimizer = 1
        elif part == "activations":
            layers = ALL_LAYERS
        elif (m := re.fullmatch(r"activations:(\d+)", part)) and 0 < int(m.group(1)) < ALL_LAYERS:
            layers = int(m.group(1))
        else:
            raise InputError(
                f"unknown offload {part!r}; valid: {', '.join(OFFLOADS)} "
                f"(comma-joined, e.g. activations:20,optimizer)"
            )
    return 2 * layers + optimizer


def offload_name(code: int) -> str:
    layers, optimizer = divmod(int(code), 2)
    parts = []
    if layers:
        parts.append("activations" if layers >= ALL_LAYERS else f"activations:{layers}")
    if optimizer:
        parts.append("optimizer")
    return ",".join(parts) or "none"


def canonical_offload(text: str) -> str:
    return offload_name(offload_code(text))


def offload_from_text(text: str | None) -> str | None:
    """A published offload description as an offload value: Megatron's
    ``cpu_offloading_num_layers=20`` → ``activations:20``; ``optimizer`` → ``optimizer``.
    Tensor names (MaxText) return None: the remat policy carries them."""
    if not text or not text.strip():
        return None
    parts = []
    layers = re.search(r"cpu_offloading_num_layers\s*=\s*(\d+)", text) or re.search(
        r"activations of (\d+)", text
    )
    if layers:
        parts.append(f"activations:{layers.group(1)}")
    if "optimizer" in text.lower():
        parts.append("optimizer")
    return ",".join(parts) or None
