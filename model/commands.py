"""The command-line adapters of ``nrmsim check``, ``calibrate``, ``sweep`` and ``analyse``
(``model.cli`` parses and calls them): each turns the parsed options into keywords, calls
the library function that does the work, prints what it returned and gives the exit code.

The work itself lives in the library, callable from a notebook with the same keywords:
``model.calibration.run_check``, ``model.calibration.calibrate``,
``model.calibration.extend_fit``, ``model.sweeps.sweep`` and ``model.sweeps.analyse_sweep``.
No function outside this module and ``model.cli`` takes an ``argparse.Namespace``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from model.common import InputError

# calibrate options that only a refit uses: refused with --extend-ensemble (flag by keyword)
REFIT_ONLY = {
    "budget": "--budget",
    "method": "--method",
    "rounds": "--rounds",
    "step": "--step",
    "only": "--only",
    "optimiser_seed": "--optimiser-seed",
    "ensemble_from": "--ensemble-from",
    "reps": "--reps",
    "fit_id": "--fit-id",
    "scenario": "--scenario",
    "dry_run": "--dry-run",
}


def cmd_check(args: argparse.Namespace) -> int:
    """``nrmsim check``: ``model.calibration.run_check`` with the options as keywords, then the
    comparison as JSON (``--json``) or as tables; exit 0 only if every fit target (input
    checks and outcomes) is inside its tolerance, else 1."""
    from model.calibration.check import print_check, run_check

    result = run_check(args.scenario, seed=args.seed, workers=args.workers, targets=args.targets)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print_check(result.table, result.scenario, result.passed, result.wall_s)
    return 0 if result.passed else 1


def calibrate_keywords(args: argparse.Namespace) -> dict[str, Any]:
    """``model.calibration.calibrate``'s keywords from ``nrmsim calibrate``'s options: those
    left out (None: the refit-only options default to None so that ``--extend-ensemble`` can
    tell them from ones given) take the function's defaults (``REFIT_DEFAULTS``)."""
    given = {key: getattr(args, key) for key in REFIT_ONLY if key != "dry_run"}
    keywords = {key: value for key, value in given.items() if value is not None}
    keywords.update(
        ensemble_size=args.ensemble_size,
        ensemble_budget=args.ensemble_budget,
        targets=args.targets,
        workers=args.workers,
        dry_run=args.dry_run,
    )
    return keywords


def cmd_calibrate(args: argparse.Namespace) -> int:
    """``nrmsim calibrate``: ``model.calibration.calibrate`` with the options as keywords
    (with ``--extend-ensemble``: ``model.calibration.extend_fit``), then where it wrote."""
    if args.extend_ensemble:
        return cmd_extend_ensemble(args)
    from model.calibration.fit import calibrate

    report = calibrate(**calibrate_keywords(args))
    print(f"report: {report}")
    if not args.dry_run:
        fit_id = report.stem
        print(f"fitted values written to scenarios/baseline.toml with source calibration:{fit_id}")
    return 0


def cmd_extend_ensemble(args: argparse.Namespace) -> int:
    """``nrmsim calibrate --extend-ensemble FIT_ID``: refuses the refit options (the
    extension runs at the fit's own settings), then ``model.calibration.extend_fit``."""
    from model.calibration.extend import extend_fit

    given = [
        flag
        for key, flag in REFIT_ONLY.items()
        if getattr(args, key, None) is not None and getattr(args, key) is not False
    ]
    if given:
        raise InputError(
            f"--extend-ensemble runs at the fit's own settings (fit.json) and does not refit: "
            f"remove {', '.join(given)} (allowed with it: --ensemble-size, --ensemble-budget, "
            "--workers, --targets)"
        )
    fit = extend_fit(
        args.extend_ensemble,
        ensemble_size=args.ensemble_size,
        ensemble_budget=args.ensemble_budget,
        targets=args.targets,
        workers=args.workers,
    )
    print(f"ensemble: {len(fit.ensemble)} sets in {fit.folder / 'ensemble.parquet'}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """``nrmsim sweep``: ``model.sweeps.sweep`` with the options as keywords, then a line of
    counts (unless --quiet); exit 130 on an interrupt, saying how to resume."""
    from model.sweeps.execute import SweepInterrupted, sweep

    try:
        res = sweep(
            args.spec,
            size=args.size,
            out=args.out,
            workers=args.workers,
            scheduler=args.scheduler,
            resume=args.resume,
            chunk_size=args.chunk_size,
            quiet=args.quiet,
            argv=args.argv,
        )
    except SweepInterrupted as exc:
        print(
            f"nrmsim: interrupted; finished runs are kept in {exc.out}. Continue with: "
            f"nrmsim sweep {args.spec} --resume --out {exc.out}",
            file=sys.stderr,
        )
        return 130
    if not args.quiet:
        print(
            f"{res.name}: {res.total} runs ({res.done_before} already done, {res.ran} run "
            f"now in {res.wall_s:.1f} s, {res.timing['runs_per_s']:.2f} runs/s) -> {res.out}\n"
            f"analyse with: nrmsim analyse {res.out}"
        )
    return 0


def cmd_analyse(args: argparse.Namespace) -> int:
    """``nrmsim analyse``: ``model.sweeps.analyse_sweep``, then where it wrote (unless
    --quiet)."""
    from model.sweeps.report import analyse_sweep

    done = analyse_sweep(args.dir, args.out)
    if not args.quiet:
        print(
            f"analysis of {args.dir} in {done.wall_s:.1f} s: "
            f"{done.report} and {len(done.files) - 1} CSV tables"
        )
    return 0
