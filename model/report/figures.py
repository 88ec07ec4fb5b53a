"""The report's figures, drawn with matplotlib's object API (no pyplot state) and saved as
PNG files that are byte-identical for the same inputs (no timestamp or software metadata).
"""

from __future__ import annotations

import base64
import datetime as dt
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import rc_context
from matplotlib.figure import Figure

from model.report.pathways import draw_alluvial
from model.results import REGISTRY

PALETTE = (
    "#333333",
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#9467bd",
    "#ff7f0e",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
)
STYLE: Any = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.hashsalt": "nrmsim",
    "path.simplify": True,
}
DPI = 100


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def save(fig: Figure, path: Path) -> str:
    """Write ``fig`` as a PNG without metadata; return it base64-encoded for embedding."""
    fig.savefig(path, format="png", dpi=DPI, metadata={"Software": None})
    return base64.b64encode(path.read_bytes()).decode("ascii")


def _year_fraction(day: str) -> float:
    d = dt.date.fromisoformat(day)
    start = dt.date(d.year, 1, 1)
    return d.year + (d - start).days / (dt.date(d.year + 1, 1, 1) - start).days


def trends(
    table: pd.DataFrame,
    scenarios: Sequence[str],
    metrics: Sequence[str],
    dates: Sequence[str],
    path: Path,
) -> str:
    """Yearly mean (line) and 95% interval (band) of each metric, scenarios overlaid, with
    the policy-change dates as dashed lines. ``table`` is comparison.csv for group 'all'."""
    cols = 2
    rows = math.ceil(len(metrics) / cols)
    with rc_context(STYLE):
        fig = Figure(figsize=(10, 2.6 * rows), layout="constrained")
        axes = fig.subplots(rows, cols, squeeze=False).ravel()
        for ax, metric in zip(axes, metrics, strict=False):
            for i, name in enumerate(scenarios):
                rows_ = table[(table["scenario"] == name) & (table["metric"] == metric)]
                rows_ = rows_.sort_values("period")
                x = rows_["period"].to_numpy(float) + 0.5
                ax.plot(x, rows_["mean"], color=colour(i), lw=1.6, label=name, marker="o", ms=3)
                lo, hi = rows_["ci_low"].to_numpy(float), rows_["ci_high"].to_numpy(float)
                if np.isfinite(lo).any():
                    ax.fill_between(x, lo, hi, color=colour(i), alpha=0.18, lw=0)
            for day in dates:
                ax.axvline(_year_fraction(day), color="#777777", ls="--", lw=0.9)
            ax.set_title(REGISTRY[metric].title, loc="left", fontsize=10)
            if REGISTRY[metric].display == "share":
                ax.yaxis.set_major_formatter(lambda v, _p: f"{v:.0%}")
            elif REGISTRY[metric].display == "gbp":
                ax.yaxis.set_major_formatter(lambda v, _p: f"£{v / 1e6:,.0f}m")
            years = sorted({int(p) for p in table["period"]})
            step = max(1, math.ceil(len(years) / 8))
            ax.set_xticks([y + 0.5 for y in years[::step]], [str(y) for y in years[::step]])
        for ax in axes[len(metrics) :]:
            ax.set_axis_off()
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4))
        return save(fig, path)


def relative_changes(
    rows: pd.DataFrame, options: Sequence[str], metrics: Sequence[str], title: str, path: Path
) -> str:
    """Change against the baseline as a share of the baseline mean, with the 95% interval of
    the paired difference on the same scale, one row per metric, options side by side."""
    with rc_context(STYLE):
        fig = Figure(
            figsize=(9, 0.45 * len(metrics) * max(1, len(options)) ** 0.5 + 1.4),
            layout="constrained",
        )
        ax = fig.subplots()
        step = 0.8 / max(len(options), 1)
        for i, name in enumerate(options):
            sub = rows[rows["scenario"] == name].set_index("metric")
            ys, xs, lo, hi = [], [], [], []
            for j, metric in enumerate(metrics):
                if metric not in sub.index:
                    continue
                r = sub.loc[metric]
                base = r["mean_a"]
                if not base or not np.isfinite(base):
                    continue
                ys.append(j + (i - (len(options) - 1) / 2) * step)
                xs.append(r["diff_vs_baseline"] / abs(base))
                lo.append(r["diff_ci_low"] / abs(base))
                hi.append(r["diff_ci_high"] / abs(base))
            x, low, high = np.array(xs), np.array(lo), np.array(hi)
            err = np.vstack([x - np.nan_to_num(low, nan=0), np.nan_to_num(high, nan=0) - x])
            ax.errorbar(
                x,
                ys,
                xerr=np.abs(err),
                fmt="o",
                color=colour(i + 1),
                ms=4,
                capsize=2,
                lw=1.2,
                label=name,
            )
        ax.axvline(0, color="#333333", lw=0.8)
        ax.set_yticks(range(len(metrics)), [REGISTRY[m].title for m in metrics])
        ax.invert_yaxis()
        ax.xaxis.set_major_formatter(lambda v, _p: f"{v:+.0%}")
        ax.set_xlabel("change relative to the baseline (95% interval of the paired difference)")
        ax.set_title(title, loc="left", fontsize=10)
        ax.legend(loc="lower right", fontsize=8)
        return save(fig, path)


def pathway(flows: pd.DataFrame, title: str, path: Path) -> str:
    """The alluvial diagram of one scenario's mean flows."""
    with rc_context(STYLE):
        fig = Figure(figsize=(8, 3.6), layout="constrained")
        draw_alluvial(fig.subplots(), flows, title)
        return save(fig, path)


def breakdown(
    rows: pd.DataFrame,
    options: Sequence[str],
    metrics: Sequence[str],
    groups: Sequence[tuple[str, str]],
    title: str,
    path: Path,
) -> str:
    """Change against the baseline by group: one panel per metric, a dot and 95% interval
    per (group, option). ``groups`` is (group value, label) in display order."""
    cols = min(3, len(metrics))
    nrows = math.ceil(len(metrics) / cols)
    with rc_context(STYLE):
        fig = Figure(
            figsize=(10, (0.32 * len(groups) * max(1, len(options)) ** 0.5 + 1) * nrows),
            layout="constrained",
        )
        axes = fig.subplots(nrows, cols, squeeze=False).ravel()
        step = 0.8 / max(len(options), 1)
        for ax, metric in zip(axes, metrics, strict=False):
            present = set(rows.loc[rows["metric"] == metric, "group"])
            shown = [(g, label) for g, label in groups if g in present]
            for i, name in enumerate(options):
                sub = rows[(rows["scenario"] == name) & (rows["metric"] == metric)]
                sub = sub.set_index("group")
                ys, xs, lo, hi = [], [], [], []
                for j, (group, _label) in enumerate(shown):
                    if group not in sub.index:
                        continue
                    r = sub.loc[group]
                    ys.append(j + (i - (len(options) - 1) / 2) * step)
                    xs.append(r["diff_vs_baseline"])
                    lo.append(r["diff_ci_low"])
                    hi.append(r["diff_ci_high"])
                x = np.array(xs, float)
                err = np.vstack(
                    [
                        x - np.nan_to_num(np.array(lo, float), nan=0),
                        np.nan_to_num(np.array(hi, float), nan=0) - x,
                    ]
                )
                ax.errorbar(
                    x,
                    ys,
                    xerr=np.abs(err),
                    fmt="o",
                    color=colour(i + 1),
                    ms=3.5,
                    capsize=2,
                    lw=1.1,
                    label=name,
                )
            ax.axvline(0, color="#333333", lw=0.8)
            ax.set_yticks(range(len(shown)), [label for _g, label in shown])
            ax.invert_yaxis()
            ax.set_title(REGISTRY[metric].title, loc="left", fontsize=9)
            if REGISTRY[metric].display == "share":
                ax.xaxis.set_major_formatter(lambda v, _p: f"{v * 100:+.0f}")
                ax.set_xlabel("percentage points")
        for ax in axes[len(metrics) :]:
            ax.set_axis_off()
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4))
        fig.suptitle(title, x=0.01, ha="left", fontsize=10)
        return save(fig, path)


def costs(
    means: pd.DataFrame, scenarios: Sequence[str], payers: Sequence[str], title: str, path: Path
) -> str:
    """Stacked bars: mean cost by payer for each scenario (``means``: scenario x payer)."""
    with rc_context(STYLE):
        fig = Figure(figsize=(8, 0.5 * len(scenarios) + 1.6), layout="constrained")
        ax = fig.subplots()
        left = np.zeros(len(scenarios))
        for i, payer in enumerate(payers):
            values = means.reindex(index=list(scenarios))[payer].fillna(0).to_numpy(float)
            ax.barh(
                range(len(scenarios)),
                values / 1e6,
                left=left / 1e6,
                color=colour(i + 1),
                label=REGISTRY[payer].title,
            )
            left += values
        ax.set_yticks(range(len(scenarios)), list(scenarios))
        ax.invert_yaxis()
        ax.set_xlabel("£ million")
        ax.set_title(title, loc="left", fontsize=10)
        fig.legend(loc="outside lower center", fontsize=8, ncols=3)
        return save(fig, path)
