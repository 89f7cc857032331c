"""A number with its provenance: every hardware or price figure in the catalog is one."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from chipmix.common.files import NoBoolNumbers

__all__ = ["MIN_HARDWARE_FIGURE", "Figure", "Source", "check_positive_figures"]

MIN_HARDWARE_FIGURE = 1e-3
"""The smallest hardware figure accepted, in the figure's own unit (TFLOP/s, GiB, TB/s,
GB/s, Gbit/s, W, chips): a thousandth of a unit is far below any accelerator ever built, and
a zero or a near-zero figure would divide a time by nothing (or make it run for years)."""


class Source(BaseModel):
    """Where figures come from: a document, its address and the date it speaks for."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    title: str
    """What the document is, e.g. "NVIDIA H100 Tensor Core GPU datasheet"."""
    url: str = ""
    """Where to read it; empty for documents without one (printed briefs)."""
    as_of: str = Field(pattern=r"^\d{4}(-\d{2}(-\d{2})?)?$")
    """The date the figures speak for, ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``."""


class Figure(NoBoolNumbers):
    """One number and the key of its `Source` in the same file."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    value: float = Field(ge=0)
    source: str
    """Key into the file's ``sources`` table."""
    note: str = ""
    """Caveats: sparse vs dense, unit conversions, what was assumed."""
    estimated: bool = False
    """True where no document states the figure and it is our stated assumption."""


def check_positive_figures(item: BaseModel) -> None:
    """Raise ValueError naming the first figure of ``item`` below `MIN_HARDWARE_FIGURE`."""
    for name in type(item).model_fields:
        value = getattr(item, name)
        figures = value.items() if isinstance(value, dict) else [(None, value)]
        for key, figure in figures:
            if isinstance(figure, Figure) and figure.value < MIN_HARDWARE_FIGURE:
                where = name if key is None else f"{name}.{key}"
                raise ValueError(
                    f"{where}: {figure.value:g} is not a usable figure (at least "
                    f"{MIN_HARDWARE_FIGURE:g}, in the figure's unit)"
                )
