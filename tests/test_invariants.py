"""Model-wide invariants (``model/invariants.py``) over real runs, and the checker's own teeth.

1. Short runs of the historical timeline, the status quo to 2027 and two levers must break no
   invariant.
2. Deliberately corrupted logs (a referral dropped, a case closed twice, two events' times
   swapped, a return with no missing episode, ...) must each be caught, by the invariant
   meant to catch them and for the child that was corrupted.
3. The scale profile (``-m scale``, outside the default run): Hypothesis draws every
   parameter's value from its declared range (and the policy choices), with a policy change
   mid-run, and checks every invariant. 1,000 examples (about 1-2 hours on one core)::

       NRMSIM_INVARIANT_EXAMPLES=1000 python -m pytest -m scale tests/test_invariants.py \\
           -p no:cacheprovider -q --hypothesis-show-statistics

   A failure prints the drawn values and ``--hypothesis-seed=N`` to replay it; add
   ``--hypothesis-seed=N`` to the command to rerun the same examples.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from model.invariants import (
    CHECKS,
    Violation,
    _decision_jobs,
    check,
    check_run,
    describe,
    horizon_of,
    prepare,
    schedule_of,
)
from model.params import SCHEMA
from model.runner import RunResult, RunSpec, run_one
from model.scenario import Scenario, TimelineEntry, load_scenario

D = dt.date.fromisoformat


def short(name: str, start: str, end: str) -> Scenario:
    """``name`` from ``start`` to ``end`` with no warm-up (a short run)."""
    sc = load_scenario(name).with_run(start=D(start), end=D(end))
    return replace(sc, warmup_start=None)


RUNS = {
    # crosses the NBA changes of 2023 (objective evidence, POD, amended guidance, hotels)
    "historical": ("historical", "2022-07-01", "2023-12-31"),
    "status_quo_2027": ("status_quo_2027", "2024-10-01", "2025-09-30"),
    # both levers change policy on 2025-04-01, inside the window
    "repeal_nba": ("repeal_nba", "2024-10-01", "2026-03-31"),
    "national_ictg": ("national_ictg", "2024-10-01", "2026-03-31"),
}
_CACHE: dict[str, tuple[Scenario, RunResult]] = {}


def scenario_for(key: str) -> Scenario:
    if key == "short_followup":
        # the baseline for a year with a follow-up of about two months after 18, so that
        # follow-ups end, young adults leave and cases close at the end of the follow-up
        sc = short("baseline", "2024-01-01", "2024-12-31")
        return sc.with_values({"transition.followup_years": 0.15})
    return short(*RUNS[key])


def run(key: str) -> tuple[Scenario, RunResult]:
    if key not in _CACHE:
        sc = scenario_for(key)
        _CACHE[key] = (sc, run_one(RunSpec(sc, 0, keep_events=True)))
    return _CACHE[key]


@pytest.mark.parametrize("key", [*RUNS, "short_followup"])
def test_real_runs_break_no_invariant(key: str) -> None:
    sc, result = run(key)
    violations = check_run(result, sc)
    assert violations == [], describe(violations)


def test_every_invariant_has_a_docstring_naming_what_it_catches() -> None:
    for name, fn in CHECKS.items():
        assert fn.__doc__ and "Catches:" in fn.__doc__, name


# --------------------------------------------------------------------------- teeth
@pytest.fixture(scope="module")
def base() -> tuple[Scenario, RunResult]:
    return run("historical")


def checked(sc: Scenario, ev: pd.DataFrame, ch: pd.DataFrame, summary: pd.DataFrame | None = None):
    return check(
        ev,
        ch,
        summary,
        horizon_day=horizon_of(sc),
        sim_start=sc.sim_start,
        start=sc.start,
        end=sc.end,
        schedule=schedule_of(sc),
    )


def caught(violations: list[Violation], name: str, child: int) -> bool:
    return any(v.name == name and v.child_id == child for v in violations)


def add_row(ev: pd.DataFrame, like: int, **values: object) -> pd.DataFrame:
    """The log with a copy of row ``like`` (values replaced) inserted in time order."""
    row = ev.loc[[like]].copy()
    for column, value in values.items():
        row[column] = (
            value
            if not isinstance(ev[column].dtype, pd.CategoricalDtype)
            else (pd.Categorical([value], categories=ev[column].cat.categories))
        )
    out = pd.concat([ev, row], ignore_index=True)
    return out.sort_values("t_days", kind="stable").reset_index(drop=True)


def rows_of(ev: pd.DataFrame, event: str, **where: object) -> pd.DataFrame:
    mask = (ev["event"] == event) & (ev["child_id"] >= 0) & (ev["episode"] >= 0)
    for column, value in where.items():
        mask &= ev[column] == value
    return ev[mask]


def test_the_uncorrupted_base_log_is_clean(base: tuple[Scenario, RunResult]) -> None:
    sc, r = base
    assert checked(sc, r.events, r.children, r.summary) == []


def test_catches_a_dropped_referral(base: tuple[Scenario, RunResult]) -> None:
    sc, r = base
    ev = r.events
    # a child whose first referral is followed by a decision
    decided = set(rows_of(ev, "rg_decided")["child_id"])
    new = rows_of(ev, "referred", referral_kind="new")
    row = new[new["child_id"].isin(decided)].iloc[0]
    bad = checked(sc, ev.drop(index=row.name), r.children)
    assert caught(bad, "first_event_is_a_new_referral", row.child_id), describe(bad)
    assert caught(bad, "every_episode_opened_once_before_its_events", row.child_id)


def test_catches_a_case_closed_twice(base: tuple[Scenario, RunResult]) -> None:
    sc, r = base
    row = rows_of(r.events, "case_closed").iloc[10]
    ev = add_row(r.events, row.name, t_days=row.t_days + 3.0)
    bad = checked(sc, ev, r.children)
    assert caught(bad, "one_of_each_decision_per_episode", row.child_id), describe(bad)


def test_catches_two_events_with_swapped_times(base: tuple[Scenario, RunResult]) -> None:
    sc, r = base
    ev = r.events.copy()
    rg = rows_of(ev, "rg_decided")
    row = rg[rg["t_days"] > rg["t_days"].min() + 30].iloc[0]
    ref = rows_of(ev, "referred", child_id=row.child_id, episode=row.episode).iloc[0]
    assert ref.t_days < row.t_days
    ev.loc[[ref.name, row.name], "t_days"] = [row.t_days, ref.t_days]
    bad = checked(sc, ev, r.children)
    assert caught(bad, "time_order", row.child_id), describe(bad)


def test_catches_a_return_with_no_missing_episode(base: tuple[Scenario, RunResult]) -> None:
    sc, r = base
    ev = r.events
    missing = set(ev.loc[ev["event"] == "went_missing", "child_id"])
    placed = rows_of(ev, "placed")
    placed = placed[~placed["child_id"].isin(missing)].iloc[0]
    ev = add_row(ev, placed.name, t_days=placed.t_days + 1.0, event="returned", value=1.0)
    bad = checked(sc, ev, r.children)
    assert caught(bad, "one_missing_episode_at_a_time", placed.child_id), describe(bad)


def test_catches_re_trafficking_twice_or_a_placement_while_exploited(
    base: tuple[Scenario, RunResult],
) -> None:
    """A child re-trafficked a second time with no referral in between, and a child placed
    in care while with their exploiters (the two marks of a wait for a place that outlived
    the child's re-trafficking, caught in ``tests/test_care_waits.py``)."""
    sc, r = base
    ev = r.events
    again = rows_of(ev, "re_trafficked")
    again = again[again["reason"] != "after_18"]
    twice = again.iloc[0]
    placed = again[again["child_id"] != twice.child_id].iloc[0]
    ev = add_row(ev, twice.name, t_days=twice.t_days + 0.001)
    ev = add_row(
        ev,
        rows_of(ev, "placed").index[0],
        child_id=placed.child_id,
        episode=placed.episode,
        t_days=placed.t_days + 0.001,
    )
    bad = checked(sc, ev, r.children)
    assert caught(bad, "exploited_until_identified_again", twice.child_id), describe(bad)
    assert caught(bad, "exploited_until_identified_again", placed.child_id), describe(bad)


def test_catches_a_cg_decision_before_the_rg(base: tuple[Scenario, RunResult]) -> None:
    sc, r = base
    ev = r.events.copy()
    cg = rows_of(ev, "cg_decided").iloc[0]
    rg = rows_of(ev, "rg_decided", child_id=cg.child_id, episode=cg.episode).iloc[0]
    ev.loc[rg.name, "positive"] = False  # the RG that let the CG through is now negative
    bad = checked(sc, ev, r.children)
    assert caught(bad, "decisions_follow_the_pathway", cg.child_id), describe(bad)


def test_catches_a_second_case_while_one_is_open(base: tuple[Scenario, RunResult]) -> None:
    sc, r = base
    ev = r.events
    linked = rows_of(ev, "referred", referral_kind="linked")
    if linked.empty:
        pytest.skip("no linked referral in this run")
    row = linked.iloc[0]
    # the linked referral recorded as a repeat that opens a new case
    ev = ev.copy()
    ev.loc[row.name, "referral_kind"] = "repeat"
    ev.loc[row.name, "episode"] = row.episode + 1
    bad = checked(sc, ev, r.children)
    assert caught(bad, "at_most_one_open_case", row.child_id), describe(bad)


def test_catches_two_placements_at_once(base: tuple[Scenario, RunResult]) -> None:
    sc, r = base
    ended = rows_of(r.events, "placement_ended")
    row = ended.iloc[0]
    ev = r.events.drop(index=row.name)  # the first placement never ends; the next overlaps
    placed_again = rows_of(r.events, "placed", child_id=row.child_id)
    bad = checked(sc, ev, r.children)
    if len(placed_again) > 1:
        assert caught(bad, "one_placement_at_a_time", row.child_id), describe(bad)
    row = rows_of(r.events, "placed").iloc[0]
    ev = add_row(r.events, row.name, t_days=row.t_days + 0.5)
    bad = checked(sc, ev, r.children)
    assert caught(bad, "one_placement_at_a_time", row.child_id), describe(bad)


def test_catches_an_event_after_the_follow_up_ended(base: tuple[Scenario, RunResult]) -> None:
    sc, r = base
    row = rows_of(r.events, "turned_18").iloc[0]  # (a short run ends no follow-up)
    ev = add_row(r.events, row.name, t_days=row.t_days + 2.0, event="followup_ended")
    ev = add_row(ev, row.name, t_days=row.t_days + 9.0, event="re_trafficked", reason="after_18")
    bad = checked(sc, ev, r.children)
    assert caught(bad, "nothing_after_followup_ended", row.child_id), describe(bad)


def test_catches_turning_18_twice_or_on_the_wrong_day(base: tuple[Scenario, RunResult]) -> None:
    sc, r = base
    row = rows_of(r.events, "turned_18").iloc[0]
    ev = add_row(r.events, row.name, t_days=row.t_days + 40.0)
    bad = checked(sc, ev, r.children)
    assert caught(bad, "turned_18_once_on_the_birthday", row.child_id), describe(bad)
    ch = r.children.copy()
    ch.loc[ch["child_id"] == row.child_id, "day18"] += 200.0
    bad = checked(sc, r.events, ch)
    assert caught(bad, "turned_18_once_on_the_birthday", row.child_id), describe(bad)


def test_catches_a_guardian_with_no_request(base: tuple[Scenario, RunResult]) -> None:
    sc, r = base
    ev = r.events
    row = rows_of(ev, "guardian_requested").iloc[0]
    bad = checked(sc, ev.drop(index=row.name), r.children)
    assert caught(bad, "guardian_after_request", row.child_id), describe(bad)


def test_catches_a_row_after_the_run_end(base: tuple[Scenario, RunResult]) -> None:
    sc, r = base
    row = rows_of(r.events, "went_missing").iloc[-1]
    ev = r.events.copy()
    ev.loc[row.name, "t_days"] = horizon_of(sc) + 0.5
    bad = checked(sc, ev, r.children)
    assert caught(bad, "within_run", row.child_id), describe(bad)


def test_catches_a_children_table_out_of_step(base: tuple[Scenario, RunResult]) -> None:
    sc, r = base
    ch = r.children.copy()
    i = ch.index[ch["final_state"] == "confirmed"][0]
    child = int(ch.loc[i, "child_id"])
    ch.loc[i, "final_state"] = "awaiting_cg"
    ch.loc[ch.index[0], "referrals"] += 1
    bad = checked(sc, r.events, ch)
    assert caught(bad, "children_table_matches_the_log", child), describe(bad)
    assert caught(bad, "children_table_matches_the_log", int(ch.loc[ch.index[0], "child_id"]))


def test_catches_summary_counts_and_costs_that_disagree(base: tuple[Scenario, RunResult]) -> None:
    sc, r = base
    s = r.summary.copy()
    hit = (s["group_by"] == "all") & (s["metric"] == "missing_episodes") & (s["year"] == 2023)
    s.loc[hit, "value"] += 1
    cost = (s["group_by"] == "sex") & (s["metric"] == "cost_police_cps_gbp")
    s.loc[s.index[cost][0], "value"] += 1000.0
    bad = checked(sc, r.events, r.children, s)
    assert any(v.name == "summary_counts" and "missing_episodes 2023" in v.detail for v in bad)
    assert any(v.name == "cost_by_payer_sums_to_total" for v in bad), describe(bad)
    # and re-trafficking counted with the wrong reason
    ev = r.events.copy()
    rt = rows_of(ev, "re_trafficked", reason="missing")
    if len(rt):
        ev.loc[rt.index[0], "reason"] = "after_18"
        bad = checked(sc, ev, r.children, r.summary)
        assert any(v.name == "summary_counts" and "re_trafficked" in v.detail for v in bad)


def test_catches_a_decision_that_jumps_the_queue(base: tuple[Scenario, RunResult]) -> None:
    """Two CG decisions' times swapped: a case that joined the (congested) queue in mid-run is
    decided when an older case was, ahead of hundreds that joined before it, more than the
    decision-makers in force could be working; and a CG decision moved to the day after the RG,
    before the recovery period let the case join the queue.

    Catches: a queue served out of order (last come first served, a priority the model does
    not define), more cases worked at once than decision-makers, a case that skips the
    recovery period; and a check that only compares decision order (which real runs break:
    work times differ) or ignores the servers in force."""
    sc, r = base
    schedule = schedule_of(sc)
    jobs = _decision_jobs(prepare(r.events, r.children, None, schedule), schedule)
    cg = jobs[jobs["queue"] == "cg"].sort_values("joined")
    b = cg.iloc[len(cg) // 2]
    later = cg[(cg["decided"] > b.joined) & (cg["pos"] != b.pos)]
    a = later.loc[later["decided"].idxmin()]
    assert a.decided < b.decided  # b really is moved earlier
    ev = r.events.copy()
    ev.loc[[a.pos, b.pos], "t_days"] = [b.decided, a.decided]
    ev = ev.sort_values("t_days", kind="stable").reset_index(drop=True)  # times in order
    bad = checked(sc, ev, r.children)
    name = "decisions_first_come_first_served_within_capacity"
    assert caught(bad, name, int(b.child_id)), describe(bad)
    assert "overtook" in next(v.detail for v in bad if v.name == name and v.child_id == b.child_id)
    # a CG decision the day after the positive RG (the recovery period skipped)
    c = cg.iloc[len(cg) // 3]
    rg = rows_of(r.events, "rg_decided", child_id=c.child_id, episode=c.episode).iloc[0]
    ev = r.events.copy()
    ev.loc[c.pos, "t_days"] = rg.t_days + 1.0
    bad = checked(sc, ev, r.children)
    assert any(
        v.name == name and v.child_id == c.child_id and "before the case joined" in v.detail
        for v in bad
    ), describe(bad)


def test_catches_a_placement_beyond_capacity(base: tuple[Scenario, RunResult]) -> None:
    """Children placed in secure homes one after another until there are more than its
    places: the placement that overfills it is caught, the ones before it are not.

    Catches: a placement taken without a free place (``try_take`` or ``take`` ignoring the
    capacity), a give-back lost; and a check off by one (flagging the last free place) or
    counting the wrong placement type."""
    sc, r = base
    ev = r.events
    places = int(schedule_of(sc).places["secure"][0])
    row = rows_of(ev, "placed", placement_type="foster").iloc[len(ev) % 50]
    secure = ev[ev["placement_type"] == "secure"]
    sign = np.where(
        secure["event"] == "placed", 1, np.where(secure["event"] == "placement_ended", -1, 0)
    )
    before = int(sign[secure["t_days"].to_numpy() <= row.t_days].sum())
    n = places - before + 1  # one more than the free places at that moment
    first_new = int(ev["child_id"].max()) + 1
    copies = ev.loc[[row.name] * n].copy()
    copies["child_id"] = np.arange(first_new, first_new + n)
    copies["placement_type"] = pd.Categorical(
        ["secure"] * n, categories=ev["placement_type"].cat.categories
    )
    copies["t_days"] = row.t_days + np.arange(n) * 1e-6
    corrupt = pd.concat([ev, copies], ignore_index=True)
    corrupt = corrupt.sort_values("t_days", kind="stable").reset_index(drop=True)
    bad = checked(sc, corrupt, r.children)
    flagged = {v.child_id for v in bad if v.name == "placements_within_capacity"}
    assert first_new + n - 1 in flagged, describe(bad)
    assert first_new not in flagged and first_new + n - 2 not in flagged


# --------------------------------------------------------------------------- the scale profile
EXAMPLES = int(os.environ.get("NRMSIM_INVARIANT_EXAMPLES", "20"))
BASELINE = load_scenario("baseline")
POLICY_DATE = dt.date(2024, 10, 1)  # the draws' second timeline: a policy change mid-run


def _value_strategy(key: str) -> st.SearchStrategy | None:
    """A value from the parameter's declared range (numbers) or its allowed values
    (choices, booleans); None for parameters without either (shares, dates)."""
    field, entry = SCHEMA[key], BASELINE.entries[key]
    if field.kind == "choice":
        return st.sampled_from(field.choices)
    if field.kind == "bool":
        return st.booleans()
    if entry.range is None or field.kind not in ("float", "int"):
        return None
    low, high = entry.range
    if field.kind == "int":
        return st.integers(math.ceil(low), math.floor(high))
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


DRAWN = {k: s for k in BASELINE.entries if (s := _value_strategy(k)) is not None}
POLICY = [k for k in DRAWN if SCHEMA[k].kind in ("choice", "bool")]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[dict, dict, int]:
    values = {k: draw(s, label=k) for k, s in DRAWN.items()}
    # (a prefix of a permutation: unique lists are often rejected, wasting examples)
    changed = draw(st.permutations(POLICY))[: draw(st.integers(1, 4))]
    mid_run = {k: draw(DRAWN[k], label=f"mid_run:{k}") for k in changed}
    seed = draw(st.integers(0, 2**32 - 1), label="seed")
    return values, mid_run, seed


@pytest.mark.slow
@pytest.mark.scale
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    print_blob=True,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),  # no shrinking: each is a run
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenarios())
def test_invariants_hold_across_every_parameter_range(drawn: tuple[dict, dict, int]) -> None:
    """Every parameter with a declared range drawn inside it, every policy choice and switch
    drawn from its allowed values, and a mid-run policy change (1 October 2024) of 1-4 of them,
    on a six-month baseline run from 1 July 2024 at a seed drawn too."""
    values, mid_run, seed = drawn
    sc = BASELINE.with_run(start=dt.date(2024, 7, 1), end=dt.date(2024, 12, 31), seed=seed)
    sc = sc.with_values(values)
    entry = TimelineEntry(POLICY_DATE, "drawn_policy_change", "assumption", mid_run)
    sc = replace(sc, timeline=(*sc.timeline, entry))
    result = run_one(RunSpec(sc, 0, keep_events=True))
    violations = check_run(result, sc)
    assert violations == [], describe(violations)
    assert np.isfinite(result.summary["value"].dropna()).all()
