"""Resolving a structurally valid scenario against the catalog: every name and date
checked, offers priced and capped, jobs sized (the result: `Scenario`)."""

from __future__ import annotations

import itertools
import math
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from chipmix.catalog.catalog import Catalog
from chipmix.catalog.offer import PRICE_TIERS, Offer, PriceTier
from chipmix.errors import ChipmixError, FileFormatError, InputError, UnknownNameError
from chipmix.planning.portfolio.lines import Problems
from chipmix.planning.portfolio.scenario import (
    DEFAULT_TERM_DAYS,
    RESERVED_TIERS,
    Constraints,
    PlanJob,
    PlanOffer,
    PlanServing,
    Scenario,
)
from chipmix.planning.portfolio.schema import (
    CatalogOfferSpec,
    InlineOfferSpec,
    JobSpec,
    OfferOptions,
    ScenarioSpec,
    SelectOfferSpec,
    SelectSpec,
    ServingSpec,
    SolverOptions,
)
from chipmix.workload.model import ModelSpec

__all__ = ["SERVING_GAP", "SERVING_PRESOLVE", "Resolver"]

SERVING_GAP = 1e-3
"""The MIP gap of a scenario with serving demand unless it sets one (`SolverOptions.gap`)."""
SERVING_PRESOLVE = "full"
"""HiGHS's presolve for a scenario with serving demand unless it sets one
(`SolverOptions.presolve`): its whole-replica counts are general integers, whose bounds the
full presolve tightens; on the serving example the light one made each solve 1.5-2x slower."""


class Resolver:
    """Turns a structurally valid spec into a `Scenario`, checking every name and date."""

    def __init__(
        self, spec: ScenarioSpec, cat: Catalog, problems: Problems, base: Path, origin: str
    ) -> None:
        self.spec, self.cat, self.p, self.base, self.origin = spec, cat, problems, base, origin
        self.vendors = sorted({c.vendor for c in cat.chips.values()})
        self.clouds = sorted({o.cloud for o in cat.offers.values()} | {
            s.provider for s in cat.systems.values()
        })  # fmt: skip

    def scenario(self) -> Scenario:
        spec = self.spec
        offers = self._offers()
        end = self._end()
        jobs = self._jobs(offers, end)
        serving = self._serving(offers, end)
        if not spec.jobs and not spec.serving:
            self.p.add(("jobs",), "give at least one job or one serving entry: nothing to plan")
        constraints = self._constraints(offers)
        if spec.objective == "max-tokens" and constraints.budget_usd is None:
            self.p.add(("objective",), "max-tokens needs constraints.budget_usd")
        self.p.raise_if_any()
        return Scenario(
            name=spec.name,
            start=spec.start,
            end=end,
            objective=spec.objective,
            offers=tuple(offers),
            jobs=tuple(jobs),
            constraints=constraints,
            solver=self._solver(bool(serving)),
            description=spec.description,
            origin=self.origin,
            futures=spec.futures,
            serving=tuple(serving),
        )

    def _solver(self, serves: bool) -> SolverOptions:
        solver = self.spec.solver
        given = solver.model_fields_set
        defaults = {"gap": SERVING_GAP, "presolve": SERVING_PRESOLVE}
        update = {k: v for k, v in defaults.items() if serves and k not in given}
        return solver.model_copy(update=update) if update else solver

    # -- the horizon -----------------------------------------------------------------------
    def _end(self) -> date:
        spec = self.spec
        if spec.end is not None:
            if spec.end < spec.start:
                self.p.add(("end",), f"end {spec.end} is before start {spec.start}")
            return spec.end
        deadlines = [j.deadline for j in spec.jobs if j.deadline is not None]
        deadlines += [s.end for s in spec.serving if s.end is not None]
        if not deadlines:
            self.p.add(("start",), "give end: no job deadline or serving end bounds the horizon")
            return spec.start + timedelta(days=364)
        return max(deadlines)

    # -- offers ----------------------------------------------------------------------------
    def _offers(self) -> list[PlanOffer]:
        out: list[PlanOffer] = []
        seen: dict[str, int] = {}
        for i, entry in enumerate(self.spec.offers):
            path: tuple[str | int, ...] = ("offers", i)
            for base in self._base_offers(entry, path):
                if base.id in seen:
                    self.p.add(
                        path, f"offer {base.id!r} is listed twice (also offers[{seen[base.id]}])"
                    )
                    continue
                seen[base.id] = i
                made = self._pool(base, entry, path, inline=isinstance(entry, InlineOfferSpec))
                if made is not None:
                    out.append(made)
        return out

    def _base_offers(self, entry: Any, path: tuple[str | int, ...]) -> list[Offer]:
        cat = self.cat
        if isinstance(entry, CatalogOfferSpec):
            if entry.catalog not in cat.offers:
                raise self.p.unknown((*path, "catalog"), "offer", entry.catalog, list(cat.offers))
            return [cat.offers[entry.catalog]]
        if isinstance(entry, SelectOfferSpec):
            return self._select(entry.select, (*path, "select"))
        assert isinstance(entry, InlineOfferSpec)
        system = self._system_id((*path, "system"), entry.system)
        sys_obj = cat.systems[system]
        return [
            Offer(
                id=entry.id,
                system=system,
                cloud=entry.cloud or sys_obj.provider,
                region=entry.region,
                chips_per_unit=entry.chips_per_unit or sys_obj.chips_per_node,
                usd_per_unit_hour=dict(entry.usd_per_unit_hour),
                valid_from=str(entry.as_of or self.spec.start)[:10],
                source=entry.source,
            )
        ]

    def _system_id(self, path: tuple[str | int, ...], name: str) -> str:
        if name in self.cat.systems:
            return name
        raise self.p.unknown(path, "system", name, list(self.cat.systems))

    def _select(self, sel: SelectSpec, path: tuple[str | int, ...]) -> list[Offer]:
        cat = self.cat
        universes = {
            "cloud": sorted({o.cloud for o in cat.offers.values()}),
            "region": sorted({o.region for o in cat.offers.values()}),
            "chip": sorted(cat.chips),
            "system": sorted(cat.systems),
            "vendor": self.vendors,
        }
        wanted: dict[str, set[str]] = {}
        for key, valid in universes.items():
            value = getattr(sel, key)
            if value is None:
                continue
            names = [value] if isinstance(value, str) else list(value)
            for name in names:
                if name not in valid:
                    raise self.p.unknown((*path, key), key, name, valid)
            wanted[key] = set(names)

        def matches(o: Offer) -> bool:
            s = cat.systems[o.system]
            have = {
                "cloud": o.cloud,
                "region": o.region,
                "chip": s.chip,
                "system": s.id,
                "vendor": cat.chips[s.chip].vendor,
            }
            return all(have[k] in v for k, v in wanted.items())

        found = [o for o in cat.offers.values() if o.current and matches(o)]
        if not found:
            self.p.add(path, "matches no current catalog offer (see `chipmix catalog offers`)")
        return found

    def _pool(
        self, offer: Offer, options: OfferOptions, path: tuple[str | int, ...], *, inline: bool
    ) -> PlanOffer | None:
        priced = {t: p for t in PRICE_TIERS if (p := offer.usd_per_chip_hour(t)) is not None}
        if options.tiers is not None:
            tiers = list(dict.fromkeys(options.tiers))
            for k, tier in enumerate(tiers):
                if tier not in priced:
                    self.p.add(
                        (*path, "tiers", k),
                        f"offer {offer.id!r} has no {tier} price (priced: "
                        f"{', '.join(priced) or 'none'})",
                    )
            tiers = [t for t in tiers if t in priced]
        else:
            tiers = [t for t in priced if t != "spot"] or list(priced)
        if not tiers:
            self.p.add(path, f"offer {offer.id!r} has no price in any tier")
            return None
        discount = options.discount
        per_tier = discount if isinstance(discount, dict) else dict.fromkeys(tiers, discount)
        for tier in per_tier:
            if tier not in tiers:
                self.p.add((*path, "discount", tier), f"tier {tier} is not one of {tiers}")
        for tier in options.term_days:
            if tier not in RESERVED_TIERS or tier not in tiers:
                self.p.add(
                    (*path, "term_days", tier),
                    f"only the reserved tiers chosen have a term ({', '.join(tiers)})",
                )
        steps = tuple((s.from_, s.chips) for s in options.capacity or [])
        if any(a[0] >= b[0] for a, b in itertools.pairwise(steps)):
            self.p.add((*path, "capacity"), "the capacity steps must be in ascending date order")
        if (
            options.available_from is not None
            and options.available_to is not None
            and options.available_to < options.available_from
        ):
            self.p.add(
                (*path, "available_to"),
                f"available_to {options.available_to} is before available_from "
                f"{options.available_from}",
            )
        source = offer.source
        if not inline and source in self.cat.sources:
            source = self.cat.sources[source].title
        return PlanOffer(
            id=offer.id,
            system=self.cat.resolve(self.cat.systems[offer.system]),
            cloud=offer.cloud,
            region=offer.region,
            chips_per_unit=offer.chips_per_unit,
            usd_per_chip_hour={t: priced[t] * (1.0 - per_tier.get(t, 0.0)) for t in tiers},
            list_usd_per_chip_hour={t: priced[t] for t in tiers},
            max_chips=options.max_chips,
            capacity=steps,
            available_from=options.available_from,
            available_to=options.available_to,
            term_days={
                t: options.term_days.get(t, DEFAULT_TERM_DAYS.get(t, math.inf))
                for t in tiers
                if t in RESERVED_TIERS
            },
            source=source,
            inline=inline,
            price_flags={t: f for t in tiers if (f := _flag(offer, t))},
        )

    # -- jobs ------------------------------------------------------------------------------
    def _jobs(self, offers: list[PlanOffer], end: date) -> list[PlanJob]:
        from chipmix.layouts.best import KNOWN_STACKS
        from chipmix.workload.make import make_job

        out: list[PlanJob] = []
        names: dict[str, int] = {}
        stacks = sorted(set(KNOWN_STACKS) | set(self.cat.calibration.stacks))
        for i, js in enumerate(self.spec.jobs):
            path: tuple[str | int, ...] = ("jobs", i)
            if js.name in names:
                twice = f"job {js.name!r} is named twice (jobs[{names[js.name]}])"
                self.p.add((*path, "name"), twice)
            names[js.name] = i
            model = self._model((*path, "model"), js.model)
            if js.stack is not None and js.stack not in stacks:
                raise self.p.unknown((*path, "stack"), "stack", js.stack, stacks)
            if (js.tokens is None) == (js.steps is None):
                self.p.add(path, "give exactly one of tokens and steps")
                continue
            tokens = js.tokens or (js.steps or 0.0) * js.seq_len * js.global_batch
            try:
                job = make_job(
                    model, mode=js.mode, seq_len=js.seq_len, global_batch=js.global_batch,
                    precision=js.precision, tokens=tokens, stack=js.stack, lora_rank=js.lora_rank,
                )  # fmt: skip
            except InputError as exc:
                self.p.add(path, str(exc))
                continue
            release = js.start or self.spec.start
            self._window(js, path, release, end)
            allowed = self._allowed(js, path, offers)
            required = js.required if js.required is not None else (
                self.spec.objective != "max-tokens"
            )  # fmt: skip
            out.append(
                PlanJob(
                    name=js.name,
                    job=job,
                    release=release,
                    deadline=js.deadline,
                    priority=js.priority,
                    required=required,
                    offers=tuple(allowed),
                    chip_counts=tuple(sorted(set(js.chip_counts))) if js.chip_counts else None,
                )
            )
        return out

    def _serving(self, offers: list[PlanOffer], end: date) -> list[PlanServing]:
        out: list[PlanServing] = []
        if not self.spec.serving:
            return out  # the serving model is not even imported
        from chipmix.serve.public import serve_job

        names = {j.name for j in self.spec.jobs}
        for i, ss in enumerate(self.spec.serving):
            path: tuple[str | int, ...] = ("serving", i)
            if ss.name in names:
                self.p.add((*path, "name"), f"{ss.name!r} names a job or serving entry already")
            names.add(ss.name)
            model = self._model((*path, "model"), ss.model)
            try:
                job = serve_job(
                    model, input_len=ss.input_len, output_len=ss.output_len,
                    precision=ss.precision, kv_precision=ss.kv_precision, stack=ss.stack,
                )  # fmt: skip
            except InputError as exc:
                self.p.add(path, str(exc))
                continue
            first, last = ss.start or self.spec.start, ss.end or end
            if first < self.spec.start or last > end or last < first:
                self.p.add(path, f"serving window {first} … {last} is not inside the horizon "
                                 f"{self.spec.start} … {end}")  # fmt: skip
            if isinstance(ss.tokens_per_day, list):
                steps = sorted((d.from_, d.tokens_per_day) for d in ss.tokens_per_day)
                if not steps:
                    self.p.add((*path, "tokens_per_day"), "give at least one step")
                if len({d for d, _ in steps}) < len(steps):
                    self.p.add((*path, "tokens_per_day"), "two steps start on the same day")
            else:
                steps = [(first, float(ss.tokens_per_day))]
            out.append(
                PlanServing(
                    name=ss.name, job=job, demand=tuple(steps), start=first, end=last,
                    ttft_p99_ms=ss.ttft_p99_ms, tpot_p99_ms=ss.tpot_p99_ms,
                    offers=tuple(self._allowed(ss, path, offers)),
                    search_chips=ss.search_chips,
                )
            )  # fmt: skip
        return out

    def _model(self, path: tuple[str | int, ...], name: str) -> ModelSpec:
        from chipmix.workload.registry import load_model, preset_names

        candidate = self.base / name
        try:
            if name not in preset_names() and candidate.is_file():
                return load_model(str(candidate))
            return load_model(name)
        except UnknownNameError:
            raise self.p.unknown(path, "model", name, preset_names()) from None
        except ChipmixError as exc:
            raise FileFormatError(f"{self.p.where(path)}: {exc}") from None

    def _window(self, js: JobSpec, path: tuple[str | int, ...], release: date, end: date) -> None:
        start = self.spec.start
        if js.start is not None and js.start < start:
            self.p.add((*path, "start"), f"start {js.start} is before the scenario's start {start}")
        if js.start is not None and js.start > end:
            self.p.add((*path, "start"), f"start {js.start} is after the horizon's end {end}")
        if js.deadline is None:
            return
        if js.deadline < release:
            what = "the job's start" if js.start is not None else "the scenario's start"
            self.p.add((*path, "deadline"), f"deadline {js.deadline} is before {what} {release}")
        if self.spec.end is not None and js.deadline > self.spec.end:
            self.p.add(
                (*path, "deadline"),
                f"deadline {js.deadline} is after the horizon's end {self.spec.end}; "
                "move end or the deadline",
            )

    def _allowed(
        self, js: JobSpec | ServingSpec, path: tuple[str | int, ...], offers: list[PlanOffer]
    ) -> list[str]:
        cat = self.cat
        chosen = list(offers)
        if js.systems is not None:
            valid = sorted(set(cat.systems) | set(cat.chips))
            for k, name in enumerate(js.systems):
                if name not in valid:
                    raise self.p.unknown((*path, "systems", k), "system or chip", name, valid)
            chosen = [o for o in chosen if o.system.id in js.systems or o.chip in js.systems]
        if js.vendors is not None:
            for k, name in enumerate(js.vendors):
                if name not in self.vendors:
                    raise self.p.unknown((*path, "vendors", k), "vendor", name, self.vendors)
            chosen = [o for o in chosen if o.vendor in js.vendors]
        if js.offers is not None:
            ids = [o.id for o in offers]
            for k, name in enumerate(js.offers):
                if name not in ids:
                    raise self.p.unknown((*path, "offers", k), "scenario offer", name, ids)
            chosen = [o for o in chosen if o.id in js.offers]
        if not chosen:
            rented = sorted({f"{o.system.id} ({o.chip})" for o in offers})
            self.p.add(
                path, f"no offer of the scenario is allowed for this job (offers rent: "
                f"{', '.join(rented)})"
            )  # fmt: skip
        return [o.id for o in chosen]

    # -- constraints -----------------------------------------------------------------------
    def _constraints(self, offers: list[PlanOffer]) -> Constraints:
        c = self.spec.constraints
        path: tuple[str | int, ...] = ("constraints",)
        present_vendors = sorted({o.vendor for o in offers})
        present_clouds = sorted({o.cloud for o in offers})
        for key, caps, valid, present in (
            ("vendor_caps", c.vendor_caps, self.vendors, present_vendors),
            ("cloud_caps", c.cloud_caps, self.clouds, present_clouds),
        ):
            for name in caps:
                if name not in valid:
                    kind = "vendor" if key == "vendor_caps" else "cloud"
                    raise self.p.unknown((*path, key, name), kind, name, valid)
            if present and all(v in caps for v in present):
                total = sum(caps[v] for v in present)
                if total < 1.0 - 1e-9:
                    shown = ", ".join(f"{v} {caps[v]:.0%}" for v in present)
                    self.p.add(
                        (*path, key),
                        f"the caps of every {key.split('_')[0]} the offers hold sum to "
                        f"{total:.0%} ({shown}): no plan can place 100% of its "
                        f"{c.cap_basis}; raise a cap or add an offer of another "
                        f"{key.split('_')[0]}",
                    )
        if c.min_vendors is not None and c.min_vendors > len(present_vendors):
            self.p.add(
                (*path, "min_vendors"),
                f"min_vendors {c.min_vendors} but the offers hold only "
                f"{len(present_vendors)} vendors ({', '.join(present_vendors)})",
            )
        return Constraints(
            budget_usd=c.budget_usd,
            vendor_caps=dict(c.vendor_caps),
            cloud_caps=dict(c.cloud_caps),
            cap_basis=c.cap_basis,
            min_vendors=c.min_vendors,
            power_cap_mw=c.power_cap_mw,
        )


def _flag(offer: object, tier: PriceTier) -> str:
    """The catalog's flag of ``offer``'s price in ``tier`` ("" for a user's own offer)."""
    flag = getattr(offer, "flag", None)
    return str(flag(tier)) if callable(flag) else ""
