"""Bit-identity where it is promised: the same specs give byte-identical outputs whatever the
workers, the chunk size, the scheduler or branching (issue 18, item 5).

Runs are pure functions of (scenario, seed, replicate), so how they are executed must not show
in the outputs. What is compared, and what legitimately differs:

- ``nrmsim compare A B --end ... --reps 2``: ``summary.csv``, ``comparison.csv`` and
  ``pathways.csv`` byte for byte. ``manifest.json`` differs (creation time, the command line
  with its ``--out`` path, wall and per-replicate timings, ``branched_at_day`` in the timings of
  branched runs), and so does ``report.html``, which prints the command and the creation time.
- ``nrmsim sweep`` of ``experiments/ci/psa_small.toml`` (its method, factors, samples, seed
  and metrics) moved onto tiny scenarios: the rows of ``load_results``, exactly, sorted by
  ``run_id``. The sweep manifest records sessions, workers and timings and is not compared.
- Another Python (``NRMSIM_OTHER_PYTHON``: an interpreter with the package's dependencies,
  e.g. a Python 3.13 virtual environment) against this one: the compare and sweep outputs
  above, byte for byte, in ``test_another_python_gives_identical_bytes`` (``scale``; skipped
  when the variable is unset)::

      NRMSIM_OTHER_PYTHON=/path/to/venv313/bin/python python -m pytest -p no:xdist -m scale \\
          tests/test_identity.py -k another_python

- ``nrmsim run --backend dask`` (a LocalCluster) and ``sweep --scheduler`` against the local
  pool: in ``test_dask_local_cluster_gives_identical_bytes``, marked ``scale`` (the cluster's
  start-up costs several seconds on a loaded machine).

The default run keeps to one compare leg that changes workers and branching together (each
compare costs 10-20 s, mostly the analysis and the report); the legs that change one at a
time, and Dask, are marked ``scale``::

    python -m pytest -p no:xdist -m scale tests/test_identity.py

Branching is switched off in a subprocess with ``NRMSIM_NO_BRANCHING=1``, exactly as a user
would, since ``model.branching.ENABLED`` is read once at import.

The scenarios are small files in tmp_path extending ``scenarios/baseline.toml`` (700 referrals
a year, four months) with levers that start mid-run, so that branching actually forks.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from model import branching
from model.cli import main
from model.sweeps.execute import load_results

ROOT = Path(__file__).resolve().parent.parent
BASELINE = (ROOT / "scenarios" / "baseline.toml").as_posix()
PSA_CI = ROOT / "experiments" / "ci" / "psa_small.toml"
END = "2024-04-30"
COMPARED = ("summary.csv", "comparison.csv", "pathways.csv")


@pytest.fixture(scope="module")
def scen(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny comparator and two levers that start on different days within the run."""
    d = tmp_path_factory.mktemp("identity_scenarios")
    tiny = d / "tiny.toml"
    tiny.write_text(
        f'[meta]\nname = "tiny"\nextends = "{BASELINE}"\n\n'
        f"[run]\nstart = 2024-01-01\nend = {END}\n\n[params.identification]\n"
        'child_referrals_per_year = { value = 700, source = "assumption", range = [400, 1000] }\n',
        encoding="utf-8",
    )
    pre_nba = d / "tiny_pre_nba.toml"
    pre_nba.write_text(
        f'[meta]\nname = "tiny_pre_nba"\nextends = "{tiny.as_posix()}"\n\n'
        '[[timeline]]\ndate = 2024-03-01\nname = "pre_nba_again"\nsource = "nba-2022-s60"\n'
        'set = { "policy.decision_regime" = "pre_nba" }\n',
        encoding="utf-8",
    )
    window = d / "tiny_window.toml"
    window.write_text(
        f'[meta]\nname = "tiny_window"\nextends = "{tiny.as_posix()}"\n\n'
        '[[timeline]]\ndate = 2024-02-15\nname = "short_window"\nsource = "assumption"\n'
        'set = { "policy.reconsideration_window_days" = 30 }\n',
        encoding="utf-8",
    )
    return {"tiny": tiny, "pre_nba": pre_nba, "window": window}


def cli(args: list[str], no_branching: bool = False, python: str = sys.executable) -> None:
    """``nrmsim ARGS`` in a subprocess (the only way to switch branching off: it is read at
    import), with this interpreter (or ``python``) and PYTHONPATH passed through."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])]
    )
    if no_branching:
        env["NRMSIM_NO_BRANCHING"] = "1"
    proc = subprocess.run([python, "-m", "model", *args], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]


def assert_same_bytes(a: Path, b: Path, names: tuple[str, ...] = COMPARED) -> None:
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), f"{name} differs"


# --------------------------------------------------------------------------- compare
@pytest.fixture(scope="module")
def compare_reference(scen: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One worker, branching on (the default), in this process."""
    out = tmp_path_factory.mktemp("cmp") / "one_worker"
    assert main(compare_args(scen, out)) == 0
    return out


def compare_args(scen: dict[str, Path], out: Path) -> list[str]:
    """The comparator and one lever, two replicates (the report costs more than the runs)."""
    return [
        *("compare", str(scen["tiny"]), str(scen["pre_nba"]), "--end", END, "--reps", "2"),
        *("--out", str(out), "--ensemble", "none", "--quiet"),
    ]


@pytest.mark.skipif(not branching.ENABLED, reason="the reference run must branch")
def test_compare_reference_did_branch_and_the_levers_matter(compare_reference: Path) -> None:
    """Guards the other compare tests against passing vacuously: the levers branched from the
    comparator (a grouping that silently stopped would make the branching leg compare two
    unbranched runs), and they changed the results (a lever that did nothing would make every
    scenario equal, and any mix-up of scenarios' rows invisible)."""
    text = (compare_reference / "manifest.json").read_text()
    assert text.count('"branched_at_day"') == 2  # the lever, in each of 2 replicates
    summary = pd.read_csv(compare_reference / "summary.csv")
    wide = summary[(summary.group_by == "all") & (summary.metric == "rg_positive_rate")]
    by_scenario = wide.groupby("scenario")["value"].apply(tuple)
    assert by_scenario["tiny_pre_nba"] != by_scenario["tiny"]


def test_compare_with_two_workers_and_no_branching_is_byte_identical(
    scen: dict[str, Path], compare_reference: Path, tmp_path: Path
) -> None:
    """Both changes at once, through the CLI as a user runs it (the default run's single
    compare leg; the scale profile below separates them): two worker processes and
    ``NRMSIM_NO_BRANCHING=1``.

    Catches: results that depend on the worker or the order groups finish (rows concatenated
    in completion order, a seed taken from a worker or task index), and a branched run that
    differs from the same run simulated from the start (a lever applied a day late or after
    other events of its day, state shared between the fork and the status quo, a timing or
    branch field leaking into the summary). Two such faults cancelling byte for byte is not
    a practical risk."""
    out = tmp_path / "two_workers_no_branching"
    cli([*compare_args(scen, out), "--workers", "2"], no_branching=True)
    assert_same_bytes(compare_reference, out)
    assert '"branched_at_day"' not in (out / "manifest.json").read_text()


@pytest.mark.scale
def test_compare_with_two_workers_is_byte_identical(
    scen: dict[str, Path], compare_reference: Path, tmp_path: Path
) -> None:
    """Catches: results that depend on which worker ran a replicate's group or in which order
    groups finished (rows concatenated in completion order, a seed taken from a worker or task
    index, a branch result sent back to the wrong run)."""
    out = tmp_path / "two_workers"
    assert main([*compare_args(scen, out), "--workers", "2"]) == 0
    assert_same_bytes(compare_reference, out)


@pytest.mark.scale
def test_compare_without_branching_is_byte_identical(
    scen: dict[str, Path], compare_reference: Path, tmp_path: Path
) -> None:
    """Catches: a branched run that differs from the same run simulated from the start (a lever
    applied a day late or after other events of its day, state shared between the fork and the
    status quo, a timing or branch field leaking into the summary), through the CLI as a user
    runs it."""
    out = tmp_path / "no_branching"
    cli(compare_args(scen, out), no_branching=True)
    assert_same_bytes(compare_reference, out)
    assert '"branched_at_day"' not in (out / "manifest.json").read_text()


# --------------------------------------------------------------------------- sweep
def psa_spec(scen: dict[str, Path], folder: Path) -> Path:
    """``experiments/ci/psa_small.toml`` (method, samples, seed, factors, metrics) with its
    scenarios replaced by the tiny ones and its period by theirs."""
    text = PSA_CI.read_text(encoding="utf-8")
    subs = {
        r"^comparator = .*$": f'comparator = "{scen["tiny"].as_posix()}"',
        r"^scenarios = .*$": f'scenarios = ["{scen["pre_nba"].as_posix()}", '
        f'"{scen["window"].as_posix()}"]',
        r"^start = .*$": "start = 2024-01-01",
        r"^end = .*$": f"end = {END}",
        r"^years = .*$": "years = [2024]",
        r"^samples = .*$": "samples = 3\nreplicates = 2",
    }
    for pattern, new in subs.items():
        text, n = re.subn(pattern, new, text, flags=re.MULTILINE)
        assert n == 1, f"experiments/ci/psa_small.toml no longer has one line matching {pattern}"
    path = folder / "psa_tiny.toml"
    path.write_text(text, encoding="utf-8")
    return path


def sweep_args(spec: Path, out: Path, chunk: int, workers: int = 1) -> list[str]:
    return [
        *("sweep", str(spec), "--out", str(out), "--chunk-size", str(chunk)),
        *("--workers", str(workers), "--quiet"),
    ]


@pytest.fixture(scope="module")
def sweep_reference(
    scen: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, pd.DataFrame]:
    """Chunks of one run, one worker, branching on, in this process: 3 points x 2 replicates x
    3 scenarios = 18 runs."""
    d = tmp_path_factory.mktemp("sweep")
    spec = psa_spec(scen, d)
    assert main(sweep_args(spec, d / "chunk1", 1)) == 0
    rows = load_results(d / "chunk1").sort_values("run_id").reset_index(drop=True)
    assert len(rows) == 18 and rows["run_id"].tolist() == list(range(18))
    return spec, rows


def same_rows(a: pd.DataFrame, b: pd.DataFrame) -> None:
    b = b.sort_values("run_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_sweep_reference_rows_differ_between_scenarios(
    sweep_reference: tuple[Path, pd.DataFrame],
) -> None:
    """Guards the sweep tests against passing vacuously: the lever's rows differ from the
    comparator's at the same point and replicate (equal rows would hide a scenario mix-up)."""
    _spec, rows = sweep_reference
    col = "rg_positive_rate_2024"
    wide = rows.pivot_table(index=["point", "replicate"], columns="scenario", values=col)
    assert (wide["tiny_pre_nba"] != wide["tiny"]).any()


def test_sweep_chunks_of_seven_on_two_workers_give_identical_rows(
    sweep_reference: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    """Catches: a seed or output that depends on the chunk (seeding from the chunk index or
    position in it), the worker or completion order, a branch group cut by a chunk boundary
    that changes a run, rows lost or duplicated when chunks are merged."""
    spec, rows = sweep_reference
    assert main(sweep_args(spec, tmp_path / "chunk7", 7, workers=2)) == 0
    same_rows(rows, load_results(tmp_path / "chunk7"))


def test_sweep_without_branching_gives_identical_rows(
    sweep_reference: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    """Catches: a design point's levers branched from the comparator giving other rows than
    the same runs simulated from the start (through the CLI, ``NRMSIM_NO_BRANCHING=1``), with
    chunks of seven on one worker."""
    spec, rows = sweep_reference
    cli(sweep_args(spec, tmp_path / "nobranch", 7), no_branching=True)
    same_rows(rows, load_results(tmp_path / "nobranch"))


# --------------------------------------------------------------------------- Dask
@pytest.mark.scale
def test_dask_local_cluster_gives_identical_bytes(
    scen: dict[str, Path], sweep_reference: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    """Catches: a Dask path that runs other specs, loses or duplicates tasks, orders results
    by completion, or (Dask workers do not branch) differs from branched local runs:
    ``nrmsim run --backend dask`` against ``--workers 1`` (``summary.csv`` byte for byte), and
    ``nrmsim sweep --scheduler`` (a LocalCluster, chunks of seven) against the reference rows."""
    from dask.distributed import LocalCluster

    run = ["run", str(scen["pre_nba"]), "--end", END, "--reps", "2", "--quiet"]
    assert main([*run, "--out", str(tmp_path / "local")]) == 0
    assert main([*run, "--out", str(tmp_path / "dask"), "--backend", "dask", "--workers", "2"]) == 0
    assert_same_bytes(tmp_path / "local", tmp_path / "dask", ("summary.csv",))
    spec, rows = sweep_reference
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        args = [*sweep_args(spec, tmp_path / "sweep_dask", 7), "--scheduler"]
        assert main([*args, cluster.scheduler_address]) == 0
    same_rows(rows, load_results(tmp_path / "sweep_dask"))


# --------------------------------------------------------------------------- every command
ONE_WAY_SEED = 11


def one_way_spec(scen: dict[str, Path], folder: Path, metrics: tuple[str, ...]) -> Path:
    """A grid without factors (one design point: the scenarios as they are) over the tiny
    comparator and its lever, two replicates, root seed ``ONE_WAY_SEED``, year 2024."""
    spec = folder / "grid.toml"
    spec.write_text(
        '[experiment]\nname = "one_way"\nmethod = "grid"\nsamples = 1\nreplicates = 2\n'
        f"root_seed = {ONE_WAY_SEED}\nstart = 2024-01-01\nend = {END}\nyears = [2024]\n"
        f'scenarios = ["{scen["tiny"].as_posix()}", "{scen["pre_nba"].as_posix()}"]\n'
        f"metrics = {list(metrics)!r}\n".replace("'", '"'),
        encoding="utf-8",
    )
    return spec


def test_every_command_path_gives_identical_values(scen: dict[str, Path], tmp_path: Path) -> None:
    """The same specs through each command's way of running them give identical values:
    ``run`` and ``compare`` (``runner.run_many``: both scenarios, so a lever branches from the
    comparator), ``check`` and ``calibrate`` (``calibration.check.replicate_values``, a target
    read from the event log in the worker) and ``sweep`` (``run_sweep``: tasks, part files,
    ``load_results``), for two metrics, two replicates and each scenario.

    Catches: a command that executes runs its own way and drifts from the others (another
    seed, period, group, metric definition or a lost branch), which is what one executor and
    one metric registry are for; and rows of one scenario or replicate handed to another."""
    import datetime as dt

    from model.calibration.check import replicate_values
    from model.calibration.targets import Target
    from model.runner import RunSpec, run_many
    from model.sweeps.execute import run_sweep
    from model.sweeps.spec import load_experiment

    metrics = ("rg_positive_rate", "referrals")
    exp = load_experiment(one_way_spec(scen, tmp_path, metrics))
    run_sweep(exp, tmp_path / "sweep")
    swept = load_results(tmp_path / "sweep")

    results = run_many([RunSpec(sc, r) for sc in exp.scenarios for r in range(2)])
    assert any("branched_at_day" in r.timing for r in results)  # the lever did branch
    summary = pd.concat([r.summary for r in results])
    summary = summary[(summary.group_by == "all") & (summary.year == 2024)]
    last = dt.date.fromisoformat(END) + dt.timedelta(days=1)
    targets = [
        Target(m, "outcome", m, "all", "all", "flow", dt.date(2024, 1, 1), last, 1.0,
               "absolute", 1.0, "fit", "assumption")
        for m in metrics
    ]  # fmt: skip
    for sc in exp.scenarios:
        checked = replicate_values(sc, targets, range(2))
        for m in metrics:
            rows = summary[(summary.scenario == sc.name) & (summary.metric == m)]
            run_values = rows.sort_values("replicate")["value"].tolist()
            sweep_rows = swept[swept.scenario == sc.name].sort_values("replicate")
            assert run_values == sweep_rows[f"{m}_2024"].tolist(), (sc.name, m)
            assert run_values == checked[m].tolist(), (sc.name, m)
            assert len(run_values) == 2 and all(v == v for v in run_values)  # no NaN


# --------------------------------------------------------------------------- another Python
OTHER_PYTHON = os.environ.get("NRMSIM_OTHER_PYTHON", "")


@pytest.mark.scale
@pytest.mark.skipif(not OTHER_PYTHON, reason="set NRMSIM_OTHER_PYTHON to another interpreter")
def test_another_python_gives_identical_bytes(
    scen: dict[str, Path],
    compare_reference: Path,
    sweep_reference: tuple[Path, pd.DataFrame],
    tmp_path: Path,
) -> None:
    """Catches results that depend on the interpreter: dict or set iteration order reaching a
    draw or a row order, float formatting that changed between versions, or a library whose
    random streams differ by build. The compare (branching on, two workers) and the sweep
    (chunks of seven) under ``NRMSIM_OTHER_PYTHON`` against this interpreter's references."""
    version = subprocess.run(
        [OTHER_PYTHON, "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert version != str(sys.version_info[:2]), "NRMSIM_OTHER_PYTHON is this same version"
    out = tmp_path / "other_python"
    cli([*compare_args(scen, out), "--workers", "2"], python=OTHER_PYTHON)
    assert_same_bytes(compare_reference, out)
    spec, rows = sweep_reference
    cli(sweep_args(spec, tmp_path / "sweep_other", 7, workers=2), python=OTHER_PYTHON)
    same_rows(rows, load_results(tmp_path / "sweep_other"))


def test_a_sweeps_long_rows_hold_what_nrmsim_run_writes(
    scen: dict[str, Path], tmp_path: Path
) -> None:
    """``load_results(out, shape="long")`` of a sweep has ``summary.csv``'s columns (then
    the run's id, point and seed) and, for each scenario, replicate and metric it ran, the
    value ``nrmsim run`` writes in ``summary.csv`` for the same spec (seed, period,
    replicates), compared as written (10 significant digits).

    Catches: the long shape filing a sweep's value under another metric, year, group,
    scenario or replicate (``model.tables`` naming drifting from the sweep's columns), the
    run's id, point or seed lost, and ``nrmsim run`` running the same spec otherwise than
    the sweep does."""
    from model.common import InputError
    from model.sweeps.execute import run_sweep
    from model.sweeps.spec import load_experiment
    from model.tables import LONG_COLUMNS

    metrics = ("rg_positive_rate", "referrals", "median_days_referral_to_cg")
    run_sweep(load_experiment(one_way_spec(scen, tmp_path, metrics)), tmp_path / "sweep")
    swept = load_results(tmp_path / "sweep", shape="long")
    assert list(swept.columns) == [*LONG_COLUMNS, "run_id", "point", "seed"]
    assert set(swept["group_by"]) == set(swept["group"]) == {"all"}
    with pytest.raises(InputError, match="allowed: \\['long', 'wide'\\]"):
        load_results(tmp_path / "sweep", shape="tall")
    keys = ["scenario", "replicate", "year", "group_by", "group", "metric"]
    for name in ("tiny", "pre_nba"):
        out = tmp_path / name
        args = ["run", str(scen[name]), "--reps", "2", "--seed", str(ONE_WAY_SEED)]
        assert main([*args, "--out", str(out), "--quiet"]) == 0
        read = {"keep_default_na": False, "na_values": [""], "dtype": {"group": str}}
        summary = pd.read_csv(out / "summary.csv", **read)
        rows = swept[swept["scenario"] == summary["scenario"].iloc[0]]
        both = rows.merge(summary, on=keys, how="left", suffixes=("_sweep", "_run"))
        assert len(both) == len(rows) == 2 * len(metrics), name
        as_written = [float(f"{v:.10g}") for v in both["value_sweep"]]
        assert as_written == both["value_run"].tolist(), name
        assert both["value_run"].notna().all()
