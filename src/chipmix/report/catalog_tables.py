"""Rows and tables for ``chipmix catalog`` and ``chipmix models``."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from chipmix.catalog.catalog import Catalog
from chipmix.catalog.figure import Figure

__all__ = ["catalog_rows", "catalog_table", "model_rows", "models_table"]


def _figure(cat: Catalog, fig: Figure | None) -> dict[str, Any] | None:
    if fig is None:
        return None
    src = cat.source_of(fig)
    out: dict[str, Any] = {
        "value": fig.value,
        "source": src.title,
        "url": src.url,
        "as_of": src.as_of,
    }
    if fig.note:
        out["note"] = fig.note
    if fig.estimated:
        out["estimated"] = True
    return out


def catalog_rows(cat: Catalog, kind: str, *, all_vintages: bool = False) -> list[dict[str, Any]]:
    if kind == "chips":
        rows = []
        for chip in cat.chips.values():
            rows.append({
                "id": chip.id, "name": chip.name, "vendor": chip.vendor, "year": chip.year,
                "peak_tflops_dense": {p: _figure(cat, f)
                                      for p, f in chip.peak_tflops_dense.items()},
                "hbm_gib": _figure(cat, chip.hbm_gib),
                "hbm_tb_s": _figure(cat, chip.hbm_tb_s),
                "sram_mib": _figure(cat, chip.sram_mib),
                "scaleup_gb_s_per_direction": _figure(cat, chip.scaleup_gb_s_per_direction),
                "scaleup_domain_chips": _figure(cat, chip.scaleup_domain_chips),
                "scaleout_gbit_s_per_chip": _figure(cat, chip.scaleout_gbit_s_per_chip),
                "tdp_w": _figure(cat, chip.tdp_w),
                "status": chip.status, "use": chip.use, "flags": chip.flags,
            })  # fmt: skip
        return rows
    if kind == "systems":
        rows = []
        for system in cat.systems.values():
            r = cat.resolve(system)
            rows.append({
                "id": system.id, "name": system.name, "chip": system.chip,
                "provider": system.provider, "kind": system.kind,
                "reference": system.reference, "chips_per_node": system.chips_per_node,
                "scaleup_domain_chips": r.scaleup_domain_chips,
                "scaleup_gb_s_per_direction": r.scaleup_bytes_per_s / 1e9,
                "scaleout_gbit_s_per_chip": r.scaleout_bytes_per_s * 8 / 1e9,
                "power_w_per_chip": r.power_w_per_chip,
                "power_is_estimated": r.power_is_estimated,
                "pue": r.pue, "pue_is_estimated": r.pue_is_estimated,
                "max_chips": system.max_chips,
                "differs_from_chip": dict(system.differs_from_chip),
            })  # fmt: skip
        return rows
    rows = []
    for offer in cat.offers.values():
        if not (offer.current or all_vintages):
            continue
        src = cat.sources[offer.source]
        rows.append({
            "id": offer.id, "system": offer.system, "cloud": offer.cloud,
            "region": offer.region, "chips_per_unit": offer.chips_per_unit,
            "usd_per_unit_hour": dict(offer.usd_per_unit_hour),
            "usd_per_chip_hour": {t: offer.usd_per_chip_hour(t)
                                  for t in offer.usd_per_unit_hour},
            "valid_from": offer.valid_from, "valid_to": offer.valid_to,
            "source": src.title, "url": src.url, "as_of": src.as_of,
            "status": offer.status,
            "flag_by_tier": {t: offer.flag(t) for t in offer.usd_per_unit_hour},
            "how_by_tier": {t: h for t in offer.usd_per_unit_hour if (h := offer.how(t))},
            "note": offer.note,
        })  # fmt: skip
    return rows


def _v(d: dict[str, Any] | None, fmt: str = "{:g}") -> str:
    if d is None:
        return "—"
    return fmt.format(d["value"]) + ("*" if d.get("estimated") else "")


def catalog_table(kind: str, rows: list[dict[str, Any]]) -> Table:
    if kind == "chips":
        table = Table(
            title="chips (dense peaks; * = estimated; announced and inference-only parts marked)",
            title_justify="left",
        )
        for col in (
            "id",
            "vendor",
            "bf16 TF",
            "fp8 TF",
            "HBM GiB",
            "HBM TB/s",
            "scale-up GB/s/dir",
            "domain",
            "scale-out Gb/s",
            "TDP W",
        ):
            table.add_column(col, justify="left" if col in ("id", "vendor") else "right")
        for r in rows:
            peaks = r["peak_tflops_dense"]
            table.add_row(
                r["id"] + (f" ({', '.join(r['flags'])})" if r["flags"] else ""),
                r["vendor"],
                _v(peaks.get("bf16")),
                _v(peaks.get("fp8")),
                _v(r["hbm_gib"]),
                _v(r["hbm_tb_s"]),
                _v(r["scaleup_gb_s_per_direction"]),
                _v(r["scaleup_domain_chips"]),
                _v(r["scaleout_gbit_s_per_chip"]),
                _v(r["tdp_w"]),
            )
        return table
    if kind == "systems":
        table = Table(title="systems", title_justify="left")
        for col in (
            "id",
            "chip",
            "provider",
            "kind",
            "chips/node",
            "domain",
            "scale-up GB/s",
            "scale-out Gb/s",
            "W/chip",
        ):
            table.add_column(col)
        for r in rows:
            table.add_row(
                r["id"] + (" (ref)" if r["reference"] else ""),
                r["chip"],
                r["provider"],
                r["kind"],
                str(r["chips_per_node"]),
                str(r["scaleup_domain_chips"]),
                f"{r['scaleup_gb_s_per_direction']:g}",
                f"{r['scaleout_gbit_s_per_chip']:g}",
                f"{r['power_w_per_chip']:g}" + ("*" if r["power_is_estimated"] else ""),
            )
        return table
    table = Table(
        title="offers ($ per chip-hour; † = estimated, see --json for how; ‡ = unverified)",
        title_justify="left",
    )
    for col in ("id", "system", "region", "on-demand", "spot", "1y", "3y", "valid"):
        table.add_column(col)
    for r in rows:
        p = r["usd_per_chip_hour"]

        def cell(
            tier: str, p: dict[str, float] = p, flags: dict[str, str] = r["flag_by_tier"]
        ) -> str:
            if tier not in p or p[tier] is None:
                return "—"
            return f"{p[tier]:.2f}" + _MARK.get(flags.get(tier, ""), "")

        table.add_row(
            r["id"],
            r["system"],
            r["region"],
            cell("on-demand"),
            cell("spot"),
            cell("committed-1y"),
            cell("committed-3y"),
            f"{r['valid_from']}…{r['valid_to'] or ''}",
        )
    return table


_MARK = {"estimated": "†", "unverified": "‡"}


def model_rows() -> list[dict[str, Any]]:
    from chipmix.workload.registry import load_model, preset_names

    rows = []
    for name in preset_names():
        m = load_model(name)
        rows.append({
            "name": name, "display_name": m.display_name, "params": m.num_params(),
            "active_params": m.num_active_params(), "layers": m.num_layers,
            "hidden": m.hidden_size, "heads": m.num_heads, "kv_heads": m.num_kv_heads,
            "moe": m.moe is not None, "mla": m.mla is not None, "source": m.source,
        })  # fmt: skip
    return rows


def models_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="model presets", title_justify="left")
    for col in ("name", "params", "active", "layers", "hidden", "heads/kv", "kind"):
        table.add_column(col)
    for r in rows:
        kind = "MoE" if r["moe"] else "dense"
        if r["mla"]:
            kind += "+MLA"
        table.add_row(
            r["name"],
            f"{r['params'] / 1e9:.1f}B",
            f"{r['active_params'] / 1e9:.1f}B",
            str(r["layers"]),
            str(r["hidden"]),
            f"{r['heads']}/{r['kv_heads']}",
            kind,
        )
    return table
