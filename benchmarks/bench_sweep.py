"""Benchmark sweeps (outside the test suite; issue 9, section 5).

1. Cost per run in a sweep against ``simulate`` alone: in one process pinned to one core,
   alternating, at the same design points of ``morris_screening.toml`` (historical run):
   ``runner.simulate(scenario, r)`` vs the sweep's per-run work (``execute.run_task``: apply
   the design point, simulate, compute the requested metrics, extract the outputs). The
   ratio is taken pair by pair, so drift in machine speed cancels. Goal: at most 1.2.
2. Sweep throughput on 2 workers: a real ``run_sweep`` of ``--runs`` runs (the same design)
   on a local pool of 2 processes, against the per-run cost on one core (parallel efficiency).
3. Memory of the sweep process as the design grows: peak resident memory of a fresh process
   running a 3-factor Sobol design of N and 8N points with the simulation replaced by a
   constant (so only the sweep machinery is measured). Flat = streamed to disk.
4. Projected wall time of ``sobol_main.toml`` at full size on 2 and 16 cores:
   runs x per-run cost / (cores x efficiency), with the 2-worker efficiency (the 16-core
   figure assumes cores as fast as these and the same efficiency).

Usage: python benchmarks/bench_sweep.py [--pairs 4] [--runs 12] [--memory 2048] [--json FILE]
Timings are noisy on a shared machine: quote the pairwise ratio and the load average printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from model.runner import simulate
from model.sweeps.design import applied_values, apply_point, make_design
from model.sweeps.execute import Task, run_sweep, run_task
from model.sweeps.spec import EXPERIMENT_DIR, load_experiment


def per_run_cost(pairs: int) -> dict[str, float]:
    exp = load_experiment(EXPERIMENT_DIR / "morris_screening.toml", size=1)
    design = make_design(exp)
    base = exp.scenarios[0]
    sims, sweeps, ratios, analyse = [], [], [], []
    for i in range(pairs):
        point = i % design.points
        values = applied_values(design, point)
        scenario = apply_point(base, values, design.factors, design.ensemble_fit)
        t0 = time.perf_counter()
        simulate(scenario, 0)
        t_sim = time.perf_counter() - t0
        task = Task(
            ((i, point, 0, 0),),
            {0: base},
            {point: values},
            design.factors,
            design.ensemble_fit,
            exp.outputs,
            exp.root_seed,
        )
        t0 = time.perf_counter()
        _, timing = run_task(task)
        t_sweep = time.perf_counter() - t0
        sims.append(t_sim)
        sweeps.append(t_sweep)
        ratios.append(t_sweep / t_sim)
        analyse.append(float(timing["analyse_s"].iloc[0]))
        print(
            f"  pair {i}: simulate {t_sim:.2f} s, sweep run {t_sweep:.2f} s "
            f"(of which metrics {analyse[-1]:.2f} s), ratio {ratios[-1]:.2f}",
            flush=True,
        )
    return {
        "simulate_s": statistics.median(sims),
        "sweep_run_s": statistics.median(sweeps),
        "metrics_s": statistics.median(analyse),
        "ratio_median": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
    }


def throughput(runs: int, workers: int, per_run_s: float) -> dict[str, float]:
    """A real sweep of about ``runs`` runs (Morris, 3 factors, historical 2023-2024)."""
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "bench.toml"
        r = max(1, round(runs / 4))
        spec.write_text(
            '[experiment]\nname = "bench"\nscenario = "historical"\nmethod = "morris"\n'
            f"samples = {r}\nroot_seed = 3\nstart = 2023-01-01\nend = 2024-12-31\n"
            'metrics = ["median_days_referral_to_cg", "awaiting_cg_at_year_end"]\n'
            "years = [2024]\n"
            '[[factor]]\nparam = "cg_decision.capacity_multiplier"\n'
            '[[factor]]\nparam = "rg_decision.mean_work_days"\n'
            '[[factor]]\nparam = "care.missing_rate_childrens_home"\n',
            encoding="utf-8",
        )
        exp = load_experiment(spec)
        res = run_sweep(exp, Path(tmp) / "out", workers=workers)
    rate = res.ran / res.wall_s
    return {
        "runs": res.ran,
        "workers": workers,
        "wall_s": res.wall_s,
        "runs_per_s": rate,
        "runs_per_hour": rate * 3600,
        "efficiency": rate * per_run_s / workers,
    }


def constant(scenario, replicate, outputs):  # type: ignore[no-untyped-def]
    """Stands in for the simulation in the memory check."""
    return {o.column: 1.0 for o in outputs}, {"simulate_s": 0.0, "analyse_s": 0.0}


def memory_child(samples: int) -> None:
    import resource

    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "mem.toml"
        spec.write_text(
            '[experiment]\nname = "mem"\nscenario = "baseline"\nmethod = "sobol"\n'
            f"samples = {samples}\nroot_seed = 1\n"
            'outputs = [{ metric = "referrals", year = 2024 }]\n'
            '[[factor]]\nparam = "cg_decision.capacity_multiplier"\n'
            '[[factor]]\nparam = "rg_decision.mean_work_days"\n'
            '[[factor]]\nparam = "care.missing_rate_childrens_home"\n',
            encoding="utf-8",
        )
        exp = load_experiment(spec)
        res = run_sweep(exp, Path(tmp) / "out", workers=1, chunk_size=64, evaluate=constant)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"runs": res.ran, "peak_mb": peak}))


def memory(samples: int) -> list[dict[str, float]]:
    import subprocess
    import sys

    rows = []
    for n in (samples, samples * 8):
        done = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(n)],
            capture_output=True,
            text=True,
            check=True,
        )
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return rows


def projection(per_run_s: float, efficiency: float) -> dict[str, float]:
    exp = load_experiment(EXPERIMENT_DIR / "sobol_main.toml")
    d = len(exp.factors)
    points = exp.samples * (2 * d + 2 if exp.second_order else d + 2)
    runs = points * exp.replicates
    out: dict[str, float] = {
        "factors": len(exp.factors),
        "points": points,
        "runs": runs,
        "core_hours": runs * per_run_s / 3600,
    }
    for cores in (2, 16):
        out[f"hours_on_{cores}_cores"] = runs * per_run_s / (cores * efficiency) / 3600
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=4, help="simulate/sweep-run pairs")
    ap.add_argument("--runs", type=int, default=12, help="runs in the throughput sweep")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--memory", type=int, default=2048, help="Sobol N of the smaller design")
    ap.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--skip-runs", action="store_true", help="only the memory check")
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args()
    if args.memory_child:
        memory_child(args.memory_child)
        return 0
    print("memory of the sweep process (simulation replaced by a constant):", flush=True)
    mem = memory(args.memory)
    for row in mem:
        print(f"   {row['runs']:>7,} runs: peak {row['peak_mb']:.0f} MB")
    if args.skip_runs:
        return 0
    print(f"load average before: {os.getloadavg()}", flush=True)
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if affinity is not None:
        os.sched_setaffinity(0, {min(affinity)})
    print("1. cost per run in a sweep vs simulate alone (one core, alternating):", flush=True)
    cost = per_run_cost(args.pairs)
    if affinity is not None:
        os.sched_setaffinity(0, affinity)
    print(
        f"   median simulate {cost['simulate_s']:.2f} s, sweep run {cost['sweep_run_s']:.2f} s "
        f"(metrics {cost['metrics_s']:.2f} s): ratio {cost['ratio_median']:.2f} "
        f"[{cost['ratio_min']:.2f}, {cost['ratio_max']:.2f}] (goal <= 1.2)"
    )
    print(f"2. throughput on {args.workers} workers:", flush=True)
    thr = throughput(args.runs, args.workers, cost["sweep_run_s"])
    print(
        f"   {thr['runs']} runs in {thr['wall_s']:.1f} s: {thr['runs_per_s']:.3f} runs/s "
        f"({thr['runs_per_hour']:.0f}/hour), efficiency {thr['efficiency']:.2f} of "
        f"{args.workers} x one core"
    )
    proj = projection(cost["sweep_run_s"], min(1.0, thr["efficiency"]))
    print(
        f"4. sobol_main.toml at full size: {proj['runs']:,} runs ({proj['points']:,} points, "
        f"D = {proj['factors']}), {proj['core_hours']:.0f} core-hours: "
        f"{proj['hours_on_2_cores']:.1f} h on 2 cores, {proj['hours_on_16_cores']:.1f} h on 16"
    )
    print(f"load average after: {os.getloadavg()}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"cost": cost, "throughput": thr, "memory": mem, "projection": proj}, indent=2
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
