"""Library functions take keyword arguments, not ``argparse.Namespace`` (issue 16): the use
cases (``run_check``, ``calibrate``, ``sweep``, ...) are library functions with the command's
defaults, and the CLI only parses and prints. The shared helpers live in one module
(``model.common``) with the old names still importable."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

from model import calibration, common
from model.calibration import check as check_module
from model.calibration.targets import Target
from model.scenario import Scenario, ScenarioError

TRIALS = [{"params": {"a.x": 0.3, "a.y": 2.0}, "trial": 0, "all_inside": True, "cost": 1.0}]
FREE = [("a.x", 0.3, 0.0, 1.0), ("a.y", 2.0, 1.0, 3.0)]


CLI_LAYER = ("model.cli", "model.commands")  # the only modules whose functions take ``args``


def _functions(module: ModuleType) -> list[tuple[str, Callable[..., object]]]:
    """Every function and method defined in ``module`` (not imported into it)."""
    found: list[tuple[str, Callable[..., object]]] = []
    for name, obj in vars(module).items():
        if getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(obj):
            found.append((f"{module.__name__}.{name}", obj))
        elif inspect.isclass(obj):
            found += [
                (f"{module.__name__}.{name}.{attr}", fn)
                for attr, fn in vars(obj).items()
                if inspect.isfunction(fn)
            ]
    return found


def _takes_namespace(fn: Callable[..., object]) -> bool:
    return any("Namespace" in str(p.annotation) for p in inspect.signature(fn).parameters.values())


def test_no_library_function_takes_a_namespace() -> None:
    """Catches a use case living in a ``cmd_*`` handler of a library module again (e.g.
    ``cmd_check`` back in ``model.calibration.check`` or ``cmd_sweep`` in
    ``model.sweeps.report``), or any other library function or method taking ``args``: a
    notebook would have to fake a command line to call it. Only the CLI layer
    (``model.cli``, ``model.commands``) may. Every module of the ``model`` package is looked
    at, and the CLI layer's handlers must be seen (the check cannot pass by finding nothing)."""
    import model

    modules = [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(model.__path__, "model.")
        if not info.name.endswith("__main__")  # running it would run the command
    ]
    functions = [item for module in modules for item in _functions(module)]
    takers = {name for name, fn in functions if _takes_namespace(fn)}
    library = sorted(t for t in takers if not t.startswith(tuple(f"{m}." for m in CLI_LAYER)))
    assert len(modules) >= 40 and len(functions) > 500
    assert {"model.commands.cmd_check", "model.commands.cmd_sweep", "model.cli.cmd_run"} <= takers
    assert library == []


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
        "run_check",
        "calibrate",
        "extend_fit",
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
    from model import calendar, cli, comparison, observe, params, results, scenario
    from model.stages import rg_decision

    assert calendar.DAYS_PER_YEAR is results.DAYS_PER_YEAR is common.DAYS_PER_YEAR
    assert params.PLACEMENT_TYPES is results.PLACEMENT_TYPES is common.PLACEMENT_TYPES
    assert rg_decision.logit is common.logit and rg_decision.expit is common.expit
    assert observe.logit is common.logit
    assert scenario.ScenarioError is common.ScenarioError
    assert cli.InputError is common.InputError  # main maps it to exit code 2
    assert scenario.MAX_REPLICATES is common.MAX_REPLICATES
    assert comparison.EFFECTS is common.EFFECTS
    assert scenario._read_toml is scenario.read_toml is common.read_toml
    assert scenario._check_keys is common.check_keys
    assert common.expit(common.logit(0.3)) == pytest.approx(0.3)
    assert common.prob_from_odds(common.odds(0.2)) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="use YYYY-MM-DD"):
        common.parse_date("2024-13-01")


# --------------------------------------------------------------------------- use cases
def _fake_evaluate(off_by: float, calls: list[dict]) -> Callable[..., pd.DataFrame]:
    """``evaluate`` without a model run: every target simulated at its observed value, the
    first fit target ``off_by`` tolerances away; the arguments are recorded in ``calls``."""

    def fake(
        scenario: Scenario,
        targets: list[Target],
        replicates: int,
        workers: int = 1,
        obs: object = None,
    ) -> pd.DataFrame:
        calls.append({"seed": scenario.seed, "replicates": replicates, "workers": workers})
        first = next(t.id for t in targets if t.use == "fit")
        row = {t.id: t.value + (off_by * t.tolerance if t.id == first else 0.0) for t in targets}
        return calibration.compare_with_targets(pd.DataFrame([row] * replicates), targets)

    return fake


@pytest.mark.parametrize(("off_by", "code"), [(0.0, 0), (3.0, 1)])
def test_check_from_keywords_gives_what_nrmsim_check_prints(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], off_by: float, code: int
) -> None:
    """Catches ``run_check`` and ``nrmsim check`` parting ways: a keyword dropped on the way to
    ``evaluate`` (seed, workers, the gate's replicate count), a verdict that ignores a failing
    fit target, or the command's JSON or exit code not being the function's result. No model
    runs (``evaluate`` is replaced)."""
    from model.cli import main

    calls: list[dict] = []
    monkeypatch.setattr(check_module, "evaluate", _fake_evaluate(off_by, calls))
    result = calibration.run_check("historical", seed=7, workers=2)
    assert main(["check", "--json", "--seed", "7", "--workers", "2"]) == code
    printed = json.loads(capsys.readouterr().out)
    assert calls == [{"seed": 7, "replicates": calibration.CHECK_REPLICATES, "workers": 2}] * 2
    assert result.passed is (code == 0) is printed["passed"]
    assert result.wall_s >= 0.0 and result.replicates == printed["replicates"] == 4
    expected = result.as_dict()
    assert printed["targets"] == expected["targets"] and printed["counts"] == expected["counts"]
    assert (printed["scenario"], printed["seed"]) == ("historical", 7)
    assert main(["check", "--seed", "7"]) == code
    verdict = "PASSED" if code == 0 else "FAILED"
    assert f"Check {verdict} in" in capsys.readouterr().out


def _defaults(fn: Callable[..., object]) -> dict[str, object]:
    return {
        name: p.default
        for name, p in inspect.signature(fn).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def test_the_library_functions_default_as_the_commands_do() -> None:
    """Catches a default that differs between a use case and its command (e.g.
    ``run_check(scenario="baseline")`` while ``nrmsim check`` runs ``historical``, or
    ``calibrate(budget=100)`` while the command's is 150), and a ``calibrate`` keyword the
    command never passes (an option parsed and then ignored)."""
    from model.cli import build_parser
    from model.commands import calibrate_keywords
    from model.sweeps import analyse_sweep, sweep

    parse = build_parser().parse_args
    args = vars(parse(["check"]))
    assert {k: args[k] for k in _defaults(calibration.run_check)} == _defaults(
        calibration.run_check
    )
    assert calibration.run_check.__defaults__ == ("historical",)
    keywords = calibrate_keywords(parse(["calibrate"]))
    defaults = _defaults(calibration.calibrate)
    assert {k: defaults[k] for k in keywords} == keywords
    for key, value in calibration.REFIT_DEFAULTS.items():
        assert defaults[key] == value, key
    every = ["--budget", "3", "--method", "tpe", "--rounds", "1", "--step", "0.1", "--only", "a*"]
    every += ["--optimiser-seed", "2", "--ensemble-from", "e.parquet", "--reps", "1"]
    every += ["--fit-id", "f", "--scenario", "s", "--targets", "t.toml", "--dry-run"]
    assert set(calibrate_keywords(parse(["calibrate", *every]))) == set(defaults)
    args = vars(parse(["sweep", "spec"]))
    for key, value in _defaults(sweep).items():
        if key not in ("quiet", "argv"):  # from Python: no progress bar, no command line
            assert args[key] == value, key
    assert _defaults(analyse_sweep) == {"out": vars(parse(["analyse", "d"]))["out"]}


def test_run_folder_and_run_comparison_default_as_run_and_compare_do() -> None:
    """Catches a default that differs between ``nrmsim run`` and ``model.run_folder`` (or
    ``nrmsim compare`` and ``run_comparison``), e.g. ``table_shape="wide"`` in one of them,
    or a keyword the command has no option for."""
    from model import run_folder
    from model.cli import build_parser
    from model.comparison import run_comparison

    parse = build_parser().parse_args
    for fn, argv in [(run_folder, ["run", "x"]), (run_comparison, ["compare", "x", "y"])]:
        args = vars(parse(argv))
        for key, value in _defaults(fn).items():
            if key not in ("quiet", "argv"):  # from Python: no progress bar, no command line
                assert args[key] == value, (fn.__name__, key)


def test_calibrate_refuses_a_bad_keyword_before_any_run() -> None:
    """Catches a keyword the command line would refuse (argparse checks it there) reaching
    the optimiser from Python: a method it does not know, or a budget of 0."""
    from model.common import InputError

    with pytest.raises(InputError, match="method: 'lbfgs'"):
        calibration.calibrate(method="lbfgs")
    with pytest.raises(InputError, match="budget: 0 is out of range"):
        calibration.calibrate(budget=0)
    with pytest.raises(InputError, match=r"step: 1\.5"):
        calibration.calibrate(step=1.5)


def test_calibrate_from_keywords_writes_what_nrmsim_calibrate_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Catches ``calibrate`` and ``nrmsim calibrate`` parting ways: an option dropped or
    defaulted differently on the way to the search (the report states the command it
    amounts to, so a dropped --only, --reps or --method changes it), the report not
    returned, or the write-back done on --dry-run or its line printed for another fit. No
    model runs: every candidate sits half a tolerance from each target."""
    from model.calibration import fit
    from model.calibration import report as report_module
    from model.cli import main

    runs: list[int] = []

    def fake_values(
        scenario: Scenario,
        targets: list[Target],
        replicates: range,
        workers: int = 1,
        obs: object = None,
    ) -> pd.DataFrame:
        runs.append(workers)
        row = {t.id: t.value + 0.5 * t.tolerance for t in targets}
        return pd.DataFrame([row] * len(replicates))

    written: list[str] = []
    monkeypatch.setattr(fit, "replicate_values", fake_values)
    monkeypatch.setattr(fit, "evaluate", _fake_evaluate(0.5, []))
    monkeypatch.setattr(fit, "write_back", lambda _path, _fitted, fit_id: written.append(fit_id))
    for module in (fit, report_module):
        monkeypatch.setattr(module, "CALIBRATION_DIR", tmp_path)
    options = {"method": "tpe", "budget": 2, "reps": 1, "only": ["care.*"], "workers": 2}
    options |= {"ensemble_size": 1, "ensemble_budget": 1}
    report = calibration.calibrate(fit_id="fit-from-py", dry_run=True, **options)
    assert report == tmp_path / "reports" / "fit-from-py.md" and written == []
    argv = "calibrate --fit-id fit-from-cli --method tpe --budget 2 --reps 1 --only care.*"
    argv += " --workers 2 --ensemble-size 1 --ensemble-budget 1"
    assert main(argv.split()) == 0
    assert written == ["fit-from-cli"] and set(runs) == {2}
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"report: {tmp_path / 'reports' / 'fit-from-cli.md'}",
        "fitted values written to scenarios/baseline.toml with source calibration:fit-from-cli",
    ]
    lib = report.read_text(encoding="utf-8").replace("fit-from-py", "ID")
    assert lib == (tmp_path / "reports" / "fit-from-cli.md").read_text(encoding="utf-8").replace(
        "fit-from-cli", "ID"
    )
    assert "--method tpe --rounds 2 --budget 2 --reps 1" in lib and "--only 'care.*'" in lib
