"""What the remaining levers do to children already in the system on their date.

Continues ``tests/test_levers_reach.py``: each lever scenario states in a ``[[mechanism]]``
note what happens on its date to children already in the system, and each test here holds
the model to that note (its docstring names the wrong model it would catch).

To keep each test a few seconds the runs start cold on 2024-01-01 (no warm-up: fifteen
months of referrals fill the queues and placements before the date) and end a few months after
the lever date. Runs of a lever and of its status quo share the scenario seed and replicate 0,
so everything before the date is identical (common random numbers). A snapshot of every child
is taken just before the lever applies (``Run.at_date``), so "a child waiting on the date" is
read from the model's own state, not inferred from events. Parameters a test relies on are set
explicitly with ``with_values``, never taken from the fitted baseline.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import pandas as pd
import pytest

from model.agents import OPEN_STATES, Child
from model.runner import fewer_collections
from model.scenario import Scenario, load_scenario
from model.simulation import NRMModel, children_frame
from model.stages.identification import LocalAuthorities

START = dt.date(2024, 1, 1)
DATE = dt.date(2025, 4, 1)
END = dt.date(2025, 6, 30)
EPS = 1e-6
SNAPSHOT = (
    "episode",
    "state",
    "route",
    "in_care",
    "placement_type",
    "seeking_placement",
    "in_adult_settings",
    "age_assessed_at",
    "guardian_kind",
    "adult",
)


@dataclass(frozen=True)
class Run:
    ev: pd.DataFrame  # the event log
    children: pd.DataFrame  # one row per child (``children_frame``)
    at_date: pd.DataFrame  # each child's state just before the lever applies, by child_id
    day: float  # the lever date as a simulation day
    las: LocalAuthorities  # the run's local authorities (ICTG and pilot rollout order)


def cold(scenario: Scenario, end: dt.date = END) -> Scenario:
    """The scenario run from ``START`` without its warm-up, to ``end``."""
    return replace(scenario.with_run(start=START, end=end), warmup_start=None)


def run(scenario: Scenario, end: dt.date = END) -> Run:
    """Replicate 0 of ``scenario`` started cold, with a snapshot of every child just before
    the lever date (timeline changes on a day apply first that day, so ``until=day`` stops
    before them)."""
    with fewer_collections():
        model = NRMModel(cold(scenario, end), 0)
        day = model.calendar.day(DATE)
        model.env.run(until=day)
        rows = [
            (c.unique_id, *(getattr(c, a) for a in SNAPSHOT))
            for c in model.agents_by_type.get(Child, ())
        ]
        at_date = pd.DataFrame(rows, columns=["child_id", *SNAPSHOT]).set_index("child_id")
        model.run()
    return Run(model.log.to_frame(), children_frame(model), at_date, day, model.local_authorities)


@pytest.fixture(scope="module")
def status_quo() -> Run:
    return run(load_scenario("status_quo_2027"))


def events(r: Run, name: str) -> pd.DataFrame:
    return r.ev[r.ev["event"] == name]


def opened_before(r: Run) -> pd.MultiIndex:
    """(child_id, episode) of the cases opened before the date."""
    refs = events(r, "referred")
    refs = refs[(refs["t_days"] < r.day) & ~refs["linked"].astype(bool)]
    return pd.MultiIndex.from_frame(refs[["child_id", "episode"]].drop_duplicates())


def on_cases(frame: pd.DataFrame, cases: pd.MultiIndex) -> pd.DataFrame:
    return frame[pd.MultiIndex.from_frame(frame[["child_id", "episode"]]).isin(cases)]


def first_by_case(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop_duplicates(["child_id", "episode"]).set_index(["child_id", "episode"])


# ------------------------------------------------------------------ repeal_nba(_full)
POD_CERTAIN = {
    "disqualification.p_considered_if_criminalised": 1.0,
    "disqualification.p_if_considered_revised": 1.0,
}


def test_repeal_nba_decides_open_cases_under_the_pre_nba_test() -> None:
    """``repeal_nba``: a case referred before the date whose RG comes from the date is
    decided under the pre-NBA test and is not disqualified (every considered case would be
    disqualified under s.63 here). Wrong model caught: the regime and disqualification policy
    fixed at referral, so open cases keep the NBA test and s.63 after the repeal."""
    lever = run(load_scenario("repeal_nba").with_values(POD_CERTAIN))
    quo = run(load_scenario("status_quo_2027").with_values(POD_CERTAIN))
    for r, regime, disqualify in ((lever, "pre_nba", False), (quo, "nba_amended", True)):
        old = opened_before(r)
        rg = on_cases(events(r, "rg_decided"), old)
        rg = rg[rg["t_days"] >= r.day]
        assert len(rg) > 100, len(rg)
        assert (rg["regime"].astype(str) == regime).all()
        dq = on_cases(events(r, "disqualified"), old)
        assert (int((dq["t_days"] >= r.day).sum()) > 0) == disqualify


def test_repeal_nba_keeps_recovery_periods_already_running() -> None:
    """``repeal_nba``: a recovery period that started before the date keeps its 30 days; one
    starting from the date lasts 45. CG capacity is made ample so the CG follows the recovery
    period within days. Wrong model caught: the recovery length read when the period ends, so
    periods running on the date are stretched to 45 days (or new ones stay at 30)."""
    ample = {"cg_decision.capacity_multiplier": 20.0, "cg_decision.mean_work_days": 1.0}
    r = run(load_scenario("repeal_nba").with_values(ample), end=dt.date(2025, 7, 31))
    nation = r.children.set_index("child_id")["nation"].astype(str)
    rg = first_by_case(events(r, "rg_decided"))
    rg = rg[rg["positive"].astype(bool) & (rg["route"].astype(str) == "home_office")]
    rg = rg[nation.reindex(rg.index.get_level_values("child_id")).to_numpy() != "scotland"]
    cg = first_by_case(events(r, "cg_decided"))["t_days"]
    both = rg.index.intersection(cg.index)
    gap = cg.loc[both] - rg.loc[both, "t_days"]
    t_rg = rg.loc[both, "t_days"]
    running = gap[(t_rg < r.day) & (t_rg >= r.day - 30)]
    new = gap[t_rg >= r.day]
    assert len(running) > 20 and len(new) > 50, (len(running), len(new))
    assert running.min() >= 30 - EPS
    assert running.max() < 45
    assert new.min() >= 45 - EPS


def test_repeal_nba_full_decides_open_cases_under_the_pre_nba_cg_standard() -> None:
    """``repeal_nba_full``: cases awaiting their CG on the date are decided under the
    pre-2023 CG standard (here certain to be positive, the NBA-era one certain to be
    negative). Wrong model caught: the CG standard fixed at referral or at the RG, so cases
    already open are still decided under the 2023 standard."""
    rates = {
        "cg_decision.p_positive_pre_nba": 1.0,
        "cg_decision.p_positive_nba": 0.0,
        "devolved_pilot.cg_odds_ratio": 1.0,
    }
    r = run(load_scenario("repeal_nba_full").with_values(rates))
    cg = on_cases(events(r, "cg_decided"), opened_before(r))
    before, after = cg[cg["t_days"] < r.day], cg[cg["t_days"] >= r.day]
    assert len(before) > 100 and len(after) > 100, (len(before), len(after))
    assert not before["positive"].astype(bool).any()
    assert after["positive"].astype(bool).all()
    assert (after["regime"].astype(str) == "pre_nba").all()


# ------------------------------------------------------------------ ictg_all_separated
def test_ictg_all_separated_reaches_separated_children_already_open() -> None:
    """``ictg_all_separated``: separated children with an open case and no guardian on the
    date, in areas the service already covered (so offered at referral and not referred then),
    are referred as at a coverage expansion; with the share at 0 only new referrals are.
    Wrong model caught: eligibility tested only at referral, so the children the lever is
    about (separated, already open, not referred) never reach a guardian."""
    lever = load_scenario("ictg_all_separated")
    share_before = [
        t.changes["guardianship.ictg_coverage_share"]
        for t in lever.timeline
        if t.date < DATE and "guardianship.ictg_coverage_share" in t.changes
    ][-1]

    def reached_without_referral(share: float) -> tuple[int, int]:
        """Children open on the date as above who ask for a guardian from the date with no
        referral of their own since."""
        r = run(
            lever.with_values(
                {
                    "guardianship.rollout_share_existing_referred": share,
                    "guardianship.rollout_mean_days_to_refer_existing": 20.0,
                }
            ),
            end=dt.date(2025, 5, 31),
        )
        kids = r.children.set_index("child_id")
        snap = r.at_date.join(kids[["nation", "local_authority", "has_parental_responsibility"]])
        covered = snap["local_authority"].map(lambda la: r.las.ictg_covered(la, share_before))
        eligible = snap[
            snap["state"].isin(OPEN_STATES)
            & ~snap["adult"]
            & (snap["guardian_kind"] == "")
            & snap["nation"].astype(str).isin(["england", "wales"])
            & ~snap["has_parental_responsibility"]
            & covered
        ].index
        refs = events(r, "referred")
        referred_since = refs.loc[refs["t_days"] >= r.day, "child_id"]
        asked = events(r, "guardian_requested")
        asked = asked.loc[asked["t_days"] >= r.day, "child_id"]
        asked = asked[asked.isin(eligible) & ~asked.isin(referred_since)]
        return len(eligible), int(asked.nunique())

    eligible, reached = reached_without_referral(1.0)
    assert eligible > 50, eligible
    assert reached > eligible / 2, (eligible, reached)
    assert reached_without_referral(0.0)[1] == 0


# ------------------------------------------------------------------ devolve_all_no_exclusion
def test_devolve_all_no_exclusion_keeps_open_cases_near_18_with_the_home_office() -> None:
    """``devolve_all_no_exclusion``: the route is chosen at referral, so a case opened before
    the date that the 100-day rule kept with the Home Office is still decided there, while
    children within 100 days of 18 referred from the date go to panels. Wrong model caught:
    removing the exclusion re-routes open cases near 18 to panels (or does not reach new ones)."""
    r = run(load_scenario("devolve_all_no_exclusion"))
    day18 = r.children.set_index("child_id")["day18"]
    refs = events(r, "referred")
    refs = refs[~refs["linked"].astype(bool)]
    near18 = (day18.reindex(refs["child_id"]).to_numpy() - refs["t_days"].to_numpy()) <= 100
    old = refs[near18 & (refs["t_days"] < r.day)]
    old_cases = pd.MultiIndex.from_frame(old[["child_id", "episode"]])
    decided = r.ev[r.ev["event"].isin(["rg_decided", "cg_decided"])]
    decided = on_cases(decided[decided["t_days"] >= r.day], old_cases)
    assert len(decided) > 20, len(decided)
    assert (decided["route"].astype(str) == "home_office").all()
    new = refs[near18 & (refs["t_days"] >= r.day)]
    assert len(new) > 20, len(new)
    assert (new["route"].astype(str) == "devolved_pilot").mean() > 0.5


# ------------------------------------------------------------------ reconsideration_three_months
def test_reconsideration_window_is_read_at_the_negative_decision() -> None:
    """``reconsideration_three_months``: negatives from the date get three months to ask,
    earlier negatives keep the one-month window (none is reopened) and their requests are
    those of the status quo. Every negative is asked about, with 45 days' preparation on
    average, so many requests need more than a month. Wrong model caught: the window read at
    the request (reopening negatives whose month had run out) or at referral (no longer
    window for open cases decided negative from the date)."""
    ask = {
        "reconsideration.p_request_rg": 1.0,
        "reconsideration.p_request_cg": 1.0,
        "reconsideration.mean_days_to_prepare": 45.0,
    }
    end = dt.date(2025, 8, 31)
    lever = run(load_scenario("reconsideration_three_months").with_values(ask), end=end)
    quo = run(load_scenario("status_quo_2027").with_values(ask), end=end)

    def requests(r: Run) -> pd.DataFrame:
        """Each request with the time of the negative decision it asks about."""
        neg = []
        for kind in ("rg", "cg"):
            dec = events(r, f"{kind}_decided")
            dec = dec[~dec["positive"].astype(bool)][["child_id", "episode", "t_days"]]
            neg.append(dec.assign(decision_type=kind).drop_duplicates(["child_id", "episode"]))
        req = events(r, "reconsideration_requested")[
            ["child_id", "episode", "decision_type", "t_days"]
        ].astype({"decision_type": str})
        return req.merge(
            pd.concat(neg), on=["child_id", "episode", "decision_type"], suffixes=("", "_neg")
        )

    one_month_from = lever.day - (DATE - dt.date(2024, 2, 1)).days  # the window since Feb 2024
    req = requests(lever)
    before = req[req["t_days_neg"].between(one_month_from, lever.day - EPS)]
    after = req[req["t_days_neg"] >= lever.day]
    assert len(before) > 100 and len(after) > 100, (len(before), len(after))
    assert (before["t_days"] - before["t_days_neg"]).max() <= 30 + EPS
    late = (after["t_days"] - after["t_days_neg"]).between(30 + EPS, 91 + EPS)
    assert late.sum() > 20, late.sum()
    assert (after["t_days"] - after["t_days_neg"]).max() <= 91 + EPS
    base = requests(quo)
    base = base[base["t_days_neg"].between(one_month_from, quo.day - EPS)]
    key = ["child_id", "episode", "decision_type", "t_days"]
    assert (
        before[key]
        .sort_values(key)
        .reset_index(drop=True)
        .equals(base[key].sort_values(key).reset_index(drop=True))
    )


# ------------------------------------------------------------------ legal_aid
def test_legal_aid_reaches_referrals_from_the_date_only(status_quo: Run) -> None:
    """``legal_aid``: advice is offered at referral, so only cases referred from the date are
    advised; cases awaiting their RG on the date are decided as in the status quo (same time,
    same outcome) even with advice made certain and decisive. Wrong model caught: advice given
    to every case decided from the date (or read at the RG decision)."""
    strong = {"legal_aid.p_take_up": 1.0, "legal_aid.rg_positive_odds_ratio": 50.0}
    r = run(load_scenario("legal_aid").with_values(strong))
    advice = events(r, "legal_advice")
    assert len(advice) > 100, len(advice)
    assert (advice["t_days"] >= r.day).all()
    assert (
        not pd.MultiIndex.from_frame(advice[["child_id", "episode"]]).isin(opened_before(r)).any()
    )

    def old_rg(run_: Run) -> pd.DataFrame:
        rg = on_cases(events(run_, "rg_decided"), opened_before(run_))
        return first_by_case(rg[rg["t_days"] >= run_.day])[["t_days", "positive"]]

    lever_rg, quo_rg = old_rg(r), old_rg(status_quo)
    assert len(lever_rg) > 100, len(lever_rg)
    assert lever_rg.sort_index().equals(quo_rg.sort_index())
    # the lever does act on referrals from the date: their RGs are nearly all positive
    new = events(r, "rg_decided")
    new = on_cases(new, pd.MultiIndex.from_frame(advice[["child_id", "episode"]]))
    assert new["positive"].astype(bool).mean() > 0.9


# ------------------------------------------------------------------ earlier_identification
def test_earlier_identification_leaves_referred_children_alone(status_quo: Run) -> None:
    """``earlier_identification``: the campaign acts on the unidentified pool from the date;
    children already referred are unaffected: their RG decisions from the date come at the
    same time with the same outcome as in the status quo (they are ahead of the extra
    referrals in the queue). Wrong model caught: the multiplier applied to children already
    in the system (re-deciding or re-timing their cases) or not acting on referrals at all."""
    r = run(load_scenario("earlier_identification"))

    def old_rg(run_: Run) -> pd.DataFrame:
        rg = on_cases(events(run_, "rg_decided"), opened_before(run_))
        return first_by_case(rg[rg["t_days"] >= run_.day])[["t_days", "positive"]]

    lever_rg, quo_rg = old_rg(r), old_rg(status_quo)
    assert len(lever_rg) > 100, len(lever_rg)
    assert lever_rg.sort_index().equals(quo_rg.sort_index())

    def new_children(run_: Run) -> int:
        refs = events(run_, "referred")
        refs = refs[(refs["t_days"] >= run_.day) & ~refs["is_repeat"].astype(bool)]
        return len(refs)

    assert new_children(r) > 1.05 * new_children(status_quo)
