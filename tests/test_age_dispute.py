"""Age-disputed children: housed as adults until a local authority assesses them.

Each test names the wrong model it catches.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from model.runner import fewer_collections
from model.scenario import Scenario, load_scenario
from model.simulation import NRMModel, children_frame

DISPUTED = {"age_dispute.p_disputed": 0.3}


def run(scenario: Scenario) -> tuple[pd.DataFrame, pd.DataFrame, NRMModel]:
    with fewer_collections():
        model = NRMModel(scenario, 0)
        model.run()
    return model.log.to_frame(), children_frame(model), model


@pytest.fixture(scope="module")
def historical_disputed() -> tuple[pd.DataFrame, pd.DataFrame, NRMModel]:
    sc = load_scenario("historical").with_run(end=dt.date(2024, 12, 31))
    return run(sc.with_values(DISPUTED))


def first_time(ev: pd.DataFrame, event: str) -> pd.Series:
    return ev[ev["event"] == event].groupby("child_id")["t_days"].min()


def test_only_eligible_children_are_disputed_at_the_declared_rate(
    historical_disputed: tuple[pd.DataFrame, pd.DataFrame, NRMModel],
) -> None:
    """Catches: disputes for UK children, children with a parent, or younger children; a
    rate that ignores ``p_disputed``."""
    _ev, children, _ = historical_disputed
    disputed = children[children["age_disputed"]]
    assert len(disputed) > 200
    assert (disputed["nationality_group"] != "uk").all()
    assert (~disputed["has_parental_responsibility"]).all()
    assert disputed["arrived_irregularly"].all()
    assert (disputed["age_years_at_first_referral"] >= 15).all()
    eligible = children[
        (children["nationality_group"] != "uk")
        & ~children["has_parental_responsibility"]
        & children["arrived_irregularly"]
        & (children["age_years_at_first_referral"] >= 15)
    ]
    share = len(disputed) / len(eligible)
    se = np.sqrt(0.3 * 0.7 / len(eligible))
    assert abs(share - 0.3) < 4 * se, share


def test_housed_as_adults_until_assessed(
    historical_disputed: tuple[pd.DataFrame, pd.DataFrame, NRMModel],
) -> None:
    """Catches: a disputed child placed in care before the assessment finds a child, or a
    child found to be an adult placed at all before 18; a finding rate off p_found_child."""
    ev, _children, model = historical_disputed
    assessed = ev[ev["event"] == "age_assessed"].groupby("child_id").first()
    placed = first_time(ev, "placed")
    disputed_at = first_time(ev, "age_disputed")
    both = placed.index.intersection(disputed_at.index)
    before = placed.loc[both] < assessed["t_days"].reindex(both).fillna(np.inf)
    assert not before.any(), both[before.to_numpy()][:5]
    found_adult = assessed.index[~assessed["positive"].astype(bool)]
    assert not placed.index.isin(found_adult).any()
    found = assessed["positive"].astype(bool).mean()
    p = model.params.age_dispute.p_found_child
    assert abs(found - p) < 4 * np.sqrt(p * (1 - p) / len(assessed)), found
    # and children found to be children are looked after as others are
    found_child = assessed.index[assessed["positive"].astype(bool)]
    assert placed.index.isin(found_child).sum() > 20


def test_disputed_children_are_excluded_from_the_devolved_pilot(
    historical_disputed: tuple[pd.DataFrame, pd.DataFrame, NRMModel],
) -> None:
    """Catches: the pilot's exclusion of age-disputed young people not applied."""
    ev, children, _ = historical_disputed
    first = ev[(ev["event"] == "referred") & (ev["referral_kind"] == "new")]
    route = first.set_index("child_id")["route"].astype(str)
    disputed = children.loc[children["age_disputed"], "child_id"]
    assert (route.loc[disputed] == "home_office").all()
    # not vacuous: comparable children in pilot areas do go to panels
    similar = children.loc[
        ~children["age_disputed"]
        & (children["nationality_group"] != "uk")
        & (children["age_years_at_first_referral"] >= 15),
        "child_id",
    ]
    assert (route.loc[similar] == "devolved_pilot").sum() > 20


def test_benefit_of_the_doubt_removes_time_in_adult_settings() -> None:
    """Catches: a lever that does not act (flag ignored), or one that also changes who is
    disputed or how assessments turn out (the same draws decide both in either scenario)."""
    end = dt.date(2025, 12, 31)
    # a third of the volume (referrals and CG capacity alike): the test follows each child
    scale = {
        "identification.child_referrals_per_year": 0.3,
        "cg_decision.capacity_per_year": 0.3,
        "cg_decision.capacity_after_2025": 0.3,
    }
    lever, quo = (
        load_scenario(name).with_scaled(scale).with_run(end=end).with_values(DISPUTED)
        for name in ("age_assessment_safeguards", "status_quo_2027")
    )
    ev_l, _, model = run(lever)
    ev_q, _, _ = run(quo)
    day = model.calendar.day(dt.date(2025, 4, 1))

    def after(ev: pd.DataFrame, event: str) -> pd.DataFrame:
        return ev[(ev["event"] == event) & (ev["t_days"] >= day)]

    disputed_l, disputed_q = after(ev_l, "age_disputed"), after(ev_q, "age_disputed")
    assert len(disputed_l) > 50
    assert set(disputed_l["child_id"]) == set(disputed_q["child_id"])
    assert (disputed_l["reason"] == "care_pending_assessment").all()
    assert (disputed_q["reason"] == "adult_settings").all()
    found_l = after(ev_l, "age_assessed").set_index("child_id")["positive"]
    found_q = after(ev_q, "age_assessed").set_index("child_id")["positive"]
    common = found_l.index.intersection(found_q.index)
    assert (found_l.loc[common] == found_q.loc[common]).all()
    # under the lever only those found to be adults are housed as adults, from the finding
    entered = after(ev_l, "adult_settings_entered")
    entered = entered[entered["child_id"].isin(disputed_l["child_id"])]
    assert (entered["reason"] == "found_adult").all()
