"""nrmsim compare: paired differences with common random numbers, several scenarios, a chosen
baseline, the two-scenario form and its old columns, and bad input (exit 2, nothing written).
The report itself is tested in test_report.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

import model.ensemble
from model.cli import main
from model.common import InputError
from model.compare import COLUMNS, LEGACY_COLUMNS, compare_summaries, differences
from model.comparison import run_comparison
from model.scenario import load_scenario

BASELINE = (Path(__file__).resolve().parent.parent / "scenarios" / "baseline.toml").as_posix()
T_975 = {2: 12.706205, 3: 4.302653}  # t quantiles for n - 1 = 1, 2 degrees of freedom


def scenario(tmp_path: Path, name: str, extra: str = "", per_year: int = 1500) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(
        f'[meta]\nname = "{name}"\nextends = "{BASELINE}"\n'
        "[run]\nend = 2024-03-31\n"
        "[params.identification]\n"
        f'child_referrals_per_year = {{ value = {per_year}, source = "ho-nrm-eoy-2023" }}\n'
        + extra,
        encoding="utf-8",
    )
    return path


def long(name: str, values: list[float], metric: str = "referrals", year: int = 2024):
    return pd.DataFrame(
        {
            "scenario": name,
            "replicate": range(len(values)),
            "year": year,
            "group_by": "all",
            "group": "all",
            "metric": metric,
            "value": values,
        }
    )


def base_and_lever(tmp_path: Path) -> tuple[Path, Path]:
    """Scenario files ``a`` and ``b``, the same but for b's RG positive rate after the NBA
    (0.5): a lever whose effect shows in a few months."""
    a = scenario(tmp_path, "a")
    lever = '[params.rg_decision]\np_positive_nba = { value = 0.5, source = "assumption" }\n'
    return a, scenario(tmp_path, "b", lever)


def fake_fit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fit ``fit-test`` whose ensemble has two sets, 7 and 8, six times apart in referral
    volume (so a replicate's set shows in its referrals), found by ``model.ensemble``."""
    fits = tmp_path / "fits"
    (fits / "fit-test").mkdir(parents=True)
    pd.DataFrame(
        {"set_id": [7, 8], "identification.child_referrals_per_year": [400.0, 2400.0]}
    ).to_parquet(fits / "fit-test" / "ensemble.parquet")
    monkeypatch.setattr(model.ensemble, "FITS_DIR", fits)


# ----------------------------------------------------------------- the comparison table
def test_differences_of_a_scenario_with_itself_are_exactly_zero() -> None:
    summary = pd.DataFrame(
        {
            "scenario": "x",
            "replicate": [0, 1, 0, 1],
            "year": 2024,
            "group_by": "all",
            "group": "all",
            "metric": ["referrals", "referrals", "cg_decisions", "cg_decisions"],
            "value": [10.0, 12.0, 3.0, 5.0],
        }
    )
    table = differences(summary, summary)
    assert (table["diff_mean"] == 0).all()
    assert (table["diff_low95"] == 0).all() and (table["diff_high95"] == 0).all()
    assert table.set_index("metric").loc["referrals", "mean_a"] == 11.0


def test_differences_are_paired_by_replicate() -> None:
    a = long("a", [10.0, 20.0, 30.0])
    b = a.assign(scenario="b", value=a["value"] + [1.0, 2.0, 3.0])
    row = differences(a, b).iloc[0]
    assert row["diff_mean"] == pytest.approx(2.0)
    # paired: the spread of the differences (sd 1), not of the levels (sd 10), sets the interval
    assert row["diff_high95"] - row["diff_low95"] == pytest.approx(2 * T_975[3] / 3**0.5, rel=1e-5)


def test_compare_summaries_pairs_every_option_with_the_baseline() -> None:
    base = long("base", [10.0, 20.0, 30.0])
    # b: base + (1, 2, 3); c: the same levels as b but in another replicate order, so the
    # pairs differ (diffs -9, +9, 0) although the means are equal
    b = long("b", [11.0, 22.0, 33.0])
    c = long("c", [33.0, 11.0, 22.0])
    table = compare_summaries({"base": base, "b": b, "c": c}, baseline="base")
    assert list(table.columns) == COLUMNS + LEGACY_COLUMNS
    assert list(table["scenario"]) == ["base", "b", "c"]
    rows = table.set_index("scenario")
    # the baseline against itself: exactly zero, with a zero-width interval
    assert rows.loc["base", ["diff_vs_baseline", "diff_ci_low", "diff_ci_high"]].tolist() == [
        0,
        0,
        0,
    ]
    # levels: mean and t-interval over the scenario's own replicates
    assert rows.loc["b", "mean"] == pytest.approx(22.0)
    half_level = T_975[3] * 11.0 / 3**0.5
    assert rows.loc["b", "ci_high"] == pytest.approx(22.0 + half_level, rel=1e-6)
    # paired differences: b's are 1, 2, 3; c's are 23, -9, -8 (same mean, far wider spread)
    assert rows.loc["b", "diff_vs_baseline"] == pytest.approx(2.0)
    assert rows.loc["b", "diff_ci_high"] - rows.loc["b", "diff_ci_low"] == pytest.approx(
        2 * T_975[3] / 3**0.5, rel=1e-5
    )
    assert rows.loc["c", "diff_vs_baseline"] == pytest.approx(2.0)
    sd_c = pd.Series([23.0, -9.0, -8.0]).std()
    assert rows.loc["c", "diff_ci_high"] - rows.loc["c", "diff_ci_low"] == pytest.approx(
        2 * T_975[3] * sd_c / 3**0.5, rel=1e-5
    )
    # the old columns, on the same rows
    assert (rows["year"] == rows["period"]).all()
    assert (rows["mean_a"] == 20.0).all() and (rows["mean_b"] == rows["mean"]).all()
    assert (rows["diff_mean"] == rows["diff_vs_baseline"]).all()
    assert (rows["diff_low95"] == rows["diff_ci_low"]).all()
    assert rows.loc["b", "relative_diff"] == pytest.approx(0.1)
    assert (rows["n"] == 3).all()


def test_compare_summaries_leaves_out_replicates_missing_on_one_side() -> None:
    base = long("base", [10.0, 20.0, 30.0])
    b = long("b", [12.0, 22.0])  # replicate 2 missing: differences are 2 and 2
    row = compare_summaries({"base": base, "b": b}, "base").set_index("scenario").loc["b"]
    assert row["n"] == 2
    assert row["diff_vs_baseline"] == 2.0  # not 17 - 20 = -3 from unpaired means
    assert row["diff_ci_low"] == row["diff_ci_high"] == 2.0
    assert row["mean_a"] == 20.0


def test_compare_summaries_with_one_replicate_has_no_interval() -> None:
    table = compare_summaries({"a": long("a", [5.0]), "b": long("b", [7.0])}, "a")
    row = table.set_index("scenario").loc["b"]
    assert row["diff_vs_baseline"] == 2.0 and row["n"] == 1
    assert pd.isna(row["diff_ci_low"]) and pd.isna(row["ci_low"])


# ------------------------------------------------------------------ the command, two scenarios
def test_compare_finds_the_effect_of_a_lever(tmp_path: Path) -> None:
    a, b = base_and_lever(tmp_path)
    out = tmp_path / "out"
    assert main(["compare", str(a), str(b), "--reps", "3", "--out", str(out), "--quiet"]) == 0
    table = pd.read_csv(out / "comparison.csv")
    assert list(table.columns) == COLUMNS + LEGACY_COLUMNS  # the two-scenario form keeps them
    assert set(table["scenario"]) == {"a", "b"}
    row = table[
        (table.scenario == "b") & (table.metric == "rg_positive_rate") & (table.group_by == "all")
    ].iloc[0]
    assert row["diff_high95"] < 0 and row["diff_ci_high"] < 0  # fewer positive RG decisions
    # common random numbers: new children (referrals minus repeats) are untouched by an RG lever
    allrows = table[(table.group_by == "all") & (table.scenario == "b")].set_index("metric")
    new_a = allrows.loc["referrals", "mean_a"] - allrows.loc["repeat_referrals", "mean_a"]
    new_b = allrows.loc["referrals", "mean_b"] - allrows.loc["repeat_referrals", "mean_b"]
    assert new_a == new_b > 0
    assert {"comparison.csv", "summary.csv", "pathways.csv", "manifest.json", "report.html"} <= {
        p.name for p in out.iterdir()
    }
    summary = pd.read_csv(out / "summary.csv")
    assert sorted(summary["scenario"].unique()) == ["a", "b"]
    assert sorted(summary["replicate"].unique()) == [0, 1, 2]


def test_compare_refuses_different_periods(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = scenario(tmp_path, "a")
    b = tmp_path / "b.toml"
    b.write_text(
        f'[meta]\nname = "b"\nextends = "{BASELINE}"\n[run]\nend = 2024-02-29\n', encoding="utf-8"
    )
    out = tmp_path / "out"
    assert main(["compare", str(a), str(b), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--start and --end" in err and "2024-03-31" in err
    assert not out.exists()


# ------------------------------------------------------------- the library function (issue 16)
def test_run_comparison_with_keywords_writes_what_the_command_writes(tmp_path: Path) -> None:
    """``run_comparison`` called with keyword arguments writes the same tables, byte for byte,
    as ``nrmsim compare`` with the same options. Catches ``cmd_compare`` dropping an option or
    passing it to the wrong keyword (with ``--baseline b --seed 5 --reps 2`` the comparator,
    the draws or the replicate count would differ), a scenario passed already loaded treated
    otherwise than its file, and a result that is not what was written (table, manifest)."""
    a, b = base_and_lever(tmp_path)
    cli_out, lib_out = tmp_path / "cli", tmp_path / "lib"
    options = ["--baseline", "b", "--seed", "5", "--reps", "2", "--ensemble", "none"]
    assert main(["compare", str(a), str(b), *options, "--out", str(cli_out), "--quiet"]) == 0
    result = run_comparison(
        [a, load_scenario(b)], baseline="b", seed=5, reps=2, ensemble="none", out=lib_out
    )
    for name in ("comparison.csv", "summary.csv", "pathways.csv"):
        assert (lib_out / name).read_bytes() == (cli_out / name).read_bytes(), name
    assert result.out == lib_out and result.replicates == 2
    assert result.baseline == "b" and result.options == ["a"]
    assert list(result.summaries) == ["b", "a"]
    pd.testing.assert_frame_equal(
        result.comparison, pd.read_csv(cli_out / "comparison.csv", dtype={"group": str})
    )
    assert result.manifest == json.loads((lib_out / "manifest.json").read_text())
    assert result.manifest["comparison"]["root_seed"] == 5
    assert result.manifest["command"][0] == "model.comparison.run_comparison"


def test_compare_with_table_shape_wide_writes_the_summary_wide(tmp_path: Path) -> None:
    """``nrmsim compare --table-shape wide`` writes ``summary.csv`` as ``model.tables.to_wide``
    of the long summaries it ran (byte for byte as written by ``write_table``), and its
    report (``report.html``, and ``nrmsim report`` re-rendering it) still reads it.
    Catches the option ignored (a long file), passed to the wrong keyword, or a report
    that cannot read a wide summary."""
    from model.output import write_table
    from model.tables import to_wide

    a, b = scenario(tmp_path, "a"), scenario(tmp_path, "b", per_year=1200)
    out = tmp_path / "wide"
    options = ["--reps", "2", "--ensemble", "none", "--table-shape", "wide", "--quiet"]
    assert main(["compare", str(a), str(b), *options, "--out", str(out)]) == 0
    again = run_comparison([a, b], reps=2, ensemble="none", out=tmp_path / "lib")
    write_table(to_wide(pd.concat(again.summaries.values())), tmp_path / "expected.csv")
    assert (out / "summary.csv").read_bytes() == (tmp_path / "expected.csv").read_bytes()
    assert (out / "comparison.csv").read_bytes() == (
        tmp_path / "lib" / "comparison.csv"
    ).read_bytes()
    assert main(["report", str(out), "--quiet"]) == 0 and (out / "report.html").is_file()


def test_run_comparison_refuses_bad_keywords_before_writing(tmp_path: Path) -> None:
    """Catches a value the command line's parser would refuse (0 replicates, an unknown
    effects mode, a month 13) reaching the runs from Python, or a lone name read as its
    letters."""
    a, b = scenario(tmp_path, "a"), scenario(tmp_path, "b")
    out = tmp_path / "out"
    for scenarios, keywords, message in [
        ([a, b], {"reps": 0}, "reps 0"),
        ([a, b], {"effects": "none"}, "allowed: ['default', 'null']"),
        ([a, b], {"workers": 0}, "workers 0"),
        ([a, b], {"start": "2024-13-01"}, "start: '2024-13-01' is not a date; use YYYY-MM-DD"),
        (str(a), {}, "at least two scenarios"),
    ]:
        with pytest.raises(InputError, match=re.escape(message)):
            run_comparison(scenarios, out=out, **keywords)
    assert not out.exists()


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("unknown_name", "no scenario named 'no_such_option'"),
        ("malformed_file", "malformed TOML"),
        ("missing_file", "file not found"),
        ("one_scenario", "at least two scenarios"),
        ("same_name_twice", "given more than once"),
        ("unknown_baseline", "--baseline 'c' is not one of the scenarios"),
        ("null_twice", "--with-null"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, message: str
) -> None:
    a = scenario(tmp_path, "a")
    b = scenario(tmp_path, "b")
    bad = tmp_path / "bad.toml"
    bad.write_text('[meta\nname = "bad"\n', encoding="utf-8")
    args = {
        "unknown_name": [str(a), "no_such_option"],
        "malformed_file": [str(a), str(bad)],
        "missing_file": [str(a), str(tmp_path / "nowhere.toml")],
        "one_scenario": [str(a)],
        "same_name_twice": [str(a), str(b), str(a)],
        "unknown_baseline": [str(a), str(b), "--baseline", "c"],
        "null_twice": [str(a), str(b), "--effects", "null", "--with-null"],
    }[case]
    out = tmp_path / "out"
    assert main(["compare", *args, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nrmsim: error:") and message in err
    assert "Traceback" not in err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]  # no temp folder


def test_unknown_ensemble_exits_2_and_names_the_fits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fits = tmp_path / "fits"
    (fits / "fit-real").mkdir(parents=True)
    pd.DataFrame({"set_id": [0]}).to_parquet(fits / "fit-real" / "ensemble.parquet")
    monkeypatch.setattr(model.ensemble, "FITS_DIR", fits)
    a, b = scenario(tmp_path, "a"), scenario(tmp_path, "b")
    out = tmp_path / "out"
    code = main(["compare", str(a), str(b), "--ensemble", "fit-nope", "--out", str(out), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "fit 'fit-nope' has no saved ensemble" in err and "fit-real" in err
    assert not out.exists()


def test_ensemble_gives_each_replicate_its_parameter_set_in_every_scenario(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_fit(tmp_path, monkeypatch)
    a, b = base_and_lever(tmp_path)
    out = tmp_path / "out"
    args = ["compare", str(a), str(b), "--reps", "2", "--ensemble", "fit-test"]
    assert main([*args, "--out", str(out), "--quiet"]) == 0
    summary = pd.read_csv(out / "summary.csv")
    rows = summary[summary.group_by == "all"].set_index(["metric", "scenario", "replicate"])
    rows = rows.sort_index()
    new = rows.loc["referrals", "value"] - rows.loc["repeat_referrals", "value"]
    # replicate 1 draws set 8 (six times the referral rate of set 7) in both scenarios
    assert new[("a", 1)] > 3 * new[("a", 0)] and new[("b", 1)] > 3 * new[("b", 0)]
    # and the scenarios stay paired: the same first referrals in the same replicate
    assert new[("a", 0)] == new[("b", 0)] and new[("a", 1)] == new[("b", 1)]
    meta = json.loads((out / "manifest.json").read_text())
    assert meta["comparison"]["ensemble"] == "fit-test"
    assert meta["comparison"]["ensemble_sets"] == [7, 8]
    html = (out / "report.html").read_text()
    assert "include parameter uncertainty" in html and "fit-test" in html
    assert "Monte Carlo only" not in html


def test_compare_draws_from_the_newest_ensemble_unless_asked_not_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Uncertainty by default (issue 15): with no ``--ensemble``, replicates take the newest
    fit's parameter sets; ``--ensemble none`` keeps Monte Carlo only and says so. Wrong
    implementations caught: a default that silently ignores the ensemble (both runs would give
    the same referrals), or ``none`` read as a fit id."""
    fake_fit(tmp_path, monkeypatch)
    a, b = scenario(tmp_path, "a"), scenario(tmp_path, "b")
    new = {}
    for flag in ([], ["--ensemble", "none"]):
        out = tmp_path / f"out{len(flag)}"
        assert (
            main(["compare", str(a), str(b), "--reps", "2", *flag, "--out", str(out), "--quiet"])
            == 0
        )
        meta = json.loads((out / "manifest.json").read_text())
        html = (out / "report.html").read_text()
        summary = pd.read_csv(out / "summary.csv")
        rows = summary[(summary.group_by == "all") & (summary.scenario == "a")]
        new[len(flag)] = rows.groupby("replicate")["value"].sum()
        if flag:
            assert meta["comparison"]["ensemble"] is None
            assert "Monte Carlo only" in html
        else:
            assert meta["comparison"]["ensemble"] == "fit-test"
            assert "include parameter uncertainty" in html
    assert not new[0].equals(new[2])
