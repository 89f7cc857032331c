"""The plan's serving lines: the replicas the solve holds per entry, offer, tier and
period, what they cost and the output tokens they serve (`chipmix.planning.portfolio.serving`
holds the options and columns)."""

from __future__ import annotations

import numpy as np

from chipmix.planning.portfolio.problem import Problem
from chipmix.planning.portfolio.results import ServingEntry, ServingLine
from chipmix.planning.portfolio.serving import ServingOption

__all__ = ["serving_lines"]


def serving_lines(
    pb: Problem, options: list[ServingOption], replicas: dict[int, int]
) -> tuple[list[ServingLine], list[ServingEntry]]:
    """The plan's serving lines (entry × offer × tier) and each entry's totals. A period's
    tokens are shared among its lines by the tokens a day each line's replicas serve."""
    z = pb.serving
    sc = pb.scenario
    if z is None:
        return [], []
    per_day = np.zeros(z.demand.shape)  # tokens a day the replicas can serve, per entry
    for i, n in replicas.items():
        per_day[z.entry[i], z.period[i]] += n * z.tokens_per_day[i]
    asked = z.asked  # tokens asked per entry and period
    by_option: dict[int, list[int]] = {}
    for i in sorted(replicas):
        by_option.setdefault(int(z.option[i]), []).append(i)
    lines = []
    for g, cols in sorted(by_option.items()):
        opt = options[g]
        offer = sc.offers[opt.offer]
        est = opt.estimate
        chips = [0] * pb.num_periods
        tokens = chip_hours = cost = energy = 0.0
        for i in cols:
            n, t, e = replicas[i], int(z.period[i]), int(z.entry[i])
            chips[t] += n * int(z.chips[i])
            chip_hours += n * float(z.chips[i]) * float(z.hours[t])
            cost += n * float(z.usd_used[i])
            energy += n * float(z.energy_mwh[i])
            tokens += asked[e, t] * n * z.tokens_per_day[i] / per_day[e, t]
        lay = est.layout
        lines.append(
            ServingLine(
                serving=sc.serving[opt.serving].name, model=est.job.model.name, offer=offer.id,
                cloud=offer.cloud, system=offer.system.id, chip=offer.chip, vendor=offer.vendor,
                tier=opt.tier, layout=f"tp{lay.tp} pp{lay.pp} ep{lay.ep} batch {lay.batch}",
                replica_chips=opt.replica_chips, tokens_per_s_per_chip=est.tokens_per_s_per_chip,
                ttft_p99_ms=est.ttft_p99_ms, tpot_p99_ms=est.tpot_p99_ms, chips=chips,
                peak_chips=max(chips), chip_hours=chip_hours, cost_usd=cost, energy_mwh=energy,
                output_tokens=tokens, usd_per_million_tokens=_per_million(cost, tokens),
                price_flag=offer.price_flags.get(opt.tier, ""),
            )
        )  # fmt: skip
    entries = []
    for e, ps in enumerate(sc.serving):
        mine = [ln for ln in lines if ln.serving == ps.name]
        cost = sum(ln.cost_usd for ln in mine)
        tokens = float(asked[e].sum())
        peak = max((sum(ln.chips[t] for ln in mine) for t in range(pb.num_periods)), default=0)
        entries.append(
            ServingEntry(
                serving=ps.name, model=ps.job.model.name, slo=ps.slo(), output_tokens=tokens,
                peak_tokens_per_day=float(z.demand[e].max()), peak_chips=peak, cost_usd=cost,
                usd_per_million_tokens=_per_million(cost, tokens),
            )
        )  # fmt: skip
    return lines, entries


def _per_million(usd: float, tokens: float) -> float | None:
    return usd / tokens * 1e6 if tokens > 0 else None
