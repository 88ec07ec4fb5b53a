"""Sweeps: experiments declared as data (``experiments/*.toml``), run at scale, analysed.

* :mod:`model.sweeps.spec`: load and validate an experiment file; resolve its factors.
* :mod:`model.sweeps.design`: the design (SALib Sobol or Morris samples, a grid, Monte Carlo
  or the calibration ensemble for ``psa``) and how a design point changes a scenario.
* :mod:`model.sweeps.execute`: run ids, chunks of runs per task, a local process pool or a
  Dask cluster, atomic Parquet parts, ``manifest.json`` and ``--resume``.
* :mod:`model.sweeps.analysis`: Sobol and Morris indices (SALib), PSA differences and
  probabilities, EVPPI, PRIM scenario discovery.
* :mod:`model.sweeps.report`: ``nrmsim analyse``: CSV tables and an HTML page with plots.
"""

from __future__ import annotations

from model.sweeps.design import Design, apply_point, make_design
from model.sweeps.execute import SweepResult, load_results, run_sweep
from model.sweeps.spec import Experiment, Factor, Output, load_experiment

__all__ = [
    "Design",
    "Experiment",
    "Factor",
    "Output",
    "SweepResult",
    "apply_point",
    "load_experiment",
    "load_results",
    "make_design",
    "run_sweep",
]
