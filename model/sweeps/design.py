"""The design of an experiment, and how one design point changes a scenario.

* ``sobol``: ``SALib.sample.sobol.sample`` (Saltelli's scheme on a scrambled Sobol sequence):
  N*(D+2) points, or N*(2D+2) with second-order indices.
* ``morris``: ``SALib.sample.morris.sample``: r trajectories of D+1 points on ``levels`` levels.
* ``grid``: the full factorial of each factor's ``levels`` evenly spaced values.
* ``psa``: Monte Carlo over the factors' distributions (each factor draws from its own
  stream, keyed by the root seed and the parameter name, so adding a factor does not move the
  others), or, where a calibration ensemble exists, ensemble set ``p mod size`` at point ``p``
  for the parameters it holds (``model.ensemble.set_for_replicate``) and Monte Carlo for the
  other factors.

A design is a table: one row per point, one column per factor (``param``, ``scale:param`` or
``offset:param``, as in calibration ensembles). It is a pure function of the experiment.
"""

from __future__ import annotations

import hashlib
import itertools
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from model.scenario import Scenario
from model.sweeps.spec import Experiment, Factor

DESIGN_STREAM = 2**30  # SeedSequence spawn-key root for design draws (the engine uses < 2**30)


@dataclass(frozen=True)
class Design:
    """Design points (``frame``: index ``point``) with what is needed to apply and analyse."""

    frame: pd.DataFrame
    problem: dict[str, Any]  # the SALib problem (names = factor columns)
    factors: tuple[Factor, ...]  # factors still sampled (those an ensemble covers are dropped)
    ensemble_fit: str | None = None
    ensemble_columns: tuple[str, ...] = ()

    @property
    def points(self) -> int:
        return len(self.frame)

    def sha256(self) -> str:
        """Hash of the design values (not of a file's bytes, which depend on the writer)."""
        h = hashlib.sha256()
        h.update(",".join(map(str, self.frame.columns)).encode())
        h.update(np.ascontiguousarray(self.frame.to_numpy(dtype=float)).tobytes())
        return h.hexdigest()


def salib_problem(factors: tuple[Factor, ...]) -> dict[str, Any]:
    """SALib problem: names are design columns; triangular factors peak at their mode."""
    bounds: list[list[float]] = []
    dists: list[str] = []
    for f in factors:
        if f.distribution == "triangular":
            mode = f.low if f.mode is None else f.mode
            bounds.append([f.low, f.high, (mode - f.low) / (f.high - f.low)])
            dists.append("triang")
        else:
            bounds.append([f.low, f.high])
            dists.append("unif")
    problem: dict[str, Any] = {
        "num_vars": len(factors),
        "names": [f.column for f in factors],
        "bounds": bounds,
    }
    if any(d != "unif" for d in dists):
        problem["dists"] = dists
    return problem


def make_design(exp: Experiment) -> Design:
    """The experiment's design points."""
    factors = exp.factors
    problem = salib_problem(factors)
    columns = [f.column for f in factors]
    if exp.method == "sobol":
        from SALib.sample import sobol

        x = sobol.sample(
            problem,
            exp.samples,
            calc_second_order=exp.second_order,
            scramble=True,
            seed=exp.root_seed,
        )
        return Design(_frame(x, columns), problem, factors)
    if exp.method == "morris":
        from SALib.sample import morris

        x = morris.sample(problem, exp.samples, num_levels=exp.levels, seed=exp.root_seed)
        return Design(_frame(x, columns), problem, factors)
    if exp.method == "grid":
        axes = [_grid_axis(f) for f in factors]
        rows = list(itertools.product(*axes)) if axes else [()]
        return Design(
            _frame(np.array(rows, dtype=float).reshape(len(rows), -1), columns), problem, factors
        )
    return _psa_design(exp)


def _frame(x: np.ndarray, columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(np.asarray(x, dtype=float), columns=columns)
    frame.index.name = "point"
    return frame


def _grid_axis(f: Factor) -> list[float]:
    n = f.levels or 1
    if n == 1:
        return [f.mode if f.mode is not None else (f.low + f.high) / 2]
    values = np.linspace(f.low, f.high, n)
    if f.kind == "int" and f.transform == "value":
        values = np.unique(np.round(values))
    return [float(v) for v in values]


def factor_draws(f: Factor, n: int, root_seed: int) -> np.ndarray:
    """``n`` Monte Carlo draws for one factor from its own stream (keyed by its name)."""
    key = zlib.crc32(f.column.encode())
    rng = np.random.default_rng(np.random.SeedSequence(root_seed, spawn_key=(DESIGN_STREAM, key)))
    if f.distribution == "triangular":
        mode = f.low if f.mode is None else min(max(f.mode, f.low), f.high)
        return rng.triangular(f.low, mode, f.high, size=n)
    return rng.uniform(f.low, f.high, size=n)


def _psa_design(exp: Experiment) -> Design:
    from model import ensemble as ens

    fit = None
    if exp.ensemble == "auto":
        fit = ens.latest_fit_id()
    elif exp.ensemble != "none":
        fit = exp.ensemble
    n = exp.samples
    parts: list[pd.DataFrame] = []
    factors = exp.factors
    ens_cols: tuple[str, ...] = ()
    if fit is not None:
        table = ens.load_ensemble(fit)
        rows = pd.DataFrame([ens.set_for_replicate(table, p) for p in range(n)])
        rows = rows.reset_index(drop=True)
        ens_cols = tuple(c for c in rows.columns if c != "set_id")
        covered = {c.split(":", 1)[1] if ":" in c else c for c in ens_cols}
        factors = tuple(f for f in factors if f.param not in covered)
        parts.append(rows[["set_id", *ens_cols]].astype(float))
    draws = {f.column: factor_draws(f, n, exp.root_seed) for f in factors}
    parts.append(pd.DataFrame(draws, columns=[f.column for f in factors]))
    frame = pd.concat(parts, axis=1)
    frame.index.name = "point"
    return Design(frame, salib_problem(factors), factors, fit, ens_cols)


# --------------------------------------------------------------------------- application
def applied_values(design: Design, point: int) -> dict[str, float]:
    """The values a run at ``point`` uses, by design column (integers rounded)."""
    row = design.frame.iloc[point]
    out = {c: float(row[c]) for c in design.frame.columns}
    for f in design.factors:
        if f.kind == "int" and f.transform == "value":
            out[f.column] = float(round(out[f.column]))
    return out


def apply_point(
    base: Scenario,
    values: Mapping[str, float],
    factors: tuple[Factor, ...],
    ensemble_fit: str | None = None,
) -> Scenario:
    """``base`` with one design point applied: ensemble columns through
    ``model.ensemble.apply_set``, factors through ``with_values`` (``value``) or
    ``with_scaled`` (``scale``/``offset``, which change the declared value and every
    timeline value)."""
    by_column = {f.column: f for f in factors}
    scenario = base
    ensemble_part = {c: v for c, v in values.items() if c not in by_column}
    if ensemble_fit is not None and ensemble_part:
        from model.ensemble import apply_set

        scenario = apply_set(scenario, ensemble_part, ensemble_fit)
    absolute: dict[str, Any] = {}
    scales: dict[str, float] = {}
    offsets: dict[str, float] = {}
    for column, f in by_column.items():
        v = float(values[column])
        if f.transform == "value":
            absolute[f.param] = round(v) if f.kind == "int" else v
        elif f.transform == "scale":
            scales[f.param] = v
        else:
            offsets[f.param] = v
    if absolute:
        scenario = scenario.with_values(absolute, source="sweep")
    if scales or offsets:
        scenario = scenario.with_scaled(scales, offsets, source="sweep")
    return scenario
