"""How chips are put together: node, scale-up domain and scale-out network."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from chipmix.catalog.chip import Chip
from chipmix.catalog.figure import Figure, check_positive_figures
from chipmix.common.files import NoBoolNumbers

__all__ = ["System", "SystemKind"]

SystemKind = Literal["reference", "cloud-instance", "tpu-slice", "on-prem", "rack"]


class System(NoBoolNumbers):
    """A deployable unit of chips. Figures left out fall back to the chip's standard system."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.\-_]*$")
    name: str
    chip: str
    """Catalog id of the chip it holds."""
    provider: str
    """``aws``, ``gcp``, ``azure``, ``oci``, ``on-prem``, ..."""
    kind: SystemKind
    chips_per_node: int = Field(gt=0)
    """Chips behind one host (one instance, one TPU VM, one HGX board)."""
    reference: bool = False
    """True for the chip's reference system, the one ``--system <chip id>`` means."""
    scaleup_domain_chips: Figure | None = None
    scaleup_gb_s_per_direction: Figure | None = None
    scaleout_gbit_s_per_chip: Figure | None = None
    power_w_per_chip: Figure | None = None
    """The chip's share of the system's IT power, W: accelerator + its share of host CPUs,
    memory, NICs, switches and fans (the system's power / its chips). No facility overhead:
    the PUE is applied once, separately (`pue`). Absent: the chip's reference system's."""
    pue: Figure | None = None
    """Facility power / IT power of where the system runs; absent: its provider's figure
    (``facilities.yaml``)."""
    max_chips: int | None = Field(default=None, gt=0)
    """Largest job on one scale-up fabric (a TPU pod or slice limit, an UltraCluster size)."""
    multislice_max_chips: Figure | None = None
    """TPU Multislice: a job larger than ``max_chips`` runs on whole slices of ``max_chips``
    joined over the data-center network (DCN, the system's scale-out figure), up to this
    many chips. Absent: ``max_chips`` is the job limit."""
    differs_from_chip: dict[str, str] = Field(default_factory=dict)
    """Why a figure of this system differs from its chip's (key: the figure's name). The
    catalog refuses a link figure that contradicts the chip's without a reason here."""
    note: str = ""

    @model_validator(mode="after")
    def _usable_figures(self) -> System:
        check_positive_figures(self)
        return self


class ResolvedSystem(BaseModel):
    """A system with every topology figure resolved (its own or its chip's), ready for `perf`."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    system: System
    chip: Chip
    scaleup_domain_chips: int
    scaleup_bytes_per_s: float
    """Per chip, per direction."""
    scaleout_bytes_per_s: float
    """Per chip, per direction."""
    power_w_per_chip: float
    """IT power per chip (see `System.power_w_per_chip`)."""
    power_is_estimated: bool
    pue: float = 1.0
    """Facility overhead applied once to the IT energy."""
    pue_is_estimated: bool = True

    @property
    def id(self) -> str:
        return self.system.id
