"""The ``nrmsim`` command: ``run`` a scenario, ``compare`` several with common random numbers
(and write the report), ``report`` re-renders a saved comparison, ``check`` the calibrated
baseline against published targets, ``calibrate`` fitted parameters, ``sweep`` an experiment
and ``analyse`` its results.

The handlers of ``run``, ``compare`` and ``report`` (here) and of ``check``, ``calibrate``,
``sweep`` and ``analyse`` (``model.commands``) only turn the options into keywords, call the
library function of the use case and print; a notebook calls the same functions.

Exit codes: 0 success; 1 a check failed; 2 bad input (scenario, option, file), with a
message naming the file, key, value and what is allowed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from model.common import InputError as InputError
from model.common import parse_date
from model.output import OutputExistsError
from model.results import KEY_METRICS as KEY_METRICS
from model.results import REGISTRY
from model.scenario import MAX_REPLICATES


def _date(text: str) -> dt.date:
    """argparse type: a ``YYYY-MM-DD`` date (``model.common.parse_date``)."""
    try:
        return parse_date(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _whole_number(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """argparse type: a whole number of at least ``minimum`` (and at most ``maximum``)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} must be at least {minimum}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(
                f"{value} is too large; allowed: {minimum} to {maximum:,}"
            )
        return value

    return parse


# Upper bounds: a huge count would otherwise exhaust memory (a list of that many runs) or
# start that many processes, instead of an error.
MAX_COUNT = 1_000_000  # trials, rounds, sample sizes, runs per task
MAX_WORKERS = 1024
_positive_int = _whole_number(1, MAX_COUNT)
_reps = _whole_number(1, MAX_REPLICATES)
_workers = _whole_number(1, MAX_WORKERS)
_seed = _whole_number(0)
_optimiser_seed = _whole_number(0, 2**32 - 1)  # Optuna's samplers take a 32-bit seed


def _share(text: str) -> float:
    """argparse type: a number in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not 0.0 < value <= 1.0:  # also rejects nan
        raise argparse.ArgumentTypeError(f"{text} must be more than 0 and at most 1")
    return value


def _option(*flags: str, **how: Any) -> argparse.ArgumentParser:
    """A parent parser holding one option that several commands share (declared once)."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(*flags, **how)
    return parent


WORKERS = _option(
    "--workers", type=_workers, default=1, help="worker processes (results do not depend on it)"
)
QUIET = _option("--quiet", action="store_true", help="no progress bar, table or summary")
FORCE = _option("--force", action="store_true", help="replace a non-empty --out folder")
SEED = _option("--seed", type=_seed, help="root seed; default the scenario's (the baseline's)")
WINDOW = argparse.ArgumentParser(add_help=False)
WINDOW.add_argument("--start", type=_date, help="first day (YYYY-MM-DD); default the scenario's")
WINDOW.add_argument("--end", type=_date, help="last day, included; default the scenario's")
WINDOW.add_argument("--reps", type=_reps, help="replicates; default the scenario's")
TABLE_SHAPE = _option(
    "--table-shape",
    choices=("long", "wide"),
    default="long",
    help="summary.csv long (a row per value; the default) or wide (a row per replicate and "
    "group, a <metric>_<year> column per metric and year, as a sweep's rows)",
)
EFFECTS = _option(
    "--effects",
    choices=("default", "null"),
    default="default",
    help="null: every assumed effect size set to its null (see baseline.toml `null`)",
)


def build_parser() -> argparse.ArgumentParser:
    """The ``nrmsim`` parser: one sub-parser a command, shared options from the parents."""
    ap = argparse.ArgumentParser(prog="nrmsim", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    _add_run(sub)
    _add_compare(sub)
    _add_report_and_check(sub)
    _add_calibrate(sub)
    add_sweep_parsers(sub)
    return ap


def _add_run(sub: argparse._SubParsersAction) -> None:
    """``nrmsim run``."""
    run = sub.add_parser(
        "run",
        help="run a scenario for N replicates and write outputs",
        parents=[WINDOW, SEED, WORKERS, FORCE, QUIET, EFFECTS, TABLE_SHAPE],
    )
    run.add_argument("scenario", help="a name in scenarios/ (e.g. historical) or a path to a .toml")
    run.add_argument(
        "--backend",
        choices=("processes", "dask"),
        default="processes",
        help="local process pool (default) or Dask distributed",
    )
    run.add_argument("--scheduler", help="Dask scheduler address; default starts a local cluster")
    run.add_argument("--out", type=Path, help="output folder; default out/<scenario>")
    run.add_argument(
        "--events", action="store_true", help="also write events.parquet and children.parquet"
    )
    run.add_argument(
        "--tables",
        action="store_true",
        help="also write published_tables.csv: quarterly tables shaped like the Home Office "
        "releases (with all-ages equivalents and small cells suppressed)",
    )


def _add_compare(sub: argparse._SubParsersAction) -> None:
    """``nrmsim compare``."""
    cmp_ = sub.add_parser(
        "compare",
        help="compare scenarios with common random numbers; writes report.html",
        description="Run every scenario with the same seed and replicate numbers (common random "
        "numbers) and write comparison.csv (paired differences against the baseline with 95%% "
        "intervals), summary.csv, pathways.csv, manifest.json, figures/*.png and report.html.",
        parents=[WINDOW, SEED, WORKERS, FORCE, QUIET, EFFECTS, TABLE_SHAPE],
    )
    cmp_.add_argument(
        "scenarios",
        nargs="+",
        metavar="SCENARIO",
        help="names in scenarios/ or .toml paths; the first is the baseline unless --baseline",
    )
    cmp_.add_argument("--baseline", help="which of the scenarios is the comparator")
    cmp_.add_argument("--out", type=Path, help="output folder; default out/<baseline>-vs-<...>")
    cmp_.add_argument(
        "--with-null",
        action="store_true",
        help="also run the same comparison with every assumed effect at its null (null/) and "
        "show both in the report (twice the runs)",
    )
    cmp_.add_argument(
        "--ensemble",
        metavar="FIT_ID",
        default="auto",
        help="replicate r uses parameter set r of the fit's calibration ensemble (the same set "
        "in every scenario), so intervals include parameter uncertainty; default 'auto' (the "
        "newest fit the baseline cites, if it has an ensemble); 'none' for Monte Carlo only",
    )
    cmp_.add_argument(
        "--replicates-per-set",
        type=_positive_int,
        default=1,
        metavar="K",
        help="K consecutive replicates share each ensemble parameter set (--reps a multiple "
        "of K); with K of 2 or more the report splits each interval's width into parameter "
        "uncertainty and Monte Carlo noise, and intervals are cluster-robust over the sets",
    )


def _add_report_and_check(sub: argparse._SubParsersAction) -> None:
    """``nrmsim report`` and ``nrmsim check``."""
    rep = sub.add_parser(
        "report",
        help="re-render report.html from a saved compare folder (runs nothing)",
        parents=[QUIET],
    )
    rep.add_argument("folder", type=Path, help="a folder written by nrmsim compare")

    check = sub.add_parser(
        "check",
        help="compare the calibrated historical run with targets",
        parents=[SEED, WORKERS],
    )
    check.add_argument("--json", action="store_true", help="print the comparison as JSON")
    check.add_argument(
        "--targets", type=Path, help="targets file; default calibration/targets.toml"
    )
    check.add_argument(
        "--scenario", default="historical", help="a scenario name or .toml path (a variant)"
    )


def _add_calibrate(sub: argparse._SubParsersAction) -> None:
    """``nrmsim calibrate``."""
    # the refit-only options default to None (model.calibration.fit.REFIT_DEFAULTS fills them
    # in) so that --extend-ensemble can refuse them when given
    cal = sub.add_parser(
        "calibrate",
        help="fit parameters marked calibrate = true to fit targets",
        parents=[WORKERS],
    )
    cal.add_argument(
        "--budget", type=_positive_int, help="optimiser trials (model evaluations); default 150"
    )
    cal.add_argument(
        "--method",
        choices=("blocks", "cmaes", "tpe"),
        help="blocks (default): stage by stage, CMA-ES (TPE for one parameter) over each "
        "stage's parameters in turn, --rounds times; cmaes or tpe: one search over all",
    )
    cal.add_argument(
        "--rounds", type=_positive_int, help="passes over the blocks (--method blocks); default 2"
    )
    cal.add_argument(
        "--step",
        type=_share,
        help="refine: search each parameter within its current value +- STEP x its range "
        "(clipped to the range), e.g. 0.15 after a model change; default the whole range",
    )
    cal.add_argument(
        "--only",
        action="append",
        metavar="PATTERN",
        help="fit only the calibrated parameters matching this glob (repeatable), e.g. 'care.*'",
    )
    cal.add_argument(
        "--optimiser-seed", type=_optimiser_seed, help="seed of the sampler; default 1"
    )
    cal.add_argument(
        "--ensemble-size",
        type=_positive_int,
        default=60,
        help="parameter sets consistent with every fit target to save (with --extend-ensemble: "
        "the size to grow the ensemble to, counting the sets it holds)",
    )
    cal.add_argument(
        "--ensemble-budget",
        type=_positive_int,
        default=200,
        help="extra model evaluations allowed to find the ensemble (with --extend-ensemble: "
        "candidates in all, counting those of earlier sessions)",
    )
    cal.add_argument(
        "--ensemble-from",
        type=Path,
        help="a parquet of sets already accepted (an earlier ensemble.parquet) to continue from",
    )
    cal.add_argument(
        "--reps",
        type=_reps,
        help="replicates per candidate (common random numbers across candidates); default 2",
    )
    cal.add_argument("--fit-id", help="name of the fit; default fit-<date>")
    cal.add_argument("--targets", type=Path)
    cal.add_argument("--scenario", help="a scenario name or .toml path; default historical")
    cal.add_argument("--dry-run", action="store_true", help="report only; do not write back")
    cal.add_argument(
        "--extend-ensemble",
        metavar="FIT_ID",
        help="no refit: grow calibration/fits/FIT_ID/ensemble.parquet to --ensemble-size sets "
        "with at most --ensemble-budget candidates, at the fit's own seed and replicates; "
        "resumable (rerun the same command after an interruption)",
    )


# --------------------------------------------------------------------------- sweeps (issue 9)
def add_sweep_parsers(sub: argparse._SubParsersAction) -> None:
    """``nrmsim sweep`` and ``nrmsim analyse`` (implemented in ``model.sweeps``)."""
    sw = sub.add_parser(
        "sweep",
        help="run an experiment (experiments/*.toml): sobol, morris, grid or psa",
        parents=[WORKERS, QUIET],
    )
    sw.add_argument("spec", help="an experiment file, or a name in experiments/")
    sw.add_argument(
        "--size",
        type=_positive_int,
        help="sample size, replacing the spec's `samples` (e.g. for a quick try)",
    )
    sw.add_argument(
        "--scheduler",
        help="Dask scheduler address (tcp://host:8786): run the "
        "same tasks on a Dask distributed cluster instead of a local pool",
    )
    sw.add_argument("--out", type=Path, help="sweep folder; default experiments/out/<name>")
    sw.add_argument(
        "--resume",
        action="store_true",
        help="continue a sweep in --out: run only the missing runs (same spec only)",
    )
    sw.add_argument(
        "--chunk-size",
        type=_positive_int,
        help="runs per task (default: adaptive, tasks of about 2 s, at most 32 runs)",
    )
    an = sub.add_parser(
        "analyse",
        help="Sobol/Morris indices or PSA, EVPPI and PRIM for a sweep folder",
        parents=[QUIET],
    )
    an.add_argument("dir", type=Path, help="a sweep folder (made by nrmsim sweep)")
    an.add_argument("--out", type=Path, help="output folder; default DIR/analysis")


def main(argv: Sequence[str] | None = None) -> int:
    from model.scenario import ScenarioError

    args = build_parser().parse_args(argv)
    args.argv = ["nrmsim", *(sys.argv[1:] if argv is None else argv)]
    try:
        return _dispatch(args)
    except (ScenarioError, InputError, OutputExistsError) as exc:
        print(f"nrmsim: error: {exc}", file=sys.stderr)
        return 2
    finally:
        if argv is None:  # a command-line process about to exit, not a library call
            # Shutdown would otherwise run a full collection over every object the run
            # created (over a second for the historical run); freezing skips it.
            gc.freeze()


def _dispatch(args: argparse.Namespace) -> int:
    """The command's adapter: ``run``, ``compare`` and ``report`` here, the others in
    ``model.commands`` (each calls the library function of its use case and prints)."""
    from model import commands

    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "run": cmd_run,
        "compare": cmd_compare,
        "report": cmd_report,
        "check": commands.cmd_check,
        "calibrate": commands.cmd_calibrate,
        "sweep": commands.cmd_sweep,
        "analyse": commands.cmd_analyse,
    }
    return handlers[args.command](args)


def cmd_run(args: argparse.Namespace) -> int:
    """``nrmsim run``: ``model.running.run_folder`` with the options as keywords, then the
    key metrics by year (unless --quiet)."""
    from model.running import run_folder

    result = run_folder(
        args.scenario,
        reps=args.reps,
        seed=args.seed,
        start=args.start,
        end=args.end,
        effects=args.effects,
        workers=args.workers,
        backend=args.backend,
        scheduler=args.scheduler,
        out=args.out,
        force=args.force,
        events=args.events,
        tables=args.tables,
        table_shape=args.table_shape,
        quiet=args.quiet,
        argv=args.argv,
    )
    if not args.quiet:
        print_table(result.summary, result.scenario, result.replicates, result.out)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """``nrmsim compare``: ``model.comparison.run_comparison`` with the options as keywords,
    then the key metrics' table (unless --quiet)."""
    from model.comparison import run_comparison

    result = run_comparison(
        args.scenarios,
        baseline=args.baseline,
        reps=args.reps,
        seed=args.seed,
        start=args.start,
        end=args.end,
        workers=args.workers,
        out=args.out,
        force=args.force,
        effects=args.effects,
        with_null=args.with_null,
        ensemble=args.ensemble,
        replicates_per_set=args.replicates_per_set,
        table_shape=args.table_shape,
        quiet=args.quiet,
        argv=args.argv,
    )
    if not args.quiet:
        print_comparison(
            result.comparison, result.baseline, result.options, result.replicates, result.out
        )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Re-render report.html and figures/ from a saved compare folder."""
    from model.report import ReportInputError, build_report

    try:
        path = build_report(args.folder)
    except ReportInputError as exc:
        raise InputError(str(exc)) from None
    if not args.quiet:
        print(f"report: {path}")
    return 0


def print_comparison(
    table: object, baseline: str, options: Sequence[str], reps: int, out: Path
) -> None:
    """Key metrics in the last year: the baseline's mean and each option's change."""
    import pandas as pd
    from rich.console import Console
    from rich.table import Table

    from model.compare import significant

    assert isinstance(table, pd.DataFrame)
    rows = table[(table["group_by"] == "all") & table["metric"].isin(KEY_METRICS)]
    last = rows["period"].max()
    rows = rows[rows["period"] == last].set_index(["scenario", "metric"])
    tab = Table(
        title=f"{last}: {baseline} and the change in each option, mean of {reps} paired "
        "replicate(s) [95% interval]; * = interval excludes 0"
    )
    for col in ("metric", baseline, *options):
        tab.add_column(col, justify="left" if col == "metric" else "right")
    for metric in KEY_METRICS:
        if (baseline, metric) not in rows.index:
            continue
        cells = []
        for name in options:
            if (name, metric) not in rows.index:
                cells.append("-")
                continue
            r = rows.loc[(name, metric)]
            diff = _fmt(r["diff_vs_baseline"], metric, signed=True)
            if r["diff_ci_low"] == r["diff_ci_low"]:
                diff += (
                    f" [{_fmt(r['diff_ci_low'], metric, signed=True)}, "
                    f"{_fmt(r['diff_ci_high'], metric, signed=True)}]"
                )
            cells.append(diff + (" *" if significant(r) else ""))
        tab.add_row(metric, _fmt(rows.loc[(baseline, metric), "mean"], metric), *cells)
    console = Console(width=160)
    console.print(tab)
    console.print(f"every year, group and metric: {out}/comparison.csv")
    console.print(f"report: {out / 'report.html'}", soft_wrap=True)


def print_table(summary: object, name: str, reps: int, out: Path) -> None:
    """Key metrics by year for all children: mean over replicates."""
    import pandas as pd
    from rich.console import Console
    from rich.table import Table

    assert isinstance(summary, pd.DataFrame)
    rows = summary[(summary["group_by"] == "all") & summary["metric"].isin(KEY_METRICS)]
    means = rows.groupby(["year", "metric"])["value"].mean().unstack()
    table = Table(title=f"{name}: all children, mean of {reps} replicate(s)")
    table.add_column("year", style="bold")
    for metric in KEY_METRICS:
        table.add_column(REGISTRY[metric].short, justify="right")
    for year, row in means.iterrows():
        table.add_row(str(year), *(_fmt(row[m], m) for m in KEY_METRICS))
    console = Console(width=140)
    console.print(table)
    console.print(
        f"outputs in {out}/: summary.csv (every replicate, group and metric), manifest.json"
    )


def _fmt(value: float, metric: str, signed: bool = False) -> str:
    """A value for the terminal tables; ``signed`` for differences (+/- and points)."""
    if value != value:  # NaN
        return "-"
    sign = ("+" if value >= 0 else "-") if signed else ("-" if value < 0 else "")
    size = abs(value)
    display = REGISTRY[metric].display
    if display == "share":
        return f"{sign}{size * 100:.1f} pts" if signed else f"{value:.0%}"
    if display == "gbp":
        return f"{sign}£{size / 1e6:,.{1 if signed else 0}f}m"
    return f"{sign}{size:,.0f}"


if __name__ == "__main__":
    raise SystemExit(main())
