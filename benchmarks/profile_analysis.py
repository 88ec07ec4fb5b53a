"""Where a sweep's analysis time goes (outside the test suite; issue 15 item 2).

Simulates one replicate of a scenario, then profiles only the analysis a sweep pays for:
``runner.analyse`` (event frame, children table, spells) and ``results.summary`` for the
requested metrics with group "all". Prints the wall seconds of each part and the top
functions by cumulative time. Read the shares, not the seconds, on a loaded machine.

Usage: python benchmarks/profile_analysis.py [--scenario status_quo_2027] [--top 25]
       [--metrics m1,m2,...] (default: the eight outputs of experiments/psa_levers.toml)
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

from model.results import summary
from model.runner import analyse, simulate
from model.scenario import load_scenario

PSA_METRICS = (
    "median_days_referral_to_cg",
    "awaiting_cg_at_year_end",
    "children_gone_missing",
    "aged_out_without_decision",
    "re_trafficked",
    "leave_grants",
    "public_cost_gbp",
    "rg_positive_rate",
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default="status_quo_2027")
    ap.add_argument("--metrics", default=",".join(PSA_METRICS))
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    sc = load_scenario(args.scenario)
    t0 = time.perf_counter()
    model = simulate(sc, 0)
    t1 = time.perf_counter()
    profile = cProfile.Profile()
    profile.enable()
    analysis, _, _ = analyse(model)
    t2 = time.perf_counter()
    table = summary(analysis, sc.sim_start, sc.start, sc.end, ("all",), args.metrics.split(","))
    t3 = time.perf_counter()
    profile.disable()
    print(
        f"{args.scenario}: simulate {t1 - t0:.1f} s; analyse {t2 - t1:.1f} s; "
        f"summary of {len(table)} rows {t3 - t2:.1f} s"
    )
    pstats.Stats(profile).sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
