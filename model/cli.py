"""The ``nrmsim`` command: ``run`` a scenario, ``check`` the calibrated baseline against
published targets, ``calibrate`` fitted parameters.

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

KEY_METRICS = ("referrals", "repeat_referrals", "rg_positive_rate", "cg_decisions",
               "cg_positive_rate", "median_days_referral_to_cg", "awaiting_cg_at_year_end",
               "children_gone_missing", "aged_out_without_decision", "public_cost_gbp")


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
    run.add_argument("--start", type=_date, help="first day (YYYY-MM-DD); default from the scenario")
    run.add_argument("--end", type=_date, help="last day, included; default from the scenario")
    run.add_argument("--reps", type=_positive_int, help="replicates; default from the scenario")
    run.add_argument("--seed", type=_seed, help="root seed; default from the scenario")
    run.add_argument("--workers", type=_positive_int, default=1,
                     help="worker processes (results do not depend on it)")
    run.add_argument("--backend", choices=("processes", "dask"), default="processes",
                     help="local process pool (default) or Dask distributed")
    run.add_argument("--scheduler", help="Dask scheduler address; default starts a local cluster")
    run.add_argument("--out", type=Path, help="output folder; default out/<scenario>")
    run.add_argument("--force", action="store_true", help="replace a non-empty --out folder")
    run.add_argument("--events", action="store_true",
                     help="also write events.parquet and children.parquet")
    run.add_argument("--quiet", action="store_true", help="no progress bar or table")

    check = sub.add_parser("check", help="compare the calibrated historical run with targets")
    check.add_argument("--json", action="store_true", help="print the comparison as JSON")
    check.add_argument("--targets", type=Path, help="targets file; default calibration/targets.toml")
    check.add_argument("--scenario", default="historical")
    check.add_argument("--workers", type=_positive_int, default=1)

    cal = sub.add_parser("calibrate", help="fit parameters marked calibrate = true to fit targets")
    cal.add_argument("--budget", type=_positive_int, default=40,
                     help="model evaluations the optimiser may use")
    cal.add_argument("--workers", type=_positive_int, default=1)
    cal.add_argument("--reps", type=_positive_int, default=4,
                     help="replicates per candidate (common random numbers across candidates)")
    cal.add_argument("--fit-id", help="name of the fit; default fit-<date>")
    cal.add_argument("--targets", type=Path)
    cal.add_argument("--scenario", default="historical")
    cal.add_argument("--dry-run", action="store_true", help="report only; do not write back")
    return ap


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
    if args.command == "check":
        from model.calibration import cmd_check

        return cmd_check(args)
    if args.command == "calibrate":
        from model.calibration import cmd_calibrate

        return cmd_calibrate(args)
    return cmd_run(args)


def cmd_run(args: argparse.Namespace) -> int:
    import pandas as pd
    from tqdm import tqdm

    from model.output import atomic_dir, manifest, write_table
    from model.runner import RunSpec, run_many
    from model.scenario import load_scenario

    scenario = load_scenario(args.scenario).with_run(start=args.start, end=args.end,
                                                     seed=args.seed)
    reps = args.reps or scenario.replicates
    out = args.out or Path("out") / scenario.name
    force = args.force or args.out is None
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"{out}: --out must be a folder, and this is a file")
    if out.exists() and any(out.iterdir()) and not force:
        raise OutputExistsError(f"{out}: output folder exists and is not empty; "
                                "choose another --out or pass --force to replace it")
    specs = [RunSpec(scenario, r, keep_events=args.events) for r in range(reps)]
    started = time.perf_counter()
    tqdm.monitor_interval = 0  # no monitor thread: worker processes are forked after this
    bar = tqdm(total=reps, desc=f"{scenario.name}", unit="rep",
               disable=args.quiet or reps == 1, file=sys.stderr)
    results = run_many(specs, workers=args.workers, backend=args.backend,
                       scheduler=args.scheduler, progress=lambda n: bar.update(n - bar.n))
    bar.close()
    wall = time.perf_counter() - started
    summary = pd.concat([r.summary for r in results], ignore_index=True)
    with atomic_dir(out, force=force) as tmp:
        write_table(summary, tmp / "summary.csv")
        if args.events:
            write_table(pd.concat([r.events for r in results], ignore_index=True),
                        tmp / "events.parquet")
            write_table(pd.concat([r.children for r in results], ignore_index=True),
                        tmp / "children.parquet")
        meta = manifest(scenario.resolved(), scenario.seed, range(reps), {
            "command": args.argv,
            "outputs": sorted(p.name for p in tmp.iterdir()) + ["manifest.json"],
            "evidence": scenario.evidence(),
            "timing": {"wall_s": round(wall, 3), "workers": args.workers,
                       "backend": args.backend,
                       "per_replicate": [{k: round(v, 3) for k, v in r.timing.items()}
                                         for r in results]},
        })
        (tmp / "manifest.json").write_text(json.dumps(meta, indent=2) + "\n")
    if not args.quiet:
        print_table(summary, scenario.name, reps, out)
    return 0


SHORT = {"referrals": "referrals", "repeat_referrals": "repeat", "rg_positive_rate": "RG +",
         "cg_decisions": "CG decided", "cg_positive_rate": "CG +",
         "median_days_referral_to_cg": "median days to CG", "awaiting_cg_at_year_end": "awaiting CG",
         "children_gone_missing": "went missing", "aged_out_without_decision": "18 undecided",
         "public_cost_gbp": "cost"}


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
    console.print(f"outputs in {out}/: summary.csv (every replicate, group and metric), "
                  "manifest.json")


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
