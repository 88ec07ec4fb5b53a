"""A lower bound on the mutation score in a fraction of mutmut's time (docs/mutation.md).

mutmut runs each mutant against every selected test that executes the mutated function and
stops at the first failure. Every simulation test executes every stage function, so a mutant
that survives costs the whole selection: 15-20 CPU-minutes per survivor on the 2-core machine
under mutmut's trampolines (5 December 2026), which puts a module of a hundred mutants at a
day. This script runs each mutant against the *subset* of those tests that took at most
``--cap`` seconds in mutmut's stats step, fastest first, stopping at the first failure.
A mutant killed by the subset is killed by the full selection too (the subset is part of it),
so killed / mutants is a lower bound on mutmut's score; a mutant that survives the subset may
still be killed by a slower test, so the survivors are candidates to read, not verdicts.

It needs mutmut's ``mutants/`` folder with its stats (``mutmut run`` gets that far in about
25 minutes, then can be stopped) and appends one row per mutant to ``--out`` (a CSV), skipping
mutants already there, so it resumes after an interruption.

Usage (from the repository root, after ``mutmut run`` has written mutants/mutmut-stats.json):
    nice -n 19 python tests/mutation_subset.py "model.stages.leave.*" --cap 10 \\
        --out mutation-subset.csv
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

MUTANT = re.compile(r"^mutants_\w+?\['(x_\w+__mutmut_\d+)'\]", re.MULTILINE)


def mutant_names(mutants: Path) -> list[str]:
    """Every mutant mutmut generated, as ``package.module.x_function__mutmut_N``."""
    names = []
    for path in sorted((mutants / "model").rglob("*.py")):
        module = ".".join(path.relative_to(mutants).with_suffix("").parts)
        names += [f"{module}.{m}" for m in MUTANT.findall(path.read_text(encoding="utf-8"))]
    return names


def mangled(name: str) -> str:
    """The function a mutant belongs to: ``model.stages.leave.x_grant__mutmut_2`` ->
    ``model.stages.leave.x_grant``."""
    return name.rsplit("__mutmut_", 1)[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("patterns", nargs="+", help="mutant name patterns, e.g. model.stages.leave.*")
    ap.add_argument("--mutants", type=Path, default=Path("mutants"))
    ap.add_argument("--cap", type=float, default=10.0, help="slowest test kept (stats seconds)")
    ap.add_argument("--out", type=Path, default=Path("mutation-subset.csv"))
    args = ap.parse_args()
    stats = json.loads((args.mutants / "mutmut-stats.json").read_text(encoding="utf-8"))
    tests_of, duration = stats["tests_by_mangled_function_name"], stats["duration_by_test"]
    done = set()
    if args.out.exists():
        with args.out.open(encoding="utf-8") as f:
            done = {row["mutant"] for row in csv.DictReader(f)}
    todo = [
        n
        for n in mutant_names(args.mutants)
        if any(fnmatch.fnmatch(n, p) for p in args.patterns) and n not in done
    ]
    new_file = not args.out.exists()
    with args.out.open("a", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        if new_file:
            writer.writerow(["mutant", "status", "tests_run_max", "seconds", "cap"])
        for name in todo:
            tests = sorted(
                (t for t in tests_of.get(mangled(name), []) if duration.get(t, 0.0) <= args.cap),
                key=lambda t: duration[t],
            )
            if not tests:
                writer.writerow([name, "no tests", 0, 0.0, args.cap])
                f.flush()
                continue
            budget = 60.0 + 10.0 * sum(duration[t] for t in tests)
            env = {**os.environ, "MUTANT_UNDER_TEST": name}
            command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
            command += ["-m", "not scale and not slow", *tests]
            t0 = time.perf_counter()
            try:
                code = subprocess.run(
                    command, cwd=args.mutants, env=env, capture_output=True, timeout=budget
                ).returncode
                status = {0: "survived", 1: "killed"}.get(code, f"exit {code}")
            except subprocess.TimeoutExpired:
                status = "timeout"
            seconds = time.perf_counter() - t0
            writer.writerow([name, status, len(tests), round(seconds, 1), args.cap])
            f.flush()
            print(f"{status:9} {seconds:6.1f} s  {name}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
