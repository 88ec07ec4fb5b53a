"""Compare two scenarios with common random numbers.

Both scenarios run with the same root seed and replicate numbers, so replicate r of each
draws the same uniforms wherever the two scenarios do the same thing; the difference in each
replicate then reflects the policy, not the noise. ``differences`` is a pure function of two
summary tables.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

KEYS = ["year", "group_by", "group", "metric"]


def differences(summary_a: pd.DataFrame, summary_b: pd.DataFrame) -> pd.DataFrame:
    """Per (year, group_by, group, metric): means of A and B and the mean paired difference
    B - A over replicates, with a 95% t-interval (NaN with one replicate or undefined values).
    """
    a = summary_a.set_index([*KEYS, "replicate"])["value"].rename("a")
    b = summary_b.set_index([*KEYS, "replicate"])["value"].rename("b")
    both = pd.concat([a, b], axis=1).reset_index()
    both["diff"] = both["b"] - both["a"]
    grouped = both.groupby(KEYS, sort=True)
    out = grouped.agg(
        mean_a=("a", "mean"),
        mean_b=("b", "mean"),
        diff_mean=("diff", "mean"),
        diff_sd=("diff", "std"),
        n=("diff", "count"),
    ).reset_index()
    n = out["n"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        half = stats.t.ppf(0.975, np.maximum(n - 1, 1)) * out["diff_sd"] / np.sqrt(n)
    half = half.where(n > 1)
    out["diff_low95"] = out["diff_mean"] - half
    out["diff_high95"] = out["diff_mean"] + half
    out["relative_diff"] = out["diff_mean"] / out["mean_a"].where(out["mean_a"] != 0)
    return out.drop(columns="diff_sd")


def significant(row: pd.Series) -> bool:
    """True if the 95% interval of the difference excludes zero."""
    lo, hi = row["diff_low95"], row["diff_high95"]
    return bool(not math.isnan(lo) and (lo > 0 or hi < 0))
