"""The simulator: discrete events, vectorized over Monte Carlo replicas.

Every replica is one possible history of the run. Each step of the loop advances every
replica that is not done to its next event, all at once with numpy (one loop iteration per
event, never per chip or per hour):

1. a replica is *down* for ``down`` seconds after an interruption (detect, get nodes,
   relaunch, load the checkpoint, warm up), then *up*, training;
2. its next interruption comes after an exponential time with the rate of all causes
   together (a superposition of Poisson processes; memorylessness lets each step draw
   afresh from the current instant), and has cause ``c`` with probability ``λ_c / Λ``.
   Interruptions also strike while a replica is down: the restart begins again;
3. while up, training alternates ``τ`` seconds of compute with a checkpoint that blocks
   ``δ`` (synchronous: the write; asynchronous: the snapshot, the write persisting ``W``
   more seconds in the background). An interruption loses the work since the last durable
   checkpoint — except planned maintenance and a reclaim whose warning leaves time to
   checkpoint, which lose nothing;
4. phase boundaries (an outage starting or ending, see `chipmix.sim.timeline`) are events
   too: an outage is sudden (work since the checkpoint is lost), a return is planned;
5. the replica is done when its durable tokens reach the target (``--tokens``) or when the
   window ends (``--duration-days``: the work of the last stretch counts).

Effective training time ratio (Kokolis et al. 2024, arXiv 2410.21680): productive time (the
compute whose result was kept) / wall time. The time lost splits into lost work, checkpoint
blocking, restarts and waiting for capacity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from chipmix.sim.failures import CAUSES, HARDWARE_CAUSES
from chipmix.sim.timeline import Timeline

__all__ = [
    "MAX_EVENTS",
    "MAX_POOL",
    "ReplicaArrays",
    "Trace",
    "TraceEvent",
    "TraceSpan",
    "run_replicas",
]

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]
Bools = NDArray[np.bool_]

MAX_EVENTS = 500_000
"""Loop iterations at most; replicas not done by then are reported unfinished."""
MAX_POOL = 1024
"""Spare nodes tracked one by one; a larger pool behaves as this many (with so many spares
one is free at virtually every failure)."""


@dataclass(frozen=True, slots=True)
class ReplicaArrays:
    """One entry per replica (``counts``: per replica and cause, order of `CAUSES`)."""

    wall_s: Floats
    """Completion time (tokens mode) or window length; inf when unfinished."""
    elapsed_s: Floats
    """Wall time simulated: ``wall_s``, or where an unfinished replica gave up."""
    tokens: Floats
    productive_s: Floats
    lost_work_s: Floats
    checkpoint_s: Floats
    downtime_s: Floats
    waiting_s: Floats
    cost_usd: Floats
    productive_cost_usd: Floats
    counts: Ints
    outage_hits: Ints
    finished: Bools
    events: int

    @property
    def interruptions(self) -> Ints:
        return np.asarray(self.counts.sum(axis=1))

    @property
    def ettr(self) -> Floats:
        """Productive time / wall time, per replica."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(np.where(self.elapsed_s > 0, self.productive_s / self.elapsed_s, 0.0))


@dataclass(frozen=True, slots=True)
class TraceSpan:
    """A stretch of one replica's history."""

    start_s: float
    end_s: float
    kind: str
    """``training``, ``restart`` (down after an interruption or a switch of system) or
    ``waiting`` (no capacity during an outage)."""
    run: int
    """Index into `Timeline.runs` (-1 while waiting)."""
    checkpoint_after_s: float = math.inf
    """Training: compute from the span's start to its first checkpoint (``τ``)."""
    checkpoint_every_s: float = math.inf
    """Training: from one checkpoint's start to the next (``τ + δ``)."""
    num_checkpoints: int = 0
    """Training: checkpoints begun in the span."""


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """An instant of one replica's history."""

    t_s: float
    kind: str
    """``interruption``, ``phase`` (an outage begins or ends, a migration), ``done`` (the
    token target reached) or ``end`` (the window or the give-up horizon ends)."""
    detail: str = ""
    """The interruption's cause, or the label of the phase entered."""
    lost_s: float = 0.0
    """Compute lost by an interruption: the work since the last durable checkpoint."""


@dataclass
class Trace:
    """The history of one replica, filled by `run_replicas` when given one: the data of a
    sample run's timeline (the statistics never need it)."""

    replica: int = 0
    spans: list[TraceSpan] = field(default_factory=list)
    events: list[TraceEvent] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Compiled:
    """The timeline as flat arrays the loop indexes."""

    tps: Floats
    lam: Floats  # per second, all causes
    cum: Floats  # (runs, causes) cumulative cause probabilities
    base_down: Floats  # (runs, causes)
    lossless: Bools  # (runs, causes)
    tau: Floats
    blocking: Floats
    persist: Floats
    write: Floats
    spares: Ints
    swap: Floats
    replace: Floats
    repair: Floats
    ph_end: Floats
    ph_run: Ints
    ph_usd: Floats
    ph_down: Floats
    ph_sudden: Bools
    ph_entry_usd: Floats


def _compile(tl: Timeline) -> _Compiled:
    n = len(CAUSES)
    hw = np.array([c in HARDWARE_CAUSES for c in CAUSES])
    cum, down, lossless = [], [], []
    for run in tl.runs:
        rates = np.array([run.rates.per_hour[c] for c in CAUSES]) / 3600.0
        total = rates.sum()
        cum.append(np.cumsum(rates) / total if total > 0 else np.ones(n))
        down.append(run.restart.base_downtime(run.checkpoint))
        saved = np.array([c == "planned" or (c == "spot_reclaim" and run.spot_saved)
                          for c in CAUSES])  # fmt: skip
        lossless.append(saved & ~hw)
    runs = tl.runs
    return _Compiled(
        tps=np.array([r.tokens_per_s for r in runs]),
        lam=np.array([r.rates.total_per_hour / 3600.0 for r in runs]),
        cum=np.array(cum),
        base_down=np.array(down),
        lossless=np.array(lossless),
        tau=np.array([max(r.interval_s, r.checkpoint.persist_s) for r in runs]),
        blocking=np.array([r.checkpoint.blocking_s for r in runs]),
        persist=np.array([r.checkpoint.persist_s for r in runs]),
        write=np.array([r.checkpoint.write_s for r in runs]),
        spares=np.array([r.restart.hot_spare_nodes for r in runs], dtype=np.int64),
        swap=np.array([r.restart.swap_s for r in runs]),
        replace=np.array([r.restart.replace_s for r in runs]),
        repair=np.array([r.restart.repair_s for r in runs]),
        ph_end=np.array([p.end_s for p in tl.phases]),
        ph_run=np.array([p.run for p in tl.phases], dtype=np.int64),
        ph_usd=np.array([p.usd_per_s for p in tl.phases]),
        ph_down=np.array([p.entry_down_s for p in tl.phases]),
        ph_sudden=np.array([p.entry_sudden for p in tl.phases]),
        ph_entry_usd=np.array([p.entry_usd for p in tl.phases]),
    )


def _speeds(timeline: Timeline, replicas: int, rng: np.random.Generator) -> Floats:
    """Per replica and run: actual ÷ predicted throughput, drawn from the run's error model."""
    errors = rng.spawn(1)[0]
    columns = []
    for run in timeline.runs:
        error = run.estimate.error
        columns.append(np.ones(replicas) if error is None else error.sample(errors, replicas))
    return np.stack(columns, axis=1) if columns else np.ones((replicas, 0))


def run_replicas(
    timeline: Timeline,
    *,
    target_tokens: float,
    window: bool,
    replicas: int,
    rng: np.random.Generator,
    trace: Trace | None = None,
    model_error: bool = True,
) -> ReplicaArrays:
    """Simulate ``replicas`` histories of the run. ``window``: the last phase's end is the
    end of a fixed window (``--duration-days``) rather than a give-up horizon. ``trace``:
    record the history of its replica there (spans and events; the numbers do not
    change). ``model_error``: each replica runs each system at its predicted throughput
    times a factor drawn from the prediction's error distribution (its p10–p90 interval,
    `chipmix.uncertainty`), from a stream spawned off ``rng`` so the failure draws stay
    the same with or without it."""
    c = _compile(timeline)
    R = replicas
    speed = _speeds(timeline, R, rng) if model_error else np.ones((R, len(timeline.runs)))
    n_phases = len(timeline.phases)
    hw = np.array([cause in HARDWARE_CAUSES for cause in CAUSES])
    n_causes = len(CAUSES)

    t = np.zeros(R)
    down = np.full(R, c.ph_down[0])
    ph = np.zeros(R, dtype=np.int64)
    tokens = np.zeros(R)
    productive = np.zeros(R)
    lost = np.zeros(R)
    ckpt = np.zeros(R)
    downtime = np.zeros(R)
    waiting = np.zeros(R)
    cost = np.zeros(R)
    productive_cost = np.zeros(R)
    counts = np.zeros((R, n_causes), dtype=np.int64)
    outage_hits = np.zeros(R, dtype=np.int64)
    finished = np.zeros(R, dtype=bool)
    active = np.ones(R, dtype=bool)
    wall = np.full(R, math.inf)
    pools = [np.zeros((R, min(int(s), MAX_POOL))) for s in c.spares]

    def hardware_wait(ids: Ints, runs: Ints, when: Floats) -> Floats:
        """Node swap time for hardware failures at ``when``; updates the spare pools."""
        out = c.replace[runs].copy()
        for k in np.unique(runs):
            sel = runs == k
            if c.spares[k] == 0:
                continue
            rows = ids[sel]
            pool = pools[k]
            slot = np.argmin(pool[rows], axis=1)
            avail = pool[rows, slot]
            spare = np.maximum(avail - when[sel], 0.0) + c.swap[k]
            use = spare <= c.replace[k]
            pool[rows[use], slot[use]] = when[sel][use] + c.repair[k]
            out[sel] = np.where(use, spare, c.replace[k])
        return out

    def interrupt(ids: Ints, runs: Ints, u: Floats, when: Floats) -> Ints:
        """Sample causes, count them, set the next downtime; returns the causes."""
        cause = np.minimum((u[:, None] >= c.cum[runs]).sum(axis=1), n_causes - 1)
        counts[ids, cause] += 1
        nxt = c.base_down[runs, cause]
        is_hw = hw[cause]
        if is_hw.any():
            nxt[is_hw] += hardware_wait(ids[is_hw], runs[is_hw], when[is_hw])
        down[ids] = nxt
        return np.asarray(cause, dtype=np.int64)

    def enter_next(ids: Ints, p: Ints, extra: Floats) -> None:
        nxt = p + 1
        last = nxt >= n_phases
        if last.any():
            done = ids[last]
            active[done] = False
            finished[done] = window
            if window:
                wall[done] = t[done]
        go = ~last
        gid = ids[go]
        ph[gid] = nxt[go]
        down[gid] = c.ph_down[nxt[go]] + extra[go]
        outage_hits[gid] += c.ph_sudden[nxt[go]]
        cost[gid] += c.ph_entry_usd[nxt[go]]  # one-off: egress of a moved checkpoint

    def traced(ids: Ints) -> int | None:
        """Position of the traced replica in ``ids`` (None: not traced or not there)."""
        if trace is None:
            return None
        at = np.flatnonzero(ids == trace.replica)
        return int(at[0]) if at.size else None

    def down_span(start: float, stop: float, idle: bool, run: int) -> None:
        assert trace is not None
        if stop > start:
            kind = "waiting" if idle else "restart"
            trace.spans.append(TraceSpan(start, stop, kind, -1 if idle else run))

    def up_span(start: float, stop: float, run: int, done: bool, n_final: int) -> None:
        assert trace is not None
        first, cycle = float(c.tau[run]), float(c.tau[run] + c.blocking[run])
        # Checkpoints begin every cycle after the first stretch of compute; the stretch
        # that reaches the target ends without one (``n_final`` were written before it).
        begun = n_final if done else int(np.ceil(max(stop - start - first, 0.0) / cycle))
        trace.spans.append(TraceSpan(start, stop, "training", run, first, cycle, begun))
        if done:
            note(TraceEvent(stop, "done"))

    def boundary(when: float, phase: int) -> None:
        nxt = phase + 1
        if nxt < n_phases:
            note(TraceEvent(when, "phase", timeline.phases[nxt].label))
        else:
            note(TraceEvent(when, "end", "window" if window else "horizon"))

    def note(event: TraceEvent) -> None:
        assert trace is not None
        trace.events.append(event)

    events = 0
    while events < MAX_EVENTS:
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        events += 1
        e = rng.standard_exponential(R)[idx]
        u = rng.random(R)[idx]
        p = ph[idx]
        k = c.ph_run[p]
        idle = k < 0
        kk = np.where(idle, 0, k)
        end = c.ph_end[p]
        usd = c.ph_usd[p]
        t0 = t[idx]
        r = t0 + down[idx]
        lam = np.where(idle, 0.0, c.lam[kk])
        with np.errstate(divide="ignore"):
            f = t0 + np.where(lam > 0, e / np.where(lam > 0, lam, 1.0), math.inf)

        # A: still restarting when the phase ends -> next phase
        a = r >= end
        if a.any():
            ids, dt = idx[a], end[a] - t0[a]
            downtime[ids] += dt
            cost[ids] += dt * usd[a]
            t[ids] = end[a]
            if (j := traced(ids)) is not None:
                down_span(float(t0[a][j]), float(end[a][j]), bool(idle[a][j]), int(kk[a][j]))
                boundary(float(end[a][j]), int(p[a][j]))
            enter_next(ids, p[a], np.zeros(ids.size))
        # B: interrupted again while restarting
        b = ~a & (f < r)
        if b.any():
            ids, dt = idx[b], f[b] - t0[b]
            downtime[ids] += dt
            cost[ids] += dt * usd[b]
            t[ids] = f[b]
            causes = interrupt(ids, kk[b], u[b], f[b])
            if (j := traced(ids)) is not None:
                down_span(float(t0[b][j]), float(f[b][j]), bool(idle[b][j]), int(kk[b][j]))
                note(TraceEvent(float(f[b][j]), "interruption", CAUSES[int(causes[j])]))
        # C: up and training until done, interrupted, or the phase ends
        m = ~a & ~b
        if not m.any():
            continue
        ids, pm, km, idle_m = idx[m], p[m], kk[m], idle[m]
        rm, fm, endm, usdm, t0m, um = r[m], f[m], end[m], usd[m], t0[m], u[m]
        tps = np.where(idle_m, 0.0, c.tps[km] * speed[ids, km])
        tau, blk = c.tau[km], c.blocking[km]
        with np.errstate(divide="ignore", invalid="ignore"):
            left = (target_tokens - tokens[ids]) / np.where(tps > 0, tps, 1.0)
            rest = np.where(tps > 0, left, math.inf)  # compute seconds still to do
        finite = np.isfinite(rest)
        n_ck = np.where(finite, np.maximum(np.ceil(np.where(finite, rest, 0) / tau) - 1, 0), 0)
        need = np.where(finite, rest + n_ck * blk, math.inf)  # wall seconds to the end
        stop = np.minimum(fm, endm)
        downtime[ids] += rm - t0m
        fin = rm + need <= stop
        if (jt := traced(ids)) is not None:
            down_span(float(t0m[jt]), float(rm[jt]), bool(idle_m[jt]), int(km[jt]))
            up_end = float(rm[jt] + need[jt]) if fin[jt] else float(stop[jt])
            if idle_m[jt]:
                down_span(float(rm[jt]), up_end, True, -1)
            else:
                up_span(float(rm[jt]), up_end, int(km[jt]), bool(fin[jt]), int(n_ck[jt]))
        if fin.any():
            fid, t_done = ids[fin], rm[fin] + need[fin]
            productive[fid] += rest[fin]
            ckpt[fid] += n_ck[fin] * blk[fin]
            tokens[fid] = target_tokens
            cost[fid] += (t_done - t0m[fin]) * usdm[fin]
            productive_cost[fid] += rest[fin] * usdm[fin]
            t[fid] = wall[fid] = t_done
            finished[fid] = True
            active[fid] = False
        go = ~fin
        if not go.any():
            continue
        # Work done in the up span: cycles of tau compute + a blocking checkpoint; what is
        # durable at the stop: the checkpoints whose persisting ended by then.
        span = np.where(go, stop - rm, 0.0)
        cycle = tau + blk
        n_full = np.floor(span / cycle)
        worked = np.where(idle_m, 0.0, n_full * tau + np.minimum(span - n_full * cycle, tau))
        n_durable = np.maximum(np.floor((span - c.persist[km]) / cycle), 0.0)
        durable = np.where(idle_m, 0.0, n_durable * tau)
        saved = durable.copy()
        extra = np.zeros(ids.size)
        by_failure = go & (fm < endm)
        if by_failure.any():
            fail = np.flatnonzero(by_failure)
            causes = interrupt(ids[fail], km[fail], um[fail], fm[fail])
            keep = c.lossless[km[fail], causes]
            saved[fail] = np.where(keep, worked[fail], durable[fail])
            if jt is not None and by_failure[jt]:
                jf = int(np.flatnonzero(fail == jt)[0])
                lost_s = float(worked[jt] - saved[jt])
                note(TraceEvent(float(fm[jt]), "interruption", CAUSES[int(causes[jf])], lost_s))
        at_end = go & ~by_failure
        if at_end.any():
            edge = np.flatnonzero(at_end)
            nxt = pm[edge] + 1
            inside = nxt < n_phases
            planned = ~c.ph_sudden[np.minimum(nxt, n_phases - 1)] | ~inside
            saved[edge] = np.where(planned, worked[edge], durable[edge])
            write = np.where(idle_m[edge] | ~inside, 0.0, c.write[km[edge]])
            extra[edge] = np.where(planned, write, 0.0)
        gid = ids[go]
        productive[gid] += saved[go]
        lost[gid] += (worked - saved)[go]
        ckpt[gid] += np.where(idle_m, 0.0, span - worked)[go]
        waiting[gid] += np.where(idle_m, span, 0.0)[go]
        tokens[gid] += (saved * tps)[go]
        cost[gid] += ((stop - t0m) * usdm)[go]
        productive_cost[gid] += (saved * usdm)[go]
        t[gid] = stop[go]
        if jt is not None and at_end[jt]:
            boundary(float(stop[jt]), int(pm[jt]))
        if at_end.any():
            enter_next(ids[at_end], pm[at_end], extra[at_end])

    return ReplicaArrays(
        wall_s=wall,
        elapsed_s=t,
        tokens=tokens,
        productive_s=productive,
        lost_work_s=lost,
        checkpoint_s=ckpt,
        downtime_s=downtime,
        waiting_s=waiting,
        cost_usd=cost,
        productive_cost_usd=productive_cost,
        counts=counts,
        outage_hits=outage_hits,
        finished=finished,
        events=events,
    )
