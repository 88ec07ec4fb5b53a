"""Property tests: invariants of every run, over seeds, replicates and a few levers.

Hypothesis draws a seed, a replicate and lever values for the ``small`` scenario (about 300
children in six months) and checks event-log and bookkeeping invariants. Runs are cached so
that shrinking and the several properties do not repeat identical simulations.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from model.agents import STATES
from model.events import EVENTS, Event
from model.results import Analysis
from model.runner import simulate
from model.scenario import Scenario
from model.simulation import EVENT_CODE, NRMModel, children_frame

# No shrinking: each example is a full simulation, and shrinking a failure would take minutes;
# the failing seed, replicate and levers are reported as generated.
PROPERTY_SETTINGS = settings(
    max_examples=12,
    deadline=None,
    database=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

LEVERS = st.fixed_dictionaries(
    {
        "policy.decision_regime": st.sampled_from(["pre_nba", "nba_objective", "nba_amended"]),
        "policy.pod_policy": st.sampled_from(["none", "s63_original", "paused", "s63_revised"]),
        "policy.reconsideration_window_days": st.sampled_from([0.0, 30.0, 91.0]),
        "devolved_pilot.la_count": st.integers(0, 200),
        "cg_decision.capacity_multiplier": st.sampled_from([0.03, 0.3, 1.0]),
        "retrafficking.rate_per_year_open_case": st.sampled_from([0.1, 1.0, 4.0]),
        "retrafficking.mean_days_to_re_referral": st.sampled_from([10.0, 120.0]),
        "transition.p_withdrawn": st.sampled_from([0.0, 0.2, 1.0]),
        "disqualification.p_if_criminalised_revised": st.sampled_from([0.02, 0.5]),
    }
)
SEEDS = st.integers(0, 2**32 - 1)
REPLICATES = st.integers(0, 3)


class Small:
    """The ``small`` fixture with a short repr (Hypothesis prints the arguments of a failing
    example)."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario

    def __repr__(self) -> str:
        return "small"


@pytest.fixture(scope="module")
def sc(small: Scenario) -> Small:
    return Small(small)


_RUNS: dict[tuple, tuple[NRMModel, pd.DataFrame, pd.DataFrame]] = {}


def run(
    sc: Small, seed: int, replicate: int, levers: dict
) -> tuple[NRMModel, pd.DataFrame, pd.DataFrame]:
    """Run (or reuse) one replicate of ``small`` with a seed and lever values."""
    key = (id(sc.scenario), seed, replicate, tuple(sorted(levers.items())))
    if key not in _RUNS:
        if len(_RUNS) > 64:
            _RUNS.clear()
        model = simulate(sc.scenario.with_run(seed=seed).with_values(levers), replicate)
        _RUNS[key] = (model, model.log.to_frame(), children_frame(model))
    return _RUNS[key]


@PROPERTY_SETTINGS
@given(seed=SEEDS, replicate=REPLICATES, levers=LEVERS)
def test_events_are_in_time_order(sc: Small, seed: int, replicate: int, levers: dict) -> None:
    m, ev, _ = run(sc, seed, replicate, levers)
    assert len(ev) > 0
    # the log as output: each child's events in non-decreasing time, inside the run
    assert (ev.groupby("child_id")["t_days"].diff().dropna() >= 0).all()
    assert ev["t_days"].min() >= 0 and ev["t_days"].max() < m.end_day
    # the log as written: apart from back-dated went_missing rows, rows are appended as they
    # happen, so times never go backwards
    missing = EVENT_CODE[Event.WENT_MISSING]
    t = np.array([row[0] for row in m.log.rows if row[3] != missing])
    assert (np.diff(t) >= 0).all()
    # within an episode the referral comes first (went_missing: see test_stages)
    ref = ev[ev["event"] == "referred"].groupby(["child_id", "episode"])["t_days"].min()
    assert ref.index.is_unique
    others = ev[ev["event"] != "went_missing"]
    t_ref = ref.reindex(pd.MultiIndex.from_arrays([others["child_id"], others["episode"]]))
    assert t_ref.notna().all(), "event in an episode that was never referred"
    assert (others["t_days"].to_numpy() >= t_ref.to_numpy()).all()
    first = ev.drop_duplicates("child_id")  # stable sort: the child's first row
    assert (first["event"] == "referred").all() and (first["episode"] == 0).all()


@PROPERTY_SETTINGS
@given(seed=SEEDS, replicate=REPLICATES, levers=LEVERS)
def test_no_cg_before_rg_within_an_episode(
    sc: Small, seed: int, replicate: int, levers: dict
) -> None:
    _, ev, _ = run(sc, seed, replicate, levers)
    key = ["child_id", "episode"]
    rg = ev[ev["event"] == "rg_decided"].groupby(key)["t_days"].min().rename("t_rg")
    cg = ev[ev["event"] == "cg_decided"][[*key, "t_days", "route"]]
    both = cg.join(rg, on=key)
    assert both["t_rg"].notna().all(), "CG decision in an episode without an RG decision"
    assert (both["t_days"] >= both["t_rg"]).all()
    same_time = both["t_days"] == both["t_rg"]
    assert (both.loc[same_time, "route"] == "devolved_pilot").all()


@PROPERTY_SETTINGS
@given(seed=SEEDS, replicate=REPLICATES, levers=LEVERS)
def test_at_most_one_cg_decision_per_episode(
    sc: Small, seed: int, replicate: int, levers: dict
) -> None:
    _, ev, _ = run(sc, seed, replicate, levers)
    for event in ("cg_decided", "rg_decided", "referred", "disqualified"):
        rows = ev[ev["event"] == event]
        assert not rows.duplicated(["child_id", "episode"]).any(), f"two {event} in one episode"


@PROPERTY_SETTINGS
@given(seed=SEEDS, replicate=REPLICATES, levers=LEVERS)
def test_every_child_is_in_exactly_one_state(
    sc: Small, seed: int, replicate: int, levers: dict
) -> None:
    m, ev, children = run(sc, seed, replicate, levers)
    assert children["child_id"].is_unique
    assert children["final_state"].isin(STATES).all()
    referred = ev.loc[ev["event"] == "referred", "child_id"]
    by_state = children["final_state"].value_counts()
    assert len(children) == referred.nunique() == int(by_state.sum())
    assert set(children["child_id"]) == set(referred)
    assert (
        children["referrals"] == referred.value_counts().reindex(children["child_id"]).to_numpy()
    ).all()
    assert len(children) == len(m.agents)


@PROPERTY_SETTINGS
@given(seed=SEEDS, replicate=REPLICATES, levers=LEVERS)
def test_live_counters_equal_the_final_states(
    sc: Small, seed: int, replicate: int, levers: dict
) -> None:
    m, _, children = run(sc, seed, replicate, levers)
    final = Counter(children["final_state"])
    for state in STATES:
        assert m.counts[state] == final[state], (
            f"{state}: counter {m.counts[state]}, children {final[state]}"
        )
    assert all(m.counts[s] >= 0 for s in m.counts)


@PROPERTY_SETTINGS
@given(seed=SEEDS, replicate=REPLICATES, levers=LEVERS)
def test_backlog_from_the_event_log_equals_the_live_state(
    sc: Small, seed: int, replicate: int, levers: dict
) -> None:
    """The awaiting-CG stock computed from events alone equals the children in that state,
    and the placement pools hold exactly the children in care."""
    m, ev, children = run(sc, seed, replicate, levers)
    analysis = Analysis(ev, children, m.end_day, m.scenario_costs())
    table = analysis.period_metrics(0.0, m.end_day, "all").set_index("metric")["value"]
    assert table["awaiting_cg"] == m.counts["awaiting_cg"]
    assert sum(pool.in_use for pool in m.placements.values()) == m.counts["in_care"]


def test_event_codes_round_trip() -> None:
    """The log stores event codes; every code maps back to its event name."""
    assert [EVENTS[EVENT_CODE[e]] for e in EVENTS] == list(EVENTS)
