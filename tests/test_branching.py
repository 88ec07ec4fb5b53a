"""Runs that share the status quo's history branch from it, with results byte for byte those
of separate runs (``model.branching``).

Wrong models caught:
- a branch that keeps part of the old timeline (the status quo's entry on the lever's date
  applied after, or instead of, the lever's), or applies the lever's entry a day late or
  after other events of that day: its events differ from the lever run from the start;
- a pause that changes the run (an extra reporting period, a lost event at the pause day):
  the status quo paused and resumed differs from the one run straight through;
- a copy that shares state it should not (the status quo's result taken after a branch
  changed its parameters): the status quo of the group differs from its run alone;
- grouping runs that cannot share a history (another seed, start parameters differ from
  day 0): such a run, branched, would differ from its run alone.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from model import branching
from model.runner import RunSpec, groups_of, run_many, run_one
from model.scenario import Scenario, load_scenario
from model.simulation import NRMModel

END = dt.date(2025, 9, 30)
SCALED = {
    "identification.child_referrals_per_year": 0.1,
    "cg_decision.capacity_per_year": 0.1,
    "cg_decision.capacity_after_2025": 0.1,
}

pytestmark = pytest.mark.skipif(not branching.ENABLED, reason="branching needs os.fork")


def small(name: str, **run: dt.date | int) -> Scenario:
    return load_scenario(name).with_scaled(SCALED).with_run(end=END, **run)  # type: ignore[arg-type]


def same(a: pd.DataFrame | None, b: pd.DataFrame | None) -> bool:
    assert a is not None and b is not None
    return a.equals(b)


def test_divergence_day_is_the_first_timeline_difference() -> None:
    base, lever = small("status_quo_2027"), small("repeal_nba")
    day = branching.divergence_day(base, lever)
    model = NRMModel(base, 0)
    assert day == model.calendar.day(dt.date(2025, 4, 1))
    # the same scenario never differs: it shares the whole run
    assert branching.divergence_day(base, base) == model.end_day
    # another seed, or parameters that differ from day 0: nothing to share
    assert branching.divergence_day(base, small("repeal_nba", seed=base.seed + 1)) is None
    assert branching.divergence_day(base, small("status_quo_2027_surge")) is None


def test_branched_runs_equal_runs_from_the_start() -> None:
    names = ["status_quo_2027", "repeal_nba", "national_ictg", "status_quo_2027_surge"]
    specs = [RunSpec(small(n), 1, keep_events=True, group_bys=("all", "sex")) for n in names]
    grouped = run_many(specs)  # one group, in this process or (threads running) a pool
    assert "branched_at_day" in grouped[1].timing  # the levers did branch
    assert "branched_at_day" not in grouped[3].timing  # the surge shares nothing: alone
    for spec, got in zip(specs, grouped, strict=True):
        alone = run_one(spec)
        assert got.scenario == spec.scenario.name
        assert same(got.events, alone.events), spec.scenario.name
        assert same(got.children, alone.children), spec.scenario.name
        assert got.summary.equals(alone.summary), spec.scenario.name
        assert got.periods.equals(alone.periods), spec.scenario.name
    # and the branch changed something (the test would pass vacuously otherwise)
    assert not same(grouped[0].events, grouped[1].events)


def test_pause_and_resume_is_the_same_run() -> None:
    scenario = small("status_quo_2027")
    straight = NRMModel(scenario, 2)
    straight.run()
    paused = NRMModel(scenario, 2)
    for day in (100.5, 1000.0, 3000.25):  # inside reporting periods and on a whole day
        paused.run(pause_at=day)
        assert paused.env.now == day
    paused.run()
    assert paused.log.rows == straight.log.rows
    assert paused.datacollector.get_model_vars_dataframe().equals(
        straight.datacollector.get_model_vars_dataframe()
    )


def test_run_many_groups_by_replicate_and_keeps_order() -> None:
    specs = [
        RunSpec(small(n), r, metrics=("referrals", "rg_positive_rate"), group_bys=("all",))
        for r in (0, 1)
        for n in ("status_quo_2027", "devolve_all")
    ]
    groups = groups_of(specs)
    assert sorted(map(sorted, groups)) == [[0, 1], [2, 3]]
    pooled = run_many(specs, workers=2)
    serial = [run_one(s) for s in specs]
    for a, b in zip(pooled, serial, strict=True):
        assert (a.scenario, a.replicate) == (b.scenario, b.replicate)
        assert a.summary.equals(b.summary)
