"""``nrmsim run``: the files it writes, their columns, their consistency with each other, the
manifest, seeds, and atomic output (a failed run leaves nothing behind)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

import model.output
from model.cli import main
from model.events import Event
from model.scenario import SCENARIO_DIR

BASELINE = (SCENARIO_DIR / "baseline.toml").resolve().as_posix()
START, END = dt.date(2023, 12, 1), dt.date(2024, 1, 31)  # crosses a year boundary
TINY = f"""
[meta]
name = "tiny"
extends = "{BASELINE}"
description = "baseline policy, two months, a tenth of the referrals"

[run]
start = {START.isoformat()}
end = {END.isoformat()}

[params.identification]
child_referrals_per_year = {{ value = 700, source = "assumption", range = [100, 8000] }}

[[timeline]]
date = 2024-01-01
name = "tiny_objective_evidence"
source = "nba-2022-s60"
set = {{ "policy.decision_regime" = "nba_objective" }}
"""
GROUP_BYS = {"all", "sex", "nationality_group", "exploitation_type", "nation", "age_band", "route"}
METRICS = {
    "referrals",
    "repeat_referrals",
    "rg_decisions",
    "rg_positive_rate",
    "cg_decisions",
    "cg_positive_rate",
    "disqualifications",
    "mean_days_referral_to_rg",
    "median_days_referral_to_cg",
    "awaiting_cg_at_year_end",
    "reconsideration_requests",
    "reconsideration_negative_upheld_rate",
    "children_placed",
    "placements_by_type",
    "missing_episodes",
    "children_gone_missing",
    "ictg_direct_referrals",
    "ictg_indirect_referrals",
    "aged_out_without_decision",
    "leave_grants",
    "children_criminalised",
    "trafficker_investigations",
    "prosecutions_completed",
    "convictions",
    "public_cost_gbp",
}
EVENT_COLUMNS = [
    "replicate",
    "t_days",
    "date",
    "child_id",
    "event",
    "positive",
    "route",
    "placement_type",
    "guardian_kind",
    "is_repeat",
]
CHILD_COLUMNS = [
    "replicate",
    "child_id",
    "sex",
    "nationality_group",
    "exploitation_type",
    "nation",
    "local_authority",
    "has_parental_responsibility",
    "exploited_overseas",
    "age_years_at_first_referral",
]


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scenario") / "tiny.toml"
    path.write_text(TINY, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def run_dir(tiny_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "tiny-out"
    code = main(["run", str(tiny_path), "--reps", "2", "--events", "--out", str(out), "--quiet"])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def summary(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "summary.csv", keep_default_na=False, na_values=[""])


@pytest.fixture(scope="module")
def events(run_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(run_dir / "events.parquet")


@pytest.fixture(scope="module")
def children(run_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(run_dir / "children.parquet")


@pytest.fixture(scope="module")
def manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


def _origin(manifest: dict) -> dt.date:
    """Day 0 of the simulation: the warm-up start if the manifest records one, else the start."""
    run = manifest["scenario"]["run"]
    return dt.date.fromisoformat(run.get("warmup_start") or run["start"])


# --------------------------------------------------------------------------- files
def test_writes_exactly_four_files(run_dir: Path) -> None:
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "children.parquet",
        "events.parquet",
        "manifest.json",
        "summary.csv",
    ]
    assert not [p for p in run_dir.parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


def test_without_events_writes_summary_and_manifest_only(tiny_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "plain"
    assert (
        main(
            [
                "run",
                str(tiny_path),
                "--reps",
                "1",
                "--end",
                "2023-12-15",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "summary.csv"]
    meta = json.loads((out / "manifest.json").read_text())
    assert sorted(meta["outputs"]) == ["manifest.json", "summary.csv"]


# --------------------------------------------------------------------------- summary.csv
def test_summary_columns(summary: pd.DataFrame) -> None:
    assert list(summary.columns) == [
        "scenario",
        "replicate",
        "year",
        "group_by",
        "group",
        "metric",
        "value",
    ]
    assert set(summary["scenario"]) == {"tiny"}
    assert sorted(summary["replicate"].unique()) == [0, 1]
    assert sorted(summary["year"].unique()) == [START.year, END.year]
    assert pd.api.types.is_numeric_dtype(summary["value"])


def test_summary_group_bys_and_metrics(summary: pd.DataFrame) -> None:
    assert set(summary["group_by"]) >= GROUP_BYS
    missing = METRICS - set(summary["metric"])
    assert not missing, f"metrics missing from summary.csv: {sorted(missing)}"
    placements = summary[summary["metric"] == "placements_by_type"]
    assert set(placements["group_by"]) == {"placement_type"}
    assert {"foster", "childrens_home", "supported_accommodation", "secure", "hotel"} <= set(
        placements["group"]
    )
    # every metric appears for the whole population in every replicate and year
    rows = summary[summary["group_by"] == "all"]
    per_cell = rows.groupby(["replicate", "year"])["metric"].apply(set)
    for metrics in per_cell:
        assert METRICS - {"placements_by_type"} <= metrics


def test_summary_values_are_sane(summary: pd.DataFrame) -> None:
    rows = summary[summary["group_by"] == "all"].set_index(["replicate", "year", "metric"])["value"]
    for (rep, year), block in rows.groupby(level=[0, 1]):
        v = block.droplevel([0, 1])
        assert v["referrals"] > 20, (rep, year)
        assert 0 <= v["repeat_referrals"] <= v["referrals"]
        for rate in ("rg_positive_rate", "cg_positive_rate"):
            assert pd.isna(v[rate]) or 0.0 <= v[rate] <= 1.0
        assert v["public_cost_gbp"] >= 0
        assert v["children_gone_missing"] <= v["missing_episodes"]


def test_group_counts_add_up_to_all(summary: pd.DataFrame) -> None:
    ref = summary[(summary["metric"] == "referrals")]
    totals = ref[ref["group_by"] == "all"].set_index(["replicate", "year"])["value"]
    for g in GROUP_BYS - {"all"}:
        sums = ref[ref["group_by"] == g].groupby(["replicate", "year"])["value"].sum()
        pd.testing.assert_series_equal(sums, totals, check_names=False, obj=f"referrals by {g}")


# --------------------------------------------------------------------------- events.parquet
def test_events_columns(events: pd.DataFrame) -> None:
    missing = [c for c in EVENT_COLUMNS if c not in events.columns]
    assert not missing, f"events.parquet lacks {missing}; has {list(events.columns)}"
    assert list(events.columns[:3]) == ["replicate", "t_days", "date"]
    assert sorted(events["replicate"].unique()) == [0, 1]


def test_event_names_are_known(events: pd.DataFrame) -> None:
    names = set(events["event"].astype(str))
    assert names <= {e.value for e in Event}
    assert {"referred", "rg_decided", "placed"} <= names


def test_event_dates_match_t_days(events: pd.DataFrame, manifest: dict) -> None:
    assert "date" in events.columns, "events.parquet has no date column"
    origin = pd.Timestamp(_origin(manifest))
    expected = (origin + pd.to_timedelta(events["t_days"] // 1, unit="D")).dt.date
    got = pd.to_datetime(events["date"]).dt.date
    assert (got == expected).all()
    referred = events[events["event"] == "referred"]
    assert pd.to_datetime(referred["date"]).min().date() >= START
    assert pd.to_datetime(events["date"]).max().date() <= END


def test_repeat_flag_only_on_referrals(events: pd.DataFrame) -> None:
    referred = events["event"] == "referred"
    assert events.loc[referred, "is_repeat"].notna().all()
    assert events.loc[~referred, "is_repeat"].isna().all()
    placed = events["event"] == "placed"
    assert events.loc[placed, "placement_type"].notna().all()


# --------------------------------------------------------------------------- children.parquet
def test_children_one_row_per_child(children: pd.DataFrame, events: pd.DataFrame) -> None:
    missing = [c for c in CHILD_COLUMNS if c not in children.columns]
    assert not missing, f"children.parquet lacks {missing}"
    assert not children.duplicated(["replicate", "child_id"]).any()
    assert sorted(children["replicate"].unique()) == [0, 1]
    ages = children["age_years_at_first_referral"]
    assert ((ages >= 0) & (ages < 18)).all()
    assert set(children["sex"]) <= {"female", "male"}
    assert set(children["nation"]) <= {"england", "wales", "scotland", "northern_ireland"}
    # every NRM child in the event log is in the children table, and vice versa (system rows
    # have child_id -1; never-referred hotel children have episode -1)
    nrm = events[(events["child_id"] >= 0) & (events["episode"] >= 0)]
    in_events = set(map(tuple, nrm[["replicate", "child_id"]].drop_duplicates().to_numpy()))
    in_children = set(map(tuple, children[["replicate", "child_id"]].to_numpy()))
    assert in_events == in_children


# --------------------------------------------------------------------------- manifest.json
def test_manifest(manifest: dict, tiny_path: Path) -> None:
    for package in ("mesa", "simpy", "numpy"):
        assert manifest["versions"].get(package), f"no version for {package}"
    assert "commit" in manifest["git"]
    assert manifest["seeds"]["root_seed"] == 20240601  # inherited from baseline
    assert manifest["seeds"]["replicates"] == [0, 1]
    scenario = manifest["scenario"]
    assert scenario["name"] == "tiny"
    assert scenario["run"]["start"] == START.isoformat()
    assert scenario["run"]["end"] == END.isoformat()
    assert Path(scenario["files"][-1]).resolve() == tiny_path.resolve()
    params = scenario["params"]
    assert len(params) > 50
    assert params["identification.child_referrals_per_year"]["value"] == 700
    assert params["policy.decision_regime"]["value"] == "nba_amended"
    assert params["identification.sex"]["value"] == {"female": 0.21, "male": 0.79}
    for key, entry in params.items():
        assert {"value", "unit", "source"} <= set(entry), key
    assert isinstance(scenario["timeline"], list)
    assert sorted(manifest["outputs"]) == [
        "children.parquet",
        "events.parquet",
        "manifest.json",
        "summary.csv",
    ]


def test_manifest_records_the_timeline(manifest: dict) -> None:
    timeline = {t["name"]: t for t in manifest["scenario"]["timeline"]}
    assert timeline["tiny_objective_evidence"] == {
        "date": "2024-01-01",
        "name": "tiny_objective_evidence",
        "source": "nba-2022-s60",
        "set": {"policy.decision_regime": "nba_objective"},
    }


def test_timeline_applies_on_its_date(events: pd.DataFrame) -> None:
    """RG decisions record the regime in force: amended in December, objective from 1 January."""
    rg = events[events["event"] == "rg_decided"]
    day = pd.to_datetime(rg["date"]).dt.date
    before, after = rg[day < dt.date(2024, 1, 1)], rg[day >= dt.date(2024, 1, 1)]
    assert len(before) > 5 and len(after) > 5
    assert set(before["regime"].astype(str)) == {"nba_amended"}
    assert set(after["regime"].astype(str)) == {"nba_objective"}


# --------------------------------------------------------------------------- consistency
def test_summary_referrals_equal_referred_events(
    summary: pd.DataFrame, events: pd.DataFrame, manifest: dict
) -> None:
    origin = _origin(manifest)
    lo = float((START - origin).days)
    hi = float((END - origin).days + 1)
    ref = events[
        (events["event"] == "referred") & (events["t_days"] >= lo) & (events["t_days"] < hi)
    ]
    years = ref["t_days"].map(lambda t: (origin + dt.timedelta(days=int(t // 1))).year)
    counted = ref.groupby([ref["replicate"], years]).size().astype(float)
    counted.index.names = ["replicate", "year"]
    reported = summary[(summary["group_by"] == "all") & (summary["metric"] == "referrals")]
    reported = reported.set_index(["replicate", "year"])["value"].sort_index()
    assert len(reported) == 4  # two replicates x two years
    pd.testing.assert_series_equal(counted.sort_index(), reported, check_names=False)
    # replicates differ from each other
    assert reported.loc[0].tolist() != reported.loc[1].tolist()


def test_summary_repeat_referrals_equal_repeat_events(
    summary: pd.DataFrame, events: pd.DataFrame
) -> None:
    ref = events[events["event"] == "referred"]
    repeats = int(ref["is_repeat"].sum())
    reported = summary[(summary["group_by"] == "all") & (summary["metric"] == "repeat_referrals")][
        "value"
    ].sum()
    assert repeats == int(reported)


# --------------------------------------------------------------------------- seeds
def _summary_for(tiny_path: Path, out: Path, *extra: str) -> pd.DataFrame:
    assert (
        main(
            [
                "run",
                str(tiny_path),
                "--reps",
                "1",
                "--end",
                "2023-12-31",
                "--out",
                str(out),
                "--quiet",
                *extra,
            ]
        )
        == 0
    )
    return pd.read_csv(out / "summary.csv")


def test_seed_changes_the_summary_and_is_reproducible(tiny_path: Path, tmp_path: Path) -> None:
    a = _summary_for(tiny_path, tmp_path / "a", "--seed", "11")
    b = _summary_for(tiny_path, tmp_path / "b", "--seed", "12")
    a_again = _summary_for(tiny_path, tmp_path / "a2", "--seed", "11")
    assert list(a.columns) == list(b.columns)
    pd.testing.assert_frame_equal(a, a_again)
    assert not a.equals(b)

    def referrals(frame: pd.DataFrame) -> list[float]:
        key = (frame["group_by"] == "all") & (frame["metric"] == "referrals")
        return frame.loc[key, "value"].tolist()

    assert referrals(a) != referrals(b)
    meta = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert meta["seeds"]["root_seed"] == 12
    assert meta["scenario"]["run"]["seed"] == 12


# --------------------------------------------------------------------------- atomic output
def _fail_on_second_write(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []
    real = model.output.write_table

    def flaky(frame: pd.DataFrame, path: Path) -> None:
        calls.append(path)
        if len(calls) == 2:
            raise RuntimeError("disk full (simulated)")
        real(frame, path)

    monkeypatch.setattr(model.output, "write_table", flaky)
    return calls


def test_failed_write_leaves_no_output(
    tiny_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _fail_on_second_write(monkeypatch)
    parent = tmp_path / "outputs"
    parent.mkdir()
    out = parent / "run"
    with pytest.raises(RuntimeError, match="disk full"):
        main(
            [
                "run",
                str(tiny_path),
                "--reps",
                "1",
                "--end",
                "2023-12-10",
                "--events",
                "--out",
                str(out),
                "--quiet",
            ]
        )
    assert len(calls) == 2  # the summary was written into the temporary folder first
    assert not out.exists()
    assert list(parent.iterdir()) == [], [p.name for p in parent.iterdir()]


def test_failed_forced_write_keeps_the_old_output(
    tiny_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "summary.csv").write_text("previous run\n")
    _fail_on_second_write(monkeypatch)
    with pytest.raises(RuntimeError, match="disk full"):
        main(
            [
                "run",
                str(tiny_path),
                "--reps",
                "1",
                "--end",
                "2023-12-10",
                "--events",
                "--force",
                "--out",
                str(out),
                "--quiet",
            ]
        )
    assert sorted(p.name for p in out.iterdir()) == ["summary.csv"]
    assert (out / "summary.csv").read_text() == "previous run\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_force_replaces_a_non_empty_folder(tiny_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "stale.txt").write_text("old\n")
    assert (
        main(
            [
                "run",
                str(tiny_path),
                "--reps",
                "1",
                "--end",
                "2023-12-10",
                "--force",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "summary.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


# ------------------------------------------------------------- the library function (issue 16)
def test_run_folder_with_keywords_writes_what_the_command_writes(
    run_dir: Path, tiny_path: Path, tmp_path: Path
) -> None:
    """``model.run_folder`` called with keyword arguments writes what ``nrmsim run`` wrote
    with the same options (``run_dir``: ``--reps 2 --events``). Catches ``cmd_run`` dropping
    an option or passing it to the wrong keyword (another replicate count, no event logs),
    a scenario passed already loaded treated otherwise than its file, a summary returned that
    is not the one written, and a manifest that loses a key or does not say it was a call
    from Python."""
    from model import load_scenario, run_folder

    out = tmp_path / "lib"
    result = run_folder(load_scenario(tiny_path), reps=2, events=True, out=out)
    assert (out / "summary.csv").read_bytes() == (run_dir / "summary.csv").read_bytes()
    for name in ("events.parquet", "children.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(out / name), pd.read_parquet(run_dir / name))
    assert (result.out, result.scenario, result.replicates) == (out, "tiny", 2)
    written = pd.read_csv(out / "summary.csv", keep_default_na=False, na_values=[""])
    assert result.summary["value"].tolist() == pytest.approx(written["value"].tolist(), nan_ok=True)
    assert result.manifest == json.loads((out / "manifest.json").read_text())
    cli_manifest = json.loads((run_dir / "manifest.json").read_text())
    assert list(result.manifest) == list(cli_manifest)
    assert result.manifest["outputs"] == cli_manifest["outputs"]
    assert result.manifest["command"] == [
        "model.running.run_folder", "tiny", "reps=2", f"out={out}", "events=True"
    ]  # fmt: skip


def test_run_folder_refuses_bad_keywords_before_writing(tiny_path: Path, tmp_path: Path) -> None:
    """Catches a value the command line's parser would refuse (0 replicates, a negative
    seed, an unknown effects mode, backend or table shape, a month 13) reaching the runs from
    Python."""
    import re

    from model import run_folder
    from model.common import InputError

    out = tmp_path / "out"
    for keywords, message in [
        ({"reps": 0}, "reps 0"),
        ({"seed": -1}, "seed -1"),
        ({"effects": "none"}, "allowed: ['default', 'null']"),
        ({"backend": "threads"}, "allowed: ['processes', 'dask']"),
        ({"workers": True}, "workers True"),
        ({"table_shape": "tall"}, "table_shape 'tall' is not allowed; allowed: ['long', 'wide']"),
        ({"end": "2024-13-01"}, "end: '2024-13-01' is not a date; use YYYY-MM-DD"),
    ]:
        with pytest.raises(InputError, match=re.escape(message)):
            run_folder(tiny_path, out=out, **keywords)
    assert not out.exists()


# ----------------------------------------------------- one table, long or wide (issue 16)
def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    keys = ["scenario", "replicate", "year", "group_by", "group", "metric"]
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def test_long_to_wide_to_long_gives_the_summary_back(summary: pd.DataFrame) -> None:
    """A real run's summary (two years, every group, two replicates) through ``to_wide`` and
    back through ``to_long`` is the same table, sorted; and wide -> long -> wide is the wide
    table. Catches a value put in another cell (a metric name with underscores split at
    the wrong one, the year read from the wrong place, one group's or replicate's row given
    another's values), values lost or doubled, and empty cells (a metric a group does not
    report) coming back as rows. The long table's rows of empty value are the one thing a
    wide table cannot hold apart from a metric not reported (``model.tables``)."""
    from model.tables import to_long, to_wide

    wide = to_wide(summary)
    assert {"referrals_2023", "referrals_2024", "rg_positive_rate_2024"} <= set(wide.columns)
    assert list(wide.columns[:4]) == ["scenario", "replicate", "group_by", "group"]
    assert len(wide) == len(summary.drop_duplicates(["replicate", "group_by", "group"]))
    back = to_long(wide)
    assert list(back.columns) == list(summary.columns)
    expected = _sorted(summary.dropna(subset=["value"]))
    pd.testing.assert_frame_equal(_sorted(back), expected, check_dtype=False)
    pd.testing.assert_frame_equal(to_wide(back), wide.dropna(axis=1, how="all"))


def test_run_with_table_shape_wide_writes_the_summary_wide(
    run_dir: Path, tiny_path: Path, tmp_path: Path
) -> None:
    """``nrmsim run --table-shape wide`` writes ``summary.csv`` as ``to_wide`` of the long
    one that the same run writes by default (``run_dir``), with the sweep's column names,
    and the same other files. Catches the option ignored (a long file), passed to the wrong
    keyword, or the wide file holding other values or names than the long one."""
    from model.tables import to_wide

    out = tmp_path / "wide"
    argv = ["run", str(tiny_path), "--reps", "2", "--events", "--table-shape", "wide"]
    assert main([*argv, "--out", str(out), "--quiet"]) == 0
    read = {"keep_default_na": False, "na_values": [""], "dtype": {"group": str}}
    wide = pd.read_csv(out / "summary.csv", **read)
    long = pd.read_csv(run_dir / "summary.csv", **read)
    assert "metric" not in wide.columns and "referrals_2024" in wide.columns
    pd.testing.assert_frame_equal(wide, to_wide(long), check_dtype=False)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in run_dir.iterdir())
