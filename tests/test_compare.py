"""nrmsim compare: paired differences with common random numbers."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from model.cli import main
from model.compare import differences

BASELINE = (Path(__file__).resolve().parent.parent / "scenarios" / "baseline.toml").as_posix()


def scenario(tmp_path: Path, name: str, extra: str = "") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(
        f'[meta]\nname = "{name}"\nextends = "{BASELINE}"\n'
        "[run]\nend = 2024-03-31\n"
        "[params.identification]\n"
        'child_referrals_per_year = { value = 1500, source = "ho-nrm-eoy-2023" }\n' + extra,
        encoding="utf-8",
    )
    return path


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
    a = pd.DataFrame(
        {
            "scenario": "a",
            "replicate": [0, 1, 2],
            "year": 2024,
            "group_by": "all",
            "group": "all",
            "metric": "referrals",
            "value": [10.0, 20.0, 30.0],
        }
    )
    b = a.assign(scenario="b", value=a["value"] + [1.0, 2.0, 3.0])
    row = differences(a, b).iloc[0]
    assert row["diff_mean"] == pytest.approx(2.0)
    # paired: the spread of the differences (sd 1), not of the levels (sd 10), sets the interval
    assert row["diff_high95"] - row["diff_low95"] == pytest.approx(2 * 4.302653 / 3**0.5, rel=1e-5)


def test_compare_finds_the_effect_of_a_lever(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = scenario(tmp_path, "a")
    b = scenario(
        tmp_path,
        "b",
        '[params.rg_decision]\np_positive_nba = { value = 0.5, source = "assumption" }\n',
    )
    out = tmp_path / "out"
    assert main(["compare", str(a), str(b), "--reps", "3", "--out", str(out), "--quiet"]) == 0
    table = pd.read_csv(out / "comparison.csv")
    row = table[(table.metric == "rg_positive_rate") & (table.group_by == "all")].iloc[0]
    assert row["diff_high95"] < 0  # fewer positive RG decisions, clearly
    # common random numbers: new children (referrals minus repeats) are untouched by an RG lever
    allrows = table[table.group_by == "all"].set_index("metric")
    new_a = allrows.loc["referrals", "mean_a"] - allrows.loc["repeat_referrals", "mean_a"]
    new_b = allrows.loc["referrals", "mean_b"] - allrows.loc["repeat_referrals", "mean_b"]
    assert new_a == new_b > 0
    assert sorted(p.name for p in out.iterdir()) == [
        "comparison.csv",
        "manifest.json",
        "summary.csv",
    ]


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
