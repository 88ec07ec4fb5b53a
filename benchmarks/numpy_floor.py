"""The numpy floor: a deliberately simple pathway, all ten stages vectorised, at the volume of a
real run. The engine is measured against it (issue 15: the historical run end to end should
cost at most 3x this, timed as whole processes in the same session).

Stages, each a handful of array operations over all referrals at once: arrivals, attributes,
reasonable-grounds (RG) decision, conclusive-grounds (CG) decision through a FIFO queue with a
fixed capacity (departures by a cumulative maximum), care placement and missing episodes,
guardian, justice, leave, transition at 18, re-trafficking. Every event is written to a
parquet file and yearly counts by event to a CSV, so the floor pays for output as the model
does. It is a cost yardstick, not a model: its numbers mean nothing.

Volume: the referrals of ``--scenario`` (the referral rate in force integrated over the run,
warm-up included), or ``--referrals N``, or the referred rows of an ``events.parquet``
(``--from-events``).

Usage: python benchmarks/numpy_floor.py [--scenario historical] [--out /tmp/floor] [--seed 1]
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

DAYS_PER_YEAR = 365.25
EVENTS = (
    "referred",
    "rg_decided",
    "cg_decided",
    "placed",
    "placement_ended",
    "went_missing",
    "returned",
    "guardian_allocated",
    "guardian_ended",
    "criminalised",
    "investigation_opened",
    "convicted",
    "leave_granted",
    "turned_18",
    "case_closed",
    "re_trafficked",
)
CODE = {e: i for i, e in enumerate(EVENTS)}


def scenario_volume(name: str) -> tuple[float, float, dt.date]:
    """(referrals, days, day 0) of a scenario: the referral rate in force integrated over the run.

    Reads the scenario through the model's loader only for its dates and timeline (imported
    here, so the floor's own timing does not include the model)."""
    from model.scenario import load_scenario

    sc = load_scenario(name)
    rate = sc.initial_params().identification.child_referrals_per_year
    origin, end = sc.sim_start, sc.end + dt.timedelta(days=1)
    total, t = 0.0, 0.0
    days = float((end - origin).days)
    for item in sc.future_timeline():
        at = float((item.date - origin).days)
        total += rate * (at - t) / DAYS_PER_YEAR
        t = at
        rate = item.changes.get("identification.child_referrals_per_year", rate)
    total += rate * (days - t) / DAYS_PER_YEAR
    return total, days, origin


def cg_fifo(arrive: np.ndarray, per_day: float) -> np.ndarray:
    """Departures from a FIFO queue served at ``per_day`` a day: d_i = max(a_i, d_{i-1}) + s,
    closed form d_i = (i+1) s + max_{j<=i} (a_j - j s), one cumulative maximum."""
    order = np.argsort(arrive, kind="stable")
    a = arrive[order]
    s = 1.0 / per_day
    i = np.arange(len(a), dtype=float)
    d = (i + 1.0) * s + np.maximum.accumulate(a - i * s)
    out = np.empty_like(d)
    out[order] = d
    return out


def floor(n: int, days: float, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("t", "child", "event", "pos", "value")}

    def emit(t: np.ndarray, child: np.ndarray, event: str, pos=-1, value=np.nan) -> None:
        cols["t"].append(np.asarray(t, float))
        cols["child"].append(np.asarray(child, np.int64))
        cols["event"].append(np.full(len(t), CODE[event], np.int16))
        cols["pos"].append(np.broadcast_to(np.asarray(pos, np.int8), len(t)))
        cols["value"].append(np.broadcast_to(np.asarray(value, float), len(t)))

    child = np.arange(n, dtype=np.int64)
    # 1 arrivals
    t_ref = np.sort(rng.uniform(0.0, days, n))
    emit(t_ref, child, "referred")
    # 2 attributes
    age = rng.choice(np.arange(10, 18), n, p=np.full(8, 1 / 8)) + rng.uniform(0, 1, n)
    sex = rng.random(n) < 0.3
    nationality = rng.choice(7, n, p=[0.3, 0.15, 0.15, 0.05, 0.05, 0.05, 0.25])
    day18 = t_ref + (18.0 - age) * DAYS_PER_YEAR
    # 3 RG decision
    t_rg = t_ref + rng.exponential(20.0, n)
    rg_pos = rng.random(n) < 0.85 - 0.05 * sex
    emit(t_rg, child, "rg_decided", rg_pos.astype(np.int8))
    # 4 CG decision: FIFO at a fixed capacity after a minimum recovery period
    waiting = np.flatnonzero(rg_pos)
    t_cg = cg_fifo(t_rg[waiting] + 45.0, per_day=len(waiting) / days * 1.05)
    cg_pos = rng.random(len(waiting)) < 0.9 - 0.02 * nationality[waiting]
    done = t_cg < days
    emit(t_cg[done], waiting[done], "cg_decided", cg_pos[done].astype(np.int8))
    t_close = np.where(rg_pos, np.inf, t_rg)
    t_close[waiting[done]] = t_cg[done]
    closed = t_close < days
    emit(t_close[closed], child[closed], "case_closed")
    # 5 care and missing
    placed = rng.random(n) < 0.4
    t_place = t_ref[placed] + rng.exponential(3.0, placed.sum())
    kind = rng.choice(5, placed.sum(), p=[0.5, 0.2, 0.2, 0.05, 0.05])
    t_end = t_place + rng.exponential(300.0, placed.sum())
    emit(t_place, child[placed], "placed", value=kind)
    emit(t_end, child[placed], "placement_ended", value=t_end - t_place)
    gone = rng.random(placed.sum()) < 0.25
    t_miss = t_place[gone] + rng.uniform(0, 1, gone.sum()) * (t_end - t_place)[gone]
    t_back = t_miss + rng.exponential(5.0, gone.sum())
    emit(t_miss, child[placed][gone], "went_missing", value=kind[gone])
    emit(t_back, child[placed][gone], "returned", value=t_back - t_miss)
    # 6 guardian
    g = rng.random(n) < 0.3
    t_g = t_ref[g] + rng.exponential(2.0, g.sum())
    t_g_end = np.minimum(t_g + rng.exponential(400.0, g.sum()), day18[g])
    emit(t_g, child[g], "guardian_allocated", value=t_g - t_ref[g])
    emit(t_g_end, child[g], "guardian_ended")
    # 7 justice
    crim = rng.random(n) < 0.1
    emit(t_ref[crim], child[crim], "criminalised")
    inv = rng.random(n) < 0.05
    t_inv = t_ref[inv] + rng.exponential(100.0, inv.sum())
    emit(t_inv, child[inv], "investigation_opened")
    conv = rng.random(inv.sum()) < 0.2
    emit(t_inv[conv] + rng.exponential(500.0, conv.sum()), child[inv][conv], "convicted")
    # 8 leave
    conf = waiting[done][cg_pos[done]]
    leave = rng.random(len(conf)) < 0.05
    emit(t_cg_of(conf, waiting, t_cg)[leave], conf[leave], "leave_granted", value=365.0)
    # 9 transition at 18: still waiting at the birthday
    aged = (day18 < t_close) & (day18 < days)
    emit(day18[aged], child[aged], "turned_18")
    # 10 re-trafficking: one exponential clock, kept if before 18 and the horizon
    t_rt = t_ref + rng.exponential(3000.0, n)
    rt = t_rt < np.minimum(day18, days)
    emit(t_rt[rt], child[rt], "re_trafficked")

    out = {k: np.concatenate(v) for k, v in cols.items()}
    order = np.argsort(out["t"], kind="stable")
    out = {k: v[order] for k, v in out.items()}
    keep = out["t"] < days
    return {k: v[keep] for k, v in out.items()}


def t_cg_of(ids: np.ndarray, waiting: np.ndarray, t_cg: np.ndarray) -> np.ndarray:
    lookup = np.full(waiting.max() + 1 if len(waiting) else 1, np.nan)
    lookup[waiting] = t_cg
    return lookup[ids]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default="historical")
    ap.add_argument("--referrals", type=int, help="override the volume")
    ap.add_argument("--from-events", help="volume = referred rows of this events.parquet")
    ap.add_argument("--out", default="/tmp/numpy_floor")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    t_import = time.perf_counter() - T0
    referrals, days, origin = scenario_volume(args.scenario)
    if args.from_events:
        ev = pq.read_table(args.from_events, columns=["event"]).column("event").to_pylist()
        referrals = sum(1 for e in ev if e == "referred")
    n = args.referrals or round(referrals)
    t1 = time.perf_counter()
    log = floor(n, days, args.seed)
    t2 = time.perf_counter()
    year = (log["t"] // DAYS_PER_YEAR).astype(np.int64)
    counts = np.bincount(year * len(EVENTS) + log["event"], minlength=len(EVENTS))
    t3 = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "t_days": log["t"],
            "child_id": log["child"],
            "event": pa.DictionaryArray.from_arrays(
                pa.array(log["event"], pa.int16()), pa.array(EVENTS)
            ),
            "positive": log["pos"],
            "value": log["value"],
        }
    )
    pq.write_table(table, out / "events.parquet")
    rows = [
        f"{origin.year + i // len(EVENTS)},{EVENTS[i % len(EVENTS)]},{c}"
        for i, c in enumerate(counts)
    ]
    (out / "summary.csv").write_text("year,event,count\n" + "\n".join(rows) + "\n")
    t4 = time.perf_counter()
    print(
        f"numpy floor: {n:,} referrals, {len(log['t']):,} events; import {t_import:.2f} s, "
        f"simulate {t2 - t1:.2f} s, analysis {t3 - t2:.2f} s, write {t4 - t3:.2f} s, "
        f"total since start {t4 - T0:.2f} s (the volume look-up, {t1 - t_import - T0:.2f} s "
        "in the model's loader, is not part of the floor: use --referrals for a bare timing)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
