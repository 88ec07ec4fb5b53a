"""The compare report's PSA summary (issue 15 item 5): which committed PSA it uses, and what
it computes from it, on a synthetic PSA folder whose answers are known by construction."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model.report.psa import find_psa, psa_summary

POINTS = 40


def write_psa(
    folder: Path,
    *,
    comparator: str = "status_quo_2027",
    scenarios: tuple[str, ...] = ("status_quo_2027", "a", "b", "c"),
    status: str = "complete",
    points: int = POINTS,
) -> Path:
    """A PSA sweep folder: at each point, option 'a' lowers children_gone_missing by 10 when
    factor x > 0.5 and raises it by 10 otherwise; 'b' raises it by 5 everywhere; 'c' lowers
    it by 20 everywhere (so among all options 'c' is always best, among {sq, a, b} 'a' is
    best exactly when x > 0.5). Factor y is noise the outcome does not depend on."""
    rng = np.random.default_rng(1)
    x = (np.arange(points) + 0.5) / points
    y = rng.permutation(x)
    effect = {
        "status_quo_2027": np.zeros(points),
        "a": np.where(x > 0.5, -10.0, 10.0),
        "b": np.full(points, 5.0),
        "c": np.full(points, -20.0),
    }
    folder.mkdir(parents=True)
    pd.DataFrame({"point": range(points), "set_id": 0, "x": x, "y": y}).to_parquet(
        folder / "design.parquet"
    )
    column = "children_gone_missing_2027"
    for k, name in enumerate(scenarios):
        part = folder / "runs" / f"scenario={name}"
        part.mkdir(parents=True)
        frame = pd.DataFrame(
            {
                "run_id": np.arange(points) * len(scenarios) + k,
                "point": np.arange(points),
                "replicate": 0,
                "seed": 7,
                column: 1000.0 + effect[name],
            }
        )
        frame.to_parquet(part / "part-000000000-000000999.parquet")
    manifest = {
        "kind": "nrmsim sweep",
        "created_utc": "2026-12-04T00:00:00+00:00",
        "spec": {
            "name": folder.name,
            "method": "psa",
            "comparator": comparator,
            "root_seed": 7,
            "replicates": 1,
        },
        "git": {"commit": "0123456789abcdef"},
        "design": {"points": points, "ensemble_fit": "fit-test"},
        "runs": {"total": points * len(scenarios), "scenarios": list(scenarios)},
        "outputs": [{"metric": "children_gone_missing", "year": 2027, "column": column}],
        "status": status,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder


def test_the_summary_ranks_only_the_options_compared(tmp_path: Path) -> None:
    """Catches a summary that ranks every option of the PSA instead of those shown (then 'c',
    not compared, would be best everywhere and 'a' never) or that reads 'better' the wrong
    way round (then 'b' would win where 'a' loses)."""
    folder = write_psa(tmp_path / "psa")
    out = psa_summary(folder, "status_quo_2027", ["a", "b"])
    (row,) = out["outcomes"]
    assert row["better"] == "lower"
    assert row["p_best"] == {"status_quo_2027": 0.5, "a": 0.5, "b": 0.0}
    with_c = psa_summary(folder, "status_quo_2027", ["a", "b", "c"])["outcomes"][0]
    assert with_c["p_best"]["c"] == 1.0 and with_c["p_best"]["a"] == 0.0


def test_the_unknown_that_decides_the_choice_comes_first(tmp_path: Path) -> None:
    """EVPPI: the choice between the status quo and 'a' depends on x alone, so x must be
    named and the irrelevant y must not be (catches EVPPI computed on the wrong factor or a
    noise floor that lets anything through). Knowing x gains 10 per point on average half
    the time, so EVPI = 5."""
    folder = write_psa(tmp_path / "psa")
    row = psa_summary(folder, "status_quo_2027", ["a"])["outcomes"][0]
    assert row["evppi_estimated"]
    assert [u["factor"] for u in row["unknowns"]] == ["x"]
    assert row["evpi"] == pytest.approx(5.0)
    assert row["unknowns"][0]["evppi"] == pytest.approx(5.0, rel=0.05)


def test_only_a_complete_psa_with_the_same_comparator_and_every_option_is_used(
    tmp_path: Path,
) -> None:
    """Catches a report quoting a PSA made against another baseline, one missing an option
    (its probabilities would silently omit it) or an unfinished sweep."""
    write_psa(tmp_path / "small", points=30)
    big = write_psa(tmp_path / "big", points=POINTS)
    write_psa(tmp_path / "other_base", comparator="historical", points=99)
    write_psa(tmp_path / "unfinished", status="running", points=99)
    assert find_psa("status_quo_2027", ["a", "b"], tmp_path) == big  # the most points
    assert find_psa("status_quo_2027", ["a", "z"], tmp_path) is None
    assert find_psa("historical", ["a"], tmp_path) == tmp_path / "other_base"
    assert find_psa("status_quo_2027", [], tmp_path) is None
