"""Calibration ensembles: parameter sets consistent with the published targets.

``nrmsim calibrate`` saves, beside its point estimate, an ensemble of plausible parameter
sets in ``calibration/fits/<fit-id>/ensemble.parquet``: one row per set, one column per
parameter key (``"group.name"``), plus ``set_id``. Scenario comparisons and sweeps draw from
it so their intervals carry parameter uncertainty, not only Monte Carlo noise.

A parameter that the timeline sets (a yearly series) is stored as a multiplier on the whole
series, in a column named ``"scale:group.name"``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from model.scenario import SCENARIO_DIR, Scenario, ScenarioError

FITS_DIR = SCENARIO_DIR.parent / "calibration" / "fits"
SCALE_PREFIX = "scale:"


def ensemble_path(fit_id: str, fits_dir: Path | None = None) -> Path:
    return (fits_dir or FITS_DIR) / fit_id / "ensemble.parquet"


def available_fits(fits_dir: Path | None = None) -> list[str]:
    """Fit ids that have a saved ensemble, oldest first (ids sort by date)."""
    root = fits_dir or FITS_DIR
    return sorted(p.parent.name for p in root.glob("*/ensemble.parquet"))


def latest_fit_id(fits_dir: Path | None = None) -> str | None:
    """The newest fit the baseline cites (``calibration:<fit-id>``), else the newest with an
    ensemble."""
    fits = available_fits(fits_dir)
    cited = _cited_fit()
    if cited in fits:
        return cited
    return fits[-1] if fits else None


def _cited_fit() -> str | None:
    """The newest fit the baseline cites (fit ids sort by date). A refit of some parameters
    leaves others citing an older fit, whose ensemble holds values the newer fit replaced."""
    from model.scenario import load_scenario

    cited = {
        entry.source.split(":", 1)[1]
        for entry in load_scenario("baseline").entries.values()
        if entry.source.startswith("calibration:")
    }
    return max(cited) if cited else None


def load_ensemble(fit_id: str, fits_dir: Path | None = None) -> pd.DataFrame:
    """The ensemble of a fit: one row per parameter set (``set_id`` and parameter columns).

    Raises:
        ScenarioError: the fit has no saved ensemble (names the fits that have one).
    """
    path = ensemble_path(fit_id, fits_dir)
    if not path.is_file():
        have = available_fits(fits_dir)
        raise ScenarioError(
            path, "ensemble", f"fit '{fit_id}' has no saved ensemble; fits with one: {have}"
        )
    frame = pd.read_parquet(path)
    if "set_id" not in frame.columns:
        frame.insert(0, "set_id", range(len(frame)))
    # provenance columns written by nrmsim calibrate (``source``, ``trial``) are not parameters
    params = [c for c in frame.columns if "." in c]
    return frame[["set_id", *params]].reset_index(drop=True)


def ensemble_metadata(fit_id: str, fits_dir: Path | None = None) -> dict[str, Any]:
    """The fit's ``fit.json`` (method, targets, acceptance rule), if saved."""
    path = (fits_dir or FITS_DIR) / fit_id / "fit.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def apply_set(scenario: Scenario, row: pd.Series | dict[str, Any], fit_id: str) -> Scenario:
    """The scenario with one ensemble parameter set applied (values and series scales)."""
    values, scales = {}, {}
    for key, value in dict(row).items():
        if key == "set_id" or value is None or value != value:  # NaN: not in this set
            continue
        if key.startswith(SCALE_PREFIX):
            scales[key[len(SCALE_PREFIX) :]] = float(value)
        else:
            values[key] = value
    source = f"calibration:{fit_id}"
    out = scenario.with_values(values, source) if values else scenario
    return out.with_scaled(scales, source=source) if scales else out


def set_for_replicate(ensemble: pd.DataFrame, replicate: int, per_set: int = 1) -> pd.Series:
    """The parameter set replicate ``r`` uses: row ``r // per_set`` modulo the ensemble size,
    so every scenario in a comparison uses the same set for the same replicate, and
    ``per_set`` consecutive replicates share a set (which lets the report split interval
    width into parameters and Monte Carlo, ``model.report.intervals``)."""
    return ensemble.iloc[(replicate // per_set) % len(ensemble)]
