"""Calibration targets, the CI gate (``nrmsim check``) and the fit (``nrmsim calibrate``).

``calibration/targets.toml`` (the data folder at the repository root, ``CALIBRATION_DIR``)
holds published figures as data. Each target has a ``role``: ``input-check`` (it echoes an
input: referral counts and mixes, figures a parameter is computed from) or ``outcome`` (the
model produces it), and a ``view`` (``model.observe``) that turns a run into the figure as
published. ``evaluate`` runs a scenario for a fixed seed and replicate count; ``nrmsim check``
passes only if every ``fit`` target of both roles is inside its tolerance (``validate`` targets
are reported, not gated) and never re-optimises.

``nrmsim calibrate`` fits the parameters marked ``calibrate = true`` with Optuna (TPE or
CMA-ES, for noisy simulators) under common random numbers (every candidate runs the same
seeds), writes the point estimate back into ``baseline.toml``, and saves an ensemble of
parameter sets consistent with every fit target (``calibration/fits/<fit-id>/``), a report
and a convergence plot. ``nrmsim calibrate --extend-ensemble FIT_ID`` grows a saved fit's
ensemble, resumably, without refitting.

Modules: ``targets`` (``Target``, ``load_targets``), ``check`` (``evaluate``, the gate),
``fit`` (the Optuna search, ``write_back``), ``ensemble`` (proposals and ``not_implausible``),
``extend`` (the resumable extension) and ``report`` (the fit's report and files). Every name
below is importable from ``model.calibration`` itself.

From Python, with the command's options as keywords (each prints nothing and returns what
it found): ``run_check(seed=3)`` is ``nrmsim check --seed 3`` (a ``CheckResult``: ``passed``,
``table``, ``wall_s``); ``calibrate(budget=40, dry_run=True)`` is ``nrmsim calibrate`` (the
report's path); ``extend_fit("fit-2026-12-04", ensemble_size=100)`` is ``nrmsim calibrate
--extend-ensemble fit-2026-12-04 --ensemble-size 100`` (the fit as saved afterwards).
"""

from model.calibration.check import (
    CHECK_REPLICATES,
    CheckResult,
    compare_with_targets,
    evaluate,
    gate_counts,
    print_check,
    replicate_values,
    run_check,
    target_values,
)
from model.calibration.ensemble import (
    EnsembleSearch,
    build_ensemble,
    implausibility,
    not_implausible,
    read_progress,
    run_search,
    write_progress,
)
from model.calibration.extend import SavedFit, extend_ensemble, extend_fit, load_fit
from model.calibration.fit import (
    COUPLED_STAGES,
    DISTANCE_CAP,
    MARGIN,
    MARGIN_PENALTY,
    REFIT_DEFAULTS,
    calibrate,
    calibrated_parameters,
    fit_search,
    objective,
    parameter_blocks,
    write_back,
)
from model.calibration.fit import _sampler as _sampler
from model.calibration.report import informing_targets, write_report
from model.calibration.targets import (
    CALIBRATION_DIR,
    ROLES,
    TARGET_KEYS,
    TARGETS_FILE,
    Target,
    check_periods,
    known_groups,
    load_targets,
)

__all__ = [
    "CALIBRATION_DIR",
    "CHECK_REPLICATES",
    "COUPLED_STAGES",
    "DISTANCE_CAP",
    "MARGIN",
    "MARGIN_PENALTY",
    "REFIT_DEFAULTS",
    "ROLES",
    "TARGETS_FILE",
    "TARGET_KEYS",
    "CheckResult",
    "EnsembleSearch",
    "SavedFit",
    "Target",
    "build_ensemble",
    "calibrate",
    "calibrated_parameters",
    "check_periods",
    "compare_with_targets",
    "evaluate",
    "extend_ensemble",
    "extend_fit",
    "fit_search",
    "gate_counts",
    "implausibility",
    "informing_targets",
    "known_groups",
    "load_fit",
    "load_targets",
    "not_implausible",
    "objective",
    "parameter_blocks",
    "print_check",
    "read_progress",
    "replicate_values",
    "run_check",
    "run_search",
    "target_values",
    "write_back",
    "write_progress",
    "write_report",
]
