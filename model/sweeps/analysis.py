"""Analysis of sweep results: pure functions of the results table and the design.

* Sobol first-order and total indices (``SALib.analyze.sobol``) and Morris mu*, sigma
  (``SALib.analyze.morris``), on the mean of the replicates at each design point, with the
  between-replicate variance reported beside them (how much of the spread is noise).
* PSA: each lever's paired difference from the comparator at the same design point and
  replicate (common random numbers), the probability that a lever beats the comparator and
  each other lever on each outcome with a direction (``Metric.better``), the expected value of
  partial perfect information (EVPPI) per factor, and PRIM boxes (EMA Workbench) of the
  factor ranges in which a lever fails to help.

EVPPI (Strong and Oakley 2013, the single-parameter regression method): with incremental net
benefit INB_d = s * (outcome_d - outcome_comparator) (s = -1 when lower is better, so larger
INB is better; the comparator has INB 0), regress each option's INB on one factor with a
cubic regression spline whose number of knots is chosen by generalised cross-validation (as a
GAM would), and take EVPPI = mean_i max_d g_d(x_i) - max_d mean_i g_d(x_i). It is in the
units of the decision outcome (e.g. children going missing in 2027). Probabilities and EVPPI
use the mean over replicates at each design point, so they describe parameter uncertainty;
residual Monte Carlo noise biases EVPPI and EVPI upwards slightly.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from model.results import REGISTRY

# Which way is better, per metric, for PSA probabilities, EVPPI and PRIM: ``Metric.better`` in
# the registry (a view, for callers). A metric without one (e.g. positive decision rates,
# referrals) is reported but not ranked: more is neither better nor worse without a judgement
# the spec must make (``better = { metric = "..." }``).
BETTER: dict[str, str] = {name: m.better for name, m in REGISTRY.items() if m.better}


def direction(metric: str, overrides: Mapping[str, str] | None = None) -> str | None:
    """'lower', 'higher', or None (no direction: reported, not ranked)."""
    if overrides and metric in overrides:
        return overrides[metric]
    return REGISTRY[metric].better if metric in REGISTRY else None


# --------------------------------------------------------------------------- replicates
def point_means(results: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Mean over replicates per (scenario, point), for the output ``columns``."""
    return results.groupby(["scenario", "point"], sort=True)[list(columns)].mean()


def replicate_variance(results: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Per output: variance of the point means, mean between-replicate variance at a point,
    and the share of the point means' variance that is replicate noise (var_within / R over
    var of means; near 0 = the design explains the spread, near 1 = noise dominates)."""
    rows = []
    for scenario, part in results.groupby("scenario", sort=True):
        reps = part.groupby("point")["replicate"].count()
        r = float(reps.mean())
        means = part.groupby("point")[list(columns)].mean()
        within = part.groupby("point")[list(columns)].var(ddof=1).mean()
        for c in columns:
            var_means = float(means[c].var(ddof=1))
            w = float(within[c]) if r > 1 else float("nan")
            rows.append(
                {
                    "scenario": scenario,
                    "output": c,
                    "points": len(means),
                    "replicates": r,
                    "var_point_means": var_means,
                    "mean_var_between_replicates": w,
                    "noise_share": (w / r) / var_means if r > 1 and var_means > 0 else float("nan"),
                    "nan_runs": int(part[c].isna().sum()),
                }
            )
    return pd.DataFrame(rows)


def _complete_means(results: pd.DataFrame, column: str, points: int) -> np.ndarray | None:
    means = results.groupby("point")[column].mean()
    if len(means) != points or not np.array_equal(means.index.to_numpy(), np.arange(points)):
        raise ValueError(
            f"results cover {len(means)} of {points} design points; finish the "
            "sweep (nrmsim sweep ... --resume) before analysing it"
        )
    y = means.to_numpy(float)
    return None if np.isnan(y).any() else y


# --------------------------------------------------------------------------- indices
def sobol_indices(
    problem: Mapping[str, Any],
    results: pd.DataFrame,
    columns: Sequence[str],
    points: int,
    *,
    second_order: bool = False,
    seed: int = 0,
    resamples: int = 1000,
) -> tuple[pd.DataFrame, list[str]]:
    """Sobol S1 and ST with 95% bootstrap intervals per output and factor (SALib); returns the
    table and the outputs skipped (undefined values at some design point)."""
    from SALib.analyze import sobol

    rows, skipped = [], []
    names = list(problem["names"])
    prob = {"num_vars": len(names), "names": names, "bounds": [b[:2] for b in problem["bounds"]]}
    for c in columns:
        y = _complete_means(results, c, points)
        if y is None:
            skipped.append(c)
            continue
        with _quiet():
            res = sobol.analyze(
                prob,
                y,
                calc_second_order=second_order,
                num_resamples=resamples,
                conf_level=0.95,
                seed=seed,
            )
        for i, name in enumerate(names):
            rows.append(
                {
                    "output": c,
                    "factor": name,
                    "S1": res["S1"][i],
                    "S1_conf": res["S1_conf"][i],
                    "ST": res["ST"][i],
                    "ST_conf": res["ST_conf"][i],
                }
            )
    return pd.DataFrame(rows), skipped


def morris_indices(
    problem: Mapping[str, Any],
    design: pd.DataFrame,
    results: pd.DataFrame,
    columns: Sequence[str],
    *,
    levels: int = 4,
    seed: int = 0,
    resamples: int = 1000,
) -> tuple[pd.DataFrame, list[str]]:
    """Morris mu, mu*, sigma and the 95% interval of mu* per output and factor (SALib)."""
    from SALib.analyze import morris

    names = list(problem["names"])
    prob = {"num_vars": len(names), "names": names, "bounds": [b[:2] for b in problem["bounds"]]}
    x = design[names].to_numpy(float)
    rows, skipped = [], []
    for c in columns:
        y = _complete_means(results, c, len(design))
        if y is None:
            skipped.append(c)
            continue
        with _quiet():
            res = morris.analyze(
                prob, x, y, num_resamples=resamples, conf_level=0.95, num_levels=levels, seed=seed
            )
        for i, name in enumerate(names):
            rows.append(
                {
                    "output": c,
                    "factor": name,
                    "mu": res["mu"][i],
                    "mu_star": res["mu_star"][i],
                    "sigma": res["sigma"][i],
                    "mu_star_conf": res["mu_star_conf"][i],
                }
            )
    return pd.DataFrame(rows), skipped


# --------------------------------------------------------------------------- PSA
def paired_differences(results: pd.DataFrame, column: str, comparator: str) -> pd.DataFrame:
    """Per (point, replicate): each scenario's value minus the comparator's (wide: one
    column per lever). Common random numbers make these differences sharp."""
    wide = results.pivot_table(
        index=["point", "replicate"],
        columns="scenario",
        values=column,
        aggfunc="first",
        dropna=False,
    )
    base = wide[comparator]
    return wide.drop(columns=comparator).sub(base, axis=0)


def point_differences(results: pd.DataFrame, column: str, comparator: str) -> pd.DataFrame:
    """Per design point: each lever's paired difference from the comparator, averaged over
    replicates (one column per lever); its spread over points is parameter uncertainty."""
    return paired_differences(results, column, comparator).groupby(level="point").mean()


def psa_effects(results: pd.DataFrame, columns: Sequence[str], comparator: str) -> pd.DataFrame:
    """Each lever's effect distribution over design points (replicate means) per output."""
    rows = []
    for c in columns:
        diff = point_differences(results, c, comparator)
        comp = results[results["scenario"] == comparator].groupby("point")[c].mean()
        for lever in diff.columns:
            d = diff[lever].dropna()
            rows.append(
                {
                    "output": c,
                    "lever": lever,
                    "points": len(d),
                    "mean_diff": d.mean(),
                    "sd_diff": d.std(ddof=1),
                    "q05": d.quantile(0.05),
                    "median": d.median(),
                    "q95": d.quantile(0.95),
                    "mean_comparator": comp.mean(),
                    "relative_mean_diff": d.mean() / comp.mean() if comp.mean() else np.nan,
                }
            )
    return pd.DataFrame(rows)


def _better_mask(diff: np.ndarray, way: str) -> np.ndarray:
    return diff < 0 if way == "lower" else diff > 0


def psa_probabilities(
    results: pd.DataFrame,
    columns: Sequence[str],
    metrics: Mapping[str, str],
    comparator: str,
    better: Mapping[str, str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Probabilities over design points (replicate means), for outputs with a direction:

    * vs comparator: P(better), P(worse), P(no difference) per lever;
    * pairwise: P(row option better than column option), comparator included;
    * best: P(option is strictly the best of all options); ties count for none.
    """
    vs, pairs, best = [], [], []
    for c in columns:
        way = direction(metrics[c], better)
        if way is None:
            continue
        means = results.groupby(["point", "scenario"])[c].mean().unstack("scenario").dropna()
        options = [comparator, *(s for s in means.columns if s != comparator)]
        means = means[options]
        for lever in options[1:]:
            d = (means[lever] - means[comparator]).to_numpy()
            vs.append(
                {
                    "output": c,
                    "better": way,
                    "lever": lever,
                    "points": len(d),
                    "p_better": float(_better_mask(d, way).mean()),
                    "p_worse": float(_better_mask(-d, way).mean()),
                    "p_same": float((d == 0).mean()),
                }
            )
        for a in options:
            for b in options:
                if a != b:
                    d = (means[a] - means[b]).to_numpy()
                    pairs.append(
                        {
                            "output": c,
                            "better": way,
                            "option": a,
                            "versus": b,
                            "p_better": float(_better_mask(d, way).mean()),
                        }
                    )
        values = means.to_numpy()
        sign = 1.0 if way == "lower" else -1.0
        scored = sign * values
        top = scored.min(axis=1, keepdims=True)
        unique = (scored == top).sum(axis=1) == 1
        for j, opt in enumerate(options):
            won = (scored[:, j] == top[:, 0]) & unique
            best.append({"output": c, "better": way, "option": opt, "p_best": float(won.mean())})
    return pd.DataFrame(vs), pd.DataFrame(pairs), pd.DataFrame(best)


def incremental_net_benefit(
    results: pd.DataFrame, column: str, comparator: str, way: str
) -> pd.DataFrame:
    """Point-level INB of every option vs the comparator (comparator column = 0); larger is
    better (sign flipped for lower-is-better outcomes)."""
    sign = -1.0 if way == "lower" else 1.0
    diff = point_differences(results, column, comparator)
    inb = sign * diff
    inb.insert(0, comparator, 0.0)
    return inb


def spline_projections(x: np.ndarray, max_knots: int = 8) -> np.ndarray:
    """The projections (hat matrices, ``k x n x n``) of the regressions EVPPI chooses among
    for the input ``x``: the mean (no information in ``x``) and cubic regression splines with
    0 to ``max_knots`` knots at quantiles, or for a variable with few, repeated values (an
    integer or an ensemble id) the mean at each value. Fitted
    values of any outcome ``y`` are ``H @ y``; they depend on ``x`` only, so they are built
    once per input and reused for every option and every permutation of the points."""
    from scipy.interpolate import BSpline

    x = np.asarray(x, float)
    n = len(x)
    uniq, inverse = np.unique(x, return_inverse=True)
    if len(uniq) <= 8 and len(uniq) <= n / 2:  # repeated values: the mean at each value
        same = inverse[:, None] == inverse[None, :]
        return (same / same.sum(axis=1, keepdims=True))[None, :, :]
    lo, hi = float(x.min()), float(x.max())
    hats = [np.full((n, n), 1.0 / n)]  # the mean: no information in x
    for knots in range(0, max_knots + 1):
        if knots + 4 >= n - 2:
            break
        inner = np.quantile(x, np.linspace(0, 1, knots + 2)[1:-1]) if knots else np.array([])
        inner = np.unique(inner[(inner > lo) & (inner < hi)])
        t = np.concatenate([[lo] * 4, inner, [hi] * 4])
        basis = BSpline.design_matrix(np.clip(x, lo, hi), t, 3).toarray()
        hats.append(basis @ np.linalg.pinv(basis))
    return np.stack(hats)


def _dof(hats: np.ndarray) -> np.ndarray:
    return np.einsum("kii->k", hats)


def _fitted(hats: np.ndarray, dof: np.ndarray, y: np.ndarray) -> np.ndarray:
    """E[y | x] for each column of ``y`` (``n x options``): per column, the projection with
    the smallest generalised cross-validation score ``n RSS / (n - dof)^2``."""
    n = y.shape[0]
    k, n_ = hats.shape[:2]
    fits = (hats.reshape(k * n_, n_) @ y).reshape(k, n_, -1)  # k x n x options, one product
    rss = ((y[None, :, :] - fits) ** 2).sum(axis=1)  # k x options
    with np.errstate(divide="ignore", invalid="ignore"):
        gcv = n * rss / (n - dof[:, None]) ** 2
    gcv[~np.isfinite(gcv)] = np.inf
    best = np.argmin(gcv, axis=0)
    return fits[best, :, np.arange(y.shape[1])].T


def _evppi_of(hats: np.ndarray, dof: np.ndarray, y: np.ndarray) -> float:
    fitted = _fitted(hats, dof, y)
    return float(max(fitted.max(axis=1).mean() - fitted.mean(axis=0).max(), 0.0))


def evppi(inb: pd.DataFrame, x: pd.Series | np.ndarray) -> float:
    """EVPPI of one input: mean of the max over options of E[INB | x] minus the max over
    options of its mean (Strong and Oakley's regression estimator, E[INB | x] by
    ``spline_projections`` with the knots chosen by generalised cross-validation)."""
    hats = spline_projections(np.asarray(x, float))
    return _evppi_of(hats, _dof(hats), inb.to_numpy(float))


def evpi(inb: pd.DataFrame) -> float:
    """Expected value of perfect information over all uncertain inputs (includes residual
    Monte Carlo noise in the point values, so it is an upper estimate)."""
    values = inb.to_numpy(float)
    return float(values.max(axis=1).mean() - values.mean(axis=0).max())


MIN_EVPPI_POINTS = 30  # design points below which EVPPI is not estimated
NOISE_PERMUTATIONS = 200  # permutations of the design points for the noise floor


def evppi_noise_floor(
    inb: pd.DataFrame,
    factors: pd.DataFrame | None = None,
    permutations: int = NOISE_PERMUTATIONS,
    seed: int = 0,
) -> float:
    """The largest EVPPI that inputs unrelated to the outcomes reach by chance: the design
    points' outcomes are permuted (which keeps each input's own values, and so its
    leverage, but breaks any link), the EVPPI of every input computed, and the largest
    kept; the floor is the 95th percentile of that largest value over ``permutations``.
    An EVPPI above it is above what any of the inputs would show by chance in 95% of
    permutations (a family-wise threshold: with a hundred inputs, the per-input 95th
    percentile would flag about five unrelated ones). Without ``factors``, one input of
    evenly spaced values stands in."""
    rng = np.random.default_rng(seed)
    y = inb.to_numpy(float)
    n, options = y.shape
    if permutations <= 0:
        return float("nan")
    columns = [np.arange(n, dtype=float)] if factors is None else list(factors.to_numpy(float).T)
    orders = np.stack([rng.permutation(n) for _ in range(permutations)])
    # every permutation side by side: n x (permutations * options), one regression per input
    stacked = y[orders].transpose(1, 0, 2).reshape(n, permutations * options)
    largest = np.full(permutations, -np.inf)
    for x in columns:
        hats = spline_projections(x)
        fitted = _fitted(hats, _dof(hats), stacked).reshape(n, permutations, options)
        value = fitted.max(axis=2).mean(axis=0) - fitted.mean(axis=0).max(axis=1)
        largest = np.maximum(largest, np.maximum(value, 0.0))
    return float(np.quantile(largest, 0.95)) if columns else float("nan")


def evppi_table(inb: pd.DataFrame, factors: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """EVPPI for every factor column (``factors`` indexed by point), largest first, with the
    EVPI and the family-wise noise floor (:func:`evppi_noise_floor`); NaN with fewer than
    ``MIN_EVPPI_POINTS`` design points."""
    x = factors.loc[inb.index]
    total = evpi(inb)
    if len(inb) < MIN_EVPPI_POINTS:  # a regression on fewer points is not an estimate
        rows = [{"factor": c, "evppi": np.nan, "evpi": total} for c in x.columns]
        out = pd.DataFrame(rows)
        out["share_of_evpi"] = np.nan
        out["noise_floor"] = np.nan
        out["above_noise"] = False
        return out
    floor = evppi_noise_floor(inb, x, seed=seed)
    rows = [{"factor": c, "evppi": evppi(inb, x[c]), "evpi": total} for c in x.columns]
    out = pd.DataFrame(rows)
    out["share_of_evpi"] = out["evppi"] / total if total > 0 else np.nan
    out["noise_floor"] = floor
    out["above_noise"] = out["evppi"] > floor
    return out.sort_values("evppi", ascending=False, kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- PRIM
@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """EMA Workbench's known warnings, each by its message (any other warning still shows):
    the optional back-ends it announces at import (ipyparallel, altair; neither is used
    here), and its own ``DataFrame.drop(inplace=True)``, deprecated in pandas 3.1."""
    with warnings.catch_warnings():
        for message, category in (
            ("ipyparallel not installed", UserWarning),
            ("altair based interactive inspection not available", ImportWarning),
            ("The inplace keyword in DataFrame.drop is deprecated", DeprecationWarning),
        ):
            warnings.filterwarnings("ignore", message=message, category=category)
        yield


def prim_box(
    x: pd.DataFrame, fails: np.ndarray, min_coverage: float = 0.5, min_cases: int = 5
) -> dict[str, Any]:
    """PRIM (EMA Workbench) on ``fails`` (a lever fails to help): the box on the peeling
    trajectory with the highest density among those covering at least ``min_coverage`` of
    the failures, with its restricted factor ranges."""
    fails = np.asarray(fails, bool)
    info: dict[str, Any] = {
        "points": len(fails),
        "failures": int(fails.sum()),
        "share_failing": float(fails.mean()) if len(fails) else np.nan,
        "limits": [],
    }
    if fails.sum() < min_cases or fails.all() or x.shape[1] == 0:
        info["note"] = (
            "fails everywhere" if fails.all() else f"fewer than {min_cases} failures: no box"
        )
        return info
    with _quiet():
        logging.getLogger("EMA").setLevel(logging.WARNING)
        from ema_workbench.analysis import prim

        x = x.reset_index(drop=True).astype(float)
        algo = prim.Prim(x, fails, peel_alpha=0.05, paste_alpha=0.05, mass_min=0.05)
        box = algo.find_box()
    if box is None:
        info["note"] = "PRIM found no box"
        return info
    traj = box.peeling_trajectory
    ok = traj[traj["coverage"] >= min_coverage]
    i = int(ok["density"].idxmax()) if len(ok) else int(traj["coverage"].idxmax())
    with _quiet():
        box.select(i)
    lim = box.box_lims[i]
    full = algo.box_init
    for c in x.columns:
        lo, hi = float(lim[c].iloc[0]), float(lim[c].iloc[1])
        flo, fhi = float(full[c].iloc[0]), float(full[c].iloc[1])
        if lo > flo or hi < fhi:
            info["limits"].append(
                {"factor": c, "low": lo, "high": hi, "range_low": flo, "range_high": fhi}
            )
    row = traj.loc[i]
    info.update(
        {
            "coverage": float(row["coverage"]),
            "density": float(row["density"]),
            "mass": float(row["mass"]),
            "restricted": len(info["limits"]),
        }
    )
    return info


def prim_table(
    results: pd.DataFrame,
    columns: Sequence[str],
    metrics: Mapping[str, str],
    comparator: str,
    factors: pd.DataFrame,
    better: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """For each lever and outcome with a direction: where the lever fails to help (its point
    INB vs the comparator is <= 0), as PRIM box limits (one row per restricted factor)."""
    rows = []
    for c in columns:
        way = direction(metrics[c], better)
        if way is None:
            continue
        inb = incremental_net_benefit(results, c, comparator, way).dropna()
        x = factors.loc[inb.index]
        for lever in inb.columns[1:]:
            info = prim_box(x, inb[lever].to_numpy() <= 0)
            base = {
                "output": c,
                "lever": lever,
                "points": info["points"],
                "share_failing": info["share_failing"],
                "coverage": info.get("coverage"),
                "density": info.get("density"),
                "mass": info.get("mass"),
                "note": info.get("note", ""),
            }
            if not info["limits"]:
                rows.append(
                    {
                        **base,
                        "factor": None,
                        "low": None,
                        "high": None,
                        "range_low": None,
                        "range_high": None,
                    }
                )
            for lim in info["limits"]:
                rows.append({**base, **lim})
    return pd.DataFrame(rows)
