"""Parameters versus Monte Carlo (issue 15 item 5): replicates sharing an ensemble parameter
set (``--replicates-per-set``), the cluster-robust intervals that sharing needs, and the
report's split of each interval's width into its two sources (``model.report.intervals``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from test_compare import base_and_lever, fake_fit, long, scenario

from model.cli import main
from model.common import InputError
from model.compare import clustered_half_width, compare_summaries, t_half_width
from model.comparison import run_comparison
from model.ensemble import set_for_replicate
from model.report.intervals import interval_sources, variance_shares


def nested(rng: np.random.Generator, sets: int, per_set: int, sd_par: float, sd_mc: float):
    """Values with a known split: a set effect (sd ``sd_par``) plus replicate noise."""
    effect = np.repeat(rng.normal(0.0, sd_par, sets), per_set)
    return effect + rng.normal(0.0, sd_mc, sets * per_set), np.repeat(np.arange(sets), per_set)


def test_variance_shares_recover_known_components() -> None:
    """Balanced design, sd 3 between sets and 1 within, 2 replicates a set: the mean's variance
    is 9/g from parameters and 1/(2g) from Monte Carlo, a parameter share of 9 / 9.5. Catches
    the mean squares swapped, the between-set estimate not divided by the replicates a set, or
    the Monte Carlo term not divided by the replicates."""
    x, sets = nested(np.random.default_rng(1), 4000, 2, 3.0, 1.0)
    shares = variance_shares(x, sets)
    assert shares is not None
    assert shares[0] == pytest.approx(9 / 9.5, abs=0.01)
    assert sum(shares) == pytest.approx(1.0)


def test_variance_shares_find_monte_carlo_alone_when_sets_do_not_matter() -> None:
    """No set effect: the parameter share is near 0 (the estimator truncates at 0). Catches a
    split that charges the total spread to the parameters."""
    x, sets = nested(np.random.default_rng(2), 2000, 3, 0.0, 1.0)
    shares = variance_shares(x, sets)
    assert shares is not None and shares[0] < 0.05


def test_variance_shares_unbalanced_design() -> None:
    """Sets carrying 1, 2 or 3 replicates (as when replicates wrap around a small ensemble):
    still near the truth for a parameter variance of 4 and Monte Carlo 1. Catches the balanced
    formula's ``n0 = K`` used where set sizes differ."""
    rng = np.random.default_rng(3)
    sizes = rng.integers(1, 4, 3000)
    sets = np.repeat(np.arange(len(sizes)), sizes)
    x = np.repeat(rng.normal(0, 2.0, len(sizes)), sizes) + rng.normal(0, 1.0, len(sets))
    shares = variance_shares(x, sets)
    n = len(x)
    expected_par = 4.0 * np.sum(sizes.astype(float) ** 2) / n**2
    expected = expected_par / (expected_par + 1.0 / n)
    assert shares is not None and shares[0] == pytest.approx(expected, abs=0.02)


def test_variance_shares_refuse_what_cannot_be_split() -> None:
    """One replicate a set, a single set, or no spread: no split (None), not a made-up one."""
    assert variance_shares(np.array([1.0, 2.0, 3.0]), np.array([0, 1, 2])) is None
    assert variance_shares(np.array([1.0, 2.0, 3.0]), np.array([0, 0, 0])) is None
    assert variance_shares(np.zeros(4), np.array([0, 0, 1, 1])) is None


def test_clustered_interval_is_the_t_interval_with_one_replicate_a_set() -> None:
    """Singleton clusters give exactly the ordinary t-interval. Catches a wrong small-sample
    factor or degrees of freedom in the cluster-robust form."""
    values = pd.Series([3.0, 5.0, 4.0, 9.0])
    frame = long("a", list(values)).set_index(["year", "group_by", "group", "metric", "replicate"])
    half = clustered_half_width(frame["value"], {0: 0, 1: 1, 2: 2, 3: 3})["half"].iloc[0]
    expected = t_half_width(pd.Series([values.std()]), pd.Series([4])).iloc[0]
    assert half == pytest.approx(expected, rel=1e-12)


def test_clustered_interval_is_the_t_interval_of_set_means_when_balanced() -> None:
    """Two replicates on each of three sets: the interval is the t-interval of the three set
    means (two degrees of freedom), wider than treating six replicates as independent. Catches
    intervals that ignore the sharing (too narrow: they claim detectable changes that are
    not)."""
    values = [1.0, 1.2, 5.0, 5.4, 3.0, 2.6]
    frame = long("a", values).set_index(["year", "group_by", "group", "metric", "replicate"])
    clusters = {0: 10, 1: 10, 2: 11, 3: 11, 4: 12, 5: 12}
    half = clustered_half_width(frame["value"], clusters)["half"].iloc[0]
    means = np.array([1.1, 5.2, 2.8])
    expected = stats.t.ppf(0.975, 2) * means.std(ddof=1) / np.sqrt(3)
    assert half == pytest.approx(expected, rel=1e-12)
    naive = t_half_width(pd.Series([np.std(values, ddof=1)]), pd.Series([6])).iloc[0]
    assert half > naive


def test_compare_summaries_uses_the_sets_for_the_difference_interval() -> None:
    """The difference's interval follows the sets too; without clusters the table is as
    before. Catches the clusters passed to one interval and not the other."""
    base = long("base", [10.0, 10.0, 10.0, 10.0, 10.0, 10.0])
    option = long("b", [11.0, 11.2, 15.0, 15.4, 13.0, 12.6])
    clusters = {0: 0, 1: 0, 2: 1, 3: 1, 4: 2, 5: 2}
    plain = compare_summaries({"base": base, "b": option}, "base").set_index("scenario")
    clustered = compare_summaries({"base": base, "b": option}, "base", clusters)
    row = clustered.set_index("scenario").loc["b"]
    expected = stats.t.ppf(0.975, 2) * np.array([1.1, 5.2, 2.8]).std(ddof=1) / np.sqrt(3)
    assert row["diff_ci_high"] - row["diff_vs_baseline"] == pytest.approx(expected, rel=1e-12)
    assert row["diff_vs_baseline"] == plain.loc["b", "diff_vs_baseline"]
    assert row["diff_ci_high"] > plain.loc["b", "diff_ci_high"]
    singletons = compare_summaries({"base": base, "b": option}, "base", dict(enumerate(range(6))))
    pd.testing.assert_frame_equal(singletons, plain.reset_index())


def test_set_for_replicate_groups_consecutive_replicates() -> None:
    ens = pd.DataFrame({"set_id": [5, 6, 7]})
    assert [int(set_for_replicate(ens, r)["set_id"]) for r in range(4)] == [5, 6, 7, 5]
    got = [int(set_for_replicate(ens, r, 2)["set_id"]) for r in range(8)]
    assert got == [5, 5, 6, 6, 7, 7, 5, 5]


def _summary(diffs: dict[str, np.ndarray], metric: str = "referrals") -> pd.DataFrame:
    frames = [long("base", [100.0] * len(next(iter(diffs.values()))), metric)]
    frames += [long(name, list(100.0 + d), metric) for name, d in diffs.items()]
    return pd.concat(frames, ignore_index=True)


def test_interval_sources_say_which_source_dominates() -> None:
    """Option b's changes differ only between sets, option c's only within: the report's split
    says parameters for b and Monte Carlo for c. Catches the options or the sets mixed up."""
    sets = [0, 0, 1, 1, 2, 2, 3, 3]
    b = np.array([1.0, 1.0, 5.0, 5.0, -2.0, -2.0, 3.0, 3.0])
    c = np.array([1.0, -1.0, 2.0, -2.0, 1.5, -1.5, 0.5, -0.5])
    spec = {
        "baseline": "base",
        "scenarios": ["base", "b", "c"],
        "ensemble_sets": sets,
        "replicates_per_set": 2,
    }
    out = interval_sources(_summary({"b": b, "c": c}), spec, ["referrals"], "2024")
    assert out["mode"] == "split" and out["sets"] == 4
    (row,) = out["rows"]
    assert row["cells"][0] == {"param": "100%", "mc": "0%"}
    assert row["cells"][1] == {"param": "0%", "mc": "100%"}


def test_interval_sources_modes_without_a_split() -> None:
    summary = _summary({"b": np.array([1.0, 2.0])})
    spec = {"baseline": "base", "scenarios": ["base", "b"], "ensemble_sets": None}
    assert interval_sources(summary, spec, ["referrals"], "2024")["mode"] == "monte_carlo"
    spec["ensemble_sets"] = [4, 9]
    assert interval_sources(summary, spec, ["referrals"], "2024")["mode"] == "confounded"


def test_compare_with_two_replicates_a_set_splits_the_intervals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end: ``--replicates-per-set 2`` runs replicates 0, 1 on set 7 and 2, 3 on set 8,
    records it, and the report shows the split. Catches the option parsed but not used (each
    replicate on its own set) and a report that never shows the table."""
    fake_fit(tmp_path, monkeypatch)
    a, b = base_and_lever(tmp_path)
    out = tmp_path / "out"
    args = ["compare", str(a), str(b), "--reps", "4", "--ensemble", "fit-test"]
    assert main([*args, "--replicates-per-set", "2", "--out", str(out), "--quiet"]) == 0
    meta = json.loads((out / "manifest.json").read_text())
    assert meta["comparison"]["ensemble_sets"] == [7, 7, 8, 8]
    assert meta["comparison"]["replicates_per_set"] == 2
    summary = pd.read_csv(out / "summary.csv")
    rows = summary[(summary.group_by == "all") & (summary.metric == "referrals")]
    per_rep = rows[rows.scenario == "a"].groupby("replicate")["value"].sum()
    assert per_rep[2] > 3 * per_rep[0] and per_rep[3] > 3 * per_rep[1]  # set 8's volume
    html = (out / "report.html").read_text()
    assert 'id="interval-sources"' in html
    assert "4 replicates share 2 parameter sets (2 on each)" in html


def test_replicates_per_set_refuses_what_it_cannot_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sharing sets without an ensemble, or replicates that do not split into groups of K,
    are refused before anything is written."""
    fake_fit(tmp_path, monkeypatch)
    a, b = scenario(tmp_path, "a"), scenario(tmp_path, "b")
    out = tmp_path / "out"
    with pytest.raises(InputError, match="needs a calibration ensemble"):
        run_comparison([a, b], reps=4, replicates_per_set=2, ensemble="none", out=out)
    with pytest.raises(InputError, match="multiple"):
        run_comparison([a, b], reps=3, replicates_per_set=2, ensemble="fit-test", out=out)
    with pytest.raises(InputError, match="more than --reps"):
        run_comparison([a, b], reps=2, replicates_per_set=3, ensemble="fit-test", out=out)
    assert not out.exists()


def test_replicates_wrapping_round_a_small_ensemble_are_split_and_said_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three replicates on a two-set ensemble (replicate 2 wraps round to set 7): the intervals
    are clustered, the report splits them and says why, without claiming K replicates a set.
    Catches wrap-round replicates treated as independent draws of the parameters."""
    fake_fit(tmp_path, monkeypatch)
    a, b = base_and_lever(tmp_path)
    out = tmp_path / "out"
    args = ["compare", str(a), str(b), "--reps", "3", "--ensemble", "fit-test"]
    assert main([*args, "--out", str(out), "--quiet"]) == 0
    meta = json.loads((out / "manifest.json").read_text())
    assert meta["comparison"]["ensemble_sets"] == [7, 8, 7]
    html = (out / "report.html").read_text()
    assert "3 replicates share 2 parameter sets (the ensemble has fewer sets" in html
