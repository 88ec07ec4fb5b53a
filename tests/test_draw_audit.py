"""One uniform, one event: the draw audit over full runs, and what it is there to catch.

The audit (``model.rng.DrawAudit``) records every (table, row, slot) a stage reads, where in
the code and when. Two reads of one slot are the same event when they come from the same line
at the same simulation time (or from a site listed in ``model.rng.REREADS``, a latent draw
asked again on purpose); anything else is one uniform driving two events.

The wrong model these tests catch: a repeat referral that joins an open case restarting care
and guardianship on the case's own uniforms, so a child lost from care is lost again after
exactly the same number of days, again and again while the case stays open (found in the
release of 30 November 2026; it made ``repeal_nba`` look as if it raised re-trafficking).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from model.rng import DrawAudit, StageDraws, Stream
from model.runner import fewer_collections
from model.scenario import Scenario, load_scenario
from model.simulation import SLOTS, Child, NRMModel
from model.stages import care


def audited(scenario: Scenario) -> NRMModel:
    with fewer_collections():
        model = NRMModel(scenario, 0, audit=True)
        model.run()
    return model


@pytest.fixture(scope="module")
def historical_audited() -> NRMModel:
    return audited(load_scenario("historical"))


def linked_referrals(model: NRMModel) -> int:
    ev = model.log.to_frame()
    return int(((ev["event"] == "referred") & (ev["referral_kind"] == "linked")).sum())


def describe(model: NRMModel) -> str:
    assert model.audit is not None
    return "\n".join(str(c) for c in model.audit.conflicts()[:5])


def test_no_uniform_drives_two_events_in_the_historical_run(
    historical_audited: NRMModel,
) -> None:
    model = historical_audited
    assert model.audit is not None
    assert model.audit.n_reads > 1_000_000  # the audit saw the whole run
    assert linked_referrals(model) > 100  # and the referrals that restart processes
    assert model.audit.conflicts() == [], describe(model)


# a lever's run at a third of the volume (referrals and CG capacity alike): the audit checks
# each child's draws, which volume does not change; the historical run above is full size
LEVER_SCALE = {
    "identification.child_referrals_per_year": 0.3,
    "cg_decision.capacity_per_year": 0.3,
    "cg_decision.capacity_after_2025": 0.3,
}


@pytest.mark.parametrize("lever", ["repeal_nba", "national_ictg"])
def test_no_uniform_drives_two_events_under_a_lever(lever: str) -> None:
    model = audited(load_scenario(lever).with_scaled(LEVER_SCALE))
    assert model.audit is not None
    assert linked_referrals(model) > 100
    assert model.audit.conflicts() == [], describe(model)


def test_the_audit_catches_a_restart_that_replays_its_case_draws(
    monkeypatch: pytest.MonkeyPatch, crossing_2023: Scenario
) -> None:
    """The bug of the 30 November release, put back: later referrals reuse the case's row."""

    def replay(self: NRMModel, child: Child) -> tuple[object, object]:
        missing = child.missing_u
        if missing is None:  # never placed: the first referral's missing row
            missing = self.row(Stream.MISSING, child)
        return child.u, missing

    monkeypatch.setattr(NRMModel, "referral_draws", replay)
    sc = crossing_2023.with_values({"retrafficking.rate_per_year_child": 0.5})
    model = audited(sc)
    assert model.audit is not None
    conflicts = model.audit.conflicts()
    assert conflicts, "a replayed care stay went unnoticed"
    sites = {c.second.site[:2] for c in conflicts}
    assert ("care", "start") in sites, sites


def test_audit_rules() -> None:
    """Same line, same time: one event. Another time or another line: two events."""
    now = [0.0]
    audit = DrawAudit(lambda: now[0])
    row = audit.wrap([0.1, 0.2, 0.3], "t", 7)

    def read(i: int) -> float:
        return row[i]

    read(0)
    read(0)  # the same decision asked twice at one instant
    assert audit.conflicts() == []
    now[0] = 5.0
    read(0)  # the same line later: another event on the same draw
    assert len(audit.conflicts()) == 1
    _ = row[1]
    _ = row[1:][0]  # another line, the same slot (a slice keeps absolute slots)
    assert {c.key for c in audit.conflicts()} == {("t", 7, 0), ("t", 7, 1)}
    a, b, c = row  # unpacking reads each slot
    assert (a, b, c) == (0.1, 0.2, 0.3)
    assert ("t", 7, 2) in audit.reads


def test_a_loss_after_a_linked_referral_is_not_a_replay(historical_audited: NRMModel) -> None:
    """With replayed draws, 98% of second or later losses from care after a linked referral
    came the same number of days after the referral as the loss before."""
    ev = historical_audited.log.to_frame()
    ev = ev[ev["event"].isin(["referred", "not_found"])].sort_values(["child_id", "t_days"])
    last_ref = ev["t_days"].where(ev["event"] == "referred").groupby(ev["child_id"]).ffill()
    kind = ev["referral_kind"].astype(object).where(ev["event"] == "referred")
    kind = kind.groupby(ev["child_id"]).ffill()
    lost = ev.assign(delay=ev["t_days"] - last_ref, after=kind)[ev["event"] == "not_found"]
    lost = lost.assign(previous=lost.groupby("child_id")["delay"].shift())
    pairs = lost[(lost["after"] == "linked") & lost["previous"].notna()]
    assert len(pairs) >= 20, len(pairs)
    same = np.isclose(pairs["delay"], pairs["previous"], rtol=0, atol=1e-9)
    assert same.mean() < 0.05, pairs[same].head()


def test_missing_prone_is_a_trait_of_the_child(crossing_2023: Scenario) -> None:
    """The same draw decides missing-proneness at every referral, whether a repeat referral
    opens a new case or joins the open one (a per-episode draw would make a child prone in
    one case and not the next)."""
    sc = crossing_2023.with_run(end=dt.date(2023, 6, 30)).with_values(
        {"retrafficking.rate_per_year_child": 0.5}
    )
    with fewer_collections():
        model = NRMModel(sc, 0)
        model.run()
    first_rows = StageDraws(model.streams, SLOTS)
    a, _b = first_rows.offsets[Stream.CARE]
    repeats = [c for c in model.agents_by_type[Child] if c.episode > 0]
    assert len(repeats) > 20
    for child in repeats:
        assert child.missing_prone_u == first_rows.row(child.index)[a + care.PRONE_SLOT]


def test_a_repeat_referral_draws_the_same_whatever_other_children_did() -> None:
    """Later referrals are keyed by (child, referral number), not by how many repeats came
    before in the run: the n-th referral of a child gets the same row in any scenario."""
    sc = load_scenario("baseline")
    one, two = NRMModel(sc, 0), NRMModel(sc.with_values({"care.moves_per_year": 0.1}), 0)
    child_one, child_two = Child(one, 12), Child(two, 12)
    child_one.n_referrals = child_two.n_referrals = 3
    row_one, _ = one.referral_draws(child_one)
    row_two, _ = two.referral_draws(child_two)
    assert list(row_one) == list(row_two)
    child_two.n_referrals = 4
    assert list(two.referral_draws(child_two)[0]) != list(row_one)


def test_children_re_trafficked_counts_children_not_events(crossing_2023: Scenario) -> None:
    """``children_re_trafficked`` is the number of distinct children with a re-trafficking
    event before 18 in the year; ``re_trafficked`` counts the events. Wrong models caught: the
    new metric counting events (equal to ``re_trafficked`` whenever a child is re-trafficked
    twice), or counting adults' events."""
    from model.runner import RunSpec, run_one

    sc = crossing_2023.with_values({"retrafficking.rate_per_year_child": 0.5})
    spec = RunSpec(
        sc,
        0,
        keep_events=True,
        group_bys=("all",),
        metrics=("re_trafficked", "children_re_trafficked"),
    )
    result = run_one(spec)
    ev = result.events
    assert ev is not None
    rows = result.summary.set_index(["year", "metric"])["value"]
    day0 = sc.sim_start
    rt = ev[(ev["event"] == "re_trafficked") & (ev["reason"] != "after_18")]
    year = (pd.Timestamp(day0) + pd.to_timedelta(rt["t_days"], unit="D")).dt.year
    for y in (2023,):
        mine = rt[year == y]
        assert rows[(y, "re_trafficked")] == len(mine)
        assert rows[(y, "children_re_trafficked")] == mine["child_id"].nunique()
        assert mine["child_id"].nunique() < len(mine)  # some children twice: not vacuous
