"""The resumable ensemble extension (``nrmsim calibrate --extend-ensemble FIT_ID``, issue 15
item 4, issue 18 item 4), tested with a stub ``run`` (no simulation): an extension stopped
part-way (by an exception in the middle of a candidate, as a kill would) and run again gives
the sets of one uninterrupted extension; existing sets keep their ids and values; set ids do
not repeat; the progress file is replaced atomically. The kill -9 test of the command itself is
in ``tests/test_crash_resume.py`` (``-m scale``)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model.calibration import ensemble as ens
from model.calibration.ensemble import EnsembleSearch, RunCandidate, read_progress, write_progress
from model.calibration.extend import PROGRESS_FILE, extend_ensemble, load_fit
from model.calibration.report import ensemble_section, update_report_ensemble
from model.cli import main
from model.scenario import ScenarioError

FREE = [("a.x", 0.5, 0.0, 1.0), ("a.y", 2.0, 1.0, 3.0), ("b.z", 10.0, 0.0, 100.0)]
CENTRE = {"a.x": 0.5, "a.y": 2.0, "b.z": 10.0}
RADIUS = {"a.x": 0.04, "a.y": 0.08, "b.z": 3.0}  # accepted inside this box around CENTRE


def stub_run(values: Mapping[str, float]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A candidate's comparison without a simulation: one 'target' per parameter, inside its
    tolerance while the parameter is within RADIUS of CENTRE."""
    ids = list(values)
    distance = [(values[k] - CENTRE[k]) / RADIUS[k] for k in ids]
    table = pd.DataFrame(
        {"id": ids, "distance": distance, "tolerance": 1.0, "mc_se": 0.0, "pass": True}
    )
    return pd.DataFrame([dict(values)]), table


class Killed(Exception):
    """Stands for a kill in the middle of a candidate's simulation."""


def killing_run(after: int) -> RunCandidate:
    calls = {"n": 0}

    def run(values: Mapping[str, float]) -> tuple[pd.DataFrame, pd.DataFrame]:
        calls["n"] += 1
        if calls["n"] > after:
            raise Killed
        return stub_run(values)

    return run


def make_fit(root: Path, name: str = "fit-test") -> Path:
    """A fit folder as nrmsim calibrate leaves it: fit.json, ensemble.parquet (3 sets) and a
    report."""
    folder = root / name
    folder.mkdir(parents=True)
    meta = {
        "fit_id": name,
        "scenario": "historical",
        "seed": 5,
        "replicates_per_candidate": 2,
        "optimiser_seed": 3,
        "parameters": [{"key": k, "before": v, "low": lo, "high": hi} for k, v, lo, hi in FREE],
        "fit_targets": list(CENTRE),
        "ensemble_size": 3,
    }
    (folder / "fit.json").write_text(json.dumps(meta, indent=2) + "\n")
    sets = pd.DataFrame(
        {
            "set_id": [0, 1, 2],
            "a.x": [0.5, 0.51, 0.49],
            "a.y": [2.0, 2.01, 1.98],
            "b.z": [10.0, 10.5, 9.7],
            "source": ["optimiser", "optimiser", "random-walk"],
            "trial": [0, 3, -1],
        }
    )
    sets.to_parquet(folder / "ensemble.parquet", index=False)
    return folder


def write_report(path: Path, folder: Path) -> None:
    ensemble = pd.read_parquet(folder / "ensemble.parquet")
    rows = [
        f"| `{k}` | [{lo:g}, {hi:g}] | {v:g} | {v:g} | 1 | 2 | 3 | t1 (+0.50) |"
        for k, v, lo, hi in FREE
    ]
    text = "\n".join(
        [
            "# Calibration report",
            "",
            "| parameter | ... |",
            "|---|",
            *rows,
            "",
            *ensemble_section(folder.name, ensemble),
            "",
            "## Targets",
            "",
        ]
    )
    path.write_text(text)


def extend(folder: Path, budget: int, size: int = 40, run: RunCandidate = stub_run) -> pd.DataFrame:
    return extend_ensemble(
        load_fit(folder.name, folder.parent), run, ensemble_size=size, ensemble_budget=budget
    )


def test_an_interrupted_then_resumed_extension_gives_the_uninterrupted_sets(
    tmp_path: Path,
) -> None:
    """Catches: proposals drawn from one random stream (a resumed session would start it
    again and propose other points), the step adaptation not recomputed from the recorded
    candidates, a candidate rerun or skipped after a kill, set ids restarted."""
    one_go = make_fit(tmp_path / "a")
    reference = extend(one_go, budget=30)
    assert len(reference) > 3 + 5, "the stub should accept a good share of candidates"
    resumed = make_fit(tmp_path / "b")
    extend(resumed, budget=9)  # a first session with a smaller budget
    with pytest.raises(Killed):  # a second one killed in the middle of its fifth candidate
        extend(resumed, budget=30, run=killing_run(after=4))
    assert len(read_progress(resumed / PROGRESS_FILE)) == 13
    out = extend(resumed, budget=30)
    pd.testing.assert_frame_equal(out, reference, check_exact=True)
    saved = pd.read_parquet(resumed / "ensemble.parquet")
    pd.testing.assert_frame_equal(saved, pd.read_parquet(one_go / "ensemble.parquet"))
    assert (resumed / PROGRESS_FILE).read_bytes() == (one_go / PROGRESS_FILE).read_bytes()
    assert len(read_progress(resumed / PROGRESS_FILE)) == 30
    assert not list(resumed.glob(".*.tmp-*"))


def test_existing_sets_keep_their_ids_and_values_and_ids_do_not_repeat(tmp_path: Path) -> None:
    """Catches: the saved sets rewritten (compare --ensemble replicate r would get another
    set r), an accepted candidate saved twice after a resume, fit.json's size left stale."""
    folder = make_fit(tmp_path)
    before = pd.read_parquet(folder / "ensemble.parquet")
    extend(folder, budget=6)
    extend(folder, budget=6)  # nothing left to do: no candidate runs, nothing added
    extend(folder, budget=14)
    after = pd.read_parquet(folder / "ensemble.parquet")
    pd.testing.assert_frame_equal(after.iloc[:3], before, check_exact=True)
    assert list(after["set_id"]) == list(range(len(after)))
    assert set(after["source"].iloc[3:]) <= {"random-walk", "history-matching"}
    progress = pd.DataFrame(read_progress(folder / PROGRESS_FILE))
    accepted = progress[progress["accepted"]]
    assert list(accepted["set_id"]) == list(range(3, len(after)))
    params = [k for k, *_ in FREE]
    np.testing.assert_array_equal(accepted[params].to_numpy(), after[params].iloc[3:].to_numpy())
    meta = json.loads((folder / "fit.json").read_text())
    assert meta["ensemble_size"] == len(after) and meta["ensemble_extension"]["candidates"] == 14
    assert meta["optimiser_seed"] == 3  # the rest of fit.json as it was


def test_the_size_stops_the_extension_and_counts_the_saved_sets(tmp_path: Path) -> None:
    """Catches --ensemble-size read as sets to add rather than the size to reach."""
    folder = make_fit(tmp_path)
    out = extend(folder, budget=100, size=6)
    assert len(out) == 6
    assert read_progress(folder / PROGRESS_FILE)[-1]["accepted"]


def test_the_progress_file_is_replaced_atomically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Catches the progress file written in place: a kill while writing it would leave it
    half-written, and the resume would read a truncated record. Here the final rename fails:
    the file must still be the previous, complete version."""
    search = EnsembleSearch(FREE, [CENTRE], optimiser_seed=1)
    for _ in range(3):
        source, values = search.propose()
        search.record(source, values, not_implausible_stub(values))
    path = tmp_path / PROGRESS_FILE
    write_progress(path, search.history[:2])
    before = path.read_bytes()

    def fail(*_: object) -> None:
        raise OSError("killed before the rename")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="killed"):
        write_progress(path, search.history)
    assert path.read_bytes() == before and len(read_progress(path)) == 2


def not_implausible_stub(values: Mapping[str, float]) -> bool:
    return ens.not_implausible(stub_run(values)[1])


def test_a_progress_file_of_another_fit_is_refused(tmp_path: Path) -> None:
    """Catches a resume that trusts whatever progress file it finds: candidates recorded
    under another optimiser seed are not this fit's, and mixing them would change the sets."""
    folder = make_fit(tmp_path)
    extend(folder, budget=5)
    meta = json.loads((folder / "fit.json").read_text())
    meta["optimiser_seed"] = 4
    (folder / "fit.json").write_text(json.dumps(meta))
    with pytest.raises(ScenarioError, match=r"ensemble-progress\.csv: candidate 0: .*another fit"):
        extend(folder, budget=10)


def test_the_report_states_the_grown_ensemble(tmp_path: Path) -> None:
    """Catches the report left saying the old size or spread."""
    folder = make_fit(tmp_path)
    report = tmp_path / "report.md"
    write_report(report, folder)
    fit = load_fit(folder.name, folder.parent)
    out = extend_ensemble(
        fit,
        stub_run,
        ensemble_size=8,
        ensemble_budget=40,
        report=report,
        command="nrmsim calibrate --extend-ensemble fit-test",
    )
    text = report.read_text()
    assert "## Ensemble: 8 parameter sets consistent with every fit target" in text
    assert "Extended by `nrmsim calibrate --extend-ensemble fit-test`" in text
    col = out["a.x"]
    assert f"| {col.min():.4g} | {col.max():.4g} | {col.std():.4g} | t1 (+0.50) |" in text
    again = update_report_ensemble(report, folder.name, out, "Extended by `x`")
    assert again.count("Extended by") == 1  # the note is replaced, not added again


def test_a_bad_fit_id_exits_2_naming_the_folder(capsys: pytest.CaptureFixture[str]) -> None:
    """Catches a traceback, or a message that does not say where the fit was looked for."""
    code = main(["calibrate", "--extend-ensemble", "fit-that-does-not-exist"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert "calibration/fits/fit-that-does-not-exist" in err and "fits: [" in err, err


def test_refit_options_are_refused_with_extend_ensemble(capsys: pytest.CaptureFixture[str]) -> None:
    """Catches --reps or --optimiser-seed silently ignored (the extension runs at the fit's
    own), which would let a user believe the sets were made their way."""
    code = main(
        ["calibrate", "--extend-ensemble", "fit-2026-12-04", "--reps", "2", "--optimiser-seed", "0"]
    )
    err = capsys.readouterr().err
    assert code == 2 and "--reps" in err and "--optimiser-seed" in err, err


def test_a_second_extension_of_the_same_fit_is_refused_while_one_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Catches two processes appending to one ensemble: the fit folder's lock is held by a
    live process (this one's pid stands for it), so the command stops before any run."""
    from model.calibration import extend as ext

    folder = make_fit(tmp_path / "calibration" / "fits")
    monkeypatch.setattr(ext, "CALIBRATION_DIR", tmp_path / "calibration")
    meta = json.loads((folder / "fit.json").read_text())
    del meta["fit_targets"]  # the stub targets are not in targets.toml
    (folder / "fit.json").write_text(json.dumps(meta))
    (folder.parent / f".{folder.name}.lock").write_text(f"{os.getpid()}\n")
    code = main(["calibrate", "--extend-ensemble", folder.name])
    err = capsys.readouterr().err
    assert code == 2 and "another nrmsim process" in err and str(folder) in err, err
    assert not (folder / PROGRESS_FILE).exists()


def test_the_first_proposal_is_not_the_old_single_stream_first_proposal() -> None:
    """Catches candidate i seeded with SeedSequence([seed, i]): for i = 0 that equals
    SeedSequence(seed) (trailing zeros add no entropy), the stream the committed fits drew
    their proposals from, so an extension's first candidate repeated the fit's first one (on
    fit-2026-12-04, 7 of 9 parameters equal to its set 11)."""
    start = [dict(CENTRE), {"a.x": 0.52, "a.y": 2.05, "b.z": 11.0}]
    _, values = EnsembleSearch(FREE, start, optimiser_seed=1).propose()
    rng = np.random.default_rng(1)  # the old stream: origin, then one step per parameter
    origin = np.array([list(s.values()) for s in start])[rng.integers(len(start))]
    width = np.array([hi - lo for *_, lo, hi in FREE])
    old = origin + rng.normal(0.0, ens.FIRST_STEP, len(FREE)) * width
    assert not np.isclose(list(values.values()), old).any()
