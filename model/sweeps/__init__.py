"""Sweeps: experiments declared as data (``experiments/*.toml``), run at scale, analysed.

* :mod:`model.sweeps.spec`: load and validate an experiment file; resolve its factors.
* :mod:`model.sweeps.design`: the design (SALib Sobol or Morris samples, a grid, Monte Carlo
  or the calibration ensemble for ``psa``) and how a design point changes a scenario.
* :mod:`model.sweeps.execute`: run ids, chunks of runs per task, a local process pool or a
  Dask cluster, atomic Parquet parts, ``manifest.json`` and ``--resume``.
* :mod:`model.sweeps.analysis`: Sobol and Morris indices (SALib), PSA differences and
  probabilities, EVPPI, PRIM scenario discovery.
* :mod:`model.sweeps.report`: ``nrmsim analyse``: CSV tables and an HTML page with plots.

From Python: ``sweep("psa_levers", size=64, workers=2)`` is ``nrmsim sweep`` and
``analyse_sweep(folder)`` is ``nrmsim analyse`` (both print nothing; they return what they
did).
"""

from __future__ import annotations

from model.sweeps.design import Design, apply_point, make_design
from model.sweeps.execute import (
    SweepInterrupted,
    SweepResult,
    default_sweep_folder,
    load_results,
    run_sweep,
    sweep,
)
from model.sweeps.report import SweepAnalysis, analyse_sweep
from model.sweeps.spec import Experiment, Factor, Output, load_experiment

__all__ = [
    "Design",
    "Experiment",
    "Factor",
    "Output",
    "SweepAnalysis",
    "SweepInterrupted",
    "SweepResult",
    "analyse_sweep",
    "apply_point",
    "default_sweep_folder",
    "load_experiment",
    "load_results",
    "make_design",
    "run_sweep",
    "sweep",
]
