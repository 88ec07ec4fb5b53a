"""New runs against the committed reference distributions (issue 15).

``tests/reference/reference.csv`` holds the headline metrics over 20 replicates, made by
``tests/reference/make_reference.py`` on a named commit. An engine change that is meant to
leave results alone (speed, refactoring) must keep new replicates inside those distributions.
Here four replicates the reference never ran (seeds differ: replicates 100-103) are compared
metric by metric with the reference: a two-sided Mann-Whitney test on each metric's mean over
2016-2025, Holm's correction over the metrics, family error 1%.

Wrong models caught: a change that shifts any headline metric of the historical run by
about three of its replicate-to-replicate standard deviations or more (for example an event
lost or counted twice, a hazard applied twice, a stage skipped);
``test_the_comparison_has_power`` shows the test rejects such a shift at this sample size, so
a pass is not vacuous. The levers' 2027
differences are compared the same way in the ``scale`` profile (``-m scale``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import PermutationMethod, mannwhitneyu

from model.runner import RunSpec, run_many
from model.scenario import load_scenario

HERE = Path(__file__).resolve().parent / "reference"
NEW_REPLICATES = range(100, 104)
FAMILY_ALPHA = 0.01


def reference() -> pd.DataFrame:
    return pd.read_csv(HERE / "reference.csv")


def headline() -> list[str]:
    return list(json.loads((HERE / "reference.json").read_text())["headline"])


def per_replicate(frame: pd.DataFrame) -> pd.DataFrame:
    """Replicate x metric: the metric's mean over the years present."""
    return frame.groupby(["replicate", "metric"])["value"].mean().unstack("metric")


def rejected(new: pd.DataFrame, ref: pd.DataFrame) -> dict[str, float]:
    """Metrics whose new values differ from the reference's (Holm at ``FAMILY_ALPHA``), with
    their p-values. Metrics constant in both samples are compared for equality."""
    pvalues: dict[str, float] = {}
    for metric in ref.columns:
        a, b = new[metric].to_numpy(float), ref[metric].to_numpy(float)
        if np.ptp(np.concatenate([a, b])) == 0.0:
            continue  # every value equal: nothing to test
        if np.ptp(b) == 0.0 and np.ptp(a) == 0.0:
            pvalues[metric] = 0.0 if a[0] != b[0] else 1.0
            continue
        # exact p-values over every split of the pooled values (ties included): the normal
        # approximation is far off for samples this small
        exact = PermutationMethod(n_resamples=np.inf)
        pvalues[metric] = float(mannwhitneyu(a, b, alternative="two-sided", method=exact).pvalue)
    out: dict[str, float] = {}
    m = len(pvalues)
    for k, (metric, p) in enumerate(sorted(pvalues.items(), key=lambda item: item[1])):
        if p > FAMILY_ALPHA / (m - k):
            break  # Holm: stop at the first non-rejection
        out[metric] = p
    return out


@pytest.fixture(scope="module")
def historical_new() -> pd.DataFrame:
    scenario = load_scenario("historical")
    metrics = tuple(headline())
    specs = [RunSpec(scenario, r, group_bys=("all",), metrics=metrics) for r in NEW_REPLICATES]
    rows = []
    for result in run_many(specs, workers=1):
        s = result.summary
        s = s[(s["group"] == "all") & s["year"].between(2016, 2025)]
        rows.append(s[["replicate", "year", "metric", "value"]])
    return per_replicate(pd.concat(rows, ignore_index=True))


def historical_reference() -> pd.DataFrame:
    ref = reference()
    return per_replicate(ref[ref["case"] == "historical"])


def test_reference_covers_what_it_says() -> None:
    """The committed file has every headline metric for 2016-2025 and at least 20
    replicates (a truncated or stale reference fails here, not silently below)."""
    ref = reference()
    hist = ref[ref["case"] == "historical"]
    assert hist["replicate"].nunique() >= 20
    assert sorted(hist["year"].unique()) == list(range(2016, 2026))
    assert set(hist["metric"]) == set(headline())


@pytest.mark.slow
def test_new_historical_runs_match_the_reference(historical_new: pd.DataFrame) -> None:
    ref = historical_reference()
    assert list(historical_new.columns) == list(ref.columns)
    assert rejected(historical_new, ref) == {}


@pytest.mark.slow
def test_the_comparison_has_power(historical_new: pd.DataFrame) -> None:
    """The same new runs with one metric moved by three of the reference's standard
    deviations: the comparison rejects that metric (so a pass above means something). It
    caught the first version of ``rejected``, whose Mann-Whitney p-values came from the
    normal approximation: for four against twenty values it gives 0.002 where the exact
    p-value of a complete separation is 0.0002, below Holm's first threshold (0.0007)."""
    ref = historical_reference()
    for metric in ("referrals", "children_gone_missing", "median_days_referral_to_cg"):
        shifted = historical_new.copy()
        shifted[metric] = shifted[metric] + 3.0 * ref[metric].std()
        assert metric in rejected(shifted, ref), metric


@pytest.mark.scale
def test_lever_differences_match_the_reference() -> None:
    """``-m scale``: each option's 2027 difference from the status quo over four new
    replicates, against the reference's (about 15 minutes on 2 cores)."""
    ref = reference()
    metrics = tuple(headline())
    cases = sorted(c for c in ref["case"].unique() if c.endswith("-minus-status_quo_2027"))
    names = ["status_quo_2027", *(c.removesuffix("-minus-status_quo_2027") for c in cases)]
    specs = [
        RunSpec(load_scenario(n), r, group_bys=("all",), metrics=metrics)
        for r in NEW_REPLICATES
        for n in names
    ]
    results = run_many(specs, workers=2)
    rows = []
    for result in results:
        s = result.summary
        s = s[(s["group"] == "all") & (s["year"] == 2027)]
        rows.append(s.assign(case=result.scenario)[["case", "replicate", "metric", "value"]])
    new = pd.concat(rows, ignore_index=True).set_index(["case", "replicate", "metric"])["value"]
    base = new.xs("status_quo_2027", level="case")
    failures = {}
    for case, name in zip(cases, names[1:], strict=True):
        diff = (new.xs(name, level="case") - base).reset_index()
        got = per_replicate(diff)
        want = per_replicate(ref[ref["case"] == case])
        bad = rejected(got, want)
        if bad:
            failures[case] = bad
    assert failures == {}
