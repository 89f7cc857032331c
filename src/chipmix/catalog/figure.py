"""A number with its provenance: every hardware or price figure in the catalog is one."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Figure", "Source"]


class Source(BaseModel):
    """Where figures come from: a document, its address and the date it speaks for."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str
    """What the document is, e.g. "NVIDIA H100 Tensor Core GPU datasheet"."""
    url: str = ""
    """Where to read it; empty for documents without one (printed briefs)."""
    as_of: str = Field(pattern=r"^\d{4}(-\d{2}(-\d{2})?)?$")
    """The date the figures speak for, ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``."""


class Figure(BaseModel):
    """One number and the key of its `Source` in the same file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: float = Field(ge=0)
    source: str
    """Key into the file's ``sources`` table."""
    note: str = ""
    """Caveats: sparse vs dense, unit conversions, what was assumed."""
    estimated: bool = False
    """True where no document states the figure and it is our stated assumption."""
