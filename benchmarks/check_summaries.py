"""Is a change to the analysis exact, and how fast is it? (outside the test suite; issue 15)

``save`` (run it from the checkout before the change, e.g. ``PYTHONPATH=/work/main``) writes
the full yearly summary (every metric, every grouping) of historical replicate 0 and
status_quo_2027 replicate 1 to ``DIR/<scenario>_<replicate>.parquet``. ``compare`` (from the
changed checkout) computes them again and reports: the same rows in the same order, the same
columns and dtypes, and which metrics' values are not bit-identical (with the largest
relative difference; above 1e-12 is a failure). Both print the seconds of ``analyse`` and
``summary`` (the full summary, then the PSA's eight metrics with group "all"), the best of
``--repeat`` timings of the same simulated model, as CPU seconds of this process (steadier
than wall seconds on a loaded machine).

Usage: python benchmarks/check_summaries.py save|compare [--dir /tmp/nrm-summaries]
       [--repeat 3] [--only historical]
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np
import pandas as pd
from profile_analysis import PSA_METRICS  # the same eight outputs as the PSA

from model.results import summary
from model.runner import RunSpec, analyse, frozen_heap, simulate
from model.scenario import load_scenario

CASES = (("historical", 0), ("status_quo_2027", 1))


def timed(name: str, replicate: int, repeat: int) -> pd.DataFrame:
    """The full summary; prints the best seconds of analyse + summary (full and PSA)."""
    sc = load_scenario(name)
    model = simulate(sc, replicate)
    spec = RunSpec(sc, replicate)
    best: dict[str, float] = {}
    table = pd.DataFrame()
    for _ in range(repeat):
        with frozen_heap():
            t0 = time.process_time()
            analysis, _, _ = analyse(model)
            t1 = time.process_time()
            table = summary(analysis, sc.sim_start, sc.start, sc.end, spec.group_bys, spec.metrics)
            t2 = time.process_time()
            analysis, _, _ = analyse(model)
            t3 = time.process_time()
            summary(analysis, sc.sim_start, sc.start, sc.end, ("all",), PSA_METRICS)
            t4 = time.process_time()
        for key, s in (
            ("analyse", t1 - t0),
            ("summary", t2 - t1),
            ("psa analyse", t3 - t2),
            ("psa summary", t4 - t3),
        ):
            best[key] = min(best.get(key, np.inf), s)
    print(f"{name} {replicate}: {len(table)} rows; best of {repeat} (CPU s): ", end="")
    print("; ".join(f"{k} {v:.2f}" for k, v in best.items()), flush=True)
    return table


def roundtrip(table: pd.DataFrame, folder: pathlib.Path) -> pd.DataFrame:
    """The table as read back from parquet (so it compares like with the saved one)."""
    path = folder / "_new.parquet"
    table.to_parquet(path)
    return pd.read_parquet(path)


def compare(old: pd.DataFrame, new: pd.DataFrame) -> list[str]:
    """Problems (empty: the same table, values within 1e-12 relative)."""
    if list(old.columns) != list(new.columns) or list(old.dtypes) != list(new.dtypes):
        return [f"columns/dtypes {list(old.dtypes.items())} != {list(new.dtypes.items())}"]
    if len(old) != len(new):
        return [f"{len(old)} rows != {len(new)} rows"]
    keys = [c for c in old.columns if c != "value"]
    problems = [f"column {c} differs" for c in keys if not old[c].equals(new[c])]
    if problems:
        return problems
    a, b = old["value"].to_numpy(float), new["value"].to_numpy(float)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    for metric in sorted(set(old.loc[~same, "metric"])):
        rows = (~same) & (old["metric"] == metric).to_numpy()
        rel = np.abs(a[rows] - b[rows]) / np.maximum(np.abs(a[rows]), 1e-300)
        worst = float(np.nanmax(np.where(np.isnan(rel), np.inf, rel)))
        line = f"{metric}: {rows.sum()} values not bit-identical, max relative diff {worst:.3g}"
        print("  " + line)
        if not worst <= 1e-12:
            problems.append(line)
    return problems


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=("save", "compare", "time"))
    ap.add_argument("--dir", default="/tmp/nrm-summaries")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", default=None, help="one scenario name")
    args = ap.parse_args()
    folder = pathlib.Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    failed = False
    for name, replicate in CASES:
        if args.only and name != args.only:
            continue
        table = timed(name, replicate, args.repeat)
        path = folder / f"{name}_{replicate}.parquet"
        dtypes = path.with_suffix(".dtypes")
        if args.mode == "save":
            table.to_parquet(path)
            dtypes.write_text(repr(list(table.dtypes.items())))
        elif args.mode == "compare":
            problems = compare(pd.read_parquet(path), roundtrip(table, folder))
            if dtypes.read_text() != repr(list(table.dtypes.items())):
                problems.append(f"in-memory dtypes {list(table.dtypes.items())}")
            print(f"{name} {replicate}: " + ("; ".join(problems) if problems else "identical"))
            failed |= bool(problems)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
