"""Plans over sampled futures: uncertainty sources, sampling, the robust plan, Ray.

In the order an analysis runs: `sources` (what a scenario's ``futures:`` block may name;
`model_error` the model's own error per chip), `sample` (N reproducible futures and how each
changes the plan problem), `recourse` (the second stage: a first stage's cheapest recovery
in one future), `robust` (the two-stage formulation and the choice of the first stage),
`parallel` (serial or Ray tasks), `analysis` (the entry point) and `results`.
"""
