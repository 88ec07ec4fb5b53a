"""Recover the accepted ensemble sets of a running/killed `nrmsim calibrate` from its log.

build_ensemble's proposals are deterministic given the optimiser seed and the accept/reject
sequence, which the log records; this replays them without running the model and checks
each logged source label and step against the replay."""

import re
import sys

import numpy as np
import pandas as pd
from scipy.stats import qmc

from model.calibration import calibrated_parameters
from model.scenario import load_scenario

log, out, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])  # calibrate default seed: 1
scenario = load_scenario("historical")
free = calibrated_parameters(scenario)
keys = [k for k, *_ in free]
lo = np.array([low for *_, low, _ in free])
hi = np.array([h for *_, h in free])
width = hi - lo
start = pd.read_csv("calibration/fits/fit-2026-11-30/trials-progress.csv").iloc[0]
x0 = np.array([float(start[k]) for k in keys])
accepted = [dict(zip(keys, x0.tolist(), strict=True), source="optimiser", trial=0)]
if len(sys.argv) > 4:  # the run continued from an earlier ensemble (--ensemble-from)
    earlier = pd.read_parquet(sys.argv[4])
    for row in earlier.to_dict(orient="records"):
        if row.get("source") == "optimiser" and all(
            abs(row[k] - accepted[0][k]) < 1e-12 for k in keys
        ):
            continue
        accepted.append(
            {
                **{k: float(row[k]) for k in keys},
                "source": row.get("source", "earlier"),
                "trial": int(row.get("trial", -1)),
            }
        )
anchor = np.array([[a[k] for k in keys] for a in accepted])
count = len(accepted)
rng = np.random.default_rng(seed)
lhs = qmc.LatinHypercube(d=len(keys), seed=seed)
step = 0.02
walked = walked_ok = 0
pat = re.compile(r"ensemble: (\d+) sets .* after (\d+) extra runs \(([\w-]+), step ([\d.]+)\)")
with open(log) as handle:
    lines = [pat.search(line) for line in handle]
lines = [m for m in lines if m]
for m in lines:
    n, spent, source_log, step_log = int(m[1]), int(m[2]), m[3], float(m[4])
    walk = len(accepted) < 10 or (spent - 1) % 2 == 0
    if walk:
        origin = anchor[rng.integers(len(anchor))]
        point = np.clip(origin + rng.normal(0.0, step, len(keys)) * width, lo, hi)
        source = "random-walk"
    else:
        box_lo = np.maximum(anchor.min(axis=0) - 0.02 * width, lo)
        box_hi = np.minimum(anchor.max(axis=0) + 0.02 * width, hi)
        point = qmc.scale(lhs.random(1), box_lo, box_hi)[0]
        source = "history-matching"
    ok = n > count
    count = n
    if ok:
        accepted.append(dict(zip(keys, point.tolist(), strict=True), source=source, trial=-1))
        anchor = np.vstack([anchor, point])
    if walk:
        walked, walked_ok = walked + 1, walked_ok + ok
        if walked >= 4:
            rate = walked_ok / walked
            step *= 1.3 if rate > 0.6 else 0.75 if rate < 0.35 else 1.0
            walked = walked_ok = 0
    assert source == source_log and abs(round(step, 3) - step_log) < 1e-9, (
        spent,
        source,
        source_log,
        step,
        step_log,
    )
frame = pd.DataFrame(accepted)
frame.insert(0, "set_id", range(len(frame)))
frame.to_parquet(out, index=False)
print(len(frame), "sets recovered from", len(lines), "runs; labels and steps match the log")
