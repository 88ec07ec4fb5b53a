"""Build ``report.html`` (and ``figures/*.png``) from a saved comparison folder.

The report is a pure function of the files ``nrmsim compare`` writes (``comparison.csv``,
``summary.csv``, ``pathways.csv``, ``manifest.json`` and, with ``--with-null``,
``null/comparison.csv``): no model runs, no scenario files, no clock. So ``nrmsim report DIR``
gives byte-identical HTML for the same folder, and ``nrmsim compare`` builds its report by
the same call on the files it has just written.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from model.compare import compare_summaries
from model.report import evidence, figures
from model.report.metrics import (
    BREAKDOWN_METRICS,
    BREAKDOWNS,
    CHILDREN,
    COST_BY_PAYER,
    HEADLINE,
    TRENDS,
    fmt_diff,
    fmt_value,
    info,
)
from model.report.pathways import CG_STAGE, RG_STAGE, mean_flows

COMPARISON, SUMMARY, PATHWAYS, MANIFEST = (
    "comparison.csv",
    "summary.csv",
    "pathways.csv",
    "manifest.json",
)
REPORT, FIGURES, NULL_DIR = "report.html", "figures", "null"
REQUIRED = (COMPARISON, SUMMARY, PATHWAYS, MANIFEST)
_TEXT = {"scenario": str, "group_by": str, "group": str, "metric": str}


class ReportInputError(ValueError):
    """The folder is not a saved comparison (a file is missing or unreadable)."""


@dataclass(frozen=True)
class Inputs:
    """The saved files a report is built from."""

    folder: Path
    manifest: dict[str, Any]
    comparison: pd.DataFrame
    summary: pd.DataFrame
    pathways: pd.DataFrame
    null_comparison: pd.DataFrame | None


def load_inputs(folder: Path) -> Inputs:
    """Read a compare output folder.

    Raises:
        ReportInputError: not a folder, or a required file is missing or unreadable.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ReportInputError(f"{folder}: not a folder; give the folder nrmsim compare wrote")
    missing = [name for name in REQUIRED if not (folder / name).is_file()]
    if missing:
        raise ReportInputError(
            f"{folder}: not a saved comparison, missing {missing}; "
            "run `nrmsim compare ... --out DIR` first"
        )
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        spec = manifest["comparison"]
        comparison = pd.read_csv(
            folder / COMPARISON, dtype=_TEXT, keep_default_na=False, na_values=[""]
        )
        summary = pd.read_csv(folder / SUMMARY, dtype=_TEXT, keep_default_na=False, na_values=[""])
        pathways = pd.read_csv(
            folder / PATHWAYS,
            dtype={"scenario": str, "rg_stage": str, "cg_stage": str},
            keep_default_na=False,
        )
        null_path = folder / NULL_DIR / COMPARISON
        null = None
        if spec.get("with_null"):
            null = pd.read_csv(null_path, dtype=_TEXT, keep_default_na=False, na_values=[""])
    except (OSError, ValueError, KeyError) as exc:
        raise ReportInputError(f"{folder}: cannot read the saved comparison: {exc}") from None
    return Inputs(folder, manifest, comparison, summary, pathways, null)


def build_report(folder: Path) -> Path:
    """Write ``figures/*.png`` and ``report.html`` into ``folder``; return the HTML path."""
    inputs = load_inputs(folder)
    figdir = inputs.folder / FIGURES
    figdir.mkdir(exist_ok=True)
    for old in figdir.glob("*.png"):
        old.unlink()
    context = page_context(inputs, figdir)
    env = Environment(
        loader=PackageLoader("model.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    html = env.get_template("report.html.j2").render(**context)
    out = inputs.folder / REPORT
    out.write_text(html, encoding="utf-8")
    return out


# --------------------------------------------------------------------------- context
def _is_nan(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _significant(row: Mapping[str, Any]) -> bool:
    lo, hi = row["diff_ci_low"], row["diff_ci_high"]
    return not _is_nan(lo) and (lo > 0 or hi < 0)


def _cell(row: Mapping[str, Any] | None, metric: str) -> dict[str, Any]:
    """A table cell for one scenario's value and its change against the baseline."""
    if row is None:
        return {"value": "-", "diff": "-", "interval": "", "sig": False, "n": 0}
    interval = ""
    if not _is_nan(row["diff_ci_low"]):
        interval = (
            f"[{fmt_diff(row['diff_ci_low'], metric)}, {fmt_diff(row['diff_ci_high'], metric)}]"
        )
    level = ""
    if not _is_nan(row["ci_low"]):
        level = f"[{fmt_value(row['ci_low'], metric)}, {fmt_value(row['ci_high'], metric)}]"
    return {
        "value": fmt_value(row["mean"], metric),
        "level_interval": level,
        "diff": fmt_diff(row["diff_vs_baseline"], metric),
        "interval": interval,
        "sig": _significant(row),
        "n": int(row["n"]),
    }


def _index(table: pd.DataFrame) -> dict[tuple[str, str, str, str, str], dict[str, Any]]:
    """(scenario, metric, group_by, group, period as text) -> row."""
    out = {}
    for row in table.to_dict("records"):
        key = (row["scenario"], row["metric"], row["group_by"], row["group"], str(row["period"]))
        out[key] = row
    return out


def _window_totals(
    summary: pd.DataFrame,
    metrics: Sequence[str],
    years: Sequence[int],
    order: Sequence[str],
    baseline: str,
) -> pd.DataFrame:
    """Paired comparison of additive metrics summed over ``years`` (per replicate), for all
    children."""
    label = f"{years[0]}-{years[-1]}" if len(years) > 1 else str(years[0])
    rows = summary[
        (summary["group_by"] == "all")
        & summary["metric"].isin(metrics)
        & summary["year"].isin(years)
    ]
    keys = ["scenario", "replicate", "group_by", "group", "metric"]
    totals = rows.groupby(keys, as_index=False)["value"].sum().assign(year=label)
    parts = {name: totals[totals["scenario"] == name] for name in order}
    return compare_summaries(parts, baseline)


def _non_uk(
    summary: pd.DataFrame, metrics: Sequence[str], year: int, order: Sequence[str], baseline: str
) -> pd.DataFrame:
    """Additive metrics summed over every nationality group but 'uk', as group 'non_uk'."""
    rows = summary[
        (summary["group_by"] == "nationality_group")
        & (summary["group"] != "uk")
        & summary["metric"].isin(metrics)
        & (summary["year"] == year)
    ]
    keys = ["scenario", "replicate", "year", "group_by", "metric"]
    totals = rows.groupby(keys, as_index=False)["value"].sum().assign(group="non_uk")
    parts = {name: totals[totals["scenario"] == name] for name in order}
    return compare_summaries(parts, baseline)


def _sentence(metric: str, base: Mapping[str, Any], row: Mapping[str, Any]) -> str:
    text = (
        f"{info(metric).label}: {fmt_value(base['mean'], metric)} → "
        f"{fmt_value(row['mean'], metric)} ({fmt_diff(row['diff_vs_baseline'], metric)}"
    )
    kind = info(metric).kind
    if kind not in ("rate", "share") and base["mean"] and not _is_nan(base["mean"]):
        rel = row["diff_vs_baseline"] / abs(base["mean"])
        pct = f"{rel:+.1%}" if abs(rel) < 0.1 else f"{rel:+.0%}"
        text += ", " + pct.replace("-", "\N{MINUS SIGN}")
    return (
        text
        + f"; 95% interval {fmt_diff(row['diff_ci_low'], metric)} to "
        + f"{fmt_diff(row['diff_ci_high'], metric)})"
    )


def page_context(inputs: Inputs, figdir: Path) -> dict[str, Any]:
    """Everything the template shows; figures are written to ``figdir`` on the way."""
    man = inputs.manifest
    spec = man["comparison"]
    order: list[str] = list(spec["scenarios"])
    baseline: str = spec["baseline"]
    options = [s for s in order if s != baseline]
    resolved: dict[str, Any] = man["scenario"]
    sources: dict[str, Any] = spec.get("sources", {})
    comp = inputs.comparison
    idx = _index(comp)
    null_idx = _index(inputs.null_comparison) if inputs.null_comparison is not None else {}
    available = set(comp["metric"])
    periods = sorted(int(p) for p in comp["period"].unique())
    last = str(periods[-1])

    Table = Mapping[Any, dict[str, Any]]

    def row(
        name: str,
        metric: str,
        group_by: str = "all",
        group: str = "all",
        period: str = last,
        table: Table | None = None,
    ) -> dict[str, Any] | None:
        return (idx if table is None else table).get((name, metric, group_by, group, period))

    facts = {
        name: evidence.option_evidence(resolved[baseline], resolved[name], sources)
        for name in options
    }
    dates = sorted({d for f in facts.values() for d in f["dates"]})
    first_year = int(dates[0][:4]) if dates else periods[0]
    window = [p for p in periods if p >= first_year] or periods
    window_label = f"{window[0]}\N{EN DASH}{window[-1]}" if len(window) > 1 else str(window[0])
    additive = [
        m
        for m in dict.fromkeys([*HEADLINE, *CHILDREN, *COST_BY_PAYER])
        if m in available and info(m).additive
    ]
    totals = _window_totals(inputs.summary, additive, window, order, baseline)
    tidx = _index(totals)
    tperiod = str(totals["period"].iloc[0]) if len(totals) else ""

    def table_rows(metrics: Sequence[str]) -> list[dict[str, Any]]:
        out = []
        for metric in metrics:
            if metric not in available:
                continue
            base = row(baseline, metric)
            cells = []
            for name in options:
                cell = _cell(row(name, metric), metric)
                null_row = row(name, metric, table=null_idx) if null_idx else None
                cell["null"] = _cell(null_row, metric) if null_row else None
                cells.append(cell)
            total = None
            if info(metric).additive and tperiod:
                total = {
                    "base": _cell(tidx.get((baseline, metric, "all", "all", tperiod)), metric),
                    "cells": [
                        _cell(tidx.get((n, metric, "all", "all", tperiod)), metric) for n in options
                    ],
                }
            out.append(
                {
                    "metric": metric,
                    "label": info(metric).label,
                    "base": _cell(base, metric),
                    "cells": cells,
                    "total": total,
                }
            )
        return out

    # 1. plain-language summary
    summaries = []
    for name in options:
        changes, same, unsure = [], [], []
        for metric in dict.fromkeys([*HEADLINE, *CHILDREN]):
            r, base = row(name, metric), row(baseline, metric)
            if r is None or base is None or _is_nan(r["diff_vs_baseline"]):
                continue
            if _is_nan(r["diff_ci_low"]):
                unsure.append(info(metric).label)
            elif _significant(r):
                note = None
                nr = row(name, metric, table=null_idx) if null_idx else None
                if nr is not None:
                    note = (
                        "also with every assumed effect at its null"
                        if _significant(nr)
                        else "not detectable with every assumed effect at its null: this change "
                        "rests on the assumed effect sizes"
                    )
                changes.append({"text": _sentence(metric, base, r), "null": note})
            else:
                same.append(info(metric).label)
        cost_total = tidx.get((name, "public_cost_gbp", "all", "all", tperiod))
        summaries.append(
            {
                "name": name,
                "description": resolved[name].get("description", ""),
                "changes": changes,
                "same": same,
                "unsure": unsure,
                "cost_total": (
                    {"period": window_label, **_cell(cost_total, "public_cost_gbp")}
                    if cost_total
                    else None
                ),
                "evidence": facts[name],
            }
        )

    # 2. headline table and figures
    figs: dict[str, Any] = {}
    headline = table_rows(HEADLINE)
    rel_metrics = [m for m in dict.fromkeys([*HEADLINE, *CHILDREN]) if m in available]
    lastrows = comp[(comp["group_by"] == "all") & (comp["period"].astype(str) == last)]
    if options and rel_metrics:
        figs["relative"] = {
            "src": figures.relative_changes(
                lastrows,
                options,
                rel_metrics,
                f"Change against {baseline} in {last}",
                figdir / "relative_changes.png",
            ),
            "file": f"{FIGURES}/relative_changes.png",
            "alt": f"Change of each metric against {baseline} in {last}, with 95% intervals",
        }
    trend_metrics = [m for m in TRENDS if m in available]
    allrows = comp[(comp["group_by"] == "all") & (comp["group"] == "all")]
    if trend_metrics:
        figs["trends"] = {
            "src": figures.trends(allrows, order, trend_metrics, dates, figdir / "trends.png"),
            "file": f"{FIGURES}/trends.png",
            "alt": "Yearly means with 95% intervals, scenarios overlaid; dashed lines mark "
            "policy changes",
        }

    # 3. children, pathways
    children = table_rows(CHILDREN)
    children_missing = [info(m).label for m in CHILDREN if m not in available]
    reps = int(spec["replicates"])
    pathway_figs, pathway_table = [], []
    flows_by = {}
    for i, name in enumerate(order):
        flows = mean_flows(inputs.pathways[inputs.pathways["scenario"] == name], reps)
        flows_by[name] = flows
        path = figdir / f"pathway_{i}.png"
        title = f"{name}: referrals from {spec['pathways_since']} by their status on " \
                f"{resolved[name]['run']['end']} (mean of {reps} replicates)"  # fmt: skip
        pathway_figs.append(
            {
                "name": name,
                "src": figures.pathway(flows, title, path),
                "file": f"{FIGURES}/{path.name}",
                "alt": f"Pathway diagram for {name}: referred, RG outcome, CG outcome",
            }
        )
    for rg_key, rg_label in RG_STAGE.items():
        stages = [("", "")] if rg_key != "rg_positive" else list(CG_STAGE.items())
        for cg_key, cg_label in stages:
            values = []
            for name in order:
                f = flows_by[name]
                hit = f[(f["rg_stage"] == rg_key) & (f["cg_stage"] == cg_key)]["referrals"]
                values.append(float(hit.sum()))
            if any(values):
                label = rg_label + (f" → {cg_label}" if cg_label else "")
                pathway_table.append({"label": label, "values": [f"{v:,.0f}" for v in values]})

    # 4. breakdowns
    bdown_metrics = [m for m in BREAKDOWN_METRICS if m in available]
    non_uk = _non_uk(
        inputs.summary, [m for m in bdown_metrics if info(m).additive], int(last), order, baseline
    )
    bidx = {**idx, **_index(non_uk)}
    breakdowns = []
    for k, (group_by, heading, labels) in enumerate(BREAKDOWNS):
        present = sorted(set(comp.loc[comp["group_by"] == group_by, "group"]))
        if not present:
            continue
        if group_by == "nationality_group":
            present = ["uk", "non_uk", *[g for g in present if g != "uk"]]
        groups = [
            (
                g,
                labels.get(
                    g,
                    g
                    if group_by != "nationality_group" or g in ("uk", "non_uk")
                    else f"Non-UK: {g}",
                ),
            )
            for g in present
        ]
        sub = pd.concat(
            [
                comp[(comp["group_by"] == group_by) & (comp["period"].astype(str) == last)],
                non_uk if group_by == "nationality_group" else non_uk.iloc[:0],
            ],
        )
        tables = []
        for metric in bdown_metrics:
            trows = []
            for g, glabel in groups:
                base = bidx.get((baseline, metric, group_by, g, last))
                if base is None:
                    continue
                trows.append(
                    {
                        "label": glabel,
                        "base": _cell(base, metric),
                        "cells": [
                            _cell(bidx.get((n, metric, group_by, g, last)), metric) for n in options
                        ],
                    }
                )
            tables.append({"label": info(metric).label, "rows": trows})
        fig = None
        if options and bdown_metrics:
            path = figdir / f"breakdown_{k}.png"
            fig = {
                "src": figures.breakdown(
                    sub,
                    options,
                    bdown_metrics,
                    groups,
                    f"{heading}: change against {baseline} in {last}",
                    path,
                ),
                "file": f"{FIGURES}/{path.name}",
                "alt": f"{heading}: change against {baseline} by group, with 95% intervals",
            }
        breakdowns.append({"heading": heading, "figure": fig, "tables": tables})

    # 5. costs
    payers = [m for m in COST_BY_PAYER if m in available]
    payers_missing = [info(m).label for m in COST_BY_PAYER if m not in available]
    cost_rows = table_rows([*payers, "public_cost_gbp"])
    shown = payers or (["public_cost_gbp"] if "public_cost_gbp" in available else [])
    if shown:
        means = lastrows[(lastrows["group"] == "all") & lastrows["metric"].isin(shown)]
        means = means.pivot_table(index="scenario", columns="metric", values="mean")
        figs["costs"] = {
            "src": figures.costs(
                means, order, shown, f"Public cost by payer in {last} (mean)", figdir / "costs.png"
            ),
            "file": f"{FIGURES}/costs.png",
            "alt": f"Public cost by payer in {last} for each scenario",
        }
    ledger = evidence.assumption_ledger(resolved[baseline], sources)
    cost_grades = evidence.grade_counts(ledger["costs"])

    descriptions: dict[str, str] = spec.get("metrics", {})
    shown_metrics = sorted(
        {r["metric"] for r in [*headline, *children, *cost_rows]}
        | set(bdown_metrics)
        | set(trend_metrics)
    )
    return {
        "title": f"{', '.join(options) or baseline} compared with {baseline}",
        "baseline": baseline,
        "baseline_description": resolved[baseline].get("description", ""),
        "options": options,
        "order": order,
        "colours": {name: figures.colour(i) for i, name in enumerate(order)},
        "last": last,
        "first": str(periods[0]),
        "window": window_label,
        "dates": dates,
        "reps": reps,
        "seed": spec["root_seed"],
        "effects": spec["effects"],
        "with_null": bool(null_idx),
        "ensemble": spec.get("ensemble"),
        "summaries": summaries,
        "headline": headline,
        "children": children,
        "children_missing": children_missing,
        "figures": figs,
        "pathway_figures": pathway_figs,
        "pathway_table": pathway_table,
        "pathways_since": spec["pathways_since"],
        "breakdowns": breakdowns,
        "cost_rows": cost_rows,
        "payers_missing": payers_missing,
        "ledger": ledger,
        "cost_grades": cost_grades,
        "facts": facts,
        "glossary": [
            {"metric": m, "label": info(m).label, "text": descriptions.get(m, "")}
            for m in shown_metrics
        ],
        "run": {
            "command": " ".join(man.get("command", [])),
            "created": man.get("created_utc", ""),
            "commit": (man.get("git") or {}).get("commit"),
            "dirty": (man.get("git") or {}).get("dirty"),
            "versions": man.get("versions", {}),
        },
    }
