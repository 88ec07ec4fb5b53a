"""Benchmark the engine (outside the test suite).

Runs, each in a fresh subprocess on one core so peak memory is its own:
  * the historical scenario once (2016-2024 plus the 2013-2015 warm-up, all stages);
  * a one-year baseline at 1x, 10x and 100x the referral volume.
Prints wall time of the simulation, microseconds per referral, and peak resident memory, then
the cost ratios between volumes (linear scaling means ratios close to 1).

Then the breakdown of the command ``nrmsim run historical --reps 1 --workers 1`` done the way
the command does it, in one fresh process: import, simulate, analysis (event frame, children
table, every metric of the summary), writing (summary.csv and manifest.json), and the peak
resident memory of that process.

Usage: python benchmarks/bench_run.py [--scales 1 10 100] [--skip-historical] [--skip-breakdown]
       [--json FILE]
Targets (issue 2): historical <= 5 s, <= 75 us per referral, < 500 MB, cost linear in volume.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from model.scenario import load_scenario
from model.runner import simulate
t_import = time.perf_counter() - t0
name, scale = sys.argv[1], float(sys.argv[2])
scenario = load_scenario(name)
if scale != 1.0:
    p = scenario.initial_params()
    volume = p.identification.child_referrals_per_year * scale
    scenario = scenario.with_values({
        "identification.child_referrals_per_year": volume,
        # services scale with demand so the run measures the engine, not a collapsing queue
        "cg_decision.capacity_per_year": p.cg_decision.capacity_per_year * scale,
        "devolved_pilot.capacity_per_year_per_la": (
            p.devolved_pilot.capacity_per_year_per_la * scale
        ),
        "guardianship.ictg_direct_caseload": int(p.guardianship.ictg_direct_caseload * scale),
        **{f"care.capacity_{k}": int(getattr(p.care, f"capacity_{k}") * scale)
           for k in ("foster", "childrens_home", "supported_accommodation", "secure", "hotel")},
    })
t1 = time.perf_counter()
model = simulate(scenario, 0)
t2 = time.perf_counter()
referrals = sum(1 for row in model.log.rows if row[3] == 0)
import gc
gc.freeze()  # as `nrmsim` does before exiting: skip the shutdown collection
print(json.dumps({"scenario": name, "scale": scale, "import_s": t_import,
                  "simulate_s": t2 - t1,
                  "referrals": referrals, "events": len(model.log),
                  "us_per_referral": (t2 - t1) / referrals * 1e6,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


BREAKDOWN = r"""
import json, resource, sys, tempfile, time
from pathlib import Path
t0 = time.perf_counter()
import model.cli  # what `nrmsim` imports before it dispatches
from model.output import atomic_dir, manifest, write_table
from model.runner import RunSpec, run_one
from model.scenario import load_scenario
t1 = time.perf_counter()
scenario = load_scenario(sys.argv[1])
result = run_one(RunSpec(scenario, 0))
t2 = time.perf_counter()
with tempfile.TemporaryDirectory() as folder:
    with atomic_dir(Path(folder) / "out", force=True) as tmp:
        write_table(result.summary, tmp / "summary.csv")
        meta = manifest(scenario.resolved(), scenario.seed, range(1), {"timing": result.timing})
        (tmp / "manifest.json").write_text(json.dumps(meta, indent=2) + "\n")
t3 = time.perf_counter()
import gc
gc.freeze()
print(json.dumps({"scenario": sys.argv[1], "import_s": t1 - t0,
                  "load_scenario_s": t2 - t1 - result.timing["simulate_s"]
                  - result.timing["analyse_s"],
                  "simulate_s": result.timing["simulate_s"],
                  "analysis_s": result.timing["analyse_s"], "write_s": t3 - t2,
                  "total_s": t3 - t0,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _child(code: str, *args: str) -> dict:
    started = time.perf_counter()
    pin = (lambda: os.sched_setaffinity(0, {0})) if hasattr(os, "sched_setaffinity") else None
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        check=True,
        preexec_fn=pin,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_wall_s"] = time.perf_counter() - started
    return result


def run_case(name: str, scale: float) -> dict:
    return _child(CHILD, name, str(scale))


def breakdown(name: str = "historical") -> dict:
    """Import, simulate, analysis and writing of one replicate, as `nrmsim run` does them."""
    return _child(BREAKDOWN, name)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scales", type=float, nargs="*", default=[1, 10, 100])
    ap.add_argument("--skip-historical", action="store_true")
    ap.add_argument("--skip-breakdown", action="store_true")
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args()
    rows = []
    if not args.skip_historical:
        rows.append(run_case("historical", 1.0))
    rows += [run_case("baseline", s) for s in args.scales]
    print(
        f"{'case':<22}{'referrals':>10}{'events':>10}{'simulate s':>12}{'process s':>11}"
        f"{'us/referral':>13}{'peak MB':>9}"
    )
    for r in rows:
        label = f"{r['scenario']} x{r['scale']:g}"
        print(
            f"{label:<22}{r['referrals']:>10,}{r['events']:>10,}{r['simulate_s']:>12.2f}"
            f"{r['process_wall_s']:>11.2f}{r['us_per_referral']:>13.1f}{r['peak_mb']:>9.0f}"
        )
    base = [r for r in rows if r["scenario"] == "baseline"]
    if len(base) > 1:
        print(
            "cost per referral relative to x1 (1.0 = linear):",
            ", ".join(
                f"x{r['scale']:g}: {r['us_per_referral'] / base[0]['us_per_referral']:.2f}"
                for r in base[1:]
            ),
        )
    if not args.skip_breakdown:
        b = breakdown("historical")
        rows.append({"breakdown": b})
        print(
            "nrmsim run historical --reps 1 --workers 1, in one process: "
            f"import {b['import_s']:.2f} s, load scenario {b['load_scenario_s']:.2f} s, "
            f"simulate {b['simulate_s']:.2f} s, analysis {b['analysis_s']:.2f} s, "
            f"write {b['write_s']:.2f} s; total {b['total_s']:.2f} s "
            f"(process {b['process_wall_s']:.2f} s); peak {b['peak_mb']:.0f} MB"
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
