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

from model.agents import STATES, Child
from model.events import EVENTS, EXPLOITER_EVENTS
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
        "policy.ima_in_force": st.booleans(),
        "policy.legal_aid_before_rg": st.booleans(),
        "policy.unregulated_accommodation": st.booleans(),
        "devolved_pilot.la_count": st.integers(0, 200),
        "cg_decision.capacity_multiplier": st.sampled_from([0.03, 0.3, 1.0]),
        "retrafficking.rate_per_year_child": st.sampled_from([0.1, 1.0, 4.0]),
        "retrafficking.rate_per_year_after_18": st.sampled_from([0.1, 2.0]),
        "retrafficking.p_duplicate_referral": st.sampled_from([0.0, 0.3]),
        "retrafficking.mean_days_to_re_referral": st.sampled_from([10.0, 120.0]),
        "transition.p_withdrawn": st.sampled_from([0.0, 0.2, 0.5]),
        "transition.followup_years": st.sampled_from([0.05, 0.5, 3.0]),
        "disqualification.p_if_considered_revised": st.sampled_from([0.02, 0.5]),
        "guardianship.ictg_direct_caseload": st.sampled_from([20, 3000]),
        "guardianship.post18_support_days": st.sampled_from([0.0, 365.0]),
        "care.missing_prone_share": st.sampled_from([0.0, 0.5]),
        "care.p_unfound_per_episode": st.sampled_from([0.0, 0.2]),
        "care.moves_per_year": st.sampled_from([0.0, 3.0]),
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


def nrm(ev: pd.DataFrame) -> pd.DataFrame:
    """Rows about NRM children (not system rows, not never-referred hotel children)."""
    return ev[(ev["child_id"] >= 0) & (ev["episode"] >= 0)]


@PROPERTY_SETTINGS
@given(seed=SEEDS, replicate=REPLICATES, levers=LEVERS)
def test_events_are_in_time_order(sc: Small, seed: int, replicate: int, levers: dict) -> None:
    """Catches: an event recorded before its cause (a stage reading a stale clock), an event
    in an episode that was never referred, a child whose first event is not a referral."""
    m, ev, _ = run(sc, seed, replicate, levers)
    assert len(ev) > 0
    assert ev["t_days"].min() >= 0 and ev["t_days"].max() < m.end_day
    # the log as written: rows are appended as they happen, so times never go backwards
    t = np.array([row[0] for row in m.log.rows])
    assert (np.diff(t) >= 0).all()
    ev = nrm(ev)
    # within an episode the referral that opened it comes first
    opened = ev[(ev["event"] == "referred") & ev["referral_kind"].isin(["new", "repeat"])]
    ref = opened.groupby(["child_id", "episode"])["t_days"].min()
    assert ref.index.is_unique
    t_ref = ref.reindex(pd.MultiIndex.from_arrays([ev["child_id"], ev["episode"]]))
    assert t_ref.notna().all(), "event in an episode that was never referred"
    assert (ev["t_days"].to_numpy() >= t_ref.to_numpy()).all()
    first = ev.drop_duplicates("child_id")  # stable sort: the child's first row
    assert (first["event"] == "referred").all() and (first["episode"] == 0).all()
    assert (first["referral_kind"] == "new").all()


@PROPERTY_SETTINGS
@given(seed=SEEDS, replicate=REPLICATES, levers=LEVERS)
def test_linked_referrals_never_reset_the_referral_date(
    sc: Small, seed: int, replicate: int, levers: dict
) -> None:
    """Catches: a repeat referral of a child with an open case restarting the case (a new
    episode, a new decision) or moving its referral date (issue 6, section 4)."""
    m, ev, children = run(sc, seed, replicate, levers)
    ev = nrm(ev)
    ref = ev[ev["event"] == "referred"]
    opened = ref[ref["referral_kind"].isin(["new", "repeat"])]
    assert not opened.duplicated(["child_id", "episode"]).any()
    linked = ref[ref["linked"].astype(bool)]
    first = opened.set_index(["child_id", "episode"])["t_days"]
    for child, episode, t in zip(
        linked["child_id"], linked["episode"], linked["t_days"], strict=True
    ):
        assert first[(child, episode)] <= t
    # a linked referral adds no decision: decisions per episode stay at most one
    for event in ("rg_decided", "cg_decided"):
        assert not ev[ev["event"] == event].duplicated(["child_id", "episode"]).any()
    # and the waits the metrics report run from the first referral of the episode
    analysis = Analysis(m.log.to_frame(), children, m.end_day)
    waits = analysis.ev[analysis.ev["event"] == "cg_decided"]
    expected = first.reindex(pd.MultiIndex.from_arrays([waits["child_id"], waits["episode"]]))
    np.testing.assert_array_equal(waits["t_referred"].to_numpy(), expected.to_numpy())


@PROPERTY_SETTINGS
@given(seed=SEEDS, replicate=REPLICATES, levers=LEVERS)
def test_no_event_for_a_child_after_the_follow_up_ends(
    sc: Small, seed: int, replicate: int, levers: dict
) -> None:
    """Catches: a process that outlives the child's follow-up (a hazard clock, a guardian or
    placement process, a decision) (issue 7 invariant). Events about the exploiter
    (investigations, prosecutions) are not events of the child and may come later."""
    _, ev, _ = run(sc, seed, replicate, levers)
    ev = nrm(ev)
    ended = ev[ev["event"] == "followup_ended"].groupby("child_id")["t_days"].min()
    assert ended.index.is_unique
    exploiter = [e.value for e in EXPLOITER_EVENTS]
    own = ev[~ev["event"].isin(exploiter)]
    t_end = ended.reindex(own["child_id"]).to_numpy()
    after = own[own["t_days"].to_numpy() > np.nan_to_num(t_end, nan=np.inf)]
    assert after.empty, f"events after the follow-up ended:\n{after.head()}"


@PROPERTY_SETTINGS
@given(seed=SEEDS, replicate=REPLICATES, levers=LEVERS)
def test_a_child_is_missing_at_most_once_at_a_time(
    sc: Small, seed: int, replicate: int, levers: dict
) -> None:
    """Catches: overlapping missing episodes (two placement processes for one child, or a
    child going missing while already missing) (issue 7 invariant)."""
    _, ev, _ = run(sc, seed, replicate, levers)
    moves = ev[ev["event"].isin(["went_missing", "returned", "not_found"])]
    for _child, events in moves.groupby("child_id")["event"]:
        missing = False
        for name in events:
            if name == "went_missing":
                assert not missing, "went missing while missing"
                missing = True
            else:
                assert missing, f"{name} without a missing episode"
                missing = False


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
    ev = nrm(ev)
    for event in ("cg_decided", "rg_decided", "disqualified", "case_closed"):
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
    referred = nrm(ev).loc[lambda e: e["event"] == "referred", "child_id"]
    by_state = children["final_state"].value_counts()
    assert len(children) == referred.nunique() == int(by_state.sum())
    assert set(children["child_id"]) == set(referred)
    assert (
        children["referrals"] == referred.value_counts().reindex(children["child_id"]).to_numpy()
    ).all()
    assert len(children) == len(m.agents_by_type[Child])


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
    and the placement pools hold exactly the children in care (but those the Home Office houses
    outside care under the IMA). Catches: a backlog metric that misses an exit (or counts a
    closed case), a placement that leaks or double-counts a place."""
    m, ev, children = run(sc, seed, replicate, levers)
    analysis = Analysis(ev, children, m.end_day)
    table = analysis.period_metrics(0.0, m.end_day, "all").set_index("metric")["value"]
    assert table["awaiting_cg"] == m.counts["awaiting_cg"]
    held = sum(pool.in_use for pool in m.placements.values())
    assert held + m.counts["home_office_accommodation"] == m.counts["in_care"]


def test_event_codes_round_trip() -> None:
    """The log stores event codes; every code maps back to its event name."""
    assert [EVENTS[EVENT_CODE[e]] for e in EVENTS] == list(EVENTS)
