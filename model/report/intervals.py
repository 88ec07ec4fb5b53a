"""Why a comparison's intervals are as wide as they are: parameters or Monte Carlo.

With a calibration ensemble, replicate r runs parameter set ``(r // K) % sets`` (``K``:
``--replicates-per-set``). A paired difference then varies for two reasons: the parameter
set (what we do not know about the system) and the replicate's random numbers (Monte Carlo
noise, which more replicates shrink). When some set carries two or more replicates, a one-way
random-effects analysis of variance separates them (Searle, Casella and McCulloch, *Variance
Components*, 1992, ch. 3, for the unbalanced estimator used here):

* within-set mean square ``MSW`` estimates the Monte Carlo variance ``s2_mc``;
* ``(MSB - MSW) / n0`` estimates the between-set (parameter) variance ``s2_par`` (0 if
  negative), ``n0 = (N - sum n_i**2 / N) / (g - 1)``;
* the variance of the reported mean over the ``N`` replicates is
  ``s2_par * sum n_i**2 / N**2 + s2_mc / N``; its two terms are the parameter and Monte Carlo
  shares shown in the report.

With one replicate a set the two are confounded (the report says so and how to split them);
without an ensemble the intervals are Monte Carlo only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from model.results import REGISTRY

NO_SPREAD = "\N{EN DASH}"  # shown where the two sources cannot be split


def clusters_of(spec: Mapping[str, Any]) -> dict[int, int] | None:
    """replicate -> parameter set id from a comparison manifest (None without an ensemble)."""
    sets = spec.get("ensemble_sets")
    if not sets:
        return None
    return {r: int(s) for r, s in enumerate(sets)}


def variance_shares(values: np.ndarray, sets: np.ndarray) -> tuple[float, float] | None:
    """(parameter share, Monte Carlo share) of the variance of the mean of ``values`` (one per
    replicate; ``sets``: each replicate's parameter set), or None when they cannot be told
    apart: fewer than two sets, no set with two replicates, or no spread at all."""
    ok = ~np.isnan(values)
    x, s = values[ok], sets[ok]
    labels, group, n_i = np.unique(s, return_inverse=True, return_counts=True)
    n, g = len(x), len(labels)
    if g < 2 or n <= g:
        return None
    means = np.bincount(group, weights=x) / n_i
    grand = x.mean()
    msb = float(np.sum(n_i * (means - grand) ** 2)) / (g - 1)
    msw = float(np.sum((x - means[group]) ** 2)) / (n - g)
    n0 = (n - float(np.sum(n_i**2)) / n) / (g - 1)
    s2_par = max(0.0, (msb - msw) / n0)
    par = s2_par * float(np.sum(n_i**2)) / n**2
    mc = msw / n
    total = par + mc
    if not total > 0:
        return None
    return par / total, mc / total


def interval_sources(
    summary: pd.DataFrame,
    spec: Mapping[str, Any],
    metrics: Sequence[str],
    period: str,
) -> dict[str, Any]:
    """What the report's box shows: ``mode`` ("monte_carlo", "confounded" or "split"), and in
    "split" mode one row per metric with each option's parameter and Monte Carlo shares of its
    difference's interval (variance of the mean), for all children in ``period``."""
    clusters = clusters_of(spec)
    per_set = int(spec.get("replicates_per_set", 1))
    out: dict[str, Any] = {"per_set": per_set, "rows": []}
    if clusters is None:
        return {**out, "mode": "monte_carlo"}
    sets = np.array([clusters[r] for r in sorted(clusters)])
    if len(np.unique(sets)) == len(sets):
        return {**out, "mode": "confounded", "sets": len(sets)}
    baseline = spec["baseline"]
    options = [s for s in spec["scenarios"] if s != baseline]
    rows = summary[
        (summary["group_by"] == "all")
        & (summary["year"].astype(str) == period)
        & summary["metric"].isin(metrics)
    ]
    wide = rows.pivot_table(
        index=["metric", "replicate"], columns="scenario", values="value", aggfunc="first"
    )
    for metric in metrics:
        if metric not in wide.index.get_level_values("metric"):
            continue
        table = wide.loc[metric]
        cells = []
        for name in options:
            diff = (table[name] - table[baseline]).to_numpy(float)
            reps = table.index.to_numpy(int)
            shares = variance_shares(diff, np.array([clusters[int(r)] for r in reps]))
            cells.append(
                {"param": NO_SPREAD, "mc": NO_SPREAD}
                if shares is None
                else {"param": f"{shares[0]:.0%}", "mc": f"{shares[1]:.0%}"}
            )
        out["rows"].append({"label": REGISTRY[metric].title, "cells": cells})
    return {**out, "mode": "split", "sets": len(np.unique(sets)), "replicates": len(sets)}
