"""Shared look of the report figures: vendor and tier colours, the base layout, formats."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = [
    "TIER_COLORS",
    "VENDOR_COLORS",
    "base_figure",
    "log_axis",
    "pct",
    "vendor_color",
    "vendor_name",
]

VENDOR_COLORS = {
    "nvidia": "#5e9a00",
    "amd": "#d62728",
    "google": "#1f77b4",
    "aws": "#ff9900",
    "intel": "#6a3d9a",
}
"""One colour per chip vendor, the same in every report (close to the vendors' own)."""

_VENDOR_NAMES = {"nvidia": "NVIDIA", "amd": "AMD", "google": "Google", "aws": "AWS"}

TIER_COLORS = {
    "on-demand": "#4c72b0",
    "spot": "#55a868",
    "committed-1y": "#c44e52",
    "committed-3y": "#8172b2",
    "owned": "#937860",
}

_OTHER = ("#17becf", "#bcbd22", "#7f7f7f", "#e377c2", "#8c564b", "#9467bd")


def vendor_color(vendor: str) -> str:
    if vendor in VENDOR_COLORS:
        return VENDOR_COLORS[vendor]
    return _OTHER[sum(map(ord, vendor)) % len(_OTHER)]


def vendor_name(vendor: str) -> str:
    return _VENDOR_NAMES.get(vendor, vendor.capitalize())


def pct(x: float | None, digits: int = 1) -> str:
    return "—" if x is None else f"{x:+.{digits}%}"


def base_figure(title: str, *, height: int = 440, **layout: Any) -> go.Figure:
    """An empty figure with the reports' common layout."""
    import plotly.graph_objects as go

    fig = go.Figure()
    base: dict[str, Any] = {
        "title": {"text": title, "x": 0.0, "xanchor": "left", "font": {"size": 15}},
        "template": "plotly_white",
        "height": height,
        "margin": {"l": 70, "r": 20, "t": 60, "b": 60},
        "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, Arial, sans-serif"},
        "legend": {"orientation": "v", "x": 1.01, "y": 1.0},
        "hoverlabel": {"align": "left"},
    }
    fig.update_layout(**(base | layout))
    return fig


def log_axis(values: list[float], threshold: float = 20.0) -> str:
    """'log' when the positive values span more than ``threshold``×, else 'linear'."""
    positive = [v for v in values if v > 0]
    if len(positive) < 2:
        return "linear"
    return "log" if max(positive) / min(positive) > threshold else "linear"
