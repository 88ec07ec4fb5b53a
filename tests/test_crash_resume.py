"""Crash-safe long jobs (issue 18, item 4): ``kill -9`` of the whole process group at random
points of a sweep and of a compare, then resume (sweep) or rerun (compare): the same rows as
an uninterrupted run, no duplicates, no half-written file read, and a resumed sweep runs only
the missing runs. Two processes given the same ``--out``: one wins, the other stops with a
clear error (``model.output.out_lock``).

Default run: 2 kills per job on a tiny scenario. ``-m scale``: 10 kills per job; the fraction
of work redone is printed (run with ``-s`` to see it).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from model.scenario import SCENARIO_DIR
from model.sweeps.execute import completed_run_ids, load_manifest, load_results

ROOT = Path(__file__).resolve().parent.parent
BASELINE = (SCENARIO_DIR / "baseline.toml").resolve().as_posix()
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("crash")
    tiny = d / "tiny.toml"
    tiny.write_text(
        f'[meta]\nname = "tiny"\nextends = "{BASELINE}"\n\n'
        "[run]\nstart = 2024-01-01\nend = 2024-02-29\n\n[params.identification]\n"
        'child_referrals_per_year = { value = 400, source = "assumption", range = [200, 1000] }\n',
        encoding="utf-8",
    )
    lever = d / "tiny_lever.toml"
    lever.write_text(
        f'[meta]\nname = "tiny_lever"\nextends = "{tiny.as_posix()}"\n\n'
        '[[timeline]]\ndate = 2024-02-01\nname = "pre_nba_again"\nsource = "nba-2022-s60"\n'
        'set = { "policy.decision_regime" = "pre_nba" }\n',
        encoding="utf-8",
    )
    spec = d / "sweep.toml"
    spec.write_text(
        f'[experiment]\nname = "crash"\nscenario = "{tiny.as_posix()}"\nmethod = "sobol"\n'
        "samples = 2\nreplicates = 2\nroot_seed = 5\n"
        'outputs = [{ metric = "referrals", year = 2024 }, '
        '{ metric = "awaiting_cg_at_year_end", year = 2024 }]\n\n'
        '[[factor]]\nparam = "identification.child_referrals_per_year"\nlow = 300\nhigh = 500\n\n'
        '[[factor]]\nparam = "rg_decision.mean_work_days"\n\n'
        '[[factor]]\nparam = "rg_decision.p_positive_nba"\n',
        encoding="utf-8",
    )
    return {"dir": d, "tiny": tiny, "lever": lever, "spec": spec}


def nrmsim(*args: object) -> list[str]:
    return [sys.executable, "-m", "model", *map(str, args)]


def run(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        nrmsim(*args), env=ENV, capture_output=True, text=True, timeout=600, check=False
    )


def kill_group_when(cmd: list[str], ready: object, timeout: float = 300) -> bool:
    """Start ``cmd`` in its own process group; kill -9 the group once ``ready()`` is true.
    Returns False if the command ended first."""
    proc = subprocess.Popen(cmd, env=ENV, start_new_session=True, stderr=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if ready():  # type: ignore[operator]
            break
        time.sleep(0.01)
    ended = proc.poll() is not None
    if not ended:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    return not ended


@pytest.fixture(scope="module")
def sweep_reference(files: dict[str, Path]) -> pd.DataFrame:
    out = files["dir"] / "sweep-ref"
    done = run("sweep", files["spec"], "--out", out, "--quiet", "--chunk-size", "1")
    assert done.returncode == 0, done.stderr
    return load_results(out)


def sweep_kills(files: dict[str, Path], reference: pd.DataFrame, kills: int, seed: int) -> None:
    """Kill at a random number of stored runs, ``kills`` times over one sweep, resuming after
    each; the last resume runs to the end."""
    rng = random.Random(seed)  # noqa: S311 (kill times, not secrets)
    total = len(reference)
    out = files["dir"] / f"sweep-kill-{seed}"
    base = ["sweep", files["spec"], "--out", out, "--quiet", "--chunk-size", "1"]
    redone = ran_total = 0
    for k in range(kills):
        before = len(completed_run_ids(out)) if out.exists() else 0
        if before >= total - 1:
            break
        at = rng.randint(before + 1, total - 1)  # kill once `at` runs are stored
        cmd = nrmsim(*base, *(["--resume"] if out.exists() else []))

        def ready(at: int = at) -> bool:
            return (out / "runs").exists() and len(completed_run_ids(out)) >= at

        killed = kill_group_when(cmd, ready)
        assert killed, f"kill {k}: the sweep ended before {at} runs"
        stored = completed_run_ids(out)
        assert before <= len(stored) < total
        # the session that was killed ran only runs that were missing
        session = load_manifest(out)["sessions"][-1]
        assert session["done_before"] == before and session["to_run"] == total - before
    before = len(completed_run_ids(out))
    done = run(*base, "--resume")
    assert done.returncode == 0, done.stderr
    session = load_manifest(out)["sessions"][-1]
    ran_total = session["ran"]
    redone = ran_total - (total - before)
    assert session["done_before"] == before and redone == 0, session
    pd.testing.assert_frame_equal(load_results(out), reference, check_exact=True)
    assert not list(out.rglob(".*.tmp-*")), "temporary files left after the resume"
    assert not (files["dir"] / f".{out.name}.lock").exists()
    print(f"sweep: {kills} kills; final resume ran {ran_total} of {total - before} missing "
          f"runs; redone fraction {redone / total:.3f}")  # fmt: skip


def test_sweep_killed_twice_at_random_points_resumes_to_the_same_rows(
    files: dict[str, Path], sweep_reference: pd.DataFrame
) -> None:
    """Catches: rows held in memory until the end (nothing survives a kill), a part file read
    half-written, resume rerunning finished runs or skipping missing ones, a stale lock left
    by the killed process blocking the resume, duplicates after two resumes."""
    sweep_kills(files, sweep_reference, kills=2, seed=18)


@pytest.mark.scale
def test_scale_sweep_killed_ten_times(
    files: dict[str, Path], sweep_reference: pd.DataFrame
) -> None:
    """As above with 10 kills (the issue's figure)."""
    sweep_kills(files, sweep_reference, kills=10, seed=1018)


def compare_kills(files: dict[str, Path], kills: int, seed: int) -> None:
    """Kill a compare at a random time ``kills`` times (each a fresh attempt: compare has no
    resume and redoes all its runs), then run it to the end: summary.csv is byte-identical to
    an uninterrupted run's, and a killed attempt leaves no --out folder behind."""
    rng = random.Random(seed)  # noqa: S311 (kill times, not secrets)
    d = files["dir"]
    args = ["compare", files["tiny"], files["lever"], "--reps", "3", "--quiet"]
    ref = d / f"cmp-ref-{seed}"
    t0 = time.monotonic()
    done = run(*args, "--out", ref)
    wall = time.monotonic() - t0
    assert done.returncode == 0, done.stderr
    out = d / f"cmp-kill-{seed}"
    for _ in range(kills):
        delay = rng.uniform(0.5, max(0.6, 0.9 * wall))
        t_start = time.monotonic()
        killed = kill_group_when(
            nrmsim(*args, "--out", out), lambda t=t_start, s=delay: time.monotonic() - t > s
        )
        if killed:
            assert not out.exists() or (out / "report.html").exists(), "half-written --out"
    done = run(*args, "--out", out, "--force")
    assert done.returncode == 0, done.stderr
    assert (out / "summary.csv").read_bytes() == (ref / "summary.csv").read_bytes()
    assert (out / "comparison.csv").read_bytes() == (ref / "comparison.csv").read_bytes()
    print(f"compare: {kills} kills at random times; no resume, every rerun redoes all runs "
          "(redone fraction of a killed attempt's finished runs: 1.0)")  # fmt: skip


@pytest.mark.scale  # about 50 s of CPU: the sweep's kill test and the lock tests stay in CI
def test_compare_killed_twice_then_rerun_gives_the_same_summary(files: dict[str, Path]) -> None:
    """Catches: a compare that writes --out in place (a kill leaves a half-written folder that
    looks finished) or whose rerun differs from an uninterrupted run."""
    compare_kills(files, kills=2, seed=7)


@pytest.mark.scale
def test_scale_compare_killed_ten_times(files: dict[str, Path]) -> None:
    """As above with 10 kills."""
    compare_kills(files, kills=10, seed=1007)


def test_two_sweeps_into_the_same_out_one_wins_the_other_gets_a_clear_error(
    files: dict[str, Path], sweep_reference: pd.DataFrame
) -> None:
    """Catches: two processes writing one folder at once (manifest sessions overwritten, runs
    done twice) with no error: without the lock both exited 0."""
    out = files["dir"] / "sweep-race"
    cmd = nrmsim("sweep", files["spec"], "--out", out, "--quiet", "--chunk-size", "1")
    procs = [
        subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outcomes = [(p.wait(timeout=600), p.communicate()[1]) for p in procs]
    codes = sorted(code for code, _ in outcomes)
    assert codes == [0, 2], outcomes
    err = next(e for code, e in outcomes if code == 2)
    assert str(out) in err and "Traceback" not in err, err
    assert "another nrmsim process" in err or "not empty" in err, err
    pd.testing.assert_frame_equal(load_results(out), sweep_reference, check_exact=True)
    assert len(load_manifest(out)["sessions"]) == 1


def test_a_second_run_into_a_locked_out_stops_with_the_owner_pid(
    files: dict[str, Path], tmp_path: Path
) -> None:
    """Catches: a lock that is not checked by `run`, or an error that does not say who holds
    it; and a stale lock (dead pid) that blocks for ever."""
    out = tmp_path / "out"
    lock = tmp_path / ".out.lock"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock.write_text(f"{holder.pid}\n")
        done = run("run", files["tiny"], "--reps", "1", "--out", out, "--quiet")
        assert done.returncode == 2, done.stderr
        assert f"pid {holder.pid}" in done.stderr and str(out) in done.stderr, done.stderr
        assert not out.exists()
    finally:
        holder.kill()
        holder.wait()
    done = run("run", files["tiny"], "--reps", "1", "--out", out, "--quiet")  # now stale
    assert done.returncode == 0, done.stderr
    assert (out / "summary.csv").exists() and not lock.exists()


# --------------------------------------------------------------------------- ensemble extension
@pytest.fixture(scope="module")
def fit_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the package with a tiny fit to extend (fit-ref, fit-kill: the same fit): the
    command writes calibration/fits/ beside the package it runs, never the repository's. One
    replicate of two months per candidate, one fit target (referrals)."""
    import json
    import shutil

    root = tmp_path_factory.mktemp("extend")
    skip = shutil.ignore_patterns("__pycache__", "fits", "reports")
    for name in ("model", "scenarios", "calibration"):
        shutil.copytree(ROOT / name, root / name, ignore=skip)
    tiny = root / "scenarios" / "tiny_extend.toml"
    tiny.write_text(
        '[meta]\nname = "tiny_extend"\nextends = "baseline"\n\n'
        "[run]\nstart = 2024-01-01\nend = 2024-02-29\n\n[params.identification]\n"
        'child_referrals_per_year = { value = 400, source = "assumption", range = [200, 1000] }\n',
        encoding="utf-8",
    )
    (root / "tiny_targets.toml").write_text(
        '[[target]]\nid = "tiny_referrals"\nrole = "outcome"\nmetric = "referrals"\n'
        'group_by = "all"\ngroup = "all"\nkind = "flow"\nstart = 2024-01-01\nend = 2024-03-01\n'
        'value = 66\nsource = "nba-2022-s60"\ntolerance = { kind = "relative", value = 0.25 }\n'
        'use = "fit"\n',
        encoding="utf-8",
    )
    key = "identification.child_referrals_per_year"
    meta = {"scenario": tiny.as_posix(), "seed": 11, "replicates_per_candidate": 1,
            "optimiser_seed": 2, "fit_targets": ["tiny_referrals"],
            "parameters": [{"key": key, "before": 400.0, "low": 300.0, "high": 500.0}]}  # fmt: skip
    for fit_id in ("fit-ref", "fit-kill"):
        folder = root / "calibration" / "fits" / fit_id
        folder.mkdir(parents=True)
        (folder / "fit.json").write_text(json.dumps({"fit_id": fit_id, **meta}))
        sets = {"set_id": [0, 1], key: [400.0, 410.0], "source": "optimiser", "trial": [0, 1]}
        pd.DataFrame(sets).to_parquet(folder / "ensemble.parquet", index=False)
    return root


def extend_cmd(root: Path, fit_id: str, budget: int) -> list[str]:
    return nrmsim("calibrate", "--extend-ensemble", fit_id, "--ensemble-size", "100",
                  "--ensemble-budget", budget, "--targets", root / "tiny_targets.toml")  # fmt: skip


def extend_kills(
    root: Path, kills: int, seed: int, budget: int = 12, max_step: int | None = None
) -> int:
    """kill -9 the extension's process group once a random number of candidates are
    recorded, up to ``kills`` times, rerunning the same command after each; the last rerun
    goes to the end and must run only the missing candidates and give the uninterrupted
    sets. ``max_step``: at most this many new candidates between kills (default: anywhere up
    to the budget). Returns the kills made (fewer if the budget ran out first)."""
    from model.calibration.ensemble import read_progress

    env = {**os.environ, "PYTHONPATH": str(root)}
    ref = subprocess.run(extend_cmd(root, "fit-ref", budget), env=env, cwd=root,
                         capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert ref.returncode == 0, ref.stderr
    folder = root / "calibration" / "fits" / "fit-kill"
    progress = folder / "ensemble-progress.csv"
    rng = random.Random(seed)  # noqa: S311 (kill times, not secrets)
    killed = 0
    for k in range(kills):
        before = len(read_progress(progress))
        if before >= budget - 1:
            break
        at = rng.randint(before + 1, min(budget - 1, before + (max_step or budget)))
        proc = subprocess.Popen(extend_cmd(root, "fit-kill", budget), env=env, cwd=root,
                                start_new_session=True, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if len(read_progress(progress)) >= at:
                break
            time.sleep(0.01)
        assert proc.poll() is None, f"kill {k}: the extension ended before {at} candidates"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        assert before < len(read_progress(progress)) < budget
        killed += 1
    before = len(read_progress(progress))
    done = subprocess.run(extend_cmd(root, "fit-kill", budget), env=env, cwd=root,
                          capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("extra runs") == budget - before, done.stderr
    print(f"extend: {killed} kills; the final rerun ran the {budget - before} missing "
          f"candidates of {budget}, none recorded twice")  # fmt: skip
    ref_folder = root / "calibration" / "fits" / "fit-ref"
    pd.testing.assert_frame_equal(
        pd.read_parquet(folder / "ensemble.parquet"),
        pd.read_parquet(ref_folder / "ensemble.parquet"),
        check_exact=True,
    )
    assert progress.read_bytes() == (ref_folder / "ensemble-progress.csv").read_bytes()
    assert not list(folder.glob(".*.tmp-*")) and not (folder.parent / ".fit-kill.lock").exists()
    return killed


@pytest.mark.scale  # about a minute of CPU: tiny runs, but a fresh process per session
def test_extend_ensemble_killed_twice_then_rerun_gives_the_uninterrupted_sets(
    fit_copy: Path,
) -> None:
    """Catches: candidates held in memory until the end (nothing survives a kill), a rerun
    that starts the extension again or repeats recorded candidates, proposals that depend on
    where the process started, a stale lock blocking the rerun."""
    extend_kills(fit_copy, kills=2, seed=15)


@pytest.mark.scale  # about a minute of CPU: eleven sessions of tiny candidates
def test_extend_ensemble_killed_ten_times_then_rerun_gives_the_uninterrupted_sets(
    fit_copy: Path,
) -> None:
    """The issue's ten kills of one ``calibrate --ensemble`` (its resumable form, the
    extension), with a budget that leaves room for all ten. Catches what the two-kill test
    catches, at the kill points two kills cannot reach (late in the search, and kills in
    quick succession that leave one new candidate each)."""
    assert extend_kills(fit_copy, kills=10, seed=16, budget=80, max_step=2) == 10
