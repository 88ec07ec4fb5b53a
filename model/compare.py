"""Compare scenarios with common random numbers.

Every scenario runs with the same root seed and replicate numbers, so replicate r of each
draws the same uniforms wherever the scenarios do the same thing; the difference in each
replicate then reflects the policy, not the noise. ``compare_summaries`` is a pure function
of the scenarios' summary tables: per (period, group_by, group, metric), each scenario's mean
over replicates with a 95% t-interval, and the mean paired difference against the baseline
(scenario minus baseline, replicate by replicate) with its own 95% t-interval. For the baseline
itself the differences are exactly 0.

Replicates that share a calibration parameter set (``clusters``) are not independent draws of
the parameters: their intervals then use the cluster-robust standard error over the sets, with
one degree of freedom fewer than the number of sets. With every replicate on its own set (or
no ensemble) this is the ordinary t-interval over replicates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

KEYS = ["year", "group_by", "group", "metric"]
COLUMNS = [
    "scenario",
    "metric",
    "group_by",
    "group",
    "period",
    "mean",
    "ci_low",
    "ci_high",
    "diff_vs_baseline",
    "diff_ci_low",
    "diff_ci_high",
    "n",
]
# the columns of the two-scenario output, kept for scripts written against it
LEGACY_COLUMNS = [
    "year",
    "mean_a",
    "mean_b",
    "diff_mean",
    "diff_low95",
    "diff_high95",
    "relative_diff",
]


def t_half_width(sd: pd.Series, n: pd.Series) -> pd.Series:
    """Half-width of the 95% t-interval of a mean of ``n`` values with standard deviation
    ``sd``; NaN where ``n`` < 2 (no spread to estimate)."""
    counts = n.to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        half = stats.t.ppf(0.975, np.maximum(counts - 1, 1)) * sd.to_numpy(float)
        half = half / np.sqrt(counts)
    return pd.Series(np.where(counts > 1, half, np.nan), index=sd.index)


def clustered_half_width(values: pd.Series, clusters: Mapping[int, int]) -> pd.DataFrame:
    """95% half-width of the mean over replicates when replicates in one cluster (the same
    parameter set) are correlated: the cluster-robust (CR1) standard error
    ``sqrt(g / (g - 1) * sum_c (sum_{r in c} (x_r - mean))**2) / N`` with a t quantile on
    ``g - 1`` degrees of freedom, ``g`` clusters and ``N`` replicates. With one replicate a
    cluster it equals ``t_half_width``. ``values`` is indexed by ``KEYS`` and ``replicate``;
    returns ``half`` and ``clusters`` (``g``) per ``KEYS``.
    """
    x = values.dropna()
    reps = x.index.get_level_values("replicate")
    cluster = pd.Index([clusters.get(int(r), -1 - int(r)) for r in reps], name="cluster")
    mean = x.groupby(level=KEYS).transform("mean")
    resid = (x - mean).to_frame("e").set_index(cluster, append=True)["e"]
    per_cluster = resid.groupby(level=[*KEYS, "cluster"]).sum()
    g = per_cluster.groupby(level=KEYS).size()
    n = x.groupby(level=KEYS).size()
    ss = (per_cluster**2).groupby(level=KEYS).sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.sqrt(ss * g / (g - 1)) / n
        half = stats.t.ppf(0.975, np.maximum(g - 1, 1)) * se
    return pd.DataFrame({"half": half.where(g > 1), "clusters": g})


def compare_summaries(
    summaries: Mapping[str, pd.DataFrame],
    baseline: str,
    clusters: Mapping[int, int] | None = None,
) -> pd.DataFrame:
    """Paired comparison of several scenarios against one of them.

    Args:
        summaries: label -> long summary (``replicate, year, group_by, group, metric, value``),
            in the order the rows should come out. Labels need not equal the ``scenario``
            column (a scenario may be compared with a renamed copy of itself).
        baseline: the label of the comparator.
        clusters: replicate -> parameter set, when replicates share calibration parameter
            sets; intervals are then cluster-robust (module docstring). None, or every
            replicate in its own cluster: ordinary t-intervals over replicates.

    Returns:
        One row per (scenario, period, group_by, group, metric) with ``COLUMNS`` then
        ``LEGACY_COLUMNS``. ``mean`` and ``ci_*`` are over the scenario's replicates;
        ``diff_*`` over replicates present in both (``n`` of them), so a replicate missing
        from one side is left out rather than compared with another's.

    Raises:
        KeyError: ``baseline`` is not one of the labels.
    """
    if baseline not in summaries:
        raise KeyError(f"baseline {baseline!r} is not among {list(summaries)}")
    base = _values(summaries[baseline]).rename("base")
    nested = clusters is not None and len(set(clusters.values())) < len(clusters)
    base_mean = base.groupby(level=KEYS).mean().rename("mean_a")
    parts = []
    for label, summary in summaries.items():
        both = pd.concat([_values(summary).rename("x"), base], axis=1, join="outer")
        both = both[both["x"].notna()] if label != baseline else both
        both["diff"] = both["x"] - both["base"]
        grouped = both.groupby(level=KEYS, sort=True)
        out = grouped.agg(
            mean=("x", "mean"),
            sd=("x", "std"),
            n_x=("x", "count"),
            diff_vs_baseline=("diff", "mean"),
            diff_sd=("diff", "std"),
            n=("diff", "count"),
        )
        out = out.join(base_mean)  # the baseline's mean over all its replicates
        if nested:  # replicates sharing a parameter set: cluster-robust intervals
            out["half"] = clustered_half_width(both["x"], clusters or {})["half"]
            out["diff_half"] = clustered_half_width(both["diff"], clusters or {})["half"]
        else:
            out["half"] = t_half_width(out["sd"], out["n_x"])
            out["diff_half"] = t_half_width(out["diff_sd"], out["n"])
        out = out.reset_index()
        out["ci_low"], out["ci_high"] = out["mean"] - out["half"], out["mean"] + out["half"]
        half = out["diff_half"]
        out["diff_ci_low"] = out["diff_vs_baseline"] - half
        out["diff_ci_high"] = out["diff_vs_baseline"] + half
        out.insert(0, "scenario", label)
        parts.append(out)
    table = pd.concat(parts, ignore_index=True)
    table["n"] = table["n"].astype(int)
    table["period"] = table["year"]
    table["mean_b"] = table["mean"]
    table["diff_mean"] = table["diff_vs_baseline"]
    table["diff_low95"] = table["diff_ci_low"]
    table["diff_high95"] = table["diff_ci_high"]
    table["relative_diff"] = table["diff_vs_baseline"] / table["mean_a"].where(table["mean_a"] != 0)
    return table[COLUMNS + LEGACY_COLUMNS]


def _values(summary: pd.DataFrame) -> pd.Series:
    return summary.set_index([*KEYS, "replicate"])["value"].astype(float)


def differences(summary_a: pd.DataFrame, summary_b: pd.DataFrame) -> pd.DataFrame:
    """The two-scenario table (B - A) in its original columns: per (year, group_by, group,
    metric), ``mean_a``, ``mean_b``, ``diff_mean``, ``n``, ``diff_low95``, ``diff_high95``,
    ``relative_diff``."""
    table = compare_summaries({"a": summary_a, "b": summary_b}, baseline="a")
    rows = table[table["scenario"] == "b"].reset_index(drop=True)
    return rows[
        [*KEYS, "mean_a", "mean_b", "diff_mean", "n", "diff_low95", "diff_high95", "relative_diff"]
    ]


def significant(row: pd.Series | Mapping[str, Any]) -> bool:
    """True if the 95% interval of the difference excludes zero (a comparison row, as a
    Series or a mapping; an undefined interval, NaN or None, is not significant)."""
    lo = row["diff_ci_low"] if "diff_ci_low" in row else row["diff_low95"]
    hi = row["diff_ci_high"] if "diff_ci_high" in row else row["diff_high95"]
    if lo is None or hi is None or math.isnan(lo) or math.isnan(hi):
        return False
    return bool(lo > 0 or hi < 0)
