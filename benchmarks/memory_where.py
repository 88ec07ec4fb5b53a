"""Where the memory of a large run sits (outside the test suite): the live allocations at the
end of one simulation of the one-year baseline at ``--scale`` times the referral volume
(services scaled with it, as in ``bench_run.py``), grouped by the line that made them, and the
events still scheduled on SimPy's queue, by the process or callback waiting on them.

tracemalloc slows the run about tenfold; at ``--scale 10`` it takes two to three minutes.

Usage: python benchmarks/memory_where.py [--scale 10] [--top 20]
"""

from __future__ import annotations

import argparse
import collections
import tracemalloc

from model.runner import simulate
from model.scenario import Scenario, load_scenario

SCALED_CAPACITIES = ("foster", "childrens_home", "supported_accommodation", "secure", "hotel")


def scaled_baseline(scale: float) -> Scenario:
    scenario = load_scenario("baseline")
    p = scenario.initial_params()
    return scenario.with_values(
        {
            "identification.child_referrals_per_year": (
                p.identification.child_referrals_per_year * scale
            ),
            "cg_decision.capacity_per_year": p.cg_decision.capacity_per_year * scale,
            "devolved_pilot.capacity_per_year_per_la": (
                p.devolved_pilot.capacity_per_year_per_la * scale
            ),
            "guardianship.ictg_direct_caseload": int(p.guardianship.ictg_direct_caseload * scale),
            **{
                f"care.capacity_{k}": int(getattr(p.care, f"capacity_{k}") * scale)
                for k in SCALED_CAPACITIES
            },
        }
    )


def waiting_on(event: object) -> str:
    """The process (generator) or callback an event on the queue will wake."""
    names = []
    for callback in getattr(event, "callbacks", None) or []:
        owner = getattr(callback, "__self__", None)
        generator = getattr(owner, "_generator", None)
        names.append(
            generator.__qualname__
            if generator is not None
            else getattr(callback, "__qualname__", type(callback).__name__)
        )
    return f"{type(event).__name__}: {', '.join(names) or '(no callback)'}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=10.0, help="referral volume (x the baseline)")
    ap.add_argument("--top", type=int, default=20, help="lines of allocations to show")
    args = ap.parse_args()
    scenario = scaled_baseline(args.scale)
    tracemalloc.start(1)
    model = simulate(scenario, 0)
    snapshot = tracemalloc.take_snapshot()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"x{args.scale:g}: {len(model.log):,} events; traced memory at the end "
        f"{current / 1e6:,.0f} MB (peak {peak / 1e6:,.0f} MB)"
    )
    print(f"\n{'MB':>8} {'blocks':>10}  allocated at")
    for stat in snapshot.statistics("lineno")[: args.top]:
        frame = stat.traceback[0]
        print(f"{stat.size / 1e6:8.1f} {stat.count:10,}  {frame.filename}:{frame.lineno}")
    queue = model.env._queue  # SimPy's heap of (time, priority, id, event)
    pending = collections.Counter(
        (waiting_on(event), time > model.env.now) for time, _p, _id, event in queue
    )
    print(f"\n{len(queue):,} events still scheduled at the end (day {model.env.now:g}):")
    for (what, later), n in pending.most_common(10):
        print(f"{n:10,}  {what}{'  (after the end)' if later else ''}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
