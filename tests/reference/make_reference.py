"""Record the reference distributions of the headline metrics (issue 15).

Two cases, each over replicates 0..N-1 of the scenario's own root seed:

* ``historical``: every headline metric, group "all", each year 2016-2025;
* each lever scenario (every scenario that extends ``status_quo_2027``): its paired
  difference from ``status_quo_2027`` in 2027, and the status quo's own 2027 values.

Writes ``tests/reference/reference.csv`` (case, replicate, year, metric, value) and
``tests/reference/reference.json`` (how it was made: commit, replicates, seconds). Progress
is kept per replicate under ``tests/reference/.parts/`` (not committed), so an interrupted
run goes on where it stopped; ``--fresh`` starts again. ``tests/test_reference.py`` compares
new runs with this file. Regenerate it after any change that moves results on purpose, and
say so in the commit.

    python tests/reference/make_reference.py --replicates 20 --workers 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd

from model.results import tagged
from model.runner import RunSpec, run_many
from model.scenario import SCENARIO_DIR, load_scenario

HERE = Path(__file__).resolve().parent
PARTS = HERE / ".parts"
HEADLINE = tagged("key", "reference")  # registry order
BASE = "status_quo_2027"
LEVER_YEAR = 2027
HISTORICAL_YEARS = range(2016, 2026)


def levers() -> list[str]:
    """Every scenario that runs to 2027 besides the status quo (the policy options and the
    status quo's variants)."""
    out = []
    for path in sorted(SCENARIO_DIR.glob("*.toml")):
        name = path.stem
        if name in (BASE, "sources", "baseline"):
            continue
        if load_scenario(name).end.year >= LEVER_YEAR:
            out.append(name)
    return sorted(out)


def values(result_summary: pd.DataFrame) -> pd.DataFrame:
    s = result_summary
    s = s[(s["group_by"] == "all") & (s["group"] == "all")]
    return s[["year", "metric", "value"]].reset_index(drop=True)


def replicates(rs: list[int], workers: int) -> dict[int, pd.DataFrame]:
    """Both cases for replicates ``rs``, run together so every worker has work (each
    replicate's levers branch from its status quo: one group a replicate)."""
    hist = load_scenario("historical")
    names = [BASE, *levers()]
    specs = []
    for r in rs:
        specs.append(RunSpec(hist, r, group_bys=("all",), metrics=HEADLINE))
        specs += [RunSpec(load_scenario(n), r, group_bys=("all",), metrics=HEADLINE) for n in names]
    results = run_many(specs, workers=workers)
    out = {}
    per = 1 + len(names)
    for k, r in enumerate(rs):
        mine = results[k * per : (k + 1) * per]
        rows = []
        h = values(mine[0].summary)
        h = h[h["year"].isin(HISTORICAL_YEARS)]
        rows.append(h.assign(case="historical"))
        base = values(mine[1].summary)
        base = base[base["year"] == LEVER_YEAR].set_index(["year", "metric"])["value"]
        rows.append(base.reset_index().assign(case=BASE))
        for name, result in zip(names[1:], mine[2:], strict=True):
            lever = values(result.summary)
            lever = lever[lever["year"] == LEVER_YEAR].set_index(["year", "metric"])["value"]
            rows.append((lever - base).reset_index().assign(case=f"{name}-minus-{BASE}"))
        frame = pd.concat(rows, ignore_index=True).assign(replicate=r)
        out[r] = frame[["case", "replicate", "year", "metric", "value"]]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, default=20)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--fresh", action="store_true", help="discard saved progress")
    args = ap.parse_args()
    if args.fresh and PARTS.exists():
        shutil.rmtree(PARTS)
    PARTS.mkdir(exist_ok=True)
    started = time.perf_counter()
    todo = [r for r in range(args.replicates) if not (PARTS / f"replicate-{r:03d}.csv").exists()]
    for i in range(0, len(todo), max(1, args.workers)):
        rs = todo[i : i + max(1, args.workers)]
        t0 = time.perf_counter()
        for r, frame in replicates(rs, args.workers).items():
            part = PARTS / f"replicate-{r:03d}.csv"
            tmp = part.with_suffix(".tmp")
            frame.to_csv(tmp, index=False)
            tmp.replace(part)
        print(f"replicates {rs}: {time.perf_counter() - t0:.0f} s", flush=True)
    parts = [PARTS / f"replicate-{r:03d}.csv" for r in range(args.replicates)]
    table = pd.concat([pd.read_csv(p) for p in parts], ignore_index=True)
    table.to_csv(HERE / "reference.csv", index=False, float_format="%.10g")
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    meta = {
        "made": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "replicates": args.replicates,
        "headline": list(HEADLINE),
        "levers": levers(),
        "seconds_this_session": round(time.perf_counter() - started),
        "command": f"python tests/reference/make_reference.py --replicates {args.replicates}",
    }
    (HERE / "reference.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {HERE / 'reference.csv'}: {len(table)} rows")


if __name__ == "__main__":
    main()
