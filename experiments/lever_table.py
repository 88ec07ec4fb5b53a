"""The lever table: each option's difference from the status quo in one year, with default
and null effects side by side, from a ``nrmsim compare ... --with-null`` folder.

    nrmsim compare status_quo_2027 repeal_nba ... --with-null --reps 4 --workers 2 --out out/levers
    python experiments/lever_table.py out/levers --year 2027 > out/levers/table.md

Prints Markdown: for each effects mode a table of mean paired differences with their 95%
t-intervals (``comparison.csv``'s ``diff_vs_baseline``, ``diff_ci_low``, ``diff_ci_high``).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd

METRICS = (
    "referrals",
    "rg_positive_rate",
    "cg_positive_rate",
    "mean_days_referral_to_cg",
    "awaiting_cg_at_year_end",
    "aged_out_without_decision",
    "re_trafficked",
    "children_re_trafficked",
    "children_gone_missing",
    "days_in_adult_settings",
    "public_cost_gbp",
)


def fmt(x: float) -> str:
    """Three significant figures; millions as ``m`` for costs."""
    if not math.isfinite(x):
        return "n/a"
    if abs(x) >= 1e6:
        return f"{x / 1e6:+.1f}m"
    if abs(x) >= 1000:
        return f"{x:+,.0f}"
    return f"{x:+.3g}"


def table(folder: Path, year: int) -> str:
    comp = pd.read_csv(folder / "comparison.csv")
    baseline = [comp["scenario"].iloc[0]]  # compare writes the baseline's rows first
    rows = comp[
        (comp["group_by"] == "all")
        & (comp["period"].astype(str) == str(year))
        & comp["metric"].isin(METRICS)
        & ~comp["scenario"].isin(baseline)
    ]
    metrics = [m for m in METRICS if m in set(rows["metric"])]
    lines = [
        "| lever | " + " | ".join(metrics) + " |",
        "|---|" + "---|" * len(metrics),
    ]
    for scenario, part in rows.groupby("scenario", sort=False):
        by = part.set_index("metric")
        cells = [
            f"{fmt(by.at[m, 'diff_vs_baseline'])} "
            f"[{fmt(by.at[m, 'diff_ci_low'])}, {fmt(by.at[m, 'diff_ci_high'])}]"
            for m in metrics
        ]
        lines.append(f"| {scenario} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path, help="a nrmsim compare output folder")
    ap.add_argument("--year", type=int, default=2027)
    args = ap.parse_args(argv)
    if not (args.folder / "comparison.csv").is_file():
        print(f"error: {args.folder}/comparison.csv not found", file=sys.stderr)
        return 2
    print(f"**effects default** ({args.year}, difference from the baseline, mean [95% interval])\n")
    print(table(args.folder, args.year))
    if (args.folder / "null" / "comparison.csv").is_file():
        print(f"\n**effects null** ({args.year})\n")
        print(table(args.folder / "null", args.year))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
