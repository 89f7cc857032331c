"""The Pareto front of plans that trade one quantity for another (time for cost, …)."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["pareto_front"]


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indexes of the points no other point beats on both coordinates, lower being better
    on both; sorted by the first coordinate (so by rising second … falling second).

    A point is dominated when another is at most as large on both coordinates and smaller
    on one; equal points are all kept. O(n log n): sort by (x, y), keep each point whose y
    is below every y seen before it.
    """
    order = sorted(range(len(points)), key=lambda i: points[i])
    front: list[int] = []
    best_y = float("inf")
    last: tuple[float, float] | None = None
    for i in order:
        x, y = points[i]
        if y < best_y or points[i] == last:
            front.append(i)
            best_y = min(best_y, y)
            last = (x, y)
    return front
