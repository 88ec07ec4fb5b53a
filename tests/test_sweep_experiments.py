"""CI runs a small version of each experiment method end to end (``experiments/ci/``): the
CLI sweep on 2 workers, then ``nrmsim analyse``. The PSA variant runs real lever scenarios
(with the warm-up from 2013), so this file takes about a minute."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from model.cli import main
from model.sweeps.execute import load_manifest, load_results
from model.sweeps.spec import EXPERIMENT_DIR

CI = sorted((EXPERIMENT_DIR / "ci").glob("*.toml"))
TABLE = {"sobol": "sobol_indices.csv", "morris": "morris_indices.csv", "psa": "psa_effects.csv"}


@pytest.mark.slow
@pytest.mark.parametrize("spec", CI, ids=[p.stem for p in CI])
def test_ci_experiment_runs_and_is_analysed(spec: Path, tmp_path: Path) -> None:
    """Catches: a shipped experiment method whose sweep or analysis fails end to end, an
    incomplete result set, or an analysis that writes no table for the method."""
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--out", str(out), "--workers", "2", "--quiet"]) == 0
    manifest = load_manifest(out)
    results = load_results(out)
    assert manifest["status"] == "complete"
    assert len(results) == manifest["runs"]["total"]
    columns = [o["column"] for o in manifest["outputs"]]
    assert results[columns].notna().all().all()
    assert main(["analyse", str(out), "--quiet"]) == 0
    table = pd.read_csv(out / "analysis" / TABLE[manifest["spec"]["method"]])
    assert len(table) > 0
    assert (out / "analysis" / "report.html").stat().st_size > 1000
