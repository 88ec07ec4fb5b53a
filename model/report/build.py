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

from model.compare import compare_summaries, significant
from model.report import evidence, figures
from model.report.intervals import clusters_of, interval_sources
from model.report.metrics import (
    BREAKDOWN_METRICS,
    BREAKDOWNS,
    CHILDREN,
    COST_BY_PAYER,
    HEADLINE,
    TRENDS,
    fmt_diff,
    fmt_value,
)
from model.report.pathways import CG_STAGE, RG_STAGE, mean_flows
from model.report.psa import load_psa_summary
from model.results import REGISTRY
from model.tables import to_long

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
    psa: dict[str, Any] | None = None


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
        if "metric" not in summary.columns:  # written by --table-shape wide
            summary = to_long(summary)
        pathways = pd.read_csv(
            folder / PATHWAYS,
            dtype={"scenario": str, "rg_stage": str, "cg_stage": str},
            keep_default_na=False,
        )
        null_path = folder / NULL_DIR / COMPARISON
        null = None
        if spec.get("with_null"):
            null = pd.read_csv(null_path, dtype=_TEXT, keep_default_na=False, na_values=[""])
        psa_found = load_psa_summary(folder)
    except (OSError, ValueError, KeyError) as exc:
        raise ReportInputError(f"{folder}: cannot read the saved comparison: {exc}") from None
    return Inputs(folder, manifest, comparison, summary, pathways, null, psa_found)


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
        "sig": significant(row),
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
    clusters: Mapping[int, int] | None = None,
) -> pd.DataFrame:
    """Paired comparison of additive metrics summed over ``years`` (per replicate), for all
    children (``clusters``: replicate -> parameter set, as in ``compare_summaries``)."""
    label = f"{years[0]}-{years[-1]}" if len(years) > 1 else str(years[0])
    rows = summary[
        (summary["group_by"] == "all")
        & summary["metric"].isin(metrics)
        & summary["year"].isin(years)
    ]
    keys = ["scenario", "replicate", "group_by", "group", "metric"]
    totals = rows.groupby(keys, as_index=False)["value"].sum().assign(year=label)
    parts = {name: totals[totals["scenario"] == name] for name in order}
    return compare_summaries(parts, baseline, clusters)


def _non_uk(
    summary: pd.DataFrame,
    metrics: Sequence[str],
    year: int,
    order: Sequence[str],
    baseline: str,
    clusters: Mapping[int, int] | None = None,
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
    return compare_summaries(parts, baseline, clusters)


def _sentence(metric: str, base: Mapping[str, Any], row: Mapping[str, Any]) -> str:
    text = (
        f"{REGISTRY[metric].title}: {fmt_value(base['mean'], metric)} → "
        f"{fmt_value(row['mean'], metric)} ({fmt_diff(row['diff_vs_baseline'], metric)}"
    )
    if REGISTRY[metric].display != "share" and base["mean"] and not _is_nan(base["mean"]):
        rel = row["diff_vs_baseline"] / abs(base["mean"])
        pct = f"{rel:+.1%}" if abs(rel) < 0.1 else f"{rel:+.0%}"
        text += ", " + pct.replace("-", "\N{MINUS SIGN}")
    return (
        text
        + f"; 95% interval {fmt_diff(row['diff_ci_low'], metric)} to "
        + f"{fmt_diff(row['diff_ci_high'], metric)})"
    )


def _figure(src: str, path: Path, alt: str) -> dict[str, str]:
    """An embedded figure: base64 PNG, its file under figures/, and its alt text."""
    return {"src": src, "file": f"{FIGURES}/{path.name}", "alt": alt}


class _Page:
    """State shared by the report's sections, read once from the saved files."""

    def __init__(self, inputs: Inputs, figdir: Path) -> None:
        self.inputs, self.figdir = inputs, figdir
        self.spec: dict[str, Any] = inputs.manifest["comparison"]
        self.order: list[str] = list(self.spec["scenarios"])
        self.baseline: str = self.spec["baseline"]
        self.options = [s for s in self.order if s != self.baseline]
        self.resolved: dict[str, Any] = inputs.manifest["scenario"]
        self.sources: dict[str, Any] = self.spec.get("sources", {})
        self.reps = int(self.spec["replicates"])
        comp = self.comp = inputs.comparison
        self.idx = _index(comp)
        self.null_idx = _index(inputs.null_comparison) if inputs.null_comparison is not None else {}
        self.available = set(comp["metric"])
        self.periods = sorted(int(p) for p in comp["period"].unique())
        self.last = str(self.periods[-1])
        self.lastrows = comp[
            (comp["group_by"] == "all") & (comp["period"].astype(str) == self.last)
        ]
        self.facts = {
            name: evidence.option_evidence(
                self.resolved[self.baseline], self.resolved[name], self.sources
            )
            for name in self.options
        }
        self.dates = sorted({d for f in self.facts.values() for d in f["dates"]})
        first_year = int(self.dates[0][:4]) if self.dates else self.periods[0]
        window = [p for p in self.periods if p >= first_year] or self.periods
        self.window = f"{window[0]}\N{EN DASH}{window[-1]}" if len(window) > 1 else str(window[0])
        additive = [
            m
            for m in dict.fromkeys([*HEADLINE, *CHILDREN, *COST_BY_PAYER])
            if m in self.available and REGISTRY[m].adds_over_years
        ]
        self.clusters = clusters_of(self.spec)
        totals = _window_totals(
            inputs.summary, additive, window, self.order, self.baseline, self.clusters
        )
        self.tidx = _index(totals)
        self.tperiod = str(totals["period"].iloc[0]) if len(totals) else ""

    def row(
        self, name: str, metric: str, table: Mapping[Any, dict[str, Any]] | None = None
    ) -> dict[str, Any] | None:
        """The row for all children in the last year (from ``table``, default comparison)."""
        return (self.idx if table is None else table).get((name, metric, "all", "all", self.last))

    def total(self, name: str, metric: str) -> dict[str, Any] | None:
        """The row of a metric summed over the policy years."""
        return self.tidx.get((name, metric, "all", "all", self.tperiod))

    def table_rows(self, metrics: Sequence[str]) -> list[dict[str, Any]]:
        """Rows of a baseline-and-changes table for the metrics this run has."""
        out = []
        for metric in metrics:
            if metric not in self.available:
                continue
            cells = []
            for name in self.options:
                cell = _cell(self.row(name, metric), metric)
                null_row = self.row(name, metric, self.null_idx) if self.null_idx else None
                cell["null"] = _cell(null_row, metric) if null_row else None
                cells.append(cell)
            total = None
            if REGISTRY[metric].adds_over_years and self.tperiod:
                total = {
                    "base": _cell(self.total(self.baseline, metric), metric),
                    "cells": [_cell(self.total(n, metric), metric) for n in self.options],
                }
            out.append(
                {
                    "metric": metric,
                    "label": REGISTRY[metric].title,
                    "base": _cell(self.row(self.baseline, metric), metric),
                    "cells": cells,
                    "total": total,
                }
            )
        return out

    def summaries(self) -> list[dict[str, Any]]:
        """Section 1: per option, what changes, what does not, and what it rests on."""
        out = []
        for name in self.options:
            changes, same, unsure = [], [], []
            for metric in dict.fromkeys([*HEADLINE, *CHILDREN]):
                r, base = self.row(name, metric), self.row(self.baseline, metric)
                if r is None or base is None or _is_nan(r["diff_vs_baseline"]):
                    continue
                if _is_nan(r["diff_ci_low"]):
                    unsure.append(REGISTRY[metric].title)
                elif significant(r):
                    note = None
                    nr = self.row(name, metric, self.null_idx) if self.null_idx else None
                    if nr is not None:
                        note = (
                            "also with every assumed effect at its null"
                            if significant(nr)
                            else "not detectable with every assumed effect at its null: this "
                            "change rests on the assumed effect sizes"
                        )
                    changes.append({"text": _sentence(metric, base, r), "null": note})
                else:
                    same.append(REGISTRY[metric].title)
            cost_total = self.total(name, "public_cost_gbp")
            out.append(
                {
                    "name": name,
                    "description": self.resolved[name].get("description", ""),
                    "changes": changes,
                    "same": same,
                    "unsure": unsure,
                    "cost_total": (
                        {"period": self.window, **_cell(cost_total, "public_cost_gbp")}
                        if cost_total
                        else None
                    ),
                    "evidence": self.facts[name],
                }
            )
        return out

    def overview_figures(self) -> dict[str, Any]:
        """Section 2: relative changes in the last year, and the yearly series."""
        figs: dict[str, Any] = {}
        baseline, last = self.baseline, self.last
        rel_metrics = [m for m in dict.fromkeys([*HEADLINE, *CHILDREN]) if m in self.available]
        if self.options and rel_metrics:
            path = self.figdir / "relative_changes.png"
            title = f"Change against {baseline} in {last}"
            src = figures.relative_changes(self.lastrows, self.options, rel_metrics, title, path)
            alt = f"Change of each metric against {baseline} in {last}, with 95% intervals"
            figs["relative"] = _figure(src, path, alt)
        trend_metrics = [m for m in TRENDS if m in self.available]
        if trend_metrics:
            comp = self.comp
            allrows = comp[(comp["group_by"] == "all") & (comp["group"] == "all")]
            path = self.figdir / "trends.png"
            src = figures.trends(allrows, self.order, trend_metrics, self.dates, path)
            alt = "Yearly means with 95% intervals, scenarios overlaid; dashed lines mark policy "
            figs["trends"] = _figure(src, path, alt + "changes")
        return figs

    def pathways(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Section 3: one alluvial figure per scenario and a table of end states."""
        flows_by, figs = {}, []
        for i, name in enumerate(self.order):
            saved = self.inputs.pathways
            flows = flows_by[name] = mean_flows(saved[saved["scenario"] == name], self.reps)
            path = self.figdir / f"pathway_{i}.png"
            title = (
                f"{name}: referrals from {self.spec['pathways_since']} by their status on "
                f"{self.resolved[name]['run']['end']} (mean of {self.reps} replicates)"
            )
            alt = f"Pathway diagram for {name}: referred, RG outcome, CG outcome"
            figs.append({"name": name, **_figure(figures.pathway(flows, title, path), path, alt)})
        table = []
        for rg_key, rg_label in RG_STAGE.items():
            stages = [("", "")] if rg_key != "rg_positive" else list(CG_STAGE.items())
            for cg_key, cg_label in stages:
                values = []
                for name in self.order:
                    f = flows_by[name]
                    hit = f[(f["rg_stage"] == rg_key) & (f["cg_stage"] == cg_key)]["referrals"]
                    values.append(float(hit.sum()))
                if any(values):
                    label = rg_label + (f" → {cg_label}" if cg_label else "")
                    table.append({"label": label, "values": [f"{v:,.0f}" for v in values]})
        return figs, table

    def breakdowns(self, metrics: Sequence[str]) -> list[dict[str, Any]]:
        """Section 4: changes by group for each breakdown, a figure and tables."""
        comp, baseline, last = self.comp, self.baseline, self.last
        additive = [m for m in metrics if REGISTRY[m].additive]
        non_uk = _non_uk(
            self.inputs.summary, additive, int(last), self.order, baseline, self.clusters
        )
        bidx = {**self.idx, **_index(non_uk)}
        out = []
        for k, (group_by, heading, labels) in enumerate(BREAKDOWNS):
            present = sorted(set(comp.loc[comp["group_by"] == group_by, "group"]))
            if not present:
                continue
            nationality = group_by == "nationality_group"
            if nationality:
                present = ["uk", "non_uk", *[g for g in present if g != "uk"]]
            groups = [
                (g, labels.get(g, f"Non-UK: {g}" if nationality and g not in labels else g))
                for g in present
            ]
            rows = comp[(comp["group_by"] == group_by) & (comp["period"].astype(str) == last)]
            sub = pd.concat([rows, non_uk if nationality else non_uk.iloc[:0]])
            tables = []
            for metric in metrics:
                trows = []
                for g, glabel in groups:
                    base = bidx.get((baseline, metric, group_by, g, last))
                    if base is None:
                        continue
                    cells = [
                        _cell(bidx.get((n, metric, group_by, g, last)), metric)
                        for n in self.options
                    ]
                    trows.append({"label": glabel, "base": _cell(base, metric), "cells": cells})
                tables.append({"label": REGISTRY[metric].title, "rows": trows})
            fig = None
            if self.options and metrics:
                path = self.figdir / f"breakdown_{k}.png"
                title = f"{heading}: change against {baseline} in {last}"
                src = figures.breakdown(sub, self.options, metrics, groups, title, path)
                alt = f"{heading}: change against {baseline} by group, with 95% intervals"
                fig = _figure(src, path, alt)
            out.append({"heading": heading, "figure": fig, "tables": tables})
        return out

    def cost_figure(self, payers: Sequence[str]) -> dict[str, Any] | None:
        """Section 5: mean cost by payer (or the total if no payer split) per scenario."""
        shown = list(payers) or (["public_cost_gbp"] if "public_cost_gbp" in self.available else [])
        if not shown:
            return None
        rows = self.lastrows
        means = rows[(rows["group"] == "all") & rows["metric"].isin(shown)]
        means = means.pivot_table(index="scenario", columns="metric", values="mean")
        path = self.figdir / "costs.png"
        title = f"Public cost by payer in {self.last} (mean)"
        src = figures.costs(means, self.order, shown, title, path)
        return _figure(src, path, f"Public cost by payer in {self.last} for each scenario")


def status_quo_line(resolved: Mapping[str, Any]) -> str:
    """Which status quo a baseline stands on: the nearest ``status_quo*`` file in its
    ``extends`` chain (itself included), the last year of the published record it continues,
    and the CG decision capacity it assumes after that (the assumption every wait and backlog
    difference rests on)."""
    files = [Path(f).stem for f in resolved.get("files", [])]
    quo = next((f for f in reversed(files) if f.startswith("status_quo")), None)
    if quo is None:
        return "no status quo scenario (the baseline does not extend one)"
    text = quo
    timeline = resolved.get("timeline", [])
    switch = next(
        (t for t in timeline if t.get("set", {}).get("cg_decision.after_published_years") is True),
        None,
    )
    cap = resolved.get("params", {}).get("cg_decision.capacity_after_2025")
    if switch is not None and cap is not None:
        published_to = int(str(switch["date"])[:4]) - 1
        grade = cap["source"]
        spread = f", range {cap['range'][0]:,.0f}-{cap['range'][1]:,.0f}" if "range" in cap else ""
        text += (
            f": published record to the end of {published_to}, then child CG decision capacity"
            f" {cap['value']:,.0f} a year ({grade}{spread})"
        )
    return text


def _title(metric: str) -> str:
    return REGISTRY[metric].title if metric in REGISTRY else metric.replace("_", " ")


def psa_context(psa: Mapping[str, Any] | None, order: Sequence[str]) -> dict[str, Any] | None:
    """The committed PSA's answer for these options (``psa.json``), formatted: per outcome,
    each option's probability of being best and the unknowns that would most change the
    choice (EVPPI, in the outcome's units)."""
    if not psa:
        return None
    rows = []
    for o in psa["outcomes"]:
        p = o["p_best"]
        unknowns = ", ".join(
            f"{u['factor']} ({fmt_value(u['evppi'], o['metric'])})" for u in o["unknowns"]
        )
        if not o["evppi_estimated"]:
            unknowns = "not estimated (fewer than 30 parameter sets)"
        rows.append(
            {
                "label": f"{_title(o['metric'])} ({o['year']}, {o['better']} is better)",
                "cells": ["-" if p.get(name) is None else f"{p[name]:.0%}" for name in order],
                "unknowns": unknowns or "none above the estimator's noise floor",
            }
        )
    return {**{k: psa[k] for k in ("folder", "points", "ensemble", "commit")}, "rows": rows}


def page_context(inputs: Inputs, figdir: Path) -> dict[str, Any]:
    """Everything the template shows; figures are written to ``figdir`` on the way."""
    page = _Page(inputs, figdir)
    man, spec, baseline, options = inputs.manifest, page.spec, page.baseline, page.options
    available = page.available
    summaries = page.summaries()
    headline = page.table_rows(HEADLINE)
    figs = page.overview_figures()
    children = page.table_rows(CHILDREN)
    pathway_figs, pathway_table = page.pathways()
    bdown_metrics = [m for m in BREAKDOWN_METRICS if m in available]
    breakdowns = page.breakdowns(bdown_metrics)
    payers = [m for m in COST_BY_PAYER if m in available]
    cost_rows = page.table_rows([*payers, "public_cost_gbp"])
    cost_fig = page.cost_figure(payers)
    if cost_fig is not None:
        figs["costs"] = cost_fig
    ledger = evidence.assumption_ledger(page.resolved[baseline], page.sources)
    descriptions: dict[str, str] = spec.get("metrics", {})
    shown_metrics = sorted(
        {r["metric"] for r in [*headline, *children, *cost_rows]}
        | set(bdown_metrics)
        | {m for m in TRENDS if m in available}
    )
    return {
        "title": f"{', '.join(options) or baseline} compared with {baseline}",
        "baseline": baseline,
        "baseline_description": page.resolved[baseline].get("description", ""),
        "status_quo": status_quo_line(page.resolved[baseline]),
        "options": options,
        "order": page.order,
        "colours": {name: figures.colour(i) for i, name in enumerate(page.order)},
        "last": page.last,
        "first": str(page.periods[0]),
        "window": page.window,
        "dates": page.dates,
        "reps": page.reps,
        "seed": spec["root_seed"],
        "effects": spec["effects"],
        "with_null": bool(page.null_idx),
        "ensemble": spec.get("ensemble"),
        "psa": psa_context(inputs.psa, page.order),
        "intervals": interval_sources(
            inputs.summary, spec, [m for m in HEADLINE if m in available], page.last
        ),
        "summaries": summaries,
        "headline": headline,
        "children": children,
        "children_missing": [REGISTRY[m].title for m in CHILDREN if m not in available],
        "figures": figs,
        "pathway_figures": pathway_figs,
        "pathway_table": pathway_table,
        "pathways_since": spec["pathways_since"],
        "breakdowns": breakdowns,
        "cost_rows": cost_rows,
        "payers_missing": [REGISTRY[m].title for m in COST_BY_PAYER if m not in available],
        "ledger": ledger,
        "cost_grades": evidence.grade_counts(ledger["costs"]),
        "facts": page.facts,
        "glossary": [
            {"metric": m, "label": REGISTRY[m].title, "text": descriptions.get(m, "")}
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
