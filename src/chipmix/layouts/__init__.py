"""layouts: the layout space (parallel degrees, micro-batch, ZeRO, recompute) and the
search over it (`space`, `search`); `best` finds or checks a job's layout and prices it."""
