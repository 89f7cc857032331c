"""What `budget` returns: a line per offer and tier (`BudgetLine`), and the whole
(`BudgetResult`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from chipmix.catalog.offer import PriceTier
from chipmix.planning.budget.serving import ServeRequest
from chipmix.planning.portfolio.results import hhi

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DAYS_PER_YEAR", "BudgetLine", "BudgetResult", "with_serving"]

DAYS_PER_YEAR = 365.25


@dataclass(frozen=True, slots=True)
class BudgetLine:
    """What one offer in one tier contributes."""

    offer: str
    cloud: str
    region: str
    system: str
    chip: str
    vendor: str
    tier: PriceTier
    usd_per_chip_hour: float
    """Effective: a commitment's price × billed hours ÷ hours used."""
    spend_usd: float
    share: float
    """Of the total spend."""
    chip_hours: float
    chips_held: float
    """chip-hours ÷ (years × 8766): the average number of chips running."""
    pflop_days: float
    """chip-hours × dense bf16 peak, in PFLOP/s-days."""
    tokens: float | None
    runs: float | None
    run_days: float | None
    """Days one run takes on this offer at the run's chip count (within the horizon: an
    offer on which one run would outlast it is left out)."""
    runs_p10: float | None = None
    runs_p90: float | None = None
    """The interval of ``runs`` under the model's error (`chipmix.uncertainty`)."""
    evidence: str = ""
    """Where the run's throughput prediction's parameters came from."""
    extrapolated: bool = False
    run_chips: int | None = None
    """Chips one run uses on this offer: the size asked, or the most its system holds."""
    price_flag: str = ""
    """``estimated`` or ``unverified`` where the tier's catalog price is not a listed one."""
    offer_date: str = ""
    """The date the offer's prices hold from."""
    served_tokens: float | None = None
    """Serving lines: output tokens the chip-hours serve at the SLO (None: training)."""
    replica: str = ""
    """Serving lines: the replica layout the serving search finds best at the SLO."""

    @property
    def serves(self) -> bool:
        return self.served_tokens is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BudgetResult:
    """A budget's purchases (forward) or a goal's budget (reverse)."""

    direction: str
    """``forward`` (what ``usd`` buys) or ``reverse`` (what ``runs`` need)."""
    usd: float
    """The budget given (forward) or needed (reverse)."""
    years: float
    lines: list[BudgetLine]
    """Offers and tiers with a purchase, largest spend first."""
    spend_usd: float
    chip_hours: float
    pflop_days: float
    model: str | None
    tokens_per_run: float | None
    chips_per_run: int | None
    tokens: float | None
    runs: float | None
    vendor_spend: dict[str, float]
    vendor_caps: dict[str, float]
    mix: dict[str, float]
    skipped: dict[str, str]
    """Offers left out, with the reason (no price in the tiers, no layout fits, …)."""
    status: str
    solve_s: float
    """Seconds for the whole request (searches included)."""
    serve_model: str | None = None
    serve_slo: str = ""
    serve_share: float | None = None
    served_tokens: float | None = None
    """Output tokens served over the whole commitment (None: no serving asked)."""
    served_tokens_per_day: float | None = None
    """... and per day, sustained over the years."""
    serve_spend_usd: float | None = None

    @property
    def vendor_shares(self) -> dict[str, float]:
        total = sum(self.vendor_spend.values()) or 1.0
        return {v: s / total for v, s in self.vendor_spend.items()}

    @property
    def hhi(self) -> float:
        return hhi(list(self.vendor_shares.values()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "direction": self.direction,
            "usd": self.usd,
            "years": self.years,
            "spend_usd": self.spend_usd,
            "chip_hours": self.chip_hours,
            "pflop_days": self.pflop_days,
            "model": self.model,
            "tokens_per_run": self.tokens_per_run,
            "chips_per_run": self.chips_per_run,
            "tokens": self.tokens,
            "runs": self.runs,
            "vendor_spend": self.vendor_spend,
            "vendor_shares": self.vendor_shares,
            "hhi": self.hhi,
            "vendor_caps": self.vendor_caps,
            "mix": self.mix,
            "lines": [line.to_dict() for line in self.lines],
            "skipped": self.skipped,
            "status": self.status,
            "solve_s": self.solve_s,
            "serving": None
            if self.serve_model is None
            else {
                "model": self.serve_model,
                "slo": self.serve_slo,
                "share": self.serve_share,
                "spend_usd": self.serve_spend_usd,
                "output_tokens": self.served_tokens,
                "output_tokens_per_day": self.served_tokens_per_day,
            },
        }

    def to_dataframe(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame.from_records([line.to_dict() for line in self.lines])


def with_serving(r: BudgetResult, serve: ServeRequest) -> BudgetResult:
    """The result with its serving totals: output tokens over the commitment and a day."""
    served = sum(line.served_tokens or 0.0 for line in r.lines)
    spend = sum(line.spend_usd for line in r.lines if line.serves)
    name = serve.model if isinstance(serve.model, str) else serve.model.name
    return replace(
        r, serve_model=name, serve_slo=serve.slo(), serve_share=serve.share,
        served_tokens=served, served_tokens_per_day=served / (r.years * DAYS_PER_YEAR),
        serve_spend_usd=spend,
    )  # fmt: skip
