"""Bad input: every class exits with code 2, says which file, key and value are wrong and what
is allowed, and writes nothing to the --out folder."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from model.cli import main
from model.common import ScenarioError, check_keys, read_toml, suggest, toml_date
from model.scenario import SCENARIO_DIR

BASELINE_PATH = (SCENARIO_DIR / "baseline.toml").resolve()
BASELINE = BASELINE_PATH.as_posix()
NRMSIM = Path(sys.executable).with_name("nrmsim")
SHORT = ("--end", "2024-01-31", "--quiet")  # if validation wrongly passes, the run is short


def write(tmp_path: Path, body: str, name: str = "bad", extends: str | None = BASELINE) -> Path:
    """A scenario file in tmp_path that extends the real baseline by absolute path."""
    header = f'[meta]\nname = "{name}"\n'
    if extends is not None:
        header += f'extends = "{extends}"\n'
    path = tmp_path / f"{name}.toml"
    path.write_text(header + textwrap.dedent(body), encoding="utf-8")
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str]:
    """``nrmsim run ...`` in-process: (exit code, stderr). Option errors exit via SystemExit."""
    try:
        code = main(["run", *(str(a) for a in args)])
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def assert_no_output(tmp_path: Path, out: Path) -> None:
    assert not out.exists(), f"{out} was created by a failed run"
    leftovers = [p.name for p in out.parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name]
    assert not leftovers, f"temporary folders left behind: {leftovers}"


def assert_says(err: str, *words: str) -> None:
    assert "Traceback" not in err, err
    for word in words:
        assert word in err, f"{word!r} not in stderr:\n{err}"


# --------------------------------------------------------------------------- scenario file errors
# id -> (file body below [meta], words the message must contain besides the file name)
SCENARIO_CASES: dict[str, tuple[str, tuple[str, ...]]] = {
    "infinite_value": (
        """
        [params.cg_decision]
        mean_work_days = { value = inf, source = "assumption" }
        """,
        ("params.cg_decision.mean_work_days", "inf", "finite"),
    ),
    "group_not_a_table": (
        """
        [params]
        rg_decision = 5
        """,
        ("params.rg_decision", "5", "bare value"),
    ),
    "unknown_key_typo": (
        """
        [params.rg_decision]
        p_positive_pre_nbaa = { value = 0.9, source = "iasc-ecpat-snapshot-2024" }
        """,
        (
            "params.rg_decision.p_positive_pre_nbaa",
            "declares no such parameter",
            "Did you mean 'rg_decision.p_positive_pre_nba'",
        ),
    ),
    "unknown_group": (
        """
        [params.rg_decisions]
        p_positive_pre_nba = { value = 0.9, source = "iasc-ecpat-snapshot-2024" }
        """,
        (
            "params.rg_decisions.p_positive_pre_nba",
            "declares no such parameter",
            "Did you mean 'rg_decision.p_positive_pre_nba'",
        ),
    ),
    "unknown_top_level_table": (
        """
        [paramz.policy]
        pod_policy = { value = "paused", source = "matrix-pod-withdrawn" }
        """,
        ("paramz", "unknown key", "allowed", "'params'", "'timeline'"),
    ),
    "key_absent_from_parent": (
        """
        [params.identification.brand_new_lever]
        value = 0.5
        unit = "probability"
        source = "assumption"
        range = [0, 1]
        """,
        (
            "params.identification.brand_new_lever",
            "declares no such parameter",
            "model/params.py",
        ),
    ),
    "probability_out_of_range": (
        """
        [params.rg_decision]
        p_positive_pre_nba = { value = 1.5, source = "iasc-ecpat-snapshot-2024" }
        """,
        ("params.rg_decision.p_positive_pre_nba", "1.5", "[0.0, 1.0]", "probability"),
    ),
    "negative_days": (
        """
        [params.cg_decision]
        min_recovery_days = { value = -5, source = "ho-pilot-guidance-2023" }
        """,
        ("params.cg_decision.min_recovery_days", "-5", "days", "[0.0, inf]"),
    ),
    "string_for_number": (
        """
        [params.cg_decision]
        capacity_per_year = { value = "lots", source = "ho-nrm-eoy-2024" }
        """,
        ("params.cg_decision.capacity_per_year", "'lots'", "must be a number", "decisions/year"),
    ),
    "choice_not_allowed": (
        """
        [params.policy]
        decision_regime = { value = "nba_strict", source = "ho-ms-statutory-guidance" }
        """,
        (
            "params.policy.decision_regime",
            "'nba_strict'",
            "allowed",
            "'pre_nba'",
            "'nba_objective'",
            "'nba_amended'",
        ),
    ),
    "share_not_summing_to_one": (
        """
        [params.identification]
        sex = { value = { female = 0.3, male = 0.6 }, source = "ons-child-victims-2022" }
        """,
        ("params.identification.sex", "0.9", "must sum to 1"),
    ),
    "share_unknown_category": (
        """
        [params.identification.sex]
        value = { female = 0.2, male = 0.7, unknown = 0.1 }
        source = "ons-child-victims-2022"
        """,
        (
            "params.identification.sex",
            "'unknown'",
            "categories must be exactly",
            "'female'",
            "'male'",
        ),
    ),
    "timeline_entry_without_date": (
        """
        [[timeline]]
        name = "pause_again"
        source = "matrix-pod-withdrawn"
        set = { "policy.pod_policy" = "paused" }
        """,
        ("timeline[0].date", "missing"),
    ),
    "timeline_sets_unknown_parameter": (
        """
        [[timeline]]
        date = 2024-01-10
        name = "pause_again"
        source = "matrix-pod-withdrawn"
        set = { "policy.pod_polcy" = "paused" }
        """,
        (
            "timeline[0].set.policy.pod_polcy",
            "unknown parameter",
            "Did you mean 'policy.pod_policy'",
        ),
    ),
    "timeline_value_not_allowed": (
        """
        [[timeline]]
        date = 2024-01-10
        name = "pause_again"
        source = "matrix-pod-withdrawn"
        set = { "policy.pod_policy" = "pasued" }
        """,
        ("timeline[0].set.policy.pod_policy", "'pasued'", "allowed", "'paused'"),
    ),
    "unknown_source_key": (
        """
        [params.rg_decision]
        p_positive_pre_nba = { value = 0.9, source = "iasc-ecpat-snapshot-2042" }
        """,
        (
            "params.rg_decision.p_positive_pre_nba",
            "iasc-ecpat-snapshot-2042",
            "not in scenarios/sources.toml",
            "Did you mean 'iasc-ecpat-snapshot-2024'",
        ),
    ),
    "assumption_without_range": (
        """
        [params.rg_decision]
        p_positive_pre_nba = { value = 0.9, source = "assumption" }
        """,
        ("params.rg_decision.p_positive_pre_nba", "assumption", "range = [low, high]"),
    ),
    "assumption_outside_its_range": (
        """
        [params.identification]
        awareness_multiplier = { value = 3.0, source = "assumption" }
        """,
        ("params.identification.awareness_multiplier", "3.0", "plausible range", "[1.0, 1.5]"),
    ),
    "malformed_toml": (
        """
        [params.policy
        pod_policy = { value = "paused"
        """,
        ("malformed TOML", "line"),
    ),
    "timeline_set_is_not_a_table": (
        """
        [[timeline]]
        date = 2024-01-10
        name = "pause_again"
        source = "matrix-pod-withdrawn"
        set = 5
        """,
        ("timeline[0].set", "5"),
    ),
    "override_widens_allowed_choices": (
        """
        [params.policy.decision_regime]
        value = "made_up"
        allowed = ["made_up"]
        source = "ho-ms-statutory-guidance"
        """,
        ("params.policy.decision_regime", "made_up", "the engine knows exactly"),
    ),
    # issue 6 section 5: a regime the code does not implement is an error at load, not a silent
    # fall-through to another regime
    "unknown_regime_on_the_timeline": (
        """
        [[timeline]]
        date = 2024-03-01
        name = "new_test"
        source = "assumption"
        set = { "policy.decision_regime" = "nba_2026" }
        """,
        ("timeline[0].set.policy.decision_regime", "nba_2026", "pre_nba", "nba_amended"),
    ),
    "override_changes_a_null": (
        """
        [params.guardianship.missing_hazard_ratio_direct]
        value = 0.9
        null = 0.5
        source = "assumption"
        """,
        ("params.guardianship.missing_hazard_ratio_direct.null", "declared once"),
    ),
    "mechanism_names_an_unknown_parameter": (
        """
        [[mechanism]]
        name = "guardians lower going missing"
        parameters = ["guardianship.missing_hazard_ratio_directt"]
        """,
        ("mechanism[0].parameters", "missing_hazard_ratio_directt", "Did you mean"),
    ),
    "unit_differs_from_the_schema": (
        """
        [params.cg_decision.mean_work_days]
        value = 3
        unit = "years"
        source = "assumption"
        """,
        ("params.cg_decision.mean_work_days.unit", "'years'", "'days'", "model/params.py"),
    ),
}


@pytest.mark.parametrize("case", sorted(SCENARIO_CASES))
def test_bad_scenario_file_exits_2(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body, words = SCENARIO_CASES[case]
    path = write(tmp_path, body)
    out = tmp_path / "out"
    code, err = run_cli(capsys, path, *SHORT, "--out", out)
    assert code == 2, err
    assert_says(err, "nrmsim: error:", path.name, *words)
    assert_no_output(tmp_path, out)


def test_missing_scenario_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code, err = run_cli(capsys, tmp_path / "nope.toml", *SHORT, "--out", out)
    assert code == 2
    assert_says(err, "nope.toml", "file not found")
    assert_no_output(tmp_path, out)


def test_scenario_path_is_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "a_folder"
    folder.mkdir()
    out = tmp_path / "out"
    code, err = run_cli(capsys, folder, *SHORT, "--out", out)
    assert code == 2, err
    assert_says(err, "a_folder")
    assert_no_output(tmp_path, out)


def test_unknown_scenario_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code, err = run_cli(capsys, "basline", *SHORT, "--out", out)
    assert code == 2
    assert_says(
        err,
        "no scenario named 'basline'",
        "available",
        "'baseline'",
        "'historical'",
        "Did you mean 'baseline'",
    )
    assert "'sources'" not in err  # sources.toml is not a scenario
    assert_no_output(tmp_path, out)


@pytest.mark.parametrize("parent", ["missing_parent", "PATH"])
def test_extends_a_missing_parent(
    parent: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = (tmp_path / "missing_parent.toml").as_posix() if parent == "PATH" else parent
    path = write(tmp_path, "", name="child", extends=target)
    out = tmp_path / "out"
    code, err = run_cli(capsys, path, *SHORT, "--out", out)
    assert code == 2
    assert "missing_parent" in err
    # the message must say where the bad reference is: the child file and its meta.extends
    assert_says(err, "child.toml", "extends")
    assert_no_output(tmp_path, out)


def test_circular_extends(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    write(tmp_path, "", name="a", extends=b.as_posix())
    write(tmp_path, "", name="b", extends=a.as_posix())
    out = tmp_path / "out"
    code, err = run_cli(capsys, a, *SHORT, "--out", out)
    assert code == 2
    assert_says(err, "circular", "meta.extends", "a.toml", "b.toml")
    assert_no_output(tmp_path, out)


def test_self_extends(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "selfish.toml"
    write(tmp_path, "", name="selfish", extends=path.as_posix())
    out = tmp_path / "out"
    code, err = run_cli(capsys, path, *SHORT, "--out", out)
    assert code == 2
    assert_says(err, "circular", "selfish.toml")
    assert_no_output(tmp_path, out)


# --------------------------------------------------------------------------- option errors
# id -> (options after the scenario name, words in stderr)
OPTION_CASES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "reps_zero": (("--reps", "0"), ("--reps", "0", "at least 1")),
    "reps_not_a_number": (("--reps", "two"), ("--reps", "'two'", "whole number")),
    "start_not_a_date": (("--start", "2024-13-01"), ("--start", "2024-13-01", "YYYY-MM-DD")),
    "end_not_a_date": (("--end", "31/01/2024"), ("--end", "31/01/2024", "YYYY-MM-DD")),
    "seed_negative": (("--seed", "-1"), ("--seed", "-1", "at least 0")),
    "end_before_start": (
        ("--start", "2024-06-01", "--end", "2024-03-01"),
        ("run.end", "2024-03-01", "2024-06-01", "must not be before"),
    ),
    "end_before_scenario_start": (
        ("--end", "2023-06-30"),
        ("run.end", "2023-06-30", "2024-01-01", "must not be before"),
    ),
    "workers_zero": (("--workers", "0"), ("--workers", "at least 1")),
    "unknown_backend": (("--backend", "threads"), ("--backend", "'threads'", "processes", "dask")),
}


@pytest.mark.parametrize("case", sorted(OPTION_CASES))
def test_bad_option_exits_2(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    options, words = OPTION_CASES[case]
    out = tmp_path / "out"
    code, err = run_cli(capsys, "baseline", "--quiet", "--out", out, *options)
    assert code == 2, err
    assert_says(err, *words)
    assert_no_output(tmp_path, out)


# --------------------------------------------------------------------------- output folder
def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_non_empty_out_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    (out / "nested").mkdir(parents=True)
    (out / "summary.csv").write_text("keep me\n")
    (out / "nested" / "notes.txt").write_text("mine\n")
    before = _snapshot(out)
    code, err = run_cli(capsys, "baseline", *SHORT, "--out", out)
    assert code == 2
    assert_says(err, str(out), "not empty", "--force")
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_out_is_an_existing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results.csv"
    out.write_text("not a folder\n")
    code, err = run_cli(capsys, "baseline", *SHORT, "--out", out)
    assert code == 2, err
    assert_says(err, "results.csv")
    assert out.read_text() == "not a folder\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv"]


# --------------------------------------------------------------------------- end to end
def _nrmsim(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert NRMSIM.exists(), f"console script missing: {NRMSIM}"
    return subprocess.run(
        [str(NRMSIM), *(str(a) for a in args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        check=False,
    )


def test_subprocess_unknown_scenario_exits_2(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = _nrmsim("run", "basline", "--quiet", "--out", out, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert_says(
        done.stderr, "nrmsim: error:", "no scenario named 'basline'", "Did you mean 'baseline'"
    )
    assert done.stdout == ""
    assert_no_output(tmp_path, out)


def test_subprocess_bad_value_and_bad_option_exit_2(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [params.rg_decision]
        p_positive_pre_nba = { value = 1.5, source = "iasc-ecpat-snapshot-2024" }
        """,
    )
    out = tmp_path / "out"
    done = _nrmsim("run", path, *SHORT, "--out", out, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert_says(done.stderr, "bad.toml", "p_positive_pre_nba", "1.5", "[0.0, 1.0]")
    done = _nrmsim("run", "baseline", "--reps", "0", "--out", out, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert_says(done.stderr, "--reps", "at least 1")
    assert_no_output(tmp_path, out)
    assert not (tmp_path / "out").exists()


def test_a_valid_scenario_file_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Control: the same harness with a good file exits 0, so the 2s above are meaningful."""
    path = write(
        tmp_path,
        """
        [params.identification]
        child_referrals_per_year = { value = 300, source = "assumption", range = [100, 8000] }
        """,
        name="fine",
    )
    out = tmp_path / "out"
    code, err = run_cli(capsys, path, "--end", "2024-01-15", "--reps", "1", "--quiet", "--out", out)
    assert code == 0, err
    assert (out / "summary.csv").exists()


# --------------------------------------------------------------------------- targets file errors
TARGET_CASES: dict[str, tuple[str, tuple[str, ...]]] = {
    "group_typo": (
        'group_by = "exploitation_type"\ngroup = "crimnal"',
        ("group", "'crimnal'", "Did you mean 'criminal'"),
    ),
    "tolerance_not_a_table": (
        'group_by = "all"\ngroup = "all"\ntolerance_override = 1',
        ("tolerance_override", "unknown key"),
    ),
}


@pytest.mark.parametrize("case", sorted(TARGET_CASES))
def test_bad_targets_file_exits_2(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines, words = TARGET_CASES[case]
    path = tmp_path / "targets.toml"
    path.write_text(
        "[[target]]\n"
        + 'id = "t"\nrole = "outcome"\nmetric = "referrals"\n'
        + lines
        + "\n"
        + 'kind = "flow"\nstart = 2023-01-01\nend = 2024-01-01\nvalue = 1\n'
        + 'source = "ho-nrm-eoy-2023"\nuse = "fit"\n'
        + ("" if "tolerance" in case else 'tolerance = { kind = "relative", value = 0.1 }\n'),
        encoding="utf-8",
    )
    try:
        code = main(["check", "--targets", str(path)])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert_says(err, "nrmsim: error:", str(path), *words)


# --------------------------------------------------------------------------- the helpers
# The input-file helpers of model.common called directly, for the failures that the scenario
# loader above cannot reach (a file that is not UTF-8, one that cannot be read, a date that is
# not a TOML date). Written for the mutation job (docs/mutation.md): each names the wrong
# helper it catches.
def test_every_unreadable_file_is_a_scenario_error_naming_the_file(tmp_path: Path) -> None:
    """Catches a read failure that loses the file's name or its cause, or escapes as a raw
    OSError / UnicodeDecodeError / TOMLDecodeError: missing, a folder, not UTF-8, malformed
    TOML and a name the system cannot open are each a ScenarioError for that file, naming no
    key ("-") and saying what is wrong."""
    folder = tmp_path / "a_folder"
    folder.mkdir()
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes('name = "caf\u00e9"\n'.encode("latin-1"))
    malformed = tmp_path / "malformed.toml"
    malformed.write_text("name = \n", encoding="utf-8")
    cases = {
        tmp_path / "nope.toml": "file not found",
        folder: "is a folder",
        latin1: "not UTF-8",
        malformed: "malformed TOML",
        tmp_path / ("x" * 300 + ".toml"): "cannot read",  # name too long for the system
    }
    for path, cause in cases.items():
        with pytest.raises(ScenarioError) as info:
            read_toml(path)
        err = info.value
        assert (err.file, err.key) == (str(path), "-"), cause
        assert cause in err.problem
        assert str(err) == f"{path}: -: {err.problem}"
    assert read_toml(BASELINE_PATH)["meta"]["name"] == "baseline"


def test_a_table_with_an_unknown_key_names_the_key_where_it_is(tmp_path: Path) -> None:
    """Catches the key of an error lost or misplaced: an unknown key is named under its table
    (``params.x``), or alone at the top level; a value that is not a table is named at its
    place, or as "-" at the top level; a close match is suggested, and nothing when none is
    close."""
    path = tmp_path / "s.toml"
    check_keys(path, "params", {"rg_decision": {}}, {"rg_decision", "cg_decision"})
    with pytest.raises(ScenarioError) as info:
        check_keys(path, "params", {"rg_decisions": {}}, {"rg_decision", "cg_decision"})
    assert (info.value.file, info.value.key) == (str(path), "params.rg_decisions")
    assert "Did you mean 'rg_decision'" in info.value.problem
    with pytest.raises(ScenarioError) as info:
        check_keys(path, "", {"zzz": 1}, {"meta", "params"})
    assert info.value.key == "zzz"
    assert "meta" in info.value.problem and "Did you mean" not in info.value.problem
    for where, named in (("params.rg_decision", "params.rg_decision"), ("", "-")):
        with pytest.raises(ScenarioError) as info:
            check_keys(path, where, 5, {"a"})
        assert (info.value.file, info.value.key) == (str(path), named)
        assert "5" in info.value.problem and "table" in info.value.problem
    assert suggest("zzz", ["meta", "params"]) == ""
    assert suggest("paramz", ["meta", "params"]) == " Did you mean 'params'?"


def test_only_a_toml_date_is_a_date(tmp_path: Path) -> None:
    """Catches a string, a number or a date-time accepted as a date (a timeline entry would
    then compare a string with dates, or fall between two days), or an error that loses the
    file, the key or the value."""
    path = tmp_path / "s.toml"
    assert toml_date(path, "timeline.date", dt.date(2024, 4, 1)) == dt.date(2024, 4, 1)
    for value in ("2024-04-01", 20240401, dt.datetime(2024, 4, 1, 12, 0)):
        with pytest.raises(ScenarioError) as info:
            toml_date(path, "timeline.date", value)
        assert (info.value.file, info.value.key) == (str(path), "timeline.date")
        assert repr(value) in info.value.problem and "TOML date" in info.value.problem
