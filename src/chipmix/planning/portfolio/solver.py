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

Elastic form (to explain infeasibility): each group g of (2), (4), (5), (6), (7), (8) may get
non-negative slack — chips over a cap per offer and period, hours late per start option
past the deadline (the horizon extended by the longest run), dollars over the budget, over
a share cap, vendors short, MW over the power cap — and the objective becomes
``Σ_g slack_g / limit_g``: the least total violation, each relative to its own limit.

What it ignores: a run is never split or migrated (the simulator's business); reserved
chips count against an offer's cap for their whole term; a run's last period is held
whole; chip counts and layouts are the placements' (cheaper sizes that appear only once a
deadline moves are not searched again); per-use tiers pay only hours used.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from chipmix.planning.portfolio.occupancy import repair_vendors
from chipmix.planning.portfolio.placements import Candidates
from chipmix.planning.portfolio.scenario import Scenario

__all__ = [
    "ELASTIC_GROUPS",
    "LAZY_GROUPS",
    "Goal",
    "Problem",
    "Slack",
    "Solution",
    "highspy_module",
    "solve",
    "violated",
]

Goal = Literal["cost", "makespan", "tokens", "violation"]
ELASTIC_GROUPS = (
    "capacity",
    "deadlines",
    "budget",
    "vendor-caps",
    "cloud-caps",
    "vendors",
    "power",
)
"""The constraint groups the elastic form can relax."""
USD = 1e-6
"""The model counts money in millions of dollars (keeps its coefficients near 1)."""

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


@dataclass(frozen=True)
class Problem:
    """The scenario as arrays: one entry per placement, per offer, per period."""

    scenario: Scenario
    candidates: Candidates
    period_h: float
    num_periods: int
    # per placement p
    job: I64
    offer: I64
    chips: F64
    duration_h: F64
    usd: F64
    """Per-use cost ($); 0 for reserved tiers (the reservation is paid instead)."""
    usd_used: F64
    """chip-hours × $/chip-hour for every tier (a reserved run's share of its reservation)."""
    compute: F64
    power_mw: F64
    reserved: NDArray[np.bool_]
    tier_key: I64
    """Index into `reservations` for reserved placements, -1 otherwise."""
    vendor: I64
    cloud: I64
    # per job
    release_h: F64
    """Hours from the horizon's start to the job's release."""
    deadline_h: F64
    required: NDArray[np.bool_]
    value: F64
    """priority × tokens: what max-tokens maximizes."""
    # per offer and period
    cap: F64
    """cap[o, t] in chips (inf: no cap) for the periods of the horizon; past it (elastic
    deadlines), the last period's."""
    reservations: list[tuple[int, str, float, float]] = field(default_factory=list)
    """(offer, tier, $ per unit for the term, term hours) of every reserved tier in use."""
    vendors: list[str] = field(default_factory=list)
    clouds: list[str] = field(default_factory=list)
    # constraint data (changed by the sensitivity analysis)
    budget_usd: float | None = None
    vendor_caps: dict[int, float] = field(default_factory=dict)
    cloud_caps: dict[int, float] = field(default_factory=dict)
    cap_basis: str = "spend"
    min_vendors: int | None = None
    power_cap_mw: float | None = None
    max_end_h: float | None = None
    """Every run ends by then (the Pareto front's ε-constraint)."""

    @staticmethod
    def of(scenario: Scenario, candidates: Candidates) -> Problem:
        ps = candidates.placements
        offers = scenario.offers
        vendors = sorted({o.vendor for o in offers})
        clouds = sorted({o.cloud for o in offers})
        reservations: list[tuple[int, str, float, float]] = []
        key_of: dict[tuple[int, str], int] = {}
        for p in ps:
            if p.reserved and (p.offer, p.tier) not in key_of:
                offer = offers[p.offer]
                term_h = offer.term_days.get(p.tier, math.inf) * 24.0
                billed = term_h if math.isfinite(term_h) else scenario.horizon_h
                per_unit = offer.chips_per_unit * offer.usd_per_chip_hour[p.tier] * billed
                key_of[(p.offer, p.tier)] = len(reservations)
                reservations.append((p.offer, p.tier, per_unit, term_h))
        jobs = scenario.jobs
        periods = scenario.num_periods
        c = scenario.constraints
        return Problem(
            scenario=scenario,
            candidates=candidates,
            period_h=scenario.period_h,
            num_periods=periods,
            job=np.array([p.job for p in ps], dtype=np.int64),
            offer=np.array([p.offer for p in ps], dtype=np.int64),
            chips=np.array([p.chips for p in ps], dtype=np.float64),
            duration_h=np.array([p.duration_h for p in ps], dtype=np.float64),
            usd=np.array([0.0 if p.reserved else p.usd for p in ps], dtype=np.float64),
            usd_used=np.array([p.usd for p in ps], dtype=np.float64),
            compute=np.array([p.h100_hours for p in ps], dtype=np.float64),
            power_mw=np.array([p.power_mw for p in ps], dtype=np.float64),
            reserved=np.array([p.reserved for p in ps], dtype=np.bool_),
            tier_key=np.array([key_of.get((p.offer, p.tier), -1) for p in ps], dtype=np.int64),
            vendor=np.array([vendors.index(offers[p.offer].vendor) for p in ps], dtype=np.int64),
            cloud=np.array([clouds.index(offers[p.offer].cloud) for p in ps], dtype=np.int64),
            release_h=np.array([scenario.release_h(j) for j in jobs], dtype=np.float64),
            deadline_h=np.array([scenario.deadline_h(j) for j in jobs], dtype=np.float64),
            required=np.array([j.required for j in jobs], dtype=np.bool_),
            value=np.array([j.priority * j.tokens for j in jobs], dtype=np.float64),
            cap=_caps(scenario),
            reservations=reservations,
            vendors=vendors,
            clouds=clouds,
            budget_usd=c.budget_usd,
            vendor_caps={vendors.index(v): k for v, k in c.vendor_caps.items() if v in vendors},
            cloud_caps={clouds.index(v): k for v, k in c.cloud_caps.items() if v in clouds},
            cap_basis=c.cap_basis,
            min_vendors=c.min_vendors,
            power_cap_mw=c.power_cap_mw,
        )

    def shares(self, chosen: list[tuple[int, int]], by: str) -> tuple[F64, F64]:
        """Spend on the work ($, ĉ_p) and compute (H100-eq chip-hours) per vendor
        (``by="vendor"``, indexed like `vendors`) or per cloud (like `clouds`)."""
        owner = self.vendor if by == "vendor" else self.cloud
        size = len(self.vendors) if by == "vendor" else len(self.clouds)
        spend = np.zeros(size)
        compute = np.zeros(size)
        for p, _ in chosen:
            spend[owner[p]] += self.usd_used[p]
            compute[owner[p]] += self.compute[p]
        return spend, compute

    def changed(self, **changes: Any) -> Problem:
        return replace(self, **changes)

    @property
    def num_placements(self) -> int:
        return len(self.job)

    @property
    def release_period(self) -> I64:
        """The period each job's release falls in (its first possible start period)."""
        return np.floor(self.release_h / self.period_h + 1e-9).astype(np.int64)

    def span(self, p: int, s: int) -> tuple[float, float, int]:
        """(start h, end h, periods held) of placement p started in period s: it starts at
        the period's start or at the job's release, whichever is later."""
        start = max(s * self.period_h, float(self.release_h[self.job[p]]))
        end = start + float(self.duration_h[p])
        return start, end, max(1, math.ceil(end / self.period_h - 1e-9) - s)


def _caps(scenario: Scenario) -> F64:
    """cap[o, t] for every period of the horizon."""
    periods = scenario.num_periods
    out = np.full((len(scenario.offers), periods), np.inf)
    for o, offer in enumerate(scenario.offers):
        for t in range(periods):
            first = scenario.day_at(t * scenario.period_h)
            last = scenario.day_at(min((t + 1) * scenario.period_h, scenario.horizon_h) - 1e-6)
            cap = offer.chips_between(first, last)
            out[o, t] = np.inf if cap is None else float(cap)
    return out


def _cap_row(pb: Problem, o: int, periods: int) -> F64:
    """cap[o, 0 … periods−1], the last period's cap repeated past the horizon."""
    row: F64 = pb.cap[o]
    if periods <= len(row):
        return row[:periods]
    return np.concatenate([row, np.full(periods - len(row), row[-1])])


# -- columns ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Columns:
    """The x_{p,s} columns: placement, start period, periods held, lateness."""

    p: I64
    s: I64
    length: I64
    late_h: F64
    end_h: F64


def _x_columns(pb: Problem, elastic: frozenset[str]) -> _Columns:
    n = pb.num_placements
    T = pb.num_periods
    whole = np.maximum(1, np.ceil(pb.duration_h / pb.period_h - 1e-9)).astype(np.int64)
    s_lo = pb.release_period[pb.job]
    horizon = T + (int(whole.max()) + 1 if "deadlines" in elastic and n else 0)
    s_hi = np.full(n, horizon, dtype=np.int64) - whole
    deadline = pb.deadline_h[pb.job]
    if "deadlines" not in elastic:  # (4) windows
        s_hi = np.minimum(s_hi, np.floor((deadline - pb.duration_h) / pb.period_h + 1e-9))
    if pb.max_end_h is not None:
        s_hi = np.minimum(s_hi, np.floor((pb.max_end_h - pb.duration_h) / pb.period_h + 1e-9))
    for key, (_, _, _, term_h) in enumerate(pb.reservations):
        if math.isfinite(term_h):
            sel = pb.tier_key == key
            s_hi[sel] = np.minimum(
                s_hi[sel], np.floor((term_h - pb.duration_h[sel]) / pb.period_h + 1e-9)
            )
    s_hi = s_hi.astype(np.int64)
    counts = np.maximum(0, s_hi - s_lo + 1)
    p = np.repeat(np.arange(n, dtype=np.int64), counts)
    s = s_lo[p] + _ramp(counts)
    start_h = np.maximum(s * pb.period_h, pb.release_h[pb.job[p]])
    end_h = start_h + pb.duration_h[p]
    length = np.maximum(1, np.ceil(end_h / pb.period_h - 1e-9).astype(np.int64) - s)
    keep = s + length <= horizon
    if "deadlines" not in elastic:
        keep &= end_h <= deadline[p] + 1e-6
    if pb.max_end_h is not None:
        keep &= end_h <= pb.max_end_h + 1e-6
    for key, (_, _, _, term_h) in enumerate(pb.reservations):
        if math.isfinite(term_h):
            keep &= (pb.tier_key[p] != key) | (end_h <= term_h + 1e-6)
    if "capacity" not in elastic:  # drop starts that could never fit the cap
        keep &= _fits_caps(pb, p, s, length)
    if pb.power_cap_mw is not None and "power" not in elastic:
        keep &= pb.power_mw[p] <= pb.power_cap_mw + 1e-9
    p, s, length, end_h = p[keep], s[keep], length[keep], end_h[keep]
    late_h = np.maximum(0.0, end_h - deadline[p])
    return _Columns(p=p, s=s, length=length, late_h=late_h, end_h=end_h)


def _ramp(counts: I64) -> I64:
    """0, 1, …, c−1 for each count c, concatenated."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.cumsum(counts) - counts
    return np.arange(total, dtype=np.int64) - np.repeat(starts, counts)


def _fits_caps(pb: Problem, p: I64, s: I64, length: I64) -> NDArray[np.bool_]:
    """n_p ≤ cap_{o,t} in every period the run holds."""
    ok = np.ones(len(p), dtype=np.bool_)
    o = pb.offer[p]
    n = pb.chips[p]
    pairs = np.unique(np.stack([o, n.astype(np.int64)]), axis=1) if len(p) else np.zeros((2, 0))
    periods = int((s + length).max()) if len(p) else 0
    for oo, nn in pairs.T:
        row = _cap_row(pb, int(oo), periods)
        if not np.isfinite(row).any():
            continue
        bad = np.concatenate([[0], np.cumsum(row < nn)])
        sel = np.flatnonzero((o == oo) & (n == nn))
        ok[sel] = bad[s[sel] + length[sel]] - bad[s[sel]] == 0
    return ok


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

    def entries(self, rows: Any, cols: Any, vals: Any) -> None:
        r = np.asarray(rows, dtype=np.int64)
        c = np.asarray(cols, dtype=np.int64)
        v = np.broadcast_to(np.asarray(vals, dtype=np.float64), c.shape)
        r = np.broadcast_to(r, c.shape)
        self.rows.append(r.ravel())
        self.cols.append(c.ravel())
        self.vals.append(np.array(v, dtype=np.float64).ravel())

    def csc(self, num_cols: int) -> tuple[I64, I64, F64]:
        from scipy.sparse import coo_matrix

        rows = np.concatenate(self.rows) if self.rows else np.zeros(0, np.int64)
        cols = np.concatenate(self.cols) if self.cols else np.zeros(0, np.int64)
        vals = np.concatenate(self.vals) if self.vals else np.zeros(0)
        m = coo_matrix((vals, (rows, cols)), shape=(len(self.lower), num_cols)).tocsc()
        m.sum_duplicates()
        return (
            m.indptr.astype(np.int64),
            m.indices.astype(np.int64),
            m.data.astype(np.float64),
        )


@dataclass(frozen=True)
class Slack:
    """One elastic column: which group, which limit, how it is scaled."""

    group: str
    key: tuple[Any, ...]
    """(offer, period) for capacity, (vendor,) for caps, (period,) for power, () else."""
    col: int


@dataclass
class _Model:
    cols: _Columns
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
    sense: int = 1


def _build(pb: Problem, goal: Goal, elastic: frozenset[str], hold: dict[str, float]) -> _Model:
    """Columns and rows of the MILP; ``hold`` bounds earlier objectives (lexicographic)."""
    cols = _x_columns(pb, elastic)
    nx = len(cols.p)
    nr = len(pb.reservations)
    use_vendors = pb.min_vendors is not None and pb.min_vendors > 1
    nv = len(pb.vendors) if use_vendors else 0
    r0, y0 = nx, nx + nr
    m_col = y0 + nv
    ncols = m_col + 1
    cost = np.zeros(ncols)
    lower = np.zeros(ncols)
    upper = np.ones(ncols)
    integer = np.ones(ncols, dtype=np.bool_)
    integer[m_col] = False
    upper[m_col] = hold.get("makespan", np.inf)
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
    t_of = s[rep] + _ramp(length)
    horizon_t = int(t_of.max()) + 1 if len(t_of) else pb.num_periods
    horizon_t = max(horizon_t, pb.num_periods)

    # (1) assignment
    for j in range(len(pb.required)):
        row = mat.add(1.0 if pb.required[j] else 0.0, 1.0, f"assign[{j}]")
        mat.entries(row, np.flatnonzero(pb.job[p] == j), 1.0)
    # (2) capacity, (3) reservation
    res_of_offer: dict[int, list[int]] = {}
    for k, (o, _, _, _) in enumerate(pb.reservations):
        res_of_offer.setdefault(o, []).append(k)
    per_use = ~pb.reserved[p[rep]]
    offer_rep = pb.offer[p[rep]]
    for o in range(len(pb.scenario.offers)):
        cap = _cap_row(pb, o, horizon_t)
        if not np.isfinite(cap).any():
            continue
        sel = per_use & (offer_rep == o)
        periods = sorted(set(t_of[sel].tolist()) | _reserved_periods(pb, o, horizon_t))
        if not periods:
            continue
        rows = {}
        for t in periods:
            limit = cap[t] if np.isfinite(cap[t]) else 1e12
            rows[t] = mat.add(-np.inf, limit, f"capacity[{o},{t}]")
            if "capacity" in elastic and np.isfinite(cap[t]):
                col = slack("capacity", (o, t), 1.0 / max(cap[t], 1.0))
                mat.entries(rows[t], [col], -1.0)
        idx = np.flatnonzero(sel)
        row_ids = np.array([rows[t] for t in t_of[idx]], dtype=np.int64)
        mat.entries(row_ids, rep[idx], pb.chips[p[rep[idx]]])
        units = pb.scenario.offers[o].chips_per_unit
        for k in res_of_offer.get(o, []):
            term_h = pb.reservations[k][3]
            last = horizon_t if not math.isfinite(term_h) else math.ceil(term_h / pb.period_h)
            for t in periods:
                if t < last:
                    mat.entries(rows[t], [r0 + k], float(units))
    for k, (o, _, _, _) in enumerate(pb.reservations):
        units = pb.scenario.offers[o].chips_per_unit
        sel = pb.tier_key[p[rep]] == k
        idx = np.flatnonzero(sel)
        for t in sorted(set(t_of[idx].tolist())):
            row = mat.add(-np.inf, 0.0, f"reservation[{k},{t}]")
            here = idx[t_of[idx] == t]
            mat.entries(row, rep[here], pb.chips[p[rep[here]]])
            mat.entries(row, [r0 + k], -float(units))
    # (4) windows: in the columns; elastic deadlines pay for lateness
    late_cost = np.zeros(nx)
    if "deadlines" in elastic:
        window = np.maximum(pb.deadline_h - pb.release_h, pb.period_h)
        late_cost = cols.late_h / window[pb.job[p]]
    # cost expression: per-use columns and reservations
    cost_cols = np.concatenate([np.arange(nx), r0 + np.arange(nr)])
    cost_vals = np.concatenate([usd_x, res_usd]) if nr else usd_x
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
        row = mat.add(float(pb.min_vendors), np.inf, "min-vendors")
        mat.entries(row, y0 + np.arange(nv), 1.0)
        if "vendors" in elastic:
            mat.entries(row, [slack("vendors", (), 1.0)], 1.0)
    # (8) power
    if pb.power_cap_mw is not None:
        for t in sorted(set(t_of.tolist())):
            row = mat.add(-np.inf, pb.power_cap_mw, f"power[{t}]")
            here = np.flatnonzero(t_of == t)
            mat.entries(row, rep[here], pb.power_mw[p[rep[here]]])
            if "power" in elastic:
                mat.entries(row, [slack("power", (t,), 1.0 / pb.power_cap_mw)], -1.0)
    # (9) makespan
    if goal == "makespan" or "makespan" in hold:
        for j in range(len(pb.required)):
            row = mat.add(-np.inf, 0.0, f"makespan[{j}]")
            here = np.flatnonzero(pb.job[p] == j)
            mat.entries(row, here, cols.end_h[here])
            mat.entries(row, [m_col], -1.0)
    if "tokens" in hold:
        row = mat.add(hold["tokens"] / _value_scale(pb), np.inf, "tokens-held")
        mat.entries(row, np.arange(nx), pb.value[pb.job[p]] / _value_scale(pb))

    # objective
    if goal == "cost":
        cost[cost_cols] = cost_vals
    elif goal == "makespan":
        cost[m_col] = 1.0
    elif goal == "tokens":
        cost[:nx] = -pb.value[pb.job[p]] / _value_scale(pb)
    else:  # violation
        cost[:nx] = late_cost
    ns = len(slacks)
    if ns:
        cost = np.concatenate([cost, np.array(extra_cost)])
        lower = np.concatenate([lower, np.zeros(ns)])
        upper = np.concatenate([upper, np.full(ns, np.inf)])
        integer = np.concatenate([integer, np.zeros(ns, dtype=np.bool_)])
    return _Model(
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


def _value_scale(pb: Problem) -> float:
    return max(float(pb.value.max()) if len(pb.value) else 1.0, 1.0)


# -- solving ---------------------------------------------------------------------------------
def highspy_module() -> Any:
    """HiGHS's Python module, imported on first use (it is slow to import)."""
    import importlib

    return importlib.import_module("highspy")


@dataclass(frozen=True)
class Solution:
    """What HiGHS returned for one model."""

    status: str
    """``optimal``, ``feasible`` (stopped at the time limit with a plan), ``infeasible``,
    ``no-solution`` (time limit, nothing found) or HiGHS's own word."""
    objective: float
    gap: float
    seconds: float
    chosen: list[tuple[int, int]]
    """(placement, start period) of every run."""
    reserved_units: dict[int, int]
    """Units per reservation index."""
    slack: dict[str, list[tuple[tuple[Any, ...], float]]]
    """Per elastic group: (key, amount) of every non-zero slack."""
    late_h: dict[int, float]
    """Per placement chosen past its deadline (elastic deadlines): hours late."""
    num_cols: int
    num_rows: int
    nonzeros: int
    goal: Goal
    bound: float = math.nan
    """HiGHS's dual bound, in the objective's units (a lower bound on a min-cost plan)."""

    @property
    def ok(self) -> bool:
        return self.status in ("optimal", "feasible")


LAZY_GROUPS = ("budget", "vendor-caps", "cloud-caps", "vendors", "power")
"""Constraint groups first left out, and added only when a plan breaks them."""


def solve(
    pb: Problem,
    goal: Goal = "cost",
    *,
    elastic: frozenset[str] = frozenset(),
    hold: dict[str, float] | None = None,
    warm: list[tuple[int, int]] | None = None,
    time_limit_s: float | None = None,
) -> Solution:
    """Solve the MILP for ``goal`` with HiGHS, adding constraint groups lazily.

    The groups (5)–(8) are left out at first; a group joins the model only when the plan
    found breaks it, and the model is solved again. The model without them is a
    relaxation, so a plan that breaks none of them is optimal for the whole model (within
    the same gap), and a relaxation with no plan proves the whole model has none. Most
    plans satisfy most caps unasked, and the binaries of the vendor minimum and the
    integer reservations make the whole model much slower to prove optimal. The vendor
    minimum joins last, from the plan repaired by `repair_vendors` (HiGHS's own heuristics
    find poor plans for it: its relaxation is weak): when that plan breaks nothing and
    costs within the gap of the relaxation's dual bound, it is the answer (the bound holds
    for the whole model); otherwise it warm-starts the whole model."""
    if goal == "violation":
        return _solve_once(pb, goal, elastic, hold, warm, time_limit_s)
    leave_out = {g for g in LAZY_GROUPS if _has(pb, g)}
    seconds = 0.0
    while True:
        sol = _solve_once(_without(pb, leave_out), goal, elastic, hold, warm, time_limit_s)
        seconds += sol.seconds
        if not sol.ok:
            return replace(sol, seconds=seconds)
        broken = violated(pb, sol.chosen, sol.reserved_units) & leave_out
        if not broken:
            return replace(sol, seconds=seconds)
        if broken != {"vendors"}:
            leave_out -= broken - {"vendors"}  # the vendor minimum last, from a repaired plan
            continue
        leave_out.discard("vendors")
        if warm is None:
            warm = repair_vendors(pb, sol.chosen, sol.reserved_units)
            certified = _certify(pb, goal, sol, warm, seconds)
            if certified is not None:
                return certified


def _certify(
    pb: Problem, goal: Goal, relaxed: Solution, plan: list[tuple[int, int]] | None, seconds: float
) -> Solution | None:
    """The repaired ``plan`` as the answer when it breaks nothing and costs within the gap
    of the relaxation's dual bound (a lower bound on every plan of the whole model)."""
    if goal != "cost" or plan is None or not math.isfinite(relaxed.bound):
        return None
    units = relaxed.reserved_units
    if violated(pb, plan, units):
        return None
    cost = float(sum(pb.usd[p] for p, _ in plan))
    cost += sum(pb.reservations[k][2] * u for k, u in units.items())
    gap = (cost - relaxed.bound) / max(abs(cost), 1e-9)
    if gap > pb.scenario.solver.gap:
        return None
    return replace(
        relaxed,
        status="optimal",
        objective=cost,
        gap=max(gap, 0.0),
        chosen=sorted(plan),
        seconds=seconds,
    )


def _has(pb: Problem, group: str) -> bool:
    return {
        "budget": pb.budget_usd is not None,
        "vendor-caps": bool(pb.vendor_caps),
        "cloud-caps": bool(pb.cloud_caps),
        "vendors": pb.min_vendors is not None and pb.min_vendors > 1,
        "power": pb.power_cap_mw is not None,
    }[group]


def _without(pb: Problem, groups: set[str]) -> Problem:
    changes: dict[str, Any] = {}
    if "budget" in groups:
        changes["budget_usd"] = None
    if "vendor-caps" in groups:
        changes["vendor_caps"] = {}
    if "cloud-caps" in groups:
        changes["cloud_caps"] = {}
    if "vendors" in groups:
        changes["min_vendors"] = None
    if "power" in groups:
        changes["power_cap_mw"] = None
    return replace(pb, **changes) if changes else pb


def violated(pb: Problem, chosen: list[tuple[int, int]], units: dict[int, int]) -> set[str]:
    """The lazy groups a plan breaks."""
    out = set()
    if pb.budget_usd is not None:
        cost = float(sum(pb.usd[p] for p, _ in chosen))
        cost += sum(pb.reservations[k][2] * u for k, u in units.items())
        if cost > pb.budget_usd * (1 + 1e-9):
            out.add("budget")
    for group, caps, by in (
        ("vendor-caps", pb.vendor_caps, "vendor"),
        ("cloud-caps", pb.cloud_caps, "cloud"),
    ):
        if caps:
            spend, compute = pb.shares(chosen, by)
            amount = compute if pb.cap_basis == "compute" else spend
            total = float(amount.sum())
            slack = 1e-6 * max(total, 1.0)
            if any(amount[v] > kappa * total + slack for v, kappa in caps.items()):
                out.add(group)
    vendors_used = len({int(pb.vendor[p]) for p, _ in chosen})
    if pb.min_vendors is not None and vendors_used < pb.min_vendors:
        out.add("vendors")
    if pb.power_cap_mw is not None:
        power: dict[int, float] = {}
        for p, s in chosen:
            for t in range(s, s + pb.span(p, s)[2]):
                power[t] = power.get(t, 0.0) + float(pb.power_mw[p])
        if max(power.values(), default=0.0) > pb.power_cap_mw + 1e-6:
            out.add("power")
    return out


def _solve_once(
    pb: Problem,
    goal: Goal,
    elastic: frozenset[str],
    hold: dict[str, float] | None,
    warm: list[tuple[int, int]] | None,
    time_limit_s: float | None,
) -> Solution:
    """Build the model for ``goal`` and solve it with HiGHS (imported here, not at start-up)."""
    highspy = highspy_module()
    started = time.perf_counter()
    model = _build(pb, goal, elastic, hold or {})
    opts = pb.scenario.solver
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("mip_rel_gap", opts.gap)
    h.setOptionValue("time_limit", float(time_limit_s or opts.time_limit_s))
    h.setOptionValue("random_seed", 0)
    if opts.threads:
        h.setOptionValue("threads", opts.threads)
    lp = highspy.HighsLp()
    lp.num_col_ = model.num_cols
    lp.num_row_ = len(model.matrix.lower)
    lp.col_cost_ = model.cost
    lp.col_lower_ = model.lower
    lp.col_upper_ = np.where(np.isinf(model.upper), highspy.kHighsInf, model.upper)
    lp.row_lower_ = np.where(
        np.isinf(model.matrix.lower), -highspy.kHighsInf, np.array(model.matrix.lower)
    )
    lp.row_upper_ = np.where(
        np.isinf(model.matrix.upper), highspy.kHighsInf, np.array(model.matrix.upper)
    )
    start, index, value = model.matrix.csc(model.num_cols)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = start
    lp.a_matrix_.index_ = index
    lp.a_matrix_.value_ = value
    lp.integrality_ = [
        highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous
        for i in model.integer
    ]
    h.passModel(lp)
    if warm:
        _warm_start(h, highspy, model, pb, warm)
    h.run()
    status = h.getModelStatus()
    info = h.getInfo()
    has_solution = info.primal_solution_status == highspy.SolutionStatus.kSolutionStatusFeasible
    if status == highspy.HighsModelStatus.kOptimal:
        word = "optimal"
    elif status == highspy.HighsModelStatus.kInfeasible:
        word = "infeasible"
    elif has_solution:
        word = "feasible"
    elif status == highspy.HighsModelStatus.kTimeLimit:
        word = "no-solution"
    else:
        word = h.modelStatusToString(status).lower()
    values = np.array(h.getSolution().col_value) if has_solution else np.zeros(model.num_cols)
    return _read(pb, model, word, values, info, time.perf_counter() - started, goal, len(value))


def _warm_start(
    h: Any, highspy: Any, model: _Model, pb: Problem, warm: list[tuple[int, int]]
) -> None:
    """Offer a known plan as a start: its runs, reservations sized to cover them, the
    vendors it uses, its makespan."""
    pairs = zip(model.cols.p.tolist(), model.cols.s.tolist(), strict=True)
    where = {ps: i for i, ps in enumerate(pairs)}
    values = np.zeros(model.num_cols)
    for p, s in warm:
        i = where.get((p, s))
        if i is None:
            return  # not a column of this model: no warm start
        values[i] = 1.0
    for k, (o, _, _, _) in enumerate(pb.reservations):
        units = pb.scenario.offers[o].chips_per_unit
        need = _peak_use(pb, model, values, k)
        values[model.r0 + k] = math.ceil(need / units - 1e-9)
    used = {int(pb.vendor[p]) for p, _ in warm}
    for v in range(model.m_col - model.y0):
        values[model.y0 + v] = 1.0 if v in used else 0.0
    values[model.m_col] = max((pb.span(p, s)[1] for p, s in warm), default=0.0)
    sol = highspy.HighsSolution()
    sol.col_value = list(values)
    sol.value_valid = True
    h.setSolution(sol)


def _peak_use(pb: Problem, model: _Model, values: F64, k: int) -> float:
    cols = model.cols
    on = np.flatnonzero((values[: len(cols.p)] > 0.5) & (pb.tier_key[cols.p] == k))
    usage: dict[int, float] = {}
    for i in on:
        for t in range(int(cols.s[i]), int(cols.s[i] + cols.length[i])):
            usage[t] = usage.get(t, 0.0) + float(pb.chips[cols.p[i]])
    return max(usage.values(), default=0.0)


def _read(
    pb: Problem,
    model: _Model,
    word: str,
    values: F64,
    info: Any,
    seconds: float,
    goal: Goal,
    nonzeros: int,
) -> Solution:
    cols = model.cols
    nx = len(cols.p)
    on = np.flatnonzero(values[:nx] > 0.5)
    chosen = [(int(cols.p[i]), int(cols.s[i])) for i in on]
    units = {
        k: round(values[model.r0 + k])
        for k in range(len(pb.reservations))
        if values[model.r0 + k] > 0.5
    }
    slack: dict[str, list[tuple[tuple[Any, ...], float]]] = {}
    for sl in model.slacks:
        amount = float(values[sl.col])
        if amount > 1e-6:
            slack.setdefault(sl.group, []).append((sl.key, amount))
    late = {int(cols.p[i]): float(cols.late_h[i]) for i in on if cols.late_h[i] > 1e-6}
    found = word in ("optimal", "feasible")
    objective = float(info.objective_function_value) if found else math.nan
    bound = float(info.mip_dual_bound) if found else math.nan
    if goal == "cost":
        objective /= USD
        bound /= USD
    elif goal == "tokens":
        objective *= -_value_scale(pb)
        bound *= -_value_scale(pb)
    gap = float(info.mip_gap) if word in ("optimal", "feasible") else math.nan
    return Solution(
        status=word,
        objective=objective,
        gap=0.0 if word == "optimal" and not math.isfinite(gap) else gap,
        seconds=seconds,
        chosen=chosen,
        reserved_units=units,
        slack=slack,
        late_h=late,
        num_cols=model.num_cols,
        num_rows=len(model.matrix.lower),
        nonzeros=nonzeros,
        goal=goal,
        bound=bound,
    )
