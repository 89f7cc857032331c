"""The per-job comparison: one job sized on every system, ranked by time or cost."""
