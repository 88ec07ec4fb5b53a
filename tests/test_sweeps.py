"""Sweeps (issue 9): experiment validation, designs, factor application, execution on a
process pool and a Dask LocalCluster, atomic storage and resume (including ``kill -9`` of the
whole process group), analysis against known answers, common random numbers.

Runs use a tiny scenario (baseline policy, six months, 700 referrals a year: about 0.2 s a
run) or replace the simulation with a known function (``evaluate``), so the file stays fast.
Each test's docstring names the wrong implementation it catches.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import model.ensemble
from model.cli import main
from model.params import SCHEMA
from model.scenario import SCENARIO_DIR, Scenario, ScenarioError, load_scenario
from model.simulation import NRMModel
from model.sweeps import analysis as an
from model.sweeps.design import apply_point, make_design
from model.sweeps.execute import (
    compact,
    completed_run_ids,
    load_manifest,
    load_results,
    run_sweep,
)
from model.sweeps.spec import EXPERIMENT_DIR, Output, default_factor_keys, load_experiment

BASELINE = (SCENARIO_DIR / "baseline.toml").resolve().as_posix()
OUTPUTS = (
    'outputs = [{ metric = "awaiting_cg_at_year_end", year = 2024 },'
    ' { metric = "rg_decisions", year = 2024 }]'
)
FACTORS = """
[[factor]]
param = "rg_decision.p_positive_nba"

[[factor]]
param = "identification.child_referrals_per_year"
low = 500
high = 900

[[factor]]
param = "care.capacity_foster"
"""


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def scen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny scenarios: the comparator, a copy under another name, and a lever that moves to
    the pre-NBA decision standard on 1 March 2024."""
    d = tmp_path_factory.mktemp("scenarios")
    (d / "tiny.toml").write_text(
        f'[meta]\nname = "tiny"\nextends = "{BASELINE}"\n\n'
        "[run]\nstart = 2024-01-01\nend = 2024-06-30\n\n[params.identification]\n"
        'child_referrals_per_year = { value = 700, source = "assumption", range = [400, 1000] }\n',
        encoding="utf-8",
    )
    (d / "tiny_same.toml").write_text(
        f'[meta]\nname = "tiny_same"\nextends = "{(d / "tiny.toml").as_posix()}"\n',
        encoding="utf-8",
    )
    (d / "tiny_lever.toml").write_text(
        f'[meta]\nname = "tiny_lever"\nextends = "{(d / "tiny.toml").as_posix()}"\n\n'
        '[[timeline]]\ndate = 2024-03-01\nname = "pre_nba_again"\nsource = "nba-2022-s60"\n'
        'set = { "policy.decision_regime" = "pre_nba" }\n',
        encoding="utf-8",
    )
    return d


def spec_file(folder: Path, body: str, name: str = "exp") -> Path:
    path = folder / f"{name}.toml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def sobol_spec(scen_dir: Path, folder: Path, seed: int = 11, samples: int = 2) -> Path:
    return spec_file(
        folder,
        f"""
        [experiment]
        name = "tiny_sobol"
        scenario = "{scen_dir / "tiny.toml"}"
        method = "sobol"
        samples = {samples}
        replicates = 2
        root_seed = {seed}
        {OUTPUTS}
        """
        + FACTORS,
    )


@pytest.fixture(scope="module")
def reference_dir(scen_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Sobol sweep (10 points x 2 replicates), run uninterrupted in this process."""
    d = tmp_path_factory.mktemp("reference")
    exp = load_experiment(sobol_spec(scen_dir, d))
    # a fixed chunk size: adaptive chunking follows measured run times, so on a fast, idle
    # machine it could pack all 20 runs into fewer parts than the resume tests need
    res = run_sweep(exp, d / "out", workers=1, compact_parts=False, chunk_size=4)
    assert res.complete and res.total == 20
    assert len(list((d / "out" / "runs").rglob("part-*.parquet"))) > 3
    return d / "out"


@pytest.fixture(scope="module")
def reference(reference_dir: Path) -> pd.DataFrame:
    return load_results(reference_dir)


# --------------------------------------------------------------------------- validation
GOOD_LINES = {
    "method": 'method = "sobol"',
    "samples": "samples = 2",
    "outputs": 'outputs = [{ metric = "referrals", year = 2024 }]',
}
TWO = '\n[[factor]]\nparam = "cg_decision.mean_work_days"\n'
# case -> (lines of [experiment] replaced or added, [[factor]] tables, texts the error must hold)
BAD_SPECS: dict[str, tuple[dict[str, str], str, list[str]]] = {
    "unknown key with a close match": (
        {"method": 'methd = "sobol"'},
        FACTORS,
        ["experiment.methd", "Did you mean 'method'"],
    ),
    "unknown method": ({"method": 'method = "sobel"'}, FACTORS, ["experiment.method", "'sobol'"]),
    "unknown metric": (
        {"outputs": 'outputs = [{ metric = "awaiting_cgs", year = 2024 }]'},
        FACTORS,
        ["metric", "'awaiting_cgs'", "allowed", "Did you mean 'awaiting_cg'"],
    ),
    "year outside the run": (
        {"outputs": 'outputs = [{ metric = "referrals", year = 2031 }]'},
        FACTORS,
        ["year", "2031", "allowed: 2024 to 2024"],
    ),
    "samples not a power of 2 for sobol": ({"samples": "samples = 6"}, FACTORS, ["power of 2"]),
    "unknown parameter": (
        {},
        '[[factor]]\nparam = "cg_decision.capacity_multipler"' + TWO,
        ["factor[0].param", "Did you mean 'cg_decision.capacity_multiplier'"],
    ),
    "low above high": (
        {},
        '[[factor]]\nparam = "cg_decision.capacity_multiplier"\nlow = 2.0\nhigh = 1.0' + TWO,
        ["factor[0]", "must be below"],
    ),
    "probability range beyond 1": (
        {},
        '[[factor]]\nparam = "rg_decision.p_positive_nba"\nlow = 0.5\nhigh = 1.5' + TWO,
        ["factor[0]", "[0.0, 1.0]"],
    ),
    "a share cannot be a factor": (
        {},
        '[[factor]]\nparam = "identification.sex"' + TWO,
        ["factor[0].param", "share"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_SPECS))
def test_bad_spec_exits_2_names_file_key_and_fix_and_writes_nothing(
    case: str, scen_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Catches: a validator that lets a bad spec through (the sweep would run), an error
    without file/key/allowed values/close match, or a sweep folder created before validation."""
    lines, factors, expected = BAD_SPECS[case]
    body = (
        f'[experiment]\nname = "bad"\nscenario = "{scen_dir / "tiny.toml"}"\n'
        + "\n".join({**GOOD_LINES, **lines}.values())
        + "\nroot_seed = 1\n"
        + factors
    )
    path = tmp_path / "bad.toml"
    path.write_text(body, encoding="utf-8")
    out = tmp_path / "out"
    code = main(["sweep", str(path), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert str(path) in err
    for text in expected:
        assert text in err, (text, err)
    assert not out.exists()


def test_resume_refuses_a_different_spec(
    scen_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Catches: --resume that mixes results of two specs (here: another root seed)."""
    out = tmp_path / "out"
    a = sobol_spec(scen_dir, tmp_path, seed=11, samples=1)
    assert main(["sweep", str(a), "--out", str(out), "--quiet"]) == 0
    before = sorted(p.name for p in out.rglob("*"))
    (tmp_path / "b").mkdir()
    b = sobol_spec(scen_dir, tmp_path / "b", seed=12, samples=1)
    code = main(["sweep", str(b), "--out", str(out), "--resume", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "spec hash" in err and "root_seed" in err
    assert sorted(p.name for p in out.rglob("*")) == before
    # and a plain re-run into a used folder is refused too
    assert main(["sweep", str(a), "--out", str(out), "--quiet"]) == 2
    assert "--resume" in capsys.readouterr().err


# --------------------------------------------------------------------------- design
def test_shipped_experiments_validate_with_the_documented_design_sizes() -> None:
    """Catches: a shipped spec that no longer validates against the schema or the metric
    registry, or a design whose size is not the documented N*(D+2) / r*(D+1) / N."""
    files = sorted(EXPERIMENT_DIR.glob("*.toml")) + sorted(EXPERIMENT_DIR.glob("ci/*.toml"))
    names = {p.stem for p in files}
    assert {"sobol_main", "morris_screening", "psa_levers"} <= names
    for path in files:
        exp = load_experiment(path, size=2 if "sobol" in path.stem else None)
        d = len(exp.factors)
        design = make_design(exp)
        expected = {
            "sobol": exp.samples * (d + 2),
            "morris": exp.samples * (d + 1),
            "psa": exp.samples,
        }[exp.method]
        assert design.points == expected, path
    psa = load_experiment(EXPERIMENT_DIR / "psa_levers.toml")
    assert psa.comparator == "status_quo_2027" and len(psa.scenarios) >= 11


def test_default_factors_are_the_uncertain_numeric_parameters_with_ranges() -> None:
    """Catches: a hard-coded factor list, shares/flags sampled, or a timeline-set series
    varied through its declared value (which the timeline would overwrite)."""
    hist = load_scenario("historical")
    keys = default_factor_keys(hist)
    expected = [
        k
        for k, f in SCHEMA.items()
        if f.role == "uncertain"
        and f.kind in ("float", "int")
        and hist.entries[k].range is not None
        and hist.entries[k].range[0] < hist.entries[k].range[1]
    ]
    assert keys == expected and len(keys) > 30
    exp = load_experiment(EXPERIMENT_DIR / "morris_screening.toml")
    by_param = {f.param: f for f in exp.factors}
    series = by_param["identification.child_referrals_per_year"]
    entry = hist.entries[series.param]
    assert series.transform == "scale" and series.column.startswith("scale:")
    assert entry.range is not None
    assert series.low == pytest.approx(entry.range[0] / entry.value)
    assert series.high == pytest.approx(entry.range[1] / entry.value)
    assert all(f.transform == "value" for k, f in by_param.items() if k not in hist.timeline_keys())


@pytest.mark.parametrize(
    ("method", "extra", "points"),
    [
        ("sobol", "samples = 4", 4 * (3 + 2)),
        ("sobol", "samples = 4\nsecond_order = true", 4 * (2 * 3 + 2)),
        ("morris", "samples = 3", 3 * (3 + 1)),
        ("grid", "samples = 2", 2 * 2 * 2),
        # ensemble = "none": the factors' own design, whether or not a fit saved an ensemble
        ("psa", 'samples = 5\ncomparator = "COMP"\nensemble = "none"', 5),
    ],
)
def test_design_sizes(method: str, extra: str, points: int, scen_dir: Path, tmp_path: Path) -> None:
    """Catches: a design with the wrong number of points or run ids (e.g. second-order Sobol
    rows missing, psa not crossing points with every scenario)."""
    scen = (
        f'scenarios = ["{scen_dir / "tiny_same.toml"}"]'
        if method == "psa"
        else f'scenario = "{scen_dir / "tiny.toml"}"'
    )
    extra = extra.replace("COMP", str(scen_dir / "tiny.toml"))
    path = spec_file(
        tmp_path,
        f'[experiment]\nname = "d"\n{scen}\nmethod = "{method}"\n{extra}\nreplicates = 3\n'
        f"root_seed = 3\n{OUTPUTS}\n{FACTORS}",
    )
    exp = load_experiment(path)
    design = make_design(exp)
    assert design.points == points
    assert list(design.frame.columns) == [f.column for f in exp.factors]
    runs = points * len(exp.scenarios) * exp.replicates
    assert runs == points * (2 if method == "psa" else 1) * 3


def test_a_factor_changes_what_the_model_sees_including_a_timeline_series(
    scen_dir: Path,
) -> None:
    """Catches: a factor recorded in the results but never applied, or a series factor that
    changes only the declared value (the timeline sets the series from day 0)."""
    tiny = load_scenario(scen_dir / "tiny.toml")
    exp_factors = load_experiment(EXPERIMENT_DIR / "morris_screening.toml").factors
    by_param = {f.param: f for f in exp_factors}
    f_value = by_param["rg_decision.p_positive_nba"]
    sc = apply_point(tiny, {f_value.column: 0.55}, (f_value,))
    assert NRMModel(sc, 0).params.rg_decision.p_positive_nba == pytest.approx(0.55)
    assert NRMModel(tiny, 0).params.rg_decision.p_positive_nba != pytest.approx(0.55)

    hist = load_scenario("historical")
    f_scale = by_param["identification.child_referrals_per_year"]
    scaled = apply_point(hist, {f_scale.column: 1.05}, (f_scale,))
    key = f_scale.param
    old = [t.changes[key] for t in hist.timeline if key in t.changes]
    new = [t.changes[key] for t in scaled.timeline if key in t.changes]
    assert len(old) > 5 and new == pytest.approx([v * 1.05 for v in old])
    # the model sees the scaled 2013 volume on day 0
    seen = scaled.initial_params().identification.child_referrals_per_year
    assert seen == pytest.approx(
        hist.initial_params().identification.child_referrals_per_year * 1.05
    )
    # an integer factor is rounded
    f_int = by_param["care.capacity_foster"]
    sc = apply_point(tiny, {f_int.column: 2500.6}, (f_int,))
    assert sc.initial_params().care.capacity_foster == 2501


# --------------------------------------------------------------------------- execution
def test_results_do_not_depend_on_workers_or_chunking(
    reference: pd.DataFrame, scen_dir: Path, tmp_path: Path
) -> None:
    """Catches: a seed or output that depends on the task, worker, chunk or completion order
    (e.g. seeding from the chunk index), and rows lost or duplicated by the pool."""
    exp = load_experiment(sobol_spec(scen_dir, tmp_path))
    run_sweep(exp, tmp_path / "out", workers=2, chunk_size=3)
    pd.testing.assert_frame_equal(load_results(tmp_path / "out"), reference)
    assert len(reference) == 20 and reference["run_id"].tolist() == list(range(20))
    # replicates differ; common random numbers: replicate r at two points with the same
    # parameter values gives the same outputs (Sobol A and AB_i share all but one column)
    assert reference.groupby("point")["awaiting_cg_at_year_end_2024"].nunique().max() > 1


def test_dask_local_cluster_gives_the_local_pool_results(
    reference: pd.DataFrame, scen_dir: Path, tmp_path: Path
) -> None:
    """Catches: a Dask path that runs different specs, loses tasks, or orders results by
    completion (the CI check of the --scheduler route, on a LocalCluster)."""
    from dask.distributed import LocalCluster

    exp = load_experiment(sobol_spec(scen_dir, tmp_path))
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        res = run_sweep(exp, tmp_path / "out", scheduler=cluster.scheduler_address, chunk_size=4)
    assert res.complete
    pd.testing.assert_frame_equal(load_results(tmp_path / "out"), reference)
    manifest = load_manifest(tmp_path / "out")
    assert manifest["sessions"][-1]["scheduler"] == cluster.scheduler_address


def test_resume_after_lost_files_runs_only_the_missing_runs(
    reference: pd.DataFrame, reference_dir: Path, scen_dir: Path, tmp_path: Path
) -> None:
    """Catches: --resume that reruns everything, skips missing runs, duplicates rows, or
    reads a half-written temporary file."""
    out = tmp_path / "out"
    shutil.copytree(reference_dir, out)
    parts = sorted((out / "runs").rglob("part-*.parquet"))
    lost = parts[1:3]
    n_lost = sum(len(pd.read_parquet(p)) for p in lost)
    for p in lost:
        p.unlink()
    # a temporary file left by a write that was killed half-way
    (parts[0].parent / f".{parts[0].name}.tmp-999").write_bytes(b"PAR1 half written")
    assert len(completed_run_ids(out)) == 20 - n_lost
    exp = load_experiment(sobol_spec(scen_dir, tmp_path))
    res = run_sweep(exp, out, workers=2, resume=True)
    assert res.ran == n_lost and res.done_before == 20 - n_lost and res.complete
    pd.testing.assert_frame_equal(load_results(out), reference)
    assert not list(out.rglob(".*.tmp-*"))
    assert load_manifest(out)["status"] == "complete"
    assert len(list((out / "runs").rglob("part-*.parquet"))) == 1  # merged once complete


def test_a_compaction_stopped_half_way_leaves_readable_identical_rows(
    reference: pd.DataFrame, reference_dir: Path, tmp_path: Path
) -> None:
    """Catches: a compaction that loses rows, or a reader that double counts (or rejects)
    the identical copies left when a compaction is killed before deleting the parts."""
    out = tmp_path / "out"
    shutil.copytree(reference_dir, out)
    part = next((out / "runs").glob("scenario=*"))
    merged = pd.concat([pd.read_parquet(p) for p in sorted(part.glob("part-*"))])
    merged.to_parquet(part / "part-000000000-999999999.parquet", index=False)
    pd.testing.assert_frame_equal(load_results(out), reference)
    assert compact(out) > 0
    assert len(list(part.glob("part-*"))) == 1
    pd.testing.assert_frame_equal(load_results(out), reference)
    # different values under one run id are refused
    bad = merged.head(1).assign(awaiting_cg_at_year_end_2024=-1.0)
    bad.to_parquet(part / "part-000000000-000000000.parquet", index=False)
    with pytest.raises(ScenarioError, match="different values"):
        load_results(out)


def test_kill_9_of_the_process_group_then_resume_gives_the_uninterrupted_rows(
    reference: pd.DataFrame, scen_dir: Path, tmp_path: Path
) -> None:
    """Catches: non-atomic writes (a partial file read as complete), results held in memory
    until the end (nothing survives the kill), duplicates after resume."""
    spec = sobol_spec(scen_dir, tmp_path)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "model", "sweep", str(spec), "--out", str(out),
           "--workers", "2", "--chunk-size", "1", "--quiet"]  # fmt: skip
    proc = subprocess.Popen(cmd, start_new_session=True, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if list((out / "runs").rglob("part-*.parquet")) if (out / "runs").exists() else []:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the sweep ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.stderr is not None
    proc.stderr.close()  # else an unclosed-file ResourceWarning (an error under pytest settings)
    done = completed_run_ids(out)
    assert 0 < len(done) < 20, f"{len(done)} runs stored at the kill"
    exp = load_experiment(spec)
    res = run_sweep(exp, out, workers=2, resume=True)
    assert res.ran == 20 - len(done) and res.complete
    pd.testing.assert_frame_equal(load_results(out), reference)


# --------------------------------------------------------------------------- analysis
ISHIGAMI = ("rg_decision.mean_work_days", "cg_decision.mean_work_days",
            "reconsideration.mean_days_to_decide")  # fmt: skip


def ishigami(scenario: Scenario, replicate: int, outputs: tuple[Output, ...]):  # type: ignore[no-untyped-def]
    """The Ishigami function of three factors read back from the scenario (so factor
    application is part of what is tested), plus replicate noise that averages to zero."""
    x = []
    for key in ISHIGAMI:
        e = scenario.entries[key]
        lo, hi = e.range
        x.append(-math.pi + 2 * math.pi * (float(e.value) - lo) / (hi - lo))
    y = math.sin(x[0]) + 7 * math.sin(x[1]) ** 2 + 0.1 * x[2] ** 4 * math.sin(x[0])
    noise = 0.5 if replicate == 0 else -0.5
    return {o.column: y + noise for o in outputs}, {"simulate_s": 0.0, "analyse_s": 0.0}


def test_sobol_analysis_recovers_the_ishigami_indices(scen_dir: Path, tmp_path: Path) -> None:
    """Catches plumbing errors between design, runs and SALib: factors in the wrong order,
    replicates not averaged per design point, rows misaligned with design points."""
    body = f"""
    [experiment]
    name = "ishigami"
    scenario = "{scen_dir / "tiny.toml"}"
    method = "sobol"
    samples = 1024
    replicates = 2
    root_seed = 4
    outputs = [{{ metric = "referrals", year = 2024 }}]
    """ + "".join(f'\n[[factor]]\nparam = "{k}"\n' for k in ISHIGAMI)
    exp = load_experiment(spec_file(tmp_path, body))
    out = tmp_path / "out"
    run_sweep(exp, out, workers=1, chunk_size=2048, evaluate=ishigami)
    manifest = load_manifest(out)
    results = load_results(out)
    idx, skipped = an.sobol_indices(manifest["design"]["problem"], results, ["referrals_2024"],
                                    manifest["design"]["points"], seed=1)  # fmt: skip
    assert not skipped
    s = idx.set_index("factor")
    truth_s1 = {ISHIGAMI[0]: 0.314, ISHIGAMI[1]: 0.442, ISHIGAMI[2]: 0.0}
    truth_st = {ISHIGAMI[0]: 0.558, ISHIGAMI[1]: 0.442, ISHIGAMI[2]: 0.244}
    for k in ISHIGAMI:
        assert s.loc[k, "S1"] == pytest.approx(truth_s1[k], abs=0.06), k
        assert s.loc[k, "ST"] == pytest.approx(truth_st[k], abs=0.06), k
    noise = an.replicate_variance(results, ["referrals_2024"]).iloc[0]
    assert noise["mean_var_between_replicates"] == pytest.approx(0.5)


def linear(scenario: Scenario, replicate: int, outputs: tuple[Output, ...]):  # type: ignore[no-untyped-def]
    """y = 2 a + 0.5 b + 0 c in the factors' own units."""
    a, b, _ = (float(scenario.entries[k].value) for k in ISHIGAMI)
    return {o.column: 2 * a + 0.5 * b for o in outputs}, {"simulate_s": 0.0, "analyse_s": 0.0}


def test_morris_analysis_recovers_a_linear_model(scen_dir: Path, tmp_path: Path) -> None:
    """Catches: the Morris design rows misaligned with results, or indices reported for the
    wrong factor (mu* must be coefficient x range width, sigma 0)."""
    body = f"""
    [experiment]
    name = "linear"
    scenario = "{scen_dir / "tiny.toml"}"
    method = "morris"
    samples = 6
    root_seed = 4
    outputs = [{{ metric = "referrals", year = 2024 }}]
    """ + "".join(f'\n[[factor]]\nparam = "{k}"\n' for k in ISHIGAMI)
    exp = load_experiment(spec_file(tmp_path, body))
    out = tmp_path / "out"
    run_sweep(exp, out, workers=1, evaluate=linear)
    from model.sweeps.execute import load_design

    manifest = load_manifest(out)
    idx, _ = an.morris_indices(manifest["design"]["problem"], load_design(out),
                               load_results(out), ["referrals_2024"], seed=1)  # fmt: skip
    m = idx.set_index("factor")
    widths = [f.high - f.low for f in exp.factors]
    for k, coef, w in zip(ISHIGAMI, (2.0, 0.5, 0.0), widths, strict=True):
        assert m.loc[k, "mu_star"] == pytest.approx(coef * w, rel=1e-6, abs=1e-9), k
        assert m.loc[k, "sigma"] == pytest.approx(0.0, abs=1e-6)


def synthetic_psa(n: int = 2000, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Comparator 'sq', lever 'a' better by 10*(t1 - 0.3) (lower is better), lever 'b' always
    1 worse; replicates share noise (common random numbers)."""
    rng = np.random.default_rng(seed)
    t = pd.DataFrame({"t1": rng.random(n), "t2": rng.random(n)})
    t.index.name = "point"
    rows = []
    for p in range(n):
        for r in range(2):
            base = 100 + 5 * t.loc[p, "t2"] + rng.normal()
            for s, v in (("sq", base), ("a", base - 10 * (t.loc[p, "t1"] - 0.3)), ("b", base + 1)):
                rows.append({"point": p, "replicate": r, "scenario": s, "y_2027": v})
    return pd.DataFrame(rows), t


def test_evppi_flags_the_input_that_drives_the_choice_and_none_of_many_unrelated_ones() -> None:
    """64 design points, as in the committed PSA: one input drives which of two options is
    best, a hundred skewed inputs (triangular, mode at the low end) have nothing to do with
    the outcomes, and the outcomes carry heavy-tailed noise. Only the driver is above the
    noise floor.

    Catches: a noise floor from one stand-in input of evenly spaced values (95th percentile
    over 20 permutations), which misses both the leverage of skewed inputs and the many
    inputs tested at once: on the committed PSA it let hotel day costs rank as the unknown
    that most changes which option minimises children going missing."""
    rng = np.random.default_rng(7)
    n = 64
    driver = rng.uniform(0, 1, n)
    noise = pd.DataFrame(
        {f"u{i}": rng.triangular(0, 0, 1, n) for i in range(100)}, index=pd.RangeIndex(n)
    )
    factors = pd.concat([pd.DataFrame({"driver": driver}), noise], axis=1)
    inb = pd.DataFrame(
        {
            "a": 80 * (driver - 0.5) + 10 * rng.standard_t(2, n),
            "b": 10 * rng.standard_t(2, n),
        }
    )
    table = an.evppi_table(inb, factors, seed=1).set_index("factor")
    flagged = table.index[table["above_noise"]].tolist()
    assert flagged == ["driver"], table.head(8)


def test_psa_probabilities_evppi_and_prim_on_a_known_answer() -> None:
    """Catches: a wrong sign or direction, probabilities computed per run instead of per
    design point, an EVPPI that is not Strong-Oakley's (known value 0.45 for t1, ~0 for t2),
    and a PRIM box on the wrong factor or edge (lever a fails where t1 <= 0.3)."""
    results, theta = synthetic_psa()
    metrics = {"y_2027": "children_gone_missing"}  # lower is better
    vs, pairs, best = an.psa_probabilities(results, ["y_2027"], metrics, "sq")
    p = vs.set_index("lever")["p_better"]
    assert p["a"] == pytest.approx(0.7, abs=0.03) and p["b"] == 0.0
    pair = pairs.set_index(["option", "versus"])["p_better"]
    assert pair["a", "b"] == pytest.approx(0.8, abs=0.03)
    assert pair["b", "a"] == pytest.approx(0.2, abs=0.03)
    pb = best.set_index("option")["p_best"]
    assert pb["a"] == pytest.approx(0.7, abs=0.03) and pb["sq"] == pytest.approx(0.3, abs=0.03)
    assert pb.sum() == pytest.approx(1.0)
    inb = an.incremental_net_benefit(results, "y_2027", "sq", "lower")
    table = an.evppi_table(inb, theta).set_index("factor")
    assert table.loc["t1", "evppi"] == pytest.approx(0.45, abs=0.04)
    assert table.loc["t2", "evppi"] < 0.03
    assert table.loc["t1", "above_noise"] and not table.loc["t2", "above_noise"]
    assert table.loc["t1", "evppi"] <= table.loc["t1", "evpi"] + 1e-9
    prim = an.prim_table(results, ["y_2027"], metrics, "sq", theta)
    a = prim[(prim["lever"] == "a")].set_index("factor")
    assert "t1" in a.index and a.loc["t1", "high"] == pytest.approx(0.3, abs=0.05)
    assert a.loc["t1", "share_failing"] == pytest.approx(0.3, abs=0.03)


def test_psa_common_random_numbers_lever_identical_to_comparator_gives_zero(
    scen_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Catches: levers run with other seeds or other parameter sets than the comparator at
    the same design point (the copy would then differ), and a psa page that fails to build."""
    path = spec_file(
        tmp_path,
        f"""
        [experiment]
        name = "tiny_psa"
        scenarios = ["{scen_dir / "tiny_same.toml"}", "{scen_dir / "tiny_lever.toml"}"]
        comparator = "{scen_dir / "tiny.toml"}"
        method = "psa"
        samples = 4
        replicates = 2
        root_seed = 9
        outputs = [{{ metric = "awaiting_cg_at_year_end", year = 2024 }},
                   {{ metric = "rg_positive_rate", year = 2024 }}]
        """
        + FACTORS,
    )
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--workers", "2", "--quiet"]) == 0
    results = load_results(out)
    assert set(results["scenario"]) == {"tiny", "tiny_same", "tiny_lever"}
    factor_cols = [f.column for f in load_experiment(path).factors]
    per_point = results.groupby("point")[factor_cols].nunique()
    assert (per_point == 1).all().all(), "every scenario must use the point's parameter set"
    for col in ("awaiting_cg_at_year_end_2024", "rg_positive_rate_2024"):
        diff = an.paired_differences(results, col, "tiny")
        assert (diff["tiny_same"] == 0).all(), col
    lever = an.paired_differences(results, "rg_positive_rate_2024", "tiny")["tiny_lever"]
    assert (lever > 0).all()  # the pre-NBA standard accepts more children at RG
    assert main(["analyse", str(out), "--quiet"]) == 0
    page = (out / "analysis" / "report.html").read_text()
    assert "Expected value of partial perfect information" in page and "PRIM" in page
    assert "<script" not in page
    effects = pd.read_csv(out / "analysis" / "psa_effects.csv")
    same = effects[effects["lever"] == "tiny_same"]
    assert (same["mean_diff"] == 0).all() and (same["sd_diff"] == 0).all()


def test_psa_draws_from_the_calibration_ensemble_when_one_exists(
    scen_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Catches: psa that ignores a saved ensemble (Monte Carlo instead), or that records the
    ensemble values without applying them to the runs."""
    fits = tmp_path / "fits"
    (fits / "fit-test").mkdir(parents=True)
    values = [0.55, 0.65, 0.85]
    pd.DataFrame({"set_id": [0, 1, 2], "rg_decision.p_positive_nba": values}).to_parquet(
        fits / "fit-test" / "ensemble.parquet"
    )
    monkeypatch.setattr(model.ensemble, "FITS_DIR", fits)
    path = spec_file(
        tmp_path,
        f"""
        [experiment]
        name = "ens"
        scenarios = ["{scen_dir / "tiny_same.toml"}"]
        comparator = "{scen_dir / "tiny.toml"}"
        method = "psa"
        samples = 5
        root_seed = 2
        outputs = [{{ metric = "referrals", year = 2024 }}]
        """
        + FACTORS,
    )
    exp = load_experiment(path)
    out = tmp_path / "out"

    def seen(scenario: Scenario, replicate: int, outputs: tuple[Output, ...]):  # type: ignore[no-untyped-def]
        v = float(scenario.initial_params().rg_decision.p_positive_nba)
        return {o.column: v for o in outputs}, {"simulate_s": 0.0, "analyse_s": 0.0}

    run_sweep(exp, out, workers=1, evaluate=seen)
    results = load_results(out)
    want = [values[p % 3] for p in results["point"]]
    assert results["referrals_2024"].tolist() == pytest.approx(want)
    assert results["rg_decision.p_positive_nba"].tolist() == pytest.approx(want)
    manifest = load_manifest(out)
    assert manifest["design"]["ensemble_fit"] == "fit-test"
    assert "rg_decision.p_positive_nba" not in manifest["design"]["factors"]
    # the other factors are still sampled by Monte Carlo
    assert results.groupby("point")["care.capacity_foster"].first().nunique() == 5


def test_cli_morris_sweep_and_analyse_end_to_end(
    scen_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Catches: a CLI path that does not reach the Morris analysis or writes no page/CSV, or
    a manifest without the provenance the issue asks for."""
    path = spec_file(
        tmp_path,
        f"""
        [experiment]
        name = "tiny_morris"
        scenario = "{scen_dir / "tiny.toml"}"
        method = "morris"
        samples = 2
        root_seed = 5
        {OUTPUTS}
        """
        + FACTORS,
    )
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--workers", "2", "--size", "2"]) == 0
    assert "8 runs" in capsys.readouterr().out
    assert main(["analyse", str(out), "--quiet"]) == 0
    table = pd.read_csv(out / "analysis" / "morris_indices.csv")
    assert set(table["factor"]) == {f.column for f in load_experiment(path).factors}
    assert "Morris" in (out / "analysis" / "report.html").read_text()
    m = json.loads((out / "manifest.json").read_text())
    for key in ("spec_hash", "spec", "versions", "git", "seeds", "design", "scenarios"):
        assert key in m
    assert m["status"] == "complete" and m["design"]["points"] == 8


def test_grid_of_scenarios_without_factors_and_null_effects(scen_dir: Path, tmp_path: Path) -> None:
    """Catches: a grid without factors that runs nothing or runs scenarios at different
    points, and `effects = "null"` not reaching the scenarios the runs use."""
    path = spec_file(
        tmp_path,
        f"""
        [experiment]
        name = "levers"
        scenarios = ["{scen_dir / "tiny.toml"}", "{scen_dir / "tiny_lever.toml"}"]
        method = "grid"
        samples = 1
        replicates = 2
        root_seed = 8
        effects = "null"
        outputs = [{{ metric = "rg_positive_rate", year = 2024 }}]
        """,
    )
    exp = load_experiment(path)
    assert all(s.effects == "null" for s in exp.scenarios)
    assert all(
        s.entries["rg_decision.nba_amended_odds_ratio"].source == "null" for s in exp.scenarios
    )
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--quiet"]) == 0
    results = load_results(out)
    assert len(results) == 4 and set(results["point"]) == {0}
    assert load_manifest(out)["scenarios"]["tiny"]["effects"] == "null"
    assert main(["analyse", str(out), "--quiet"]) == 0
    means = pd.read_csv(out / "analysis" / "grid_means.csv")
    assert sorted(means["scenario"]) == ["tiny", "tiny_lever"]
