"""The options several commands share (typer ``Annotated`` types), and the small parsers
that turn option text into the keyword arguments of the library's functions."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer

from chipmix.cli.paths import input_folder, output_file

__all__ = [
    "MAX_CHIPS",
    "MAX_DEGREE",
    "BatchOpt",
    "CatalogOpt",
    "ChipsOpt",
    "FormatOpt",
    "JsonOpt",
    "LossTilesOpt",
    "ModeOpt",
    "ModelOpt",
    "PrecisionOpt",
    "PricesAsOfOpt",
    "RecipeOpt",
    "ReportOpt",
    "SeqOpt",
    "StackOpt",
    "SystemOpt",
    "TierOpt",
    "TokensOpt",
    "check_choice",
    "finite",
    "job_kwargs",
    "layout_opts",
    "list_opt",
    "shares_opt",
]

ModelOpt = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        help="Preset id or model file (YAML/JSON in the preset schema, or a HF config.json).",
    ),
]
SystemOpt = Annotated[
    str, typer.Option("--system", "-s", help="System id, or a chip id for its reference system.")
]
MAX_CHIPS = 2**20
"""The most chips a command takes (a million: ten times the largest cluster built)."""
MAX_DEGREE = 2**16
"""The largest parallel degree (tp, pp, dp, ...) or micro-batch."""
ChipsOpt = Annotated[
    int | None,
    typer.Option("--chips", "-n", help="Number of chips."),
]
SeqOpt = Annotated[int, typer.Option("--seq-len", help="Tokens per sequence.")]
BatchOpt = Annotated[int, typer.Option("--global-batch", help="Sequences per step.")]
PrecisionOpt = Annotated[str, typer.Option("--precision", help="bf16, fp8, int8 or fp4.")]
RecipeOpt = Annotated[
    str | None,
    typer.Option(
        "--precision-recipe",
        help="How the low-precision GEMMs run: fp8-delayed, fp8-tensorwise, mxfp8, nvfp4, "
        "mxfp4, maxtext-fp8, aqt-int8 (sets --precision when that is left at bf16).",
    ),
]
ModeOpt = Annotated[str, typer.Option("--mode", help="pretrain, finetune or lora.")]
LossTilesOpt = Annotated[
    int | None,
    typer.Option(
        "--loss-tiles",
        help="Tiles of tokens the output layer and loss are computed in, one at a time "
        "(MaxText num_vocab_tiling); 1 keeps the whole logits. Default: the fewest that "
        "fit where the stack tiles the loss (MaxText), else 1.",
        min=1,
        max=4096,
    ),
]


def finite(high: float | None = None) -> Any:
    """A typer callback: the value, or a one-line error if it is NaN or infinite (click lets
    them through) or above ``high``. The library checks the lower ends of the values it
    takes, with its own messages; ``high`` bounds the sizes it would otherwise take at face
    value and run with for minutes (or return absurd numbers for)."""

    def check(value: float | None) -> Any:
        if value is None:
            return None
        if not math.isfinite(value):
            raise typer.BadParameter(f"{value} is not a finite number")
        if high is not None and value > high:
            raise typer.BadParameter(f"{value:g} is too large (at most {high:g})")
        return value

    return check


TokensOpt = Annotated[
    float | None,
    typer.Option("--tokens", help="Tokens to train on (e.g. 15e12).", callback=finite()),
]
TierOpt = Annotated[
    str, typer.Option("--price-tier", help="on-demand, spot, committed-1y, committed-3y or owned.")
]
StackOpt = Annotated[
    str | None,
    typer.Option(
        "--stack", help="Software stack (megatron, torchtitan, maxtext, neuronx-distributed…)."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
TopOpt = Annotated[int, typer.Option("--top", help="How many layouts to show.", min=1, max=1000)]
CatalogOpt = Annotated[
    Path | None,
    typer.Option(
        "--catalog",
        help="Folder of catalog files overlaying the shipped catalog.",
        callback=lambda value: input_folder(value, "--catalog"),
    ),
]
PricesAsOfOpt = Annotated[
    str | None,
    typer.Option(
        "--prices-as-of",
        help="Price with the offers valid on this date (YYYY-MM-DD); default: today's prices.",
    ),
]
ReportOpt = Annotated[
    Path | None,
    typer.Option(
        "--report",
        help="Also write a self-contained HTML report with plots to this file (opens offline).",
        callback=lambda value: output_file(value, "--report"),
    ),
]
FormatOpt = Annotated[
    str,
    typer.Option(
        "--format",
        help="Tables: table (the terminal), csv (spreadsheets) or json (same as --json).",
    ),
]


def priced_catalog(catalog: Path | None, prices_as_of: str | None) -> Any:
    """The overlay folder as given, or, with --prices-as-of, the catalog with that date's
    offers (`chipmix.catalog.vintage.prices_as_of`)."""
    if prices_as_of is None:
        return catalog
    from chipmix.catalog.catalog import load_catalog
    from chipmix.catalog.vintage import prices_as_of as dated

    return dated(load_catalog(catalog), prices_as_of)


def layout_opts(
    tp: int | None,
    pp: int | None,
    dp: int | None,
    cp: int | None,
    ep: int | None,
    vpp: int | None,
    micro_batch: int | None,
    zero: int | None,
    recompute: str | None,
    offload: str | None = None,
) -> dict[str, Any]:
    return {
        "offload": offload,
        "tp": tp,
        "pp": pp,
        "dp": dp,
        "cp": cp,
        "ep": ep,
        "vpp": vpp,
        "micro_batch": micro_batch,
        "zero": zero,
        "recompute": recompute,
    }


def check_choice(name: str, value: str, valid: tuple[str, ...]) -> Any:
    from chipmix.errors import UnknownNameError

    if value not in valid:
        raise UnknownNameError(name, value, valid)
    return value


def job_kwargs(
    seq_len: int,
    global_batch: int,
    precision: str,
    mode: str,
    tokens: float | None,
    stack: str | None,
    recipe: str | None = None,
    loss_tiles: int | None = None,
) -> dict[str, Any]:
    from chipmix.workload.job import MODES, TRAIN_PRECISIONS

    out = {
        "seq_len": seq_len,
        "global_batch": global_batch,
        "precision": check_choice("precision", precision, TRAIN_PRECISIONS),
        "mode": check_choice("mode", mode, MODES),
        "tokens": tokens,
        "stack": stack,
    }
    if loss_tiles is not None:
        out["loss_tiles"] = loss_tiles
    if recipe is not None:
        from chipmix.names import lookup
        from chipmix.workload.precision import RECIPES, recipe_for

        chosen = lookup(RECIPES, recipe, "precision recipe")
        if precision == "bf16":
            out["precision"] = chosen.precision
        recipe_for(out["precision"], chosen.name)  # a recipe of another precision: say so
        out["precision_recipe"] = chosen.name
    return out


def shares_opt(text: str | None, option: str) -> dict[str, float] | None:
    """``nvidia=60%,google=0.3`` → {"nvidia": 0.6, "google": 0.3}."""
    if text is None:
        return None
    from chipmix.errors import InputError

    out: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, _, value = part.partition("=")
        try:
            share = value.strip()
            out[name.strip()] = float(share[:-1]) / 100 if share.endswith("%") else float(share)
        except ValueError:
            raise InputError(
                f"{option} takes name=share pairs like nvidia=60% or nvidia=0.6 (got {part!r})"
            ) from None
    return out


def list_opt(text: str | None) -> list[str] | None:
    return None if text is None else [p.strip() for p in text.split(",") if p.strip()]
