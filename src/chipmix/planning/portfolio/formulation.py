"""The portfolio MILP: which job runs where, in which tier, on how many chips, and when.

Formulation (solved with HiGHS; coded below in the same order)
----------------------------------------------------------------

Sets
    J            jobs; J_req ⊆ J the ones that must run (all but optional jobs under
                 max-tokens)
    P_j          candidate placements of job j (`placements`): offer o_p, tier k_p,
                 n_p chips, duration d_p hours
    T            periods t = 0 … |T|−1 of Δ hours from the scenario's start (``period_days``)
    S_p          start periods of p: ρ_j ≤ sΔ (release), sΔ + d_p ≤ δ_j (deadline, the end
                 of its day), s + L_{p,s} ≤ |T|, inside the term for a reserved tier, and
                 n_p ≤ cap_{o,t} in every period held. A run starts at max(sΔ, ρ_j) and
                 holds periods s … ⌈(max(sΔ, ρ_j) + d_p)/Δ⌉ − 1: L_{p,s} of them
    O, R         offers (chip pools); R the reserved tiers (committed-1y/3y, owned)
    V, C         chip vendors, clouds

Data
    a_{p,s,t} = 1 if s ≤ t < s + L_{p,s}: a run holds its chips for whole periods
    c_p          per-use cost ($/chip-h × chip-hours); 0 for reserved tiers
    F_{o,k}      cost of one reserved unit of o in tier k: u_o chips × $/chip-h × term hours
                 (the whole term is billed, even beyond the horizon; owned: the horizon)
    f_p, w_p     compute (H100-equivalent chip-hours) and power (MW) of p
    cap_{o,t}    chips offer o holds in period t (the least on any day of it)

Variables
    x_{p,s} ∈ {0,1}   p runs from the start of period s
    r_{o,k} ∈ ℤ≥0     units of o reserved in tier k ∈ R for the term
    y_v ∈ {0,1}       vendor v is used (only with a minimum number of vendors)
    M ≥ 0             makespan in hours (min-makespan only)
    z_{g,t} ∈ ℤ≥0     replicas of serving option g (entry e_g, offer, tier) held in period t
                      (`chipmix.planning.portfolio.serving`)

    cost    = Σ c_p x_{p,s} + Σ F_{o,k} r_{o,k}
    spend   = Σ ĉ_p x_{p,s} with ĉ_p = chip-hours × $/chip-hour in every tier: the spend on
              the work (a reserved run counts its share of the reservation; idle reserved
              hours count toward no share, so buying idle capacity cannot dilute one)
    compute = Σ f_p x_{p,s};  spend_v, compute_v (spend_c, compute_c): over v's (c's) runs

Objectives
    min-cost       min cost
    min-makespan   min M, then min cost with M ≤ M* (lexicographic, two solves)
    max-tokens     max Σ_j π_j·tokens_j·Σ x_{p,s} (π the priority), then min cost holding it

Constraints
    (1) assignment    Σ_{p∈P_j, s∈S_p} x_{p,s} = 1 for j ∈ J_req, ≤ 1 otherwise
    (2) capacity      Σ_{per-use p on o} Σ_s a_{p,s,t} n_p x_{p,s} + Σ_k u_o r_{o,k}[t in term]
                      ≤ cap_{o,t}                                  ∀ capped o, t
    (3) reservation   Σ_{p on (o,k)} Σ_s a_{p,s,t} n_p x_{p,s} ≤ u_o r_{o,k}   ∀ o, k ∈ R, t
    (4) windows       release and deadline: enforced by S_p (no variable outside them)
    (5) budget        cost ≤ B
    (6) share caps    spend_v ≤ κ_v·spend ∀ capped vendor v (basis "compute": compute_v ≤
                      κ_v·compute); the same for clouds
    (7) min vendors   y_v ≤ Σ_{p of v} x_{p,s} ∀ v;  Σ_v y_v ≥ m
    (8) power         Σ_p Σ_s a_{p,s,t} w_p x_{p,s} ≤ W                 ∀ t
    (9) makespan      Σ_{p∈P_j, s} (max(sΔ, ρ_j) + d_p) x_{p,s} ≤ M     ∀ j
    (10) serving      Σ_{g of e} X_g z_{g,t} ≥ D_{e,t}                    ∀ e, t with D > 0
                      (X_g output tokens a day per replica); each replica's n_g chips join
                      (2), (3) and (8) in period t, its cost (per-use: n_g × $/chip-h × the
                      period's hours) cost and (5), its spend and compute (6), its vendor (7)

Elastic form (to explain infeasibility): each group g of (2), (4)–(8), (10) may get
non-negative slack — chips over a cap per offer and period, hours late per start option
past the deadline (the horizon extended by the longest run), dollars over the budget, over
a share cap, vendors short, MW over the power cap, the share of a period's serving demand
unserved — and the objective becomes
``Σ_g slack_g / limit_g``: the least total violation, each relative to its own limit.

What it ignores: a run is never split or migrated (the simulator's business); reserved
chips count against an offer's cap for their whole term; a run's last period is held
whole; chip counts and layouts are the placements' (cheaper sizes that appear only once a
deadline moves are not searched again); per-use tiers pay only hours used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from chipmix.planning.portfolio.problem import (
    F64,
    I64,
    USD,
    Columns,
    Goal,
    Problem,
    cap_row,
    distinct,
    ramp,
    start_columns,
)

__all__ = ["Model", "Slack", "build_model", "value_scale"]


# -- rows ------------------------------------------------------------------------------------
class _Matrix:
    """Rows built as (row, column, value) triplets."""

    def __init__(self) -> None:
        self.rows: list[I64] = []
        self.cols: list[I64] = []
        self.vals: list[F64] = []
        self.lower: list[float] = []
        self.upper: list[float] = []
        self.names: list[str] = []

    def add(self, lower: float, upper: float, name: str) -> int:
        self.lower.append(lower)
        self.upper.append(upper)
        self.names.append(name)
        return len(self.lower) - 1

    def add_rows(self, lower: float, upper: float, names: list[str]) -> I64:
        """Rows with the same bounds, one per name; their indices."""
        first = len(self.lower)
        self.lower.extend([lower] * len(names))
        self.upper.extend([upper] * len(names))
        self.names.extend(names)
        return np.arange(first, len(self.lower), dtype=np.int64)

    def entries(self, rows: Any, cols: Any, vals: Any) -> None:
        """Entries (row, column, value); a scalar row or value stands for every column."""
        c = np.asarray(cols, dtype=np.int64).ravel()
        r = np.asarray(rows, dtype=np.int64).ravel()
        v = np.array(vals, dtype=np.float64).ravel()  # a copy: the caller's array may change
        if r.shape != c.shape:
            r = np.full(c.shape, r[0], dtype=np.int64)
        if v.shape != c.shape:
            v = np.full(c.shape, v[0])
        self.rows.append(r)
        self.cols.append(c)
        self.vals.append(v)

    def csc(self, num_cols: int) -> tuple[I64, I64, F64]:
        """The matrix in compressed sparse columns (HiGHS's ``kColwise``): column starts,
        row indices ascending within each column, values; entries added twice to one cell
        are summed (in the order added). What scipy's ``coo_matrix(...).tocsc()`` gives,
        without importing scipy.sparse (~0.15 s) for it."""
        rows = np.concatenate(self.rows) if self.rows else np.zeros(0, np.int64)
        cols = np.concatenate(self.cols) if self.cols else np.zeros(0, np.int64)
        vals = np.concatenate(self.vals) if self.vals else np.zeros(0)
        order = np.lexsort((rows, cols))  # by column, then row; a cell's entries as added
        rows, cols, vals = rows[order], cols[order], vals[order]
        new = np.ones(len(rows), dtype=np.bool_)
        new[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
        first = np.flatnonzero(new)
        values = np.add.reduceat(vals, first) if len(first) else vals
        start = np.searchsorted(cols[first], np.arange(num_cols + 1))
        return (
            np.asarray(start, dtype=np.int64),
            np.asarray(rows[first], dtype=np.int64),
            np.asarray(values, dtype=np.float64),
        )


@dataclass(frozen=True)
class Slack:
    """One elastic column: which group, which limit, how it is scaled."""

    group: str
    key: tuple[Any, ...]
    """(offer, period) for capacity, (vendor,) for caps, (period,) for power, () else."""
    col: int


@dataclass
class Model:
    cols: Columns
    num_cols: int
    cost: F64
    lower: F64
    upper: F64
    integer: NDArray[np.bool_]
    matrix: _Matrix
    r0: int
    """First reservation column."""
    y0: int
    m_col: int
    slacks: list[Slack]
    z0: int = 0
    """First serving-replica column (`Problem.serving`), after M."""
    sense: int = 1


def build_model(pb: Problem, goal: Goal, elastic: frozenset[str], hold: dict[str, float]) -> Model:
    """Columns and rows of the MILP; ``hold`` bounds earlier objectives (lexicographic)."""
    cols = start_columns(pb, elastic)
    nx = len(cols.p)
    nr = len(pb.reservations)
    use_vendors = pb.min_vendors is not None and pb.min_vendors > 1
    nv = len(pb.vendors) if use_vendors else 0
    r0, y0 = nx, nx + nr
    m_col = y0 + nv
    z = pb.serving
    nz = 0 if z is None else len(z)
    z0 = m_col + 1
    ncols = z0 + nz
    cost = np.zeros(ncols)
    lower = np.zeros(ncols)
    upper = np.ones(ncols)
    integer = np.ones(ncols, dtype=np.bool_)
    integer[m_col] = False
    upper[m_col] = hold.get("makespan", np.inf)
    if z is not None:
        upper[z0:ncols] = z.upper
    mat = _Matrix()
    slacks: list[Slack] = []
    extra_cost: list[float] = []

    def slack(group: str, key: tuple[Any, ...], weight: float) -> int:
        col = ncols + len(slacks)
        slacks.append(Slack(group, key, col))
        extra_cost.append(weight)
        return col

    p, s, length = cols.p, cols.s, cols.length
    usd_x = pb.usd[p] * USD
    res_usd = np.array([f for _, _, f, _ in pb.reservations]) * USD
    for k, (o, _, _, _) in enumerate(pb.reservations):
        cap = pb.cap[o]
        finite = cap[np.isfinite(cap)]
        units = pb.scenario.offers[o].chips_per_unit
        upper[r0 + k] = math.floor(finite.min() / units) if len(finite) else 1e7
    # expand each column over the periods it holds
    rep = np.repeat(np.arange(nx, dtype=np.int64), length)
    t_of = s[rep] + ramp(length)
    horizon_t = int(t_of.max()) + 1 if len(t_of) else pb.num_periods
    horizon_t = max(horizon_t, pb.num_periods)
    z_cols = z0 + np.arange(nz, dtype=np.int64)
    z_t = np.zeros(0, np.int64) if z is None else z.period

    # (1) assignment
    first = len(mat.lower)
    for j in range(len(pb.required)):
        mat.add(1.0 if pb.required[j] else 0.0, 1.0, f"assign[{j}]")
    mat.entries(first + pb.job[p], np.arange(nx, dtype=np.int64), 1.0)
    # (2) capacity, (3) reservation
    res_of_offer: dict[int, list[int]] = {}
    for k, (o, _, _, _) in enumerate(pb.reservations):
        res_of_offer.setdefault(o, []).append(k)
    per_use = ~pb.reserved[p[rep]]
    offer_rep = pb.offer[p[rep]]
    for o in range(len(pb.scenario.offers)):
        cap = cap_row(pb, o, horizon_t)
        if not np.isfinite(cap).any():
            continue
        sel = per_use & (offer_rep == o)
        z_sel = np.zeros(0, np.bool_) if z is None else (z.offer == o) & (z.tier_key < 0)
        periods = distinct(
            t_of[sel], z_t[z_sel], np.array(sorted(_reserved_periods(pb, o, horizon_t)))
        )
        if not len(periods):
            continue
        row_of = np.full(horizon_t, -1, dtype=np.int64)
        for t in periods.tolist():
            limit = cap[t] if np.isfinite(cap[t]) else 1e12
            row_of[t] = mat.add(-np.inf, limit, f"capacity[{o},{t}]")
            if "capacity" in elastic and np.isfinite(cap[t]):
                col = slack("capacity", (o, t), 1.0 / max(cap[t], 1.0))
                mat.entries(row_of[t], [col], -1.0)
        idx = np.flatnonzero(sel)
        mat.entries(row_of[t_of[idx]], rep[idx], pb.chips[p[rep[idx]]])
        if z is not None:
            zi = np.flatnonzero(z_sel)
            mat.entries(row_of[z_t[zi]], z_cols[zi], z.chips[zi])
        units = pb.scenario.offers[o].chips_per_unit
        for k in res_of_offer.get(o, []):
            term_h = pb.reservations[k][3]
            last = horizon_t if not math.isfinite(term_h) else math.ceil(term_h / pb.period_h)
            held = periods[periods < last]
            mat.entries(row_of[held], np.full(len(held), r0 + k), float(units))
    for k, (o, _, _, _) in enumerate(pb.reservations):
        units = pb.scenario.offers[o].chips_per_unit
        sel = pb.tier_key[p[rep]] == k
        idx = np.flatnonzero(sel)
        zk = np.zeros(0, np.int64) if z is None else np.flatnonzero(z.tier_key == k)
        periods = distinct(t_of[idx], z_t[zk])
        row_of = np.full(horizon_t, -1, dtype=np.int64)
        row_of[periods] = mat.add_rows(
            -np.inf, 0.0, [f"reservation[{k},{t}]" for t in periods.tolist()]
        )
        mat.entries(row_of[t_of[idx]], rep[idx], pb.chips[p[rep[idx]]])
        if z is not None:
            mat.entries(row_of[z_t[zk]], z_cols[zk], z.chips[zk])
        mat.entries(row_of[periods], np.full(len(periods), r0 + k), -float(units))
    # (4) windows: in the columns; elastic deadlines pay for lateness
    late_cost = np.zeros(nx)
    if "deadlines" in elastic:
        window = np.maximum(pb.deadline_h - pb.release_h, pb.period_h)
        late_cost = cols.late_h / window[pb.job[p]]
    # cost expression: per-use columns and reservations
    cost_cols = np.concatenate([np.arange(nx), r0 + np.arange(nr), z_cols])
    cost_vals = np.concatenate([usd_x, res_usd if nr else np.zeros(0)])
    if z is not None:
        cost_vals = np.concatenate([cost_vals, z.usd * USD])
    # (5) budget
    if pb.budget_usd is not None:
        row = mat.add(-np.inf, pb.budget_usd * USD, "budget")
        mat.entries(row, cost_cols, cost_vals)
        if "budget" in elastic:
            mat.entries(row, [slack("budget", (), 1.0 / (pb.budget_usd * USD))], -1.0)
    # (6) share caps, in $M or in millions of H100-equivalent chip-hours
    scale = _cost_scale(pb) if pb.cap_basis == "spend" else _compute_scale(pb)
    for group, caps, owner, names in (
        ("vendor-caps", pb.vendor_caps, pb.vendor, pb.vendors),
        ("cloud-caps", pb.cloud_caps, pb.cloud, pb.clouds),
    ):
        for v, kappa in sorted(caps.items()):
            row = mat.add(-np.inf, 0.0, f"{group}[{names[v]}]")
            mine_x = (owner[p] == v).astype(np.float64)
            amount = pb.compute[p] / 1e6 if pb.cap_basis == "compute" else pb.usd_used[p] * USD
            mat.entries(row, np.arange(nx), amount * (mine_x - kappa))
            if z is not None:
                z_owner = z.vendor if group == "vendor-caps" else z.cloud
                mine_z = (z_owner == v).astype(np.float64)
                z_amount = z.compute / 1e6 if pb.cap_basis == "compute" else z.usd_used * USD
                mat.entries(row, z_cols, z_amount * (mine_z - kappa))
            if group in elastic:
                col = slack(group, (names[v],), 1.0 / max(scale * kappa, 1e-9))
                mat.entries(row, [col], -1.0)
    # (7) minimum number of vendors
    if use_vendors:
        assert pb.min_vendors is not None
        for v in range(nv):
            row = mat.add(-np.inf, 0.0, f"vendor-used[{pb.vendors[v]}]")
            mat.entries(row, [y0 + v], 1.0)
            mat.entries(row, np.flatnonzero(pb.vendor[p] == v), -1.0)
            if z is not None:
                mat.entries(row, z_cols[z.vendor == v], -1.0)
        row = mat.add(float(pb.min_vendors), np.inf, "min-vendors")
        mat.entries(row, y0 + np.arange(nv), 1.0)
        if "vendors" in elastic:
            mat.entries(row, [slack("vendors", (), 1.0)], 1.0)
    # (8) power
    if pb.power_cap_mw is not None:
        periods = distinct(t_of, z_t)
        row_of = np.full(max(horizon_t, int(periods.max()) + 1 if len(periods) else 0), -1)
        row_of[periods] = mat.add_rows(
            -np.inf, pb.power_cap_mw, [f"power[{t}]" for t in periods.tolist()]
        )
        mat.entries(row_of[t_of], rep, pb.power_mw[p[rep]])
        if z is not None:
            mat.entries(row_of[z_t], z_cols, z.power_mw)
        if "power" in elastic:
            for t in periods.tolist():
                mat.entries(row_of[t], [slack("power", (t,), 1.0 / pb.power_cap_mw)], -1.0)
    # (9) makespan
    if goal == "makespan" or "makespan" in hold:
        for j in range(len(pb.required)):
            row = mat.add(-np.inf, 0.0, f"makespan[{j}]")
            here = np.flatnonzero(pb.job[p] == j)
            mat.entries(row, here, cols.end_h[here])
            mat.entries(row, [m_col], -1.0)
    # (10) serving demand, in shares of the period's demand
    if z is not None:
        entry = z.entry
        for e, t in sorted(set(zip(entry.tolist(), z_t.tolist(), strict=True))):
            asked = float(z.demand[e, t])
            row = mat.add(1.0, np.inf, f"serving[{e},{t}]")
            here = np.flatnonzero((entry == e) & (z_t == t))
            mat.entries(row, z_cols[here], z.tokens_per_day[here] / asked)
            if "serving" in elastic:
                mat.entries(row, [slack("serving", (e, t), 1.0)], 1.0)
        for e, t in zip(*np.nonzero(z.demand), strict=True):
            if not ((entry == e) & (z_t == t)).any():  # no option can serve it: a row to
                row = mat.add(1.0, np.inf, f"serving[{e},{t}]")  # break, elastic or not
                if "serving" in elastic:
                    mat.entries(row, [slack("serving", (int(e), int(t)), 1.0)], 1.0)
    if "tokens" in hold:
        row = mat.add(hold["tokens"] / value_scale(pb), np.inf, "tokens-held")
        mat.entries(row, np.arange(nx), pb.value[pb.job[p]] / value_scale(pb))

    # objective
    if goal == "cost":
        cost[cost_cols] = cost_vals
    elif goal == "makespan":
        cost[m_col] = 1.0
    elif goal == "tokens":
        cost[:nx] = -pb.value[pb.job[p]] / value_scale(pb)
    else:  # violation
        cost[:nx] = late_cost
    ns = len(slacks)
    if ns:
        cost = np.concatenate([cost, np.array(extra_cost)])
        lower = np.concatenate([lower, np.zeros(ns)])
        upper = np.concatenate([upper, np.full(ns, np.inf)])
        integer = np.concatenate([integer, np.zeros(ns, dtype=np.bool_)])
    return Model(
        cols=cols,
        num_cols=ncols + ns,
        cost=cost,
        lower=lower,
        upper=upper,
        integer=integer,
        matrix=mat,
        r0=r0,
        y0=y0,
        m_col=m_col,
        slacks=slacks,
        z0=z0,
    )


def _reserved_periods(pb: Problem, o: int, horizon_t: int) -> set[int]:
    out: set[int] = set()
    for offer, _, _, term_h in pb.reservations:
        if offer == o:
            last = horizon_t if not math.isfinite(term_h) else math.ceil(term_h / pb.period_h)
            out |= set(range(min(last, horizon_t)))
    return out


def _cost_scale(pb: Problem) -> float:
    """A lower bound on the plan's cost ($M): each job's cheapest placement."""
    return max(_lower_bound(pb, pb.usd_used) * USD, 1e-6)


def _compute_scale(pb: Problem) -> float:
    """A lower bound on the plan's compute (millions of H100-equivalent chip-hours)."""
    return max(_lower_bound(pb, pb.compute) / 1e6, 1e-9)


def _lower_bound(pb: Problem, per_placement: F64) -> float:
    total = 0.0
    for j in range(len(pb.required)):
        sel = pb.job == j
        if sel.any():
            total += float(per_placement[sel].min())
    return total


def value_scale(pb: Problem) -> float:
    return max(float(pb.value.max()) if len(pb.value) else 1.0, 1.0)
