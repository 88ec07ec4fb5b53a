"""Reproducibility and common random numbers.

A run is a pure function of (scenario, seed, replicate): the same inputs give the same event
log and summary in any process; different seeds or replicates give different runs. Stages
draw from their own streams, indexed by referral, so a lever that only acts in one stage does
not move the random numbers, and hence the outcomes, of the others.
"""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pandas as pd
import pytest

from model.runner import RunResult, RunSpec, pool_context, run_many, run_one, simulate
from model.scenario import SCENARIO_DIR, Scenario, load_scenario
from model.simulation import children_frame


def events_of(scenario: Scenario, replicate: int = 0) -> pd.DataFrame:
    return simulate(scenario, replicate).log.to_frame()


def assert_same_result(a: RunResult, b: RunResult) -> None:
    pd.testing.assert_frame_equal(a.summary, b.summary)
    pd.testing.assert_frame_equal(a.events, b.events)
    pd.testing.assert_frame_equal(a.children, b.children)
    pd.testing.assert_frame_equal(a.periods, b.periods)


def test_same_scenario_and_seed_give_identical_results(small: Scenario) -> None:
    a = run_one(RunSpec(small, 1, keep_events=True))
    b = run_one(RunSpec(small, 1, keep_events=True))
    assert len(a.events) > 500
    assert_same_result(a, b)


@pytest.mark.slow
def test_run_many_gives_the_same_results_with_one_or_two_workers(small: Scenario) -> None:
    specs = [RunSpec(small, r, keep_events=True) for r in range(3)]
    serial = run_many(specs, workers=1)
    parallel = run_many(specs, workers=2)
    assert [r.replicate for r in serial] == [r.replicate for r in parallel] == [0, 1, 2]
    for a, b in zip(serial, parallel, strict=True):
        assert_same_result(a, b)
    # and the replicates are not copies of each other
    assert not serial[0].events["t_days"].equals(serial[1].events["t_days"])


@pytest.mark.slow
def test_a_pool_made_while_threads_run_uses_a_fork_server_and_the_same_results(
    small: Scenario,
) -> None:
    """Catches: forking a multi-threaded process (a progress bar's thread, a Dask client):
    Python warns (an error under the project's pytest settings) because the child can
    deadlock; the pool must use a fork server then, with the same results."""
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, daemon=True)
    thread.start()
    try:
        assert pool_context().get_start_method() == "forkserver"
        specs = [RunSpec(small, r, keep_events=True) for r in range(2)]
        parallel = run_many(specs, workers=2)
    finally:
        stop.set()
        thread.join()
    for a, b in zip([run_one(s) for s in specs], parallel, strict=True):
        assert_same_result(a, b)


def test_different_seeds_give_different_runs(small: Scenario) -> None:
    a = events_of(small.with_run(seed=1))
    b = events_of(small.with_run(seed=2))
    assert not a.equals(b)
    ta = a.loc[a["event"] == "referred", "t_days"].to_numpy()
    tb = b.loc[b["event"] == "referred", "t_days"].to_numpy()
    n = min(len(ta), len(tb))
    assert (ta[:n] != tb[:n]).mean() > 0.99


def test_different_replicates_give_different_runs(small: Scenario) -> None:
    a = events_of(small, 0)
    b = events_of(small, 1)
    assert not a.equals(b)
    ta = a.loc[a["event"] == "referred", "t_days"].to_numpy()
    tb = b.loc[b["event"] == "referred", "t_days"].to_numpy()
    n = min(len(ta), len(tb))
    assert (ta[:n] != tb[:n]).mean() > 0.99


def test_seed_and_replicate_are_the_only_sources_of_randomness(small: Scenario) -> None:
    """Same seed, same replicate: identical even if other runs happened in between."""
    first = events_of(small.with_run(seed=7), 2)
    events_of(small.with_run(seed=8), 0)
    pd.testing.assert_frame_equal(first, events_of(small.with_run(seed=7), 2))


# --------------------------------------------------------------------------- no-op timeline
def timeline_scenario(tmp_path: Path, small: Scenario, changes: dict[str, str]) -> Scenario:
    """A scenario file extending the real baseline by absolute path, with one timeline entry
    on 15 March 2024 (inside the small run), run settings and volume as ``small``."""
    body = ", ".join(f'"{k}" = {v}' for k, v in changes.items())
    path = tmp_path / "with_timeline.toml"
    path.write_text(
        "[meta]\n"
        'name = "with_timeline"\n'
        f'extends = "{(SCENARIO_DIR / "baseline.toml").resolve()}"\n\n'
        "[[timeline]]\n"
        "date = 2024-03-15\n"
        'name = "mid_run_change"\n'
        'source = "assumption"\n'
        f"set = {{ {body} }}\n",
        encoding="utf-8",
    )
    sc = load_scenario(path)
    assert len(sc.timeline) == 1 and sc.timeline[0].date == dt.date(2024, 3, 15)
    volume = small.entries["identification.child_referrals_per_year"].value
    return sc.with_run(start=small.start, end=small.end, seed=small.seed).with_values(
        {"identification.child_referrals_per_year": volume}
    )


def no_op_changes(small: Scenario) -> dict[str, str]:
    """Parameters set to the values they already have (written as TOML)."""
    v = {
        k: small.entries[k].value
        for k in (
            "cg_decision.capacity_per_year",
            "care.capacity_foster",
            "guardianship.ictg_direct_caseload",
            "policy.decision_regime",
            "policy.hotels_in_use",
        )
    }
    return {
        "cg_decision.capacity_per_year": repr(float(v["cg_decision.capacity_per_year"])),
        "care.capacity_foster": str(int(v["care.capacity_foster"])),
        "guardianship.ictg_direct_caseload": str(int(v["guardianship.ictg_direct_caseload"])),
        "policy.decision_regime": f'"{v["policy.decision_regime"]}"',
        "policy.hotels_in_use": "true" if v["policy.hotels_in_use"] else "false",
    }


def test_timeline_entry_that_changes_nothing_leaves_events_identical(
    tmp_path: Path, small: Scenario
) -> None:
    sc = timeline_scenario(tmp_path, small, no_op_changes(small))
    assert sc.future_timeline(), "the entry must fall inside the run"
    pd.testing.assert_frame_equal(events_of(sc), events_of(small))


def test_timeline_entry_that_changes_something_changes_events(
    tmp_path: Path, small: Scenario
) -> None:
    """Control for the no-op test: the same mechanism with a real change does act."""
    changes = {**no_op_changes(small), "policy.decision_regime": '"pre_nba"'}
    sc = timeline_scenario(tmp_path, small, changes)
    ev, base = events_of(sc), events_of(small)
    day = 31 + 29 + 14  # 2024-03-15
    # identical up to the change (categories may differ: 'pre_nba' occurs only in one log)
    pd.testing.assert_frame_equal(
        ev[ev["t_days"] < day].reset_index(drop=True),
        base[base["t_days"] < day].reset_index(drop=True),
        check_categorical=False,
    )
    assert not decisions(ev).equals(decisions(base))
    rg = ev[(ev["event"] == "rg_decided") & (ev["t_days"] >= day)]
    assert len(rg) > 50 and (rg["regime"] == "pre_nba").all()


# --------------------------------------------------------------------------- common random numbers
def decisions(ev: pd.DataFrame) -> pd.DataFrame:
    rows = ev[ev["event"].isin(["rg_decided", "cg_decided"])]
    return rows[["child_id", "episode", "event", "t_days", "positive"]].reset_index(drop=True)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("leave.p_grant_confirmed_child", 1.0),
        ("justice.p_charged", 1.0),
    ],
)
def test_levers_of_other_stages_leave_decisions_unchanged(
    small: Scenario, key: str, value: float
) -> None:
    sc = small.with_values(
        {
            "identification.child_referrals_per_year": 3000.0,
            "leave.mean_days_to_grant": 10.0,
            "justice.p_investigation": 0.5,
            "justice.mean_days_to_investigation": 10.0,
            "justice.mean_days_to_charge": 10.0,
        }
    )
    base, changed = events_of(sc), events_of(sc.with_values({key: value}))
    # the lever acts...
    event = "leave_granted" if key.startswith("leave") else "charged"
    assert (changed["event"] == event).sum() > 5 * max(1, (base["event"] == event).sum())
    # ...and the RG and CG decisions (who, when, outcome) are exactly the same
    d0, d1 = decisions(base), decisions(changed)
    assert len(d0) > 1000
    pd.testing.assert_frame_equal(d0, d1)


def test_changing_the_sex_mix_leaves_arrival_times_unchanged(small: Scenario) -> None:
    sc = small.with_values({"identification.child_referrals_per_year": 3000.0})
    m0 = simulate(sc, 0)
    m1 = simulate(sc.with_values({"identification.sex": {"female": 0.7, "male": 0.3}}), 0)
    e0, e1 = m0.log.to_frame(), m1.log.to_frame()

    def arrivals(ev: pd.DataFrame) -> pd.Series:
        ref = ev[(ev["event"] == "referred") & (ev["referral_kind"] == "new")]
        return ref.set_index("child_id")["t_days"].sort_index()

    pd.testing.assert_series_equal(arrivals(e0), arrivals(e1))
    sex0 = children_frame(m0)["sex"]
    sex1 = children_frame(m1)["sex"]
    assert (sex0 == "female").mean() < 0.3 < 0.6 < (sex1 == "female").mean()
