"""The ``nrmsim`` command: ``run`` a scenario, ``compare`` two with common random numbers,
``check`` the calibrated baseline against published targets, ``calibrate`` fitted parameters,
``sweep`` an experiment and ``analyse`` its results.

Exit codes: 0 success; 1 a check failed; 2 bad input (scenario, option, file), with a
message naming the file, key, value and what is allowed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from model.output import OutputExistsError

KEY_METRICS = (
    "referrals",
    "repeat_referrals",
    "rg_positive_rate",
    "cg_decisions",
    "cg_positive_rate",
    "median_days_referral_to_cg",
    "awaiting_cg_at_year_end",
    "children_gone_missing",
    "aged_out_without_decision",
    "public_cost_gbp",
)


class InputError(ValueError):
    """A command-line value is wrong (exit code 2)."""


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date; use YYYY-MM-DD") from None


def _whole_number(minimum: int) -> Callable[[str], int]:
    """argparse type: a whole number of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} must be at least {minimum}")
        return value

    return parse


_positive_int = _whole_number(1)
_seed = _whole_number(0)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="nrmsim", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a scenario for N replicates and write outputs")
    run.add_argument("scenario", help="a name in scenarios/ (e.g. historical) or a path to a .toml")
    run.add_argument(
        "--start", type=_date, help="first day (YYYY-MM-DD); default from the scenario"
    )
    run.add_argument("--end", type=_date, help="last day, included; default from the scenario")
    run.add_argument("--reps", type=_positive_int, help="replicates; default from the scenario")
    run.add_argument("--seed", type=_seed, help="root seed; default from the scenario")
    run.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="worker processes (results do not depend on it)",
    )
    run.add_argument(
        "--backend",
        choices=("processes", "dask"),
        default="processes",
        help="local process pool (default) or Dask distributed",
    )
    run.add_argument("--scheduler", help="Dask scheduler address; default starts a local cluster")
    run.add_argument("--out", type=Path, help="output folder; default out/<scenario>")
    run.add_argument("--force", action="store_true", help="replace a non-empty --out folder")
    run.add_argument(
        "--events", action="store_true", help="also write events.parquet and children.parquet"
    )
    run.add_argument("--quiet", action="store_true", help="no progress bar or table")
    run.add_argument(
        "--effects", choices=("default", "null"), default="default",
        help="null: every assumed effect size set to its null (see baseline.toml `null`)",
    )  # fmt: skip

    cmp_ = sub.add_parser("compare", help="compare two scenarios with common random numbers")
    cmp_.add_argument("scenario_a", help="the comparator, e.g. status_quo_2027")
    cmp_.add_argument("scenario_b", help="the option, e.g. repeal_nba")
    cmp_.add_argument("--reps", type=_positive_int, help="replicates; default from scenario A")
    cmp_.add_argument("--seed", type=_seed, help="root seed for both; default scenario A's")
    cmp_.add_argument("--start", type=_date, help="first day for both")
    cmp_.add_argument("--end", type=_date, help="last day for both")
    cmp_.add_argument("--workers", type=_positive_int, default=1)
    cmp_.add_argument("--out", type=Path, help="output folder; default out/<a>-vs-<b>")
    cmp_.add_argument("--force", action="store_true", help="replace a non-empty --out folder")
    cmp_.add_argument("--quiet", action="store_true")
    cmp_.add_argument(
        "--effects", choices=("default", "null"), default="default",
        help="null: run both scenarios with every assumed effect size set to its null",
    )  # fmt: skip

    check = sub.add_parser("check", help="compare the calibrated historical run with targets")
    check.add_argument("--json", action="store_true", help="print the comparison as JSON")
    check.add_argument(
        "--targets", type=Path, help="targets file; default calibration/targets.toml"
    )
    check.add_argument("--scenario", default="historical")
    check.add_argument("--workers", type=_positive_int, default=1)

    cal = sub.add_parser("calibrate", help="fit parameters marked calibrate = true to fit targets")
    cal.add_argument(
        "--budget", type=_positive_int, default=40, help="model evaluations the optimiser may use"
    )
    cal.add_argument("--workers", type=_positive_int, default=1)
    cal.add_argument(
        "--reps",
        type=_positive_int,
        default=4,
        help="replicates per candidate (common random numbers across candidates)",
    )
    cal.add_argument("--fit-id", help="name of the fit; default fit-<date>")
    cal.add_argument("--targets", type=Path)
    cal.add_argument("--scenario", default="historical")
    cal.add_argument("--dry-run", action="store_true", help="report only; do not write back")
    add_sweep_parsers(sub)
    return ap


# --------------------------------------------------------------------------- sweeps (issue 9)
def add_sweep_parsers(sub: argparse._SubParsersAction) -> None:
    """``nrmsim sweep`` and ``nrmsim analyse`` (implemented in ``model.sweeps``)."""
    sw = sub.add_parser(
        "sweep", help="run an experiment (experiments/*.toml): sobol, morris, grid or psa"
    )
    sw.add_argument("spec", help="an experiment file, or a name in experiments/")
    sw.add_argument(
        "--size",
        type=_positive_int,
        help="sample size, replacing the spec's `samples` (e.g. for a quick try)",
    )
    sw.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="local worker processes (results do not depend on it)",
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
    sw.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    an = sub.add_parser(
        "analyse", help="Sobol/Morris indices or PSA, EVPPI and PRIM for a sweep folder"
    )
    an.add_argument("dir", type=Path, help="a sweep folder (made by nrmsim sweep)")
    an.add_argument("--out", type=Path, help="output folder; default DIR/analysis")
    an.add_argument("--quiet", action="store_true")


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
    if args.command in ("sweep", "analyse"):
        from model.sweeps.report import cmd_analyse, cmd_sweep

        return cmd_sweep(args) if args.command == "sweep" else cmd_analyse(args)
    if args.command == "compare":
        return cmd_compare(args)
    if args.command == "check":
        from model.calibration import cmd_check

        return cmd_check(args)
    if args.command == "calibrate":
        from model.calibration import cmd_calibrate

        return cmd_calibrate(args)
    return cmd_run(args)


def cmd_run(args: argparse.Namespace) -> int:
    import pandas as pd

    from model.output import atomic_dir, manifest, write_table
    from model.runner import RunSpec
    from model.scenario import load_scenario

    scenario = (
        load_scenario(args.scenario)
        .with_run(start=args.start, end=args.end, seed=args.seed)
        .with_effects(args.effects)
    )
    reps = args.reps or scenario.replicates
    out, force = _out_folder(args, scenario.name)
    specs = [RunSpec(scenario, r, keep_events=args.events) for r in range(reps)]
    started = time.perf_counter()
    results = _run_with_bar(specs, args, scenario.name)
    wall = time.perf_counter() - started
    summary = pd.concat([r.summary for r in results], ignore_index=True)
    with atomic_dir(out, force=force) as tmp:
        write_table(summary, tmp / "summary.csv")
        if args.events:
            write_table(
                pd.concat([r.events for r in results], ignore_index=True), tmp / "events.parquet"
            )
            write_table(
                pd.concat([r.children for r in results], ignore_index=True),
                tmp / "children.parquet",
            )
        meta = manifest(
            scenario.resolved(),
            scenario.seed,
            range(reps),
            {
                "command": args.argv,
                "effects": args.effects,
                "outputs": [*sorted(p.name for p in tmp.iterdir()), "manifest.json"],
                "evidence": scenario.evidence(),
                "timing": {
                    "wall_s": round(wall, 3),
                    "workers": args.workers,
                    "backend": args.backend,
                    "per_replicate": [
                        {k: round(v, 3) for k, v in r.timing.items()} for r in results
                    ],
                },
            },
        )
        (tmp / "manifest.json").write_text(json.dumps(meta, indent=2) + "\n")
    if not args.quiet:
        print_table(summary, scenario.name, reps, out)
    return 0


def _out_folder(args: argparse.Namespace, default_name: str) -> tuple[Path, bool]:
    """The output folder and whether it may be replaced; refuses a file or a non-empty folder
    given explicitly without --force (the default folder under out/ is replaced)."""
    out = args.out or Path("out") / default_name
    force = args.force or args.out is None
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"{out}: --out must be a folder, and this is a file")
    if out.exists() and any(out.iterdir()) and not force:
        raise OutputExistsError(
            f"{out}: output folder exists and is not empty; "
            "choose another --out or pass --force to replace it"
        )
    return out, force


def _run_with_bar(specs: list, args: argparse.Namespace, label: str) -> list:
    from tqdm import tqdm

    from model.runner import run_many

    tqdm.monitor_interval = 0  # no monitor thread: worker processes are forked after this
    bar = tqdm(
        total=len(specs),
        desc=label,
        unit="run",
        disable=args.quiet or len(specs) == 1,
        file=sys.stderr,
    )
    results = run_many(
        specs,
        workers=args.workers,
        backend=getattr(args, "backend", "processes"),
        scheduler=getattr(args, "scheduler", None),
        progress=lambda n: bar.update(n - bar.n),
    )
    bar.close()
    return results


def cmd_compare(args: argparse.Namespace) -> int:
    """Run A and B with the same seed and replicates; write and print B - A with intervals."""
    import pandas as pd

    from model.compare import differences
    from model.output import atomic_dir, manifest, write_table
    from model.runner import RunSpec
    from model.scenario import load_scenario

    run = {"start": args.start, "end": args.end}
    a = load_scenario(args.scenario_a).with_run(**run, seed=args.seed).with_effects(args.effects)
    b = load_scenario(args.scenario_b).with_run(**run, seed=a.seed).with_effects(args.effects)
    if (a.start, a.end) != (b.start, b.end):
        raise InputError(
            f"{a.name} runs {a.start}..{a.end} but {b.name} runs {b.start}..{b.end}; "
            "give --start and --end to compare the same period"
        )
    reps = args.reps or a.replicates
    out, force = _out_folder(args, f"{a.name}-vs-{b.name}")
    specs = [RunSpec(a, r, group_bys=("all",)) for r in range(reps)] + [
        RunSpec(b, r, group_bys=("all",)) for r in range(reps)
    ]
    results = _run_with_bar(specs, args, f"{a.name} vs {b.name}")
    summary_a = pd.concat([r.summary for r in results[:reps]], ignore_index=True)
    summary_b = pd.concat([r.summary for r in results[reps:]], ignore_index=True)
    table = differences(summary_a, summary_b)
    with atomic_dir(out, force=force) as tmp:
        write_table(table, tmp / "comparison.csv")
        write_table(pd.concat([summary_a, summary_b], ignore_index=True), tmp / "summary.csv")
        meta = manifest(
            {"a": a.resolved(), "b": b.resolved()},
            a.seed,
            range(reps),
            {
                "command": args.argv,
                "effects": args.effects,
                "outputs": ["comparison.csv", "summary.csv", "manifest.json"],
            },
        )
        (tmp / "manifest.json").write_text(json.dumps(meta, indent=2) + "\n")
    if not args.quiet:
        print_comparison(table, a.name, b.name, reps, out)
    return 0


def print_comparison(table: object, name_a: str, name_b: str, reps: int, out: Path) -> None:
    import pandas as pd
    from rich.console import Console
    from rich.table import Table

    from model.compare import significant

    assert isinstance(table, pd.DataFrame)
    rows = table[(table["group_by"] == "all") & table["metric"].isin(KEY_METRICS)]
    last = rows["year"].max()
    tab = Table(
        title=f"{name_b} minus {name_a}, {last}: mean of {reps} paired replicate(s) "
        "[95% interval]; * = interval excludes 0"
    )
    for col in ("metric", name_a, name_b, "difference"):
        tab.add_column(col, justify="left" if col == "metric" else "right")
    for metric in KEY_METRICS:
        r = rows[(rows["metric"] == metric) & (rows["year"] == last)]
        if r.empty:
            continue
        r = r.iloc[0]
        diff = _fmt(r["diff_mean"], metric) + (
            f" [{_fmt(r['diff_low95'], metric)}, {_fmt(r['diff_high95'], metric)}]"
            if r["diff_low95"] == r["diff_low95"]
            else ""
        )
        tab.add_row(
            metric,
            _fmt(r["mean_a"], metric),
            _fmt(r["mean_b"], metric),
            diff + (" *" if significant(r) else ""),
        )
    Console(width=140).print(tab)
    Console(width=140).print(f"every year and metric: {out}/comparison.csv")


SHORT = {
    "referrals": "referrals",
    "repeat_referrals": "repeat",
    "rg_positive_rate": "RG +",
    "cg_decisions": "CG decided",
    "cg_positive_rate": "CG +",
    "median_days_referral_to_cg": "median days to CG",
    "awaiting_cg_at_year_end": "awaiting CG",
    "children_gone_missing": "went missing",
    "aged_out_without_decision": "18 undecided",
    "public_cost_gbp": "cost",
}


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
        table.add_column(SHORT[metric], justify="right")
    for year, row in means.iterrows():
        table.add_row(str(year), *(_fmt(row[m], m) for m in KEY_METRICS))
    console = Console(width=140)
    console.print(table)
    console.print(
        f"outputs in {out}/: summary.csv (every replicate, group and metric), manifest.json"
    )


def _fmt(value: float, metric: str) -> str:
    if value != value:  # NaN
        return "-"
    if metric.endswith("_rate"):
        return f"{value:.0%}"
    if metric.endswith("_gbp"):
        return f"£{value / 1e6:,.0f}m"
    return f"{value:,.0f}"


if __name__ == "__main__":
    raise SystemExit(main())
