"""Every manifest carries the same provenance, built once (``model.output.provenance``): a
run's or comparison's ``manifest.json``, a sweep's ``manifest.json`` and a fit's ``fit.json``
(issue 16, item 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from model.calibration.report import _save_fit_files
from model.output import SEED_SCHEME, manifest, provenance
from model.scenario import load_scenario
from model.sweeps.design import make_design
from model.sweeps.execute import build_manifest
from model.sweeps.spec import EXPERIMENT_DIR, load_experiment

COMMON = ("created_utc", "command", "git", "versions", "seeds")


def test_run_sweep_and_fit_manifests_share_one_provenance(tmp_path: Path) -> None:
    """Catches: a writer that builds its own provenance and drifts from the others (a fit
    without the commit or package versions it was made with, another timestamp format, a
    seed record under another name), and a writer that renames or drops a key users' scripts
    read (the run's ``scenario_sha256``, the sweep's ``kind``, ``spec_hash`` and seed scheme,
    the fit's ``seed`` and ``best_cost``)."""
    scenario = load_scenario("baseline")
    run = manifest(scenario.resolved(), scenario.seed, [0, 1], {"extra": 1})
    exp = load_experiment(EXPERIMENT_DIR / "ci" / "psa_small.toml")
    sweep = build_manifest(exp, make_design(exp), ["nrmsim", "sweep", "psa_small"])
    trials = [{"trial": 0, "cost": 2.5, "inside": 3, "params": {"a.b": 1.0}}]
    _save_fit_files(
        tmp_path, "fit-x", scenario, [("a.b", 1.0, 0.5, 2.0)], {"a.b": 1.0}, trials,
        pd.DataFrame({"a.b": [1.0]}), [], reps=2, budget=1, method="cmaes", optimiser_seed=3,
    )  # fmt: skip
    fit = json.loads((tmp_path / "fit.json").read_text(encoding="utf-8"))
    expected = provenance(0, [])
    for meta in (run, sweep, fit):
        assert set(COMMON) <= set(meta)
        assert meta["git"] == expected["git"] and meta["versions"] == expected["versions"]
        assert len(meta["created_utc"]) == len(expected["created_utc"])
        assert {"root_seed", "replicates", "scheme"} <= set(meta["seeds"])
    assert run["seeds"] == {"root_seed": scenario.seed, "replicates": [0, 1], "scheme": SEED_SCHEME}
    assert run["extra"] == 1 and len(run["scenario_sha256"]) == 64
    assert list(run)[: len(COMMON)] == list(COMMON)
    assert sweep["kind"] == "nrmsim sweep" and sweep["command"] == ["nrmsim", "sweep", "psa_small"]
    assert sweep["seeds"]["root_seed"] == exp.root_seed and "design" in sweep["seeds"]
    assert sweep["seeds"]["scheme"].startswith(f"every run: {SEED_SCHEME}; ")
    assert sweep["spec_hash"] == exp.spec_hash()
    assert fit["seed"] == scenario.seed == fit["seeds"]["root_seed"]
    assert fit["seeds"]["replicates"] == [0, 1] and fit["best_cost"] == 2.5
