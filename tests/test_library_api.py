"""Library functions take keyword arguments, not ``argparse.Namespace`` (issue 16), and the
shared helpers live in one module (``model.common``) with the old names still importable."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pandas as pd
import pytest

from model import calibration, common
from model.scenario import ScenarioError

TRIALS = [{"params": {"a.x": 0.3, "a.y": 2.0}, "trial": 0, "all_inside": True, "cost": 1.0}]
FREE = [("a.x", 0.3, 0.0, 1.0), ("a.y", 2.0, 1.0, 3.0)]


def test_no_calibration_library_function_takes_a_namespace() -> None:
    """Catches build_ensemble, write_report or _sampler taking ``args`` again (a notebook
    would have to fake a command line to call them); only the cmd_* handlers may. Every
    module of the package is looked at (and there must be functions to look at)."""
    modules = [
        importlib.import_module(info.name)
        for info in pkgutil.iter_modules(calibration.__path__, f"{calibration.__name__}.")
    ]
    functions = [
        (name, fn)
        for module in modules
        for name, fn in inspect.getmembers(module, inspect.isfunction)
        if fn.__module__ == module.__name__
    ]
    takers = [
        name
        for name, fn in functions
        if not name.startswith("cmd_")
        and any("Namespace" in str(p.annotation) for p in inspect.signature(fn).parameters.values())
    ]
    assert len(modules) >= 5 and len(functions) > 30
    assert takers == []


def test_every_name_the_package_exports_is_importable_from_it() -> None:
    """Catches a name lost in the split of calibration.py into a package: notebooks and
    other modules import from ``model.calibration`` itself."""
    for name in calibration.__all__:
        assert getattr(calibration, name) is not None
    for name in (
        "load_targets",
        "evaluate",
        "replicate_values",
        "build_ensemble",
        "_sampler",
        "not_implausible",
        "cmd_check",
        "cmd_calibrate",
        "Target",
        "TARGETS_FILE",
    ):
        assert hasattr(calibration, name), name


def test_build_ensemble_runs_from_keyword_arguments() -> None:
    """Catches a keyword ignored (the size must stop the search before any model run: ``run``
    here would fail if called) or the accepted optimiser trial dropped."""

    def run(*_: object) -> None:
        raise AssertionError("no run expected: the optimiser trial fills the ensemble")

    out = calibration.build_ensemble(
        TRIALS, FREE, [], run, optimiser_seed=1, ensemble_size=1, ensemble_budget=10
    )
    assert list(out["a.x"]) == [0.3] and list(out["source"]) == ["optimiser"]


def test_build_ensemble_names_the_earlier_file_missing_a_parameter(tmp_path: Path) -> None:
    """Catches ``ensemble_from`` ignored when passed as a keyword."""
    path = tmp_path / "earlier.parquet"
    pd.DataFrame({"a.x": [0.5]}).to_parquet(path)
    with pytest.raises(ScenarioError, match=r"earlier\.parquet: columns: .*a\.y"):
        calibration.build_ensemble(
            TRIALS, FREE, [], None, optimiser_seed=1, ensemble_size=1, ensemble_budget=0,
            ensemble_from=path,
        )  # fmt: skip


def test_sampler_takes_method_budget_and_seed_as_keywords() -> None:
    """Catches the method keyword ignored: CMA-ES needs two or more dimensions, TPE otherwise."""
    two = calibration._sampler({"a": 0.5, "b": 0.5}, method="cmaes", budget=16, optimiser_seed=3)
    one = calibration._sampler({"a": 0.5}, method="cmaes", budget=16, optimiser_seed=3)
    tpe = calibration._sampler({"a": 0.5, "b": 0.5}, method="tpe", budget=16, optimiser_seed=3)
    assert type(two).__name__ == "CmaEsSampler"
    assert type(one).__name__ == type(tpe).__name__ == "TPESampler"


def test_the_shared_helpers_are_the_ones_the_old_names_give() -> None:
    """Catches a second copy creeping back (a constant or function defined again instead of
    imported): every old name must be the very object in model.common."""
    from model import calendar, cli, observe, params, results, scenario
    from model.stages import rg_decision

    assert calendar.DAYS_PER_YEAR is results.DAYS_PER_YEAR is common.DAYS_PER_YEAR
    assert params.PLACEMENT_TYPES is results.PLACEMENT_TYPES is common.PLACEMENT_TYPES
    assert rg_decision.logit is common.logit and rg_decision.expit is common.expit
    assert observe.logit is common.logit
    assert scenario.ScenarioError is common.ScenarioError
    assert cli.InputError is common.InputError  # main maps it to exit code 2
    assert scenario._read_toml is scenario.read_toml is common.read_toml
    assert scenario._check_keys is common.check_keys
    assert common.expit(common.logit(0.3)) == pytest.approx(0.3)
    assert common.prob_from_odds(common.odds(0.2)) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="use YYYY-MM-DD"):
        common.parse_date("2024-13-01")
