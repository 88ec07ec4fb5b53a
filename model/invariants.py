"""Model-wide invariants of any run, checked over its event log and children table.

Each invariant is written from the pathway as README.md and DESIGN.md describe it (a referral
opens a case; the RG decision comes first; a CG decision needs a positive RG or an overturned
one; reconsideration is decided only after it is requested; a case closes once; a child is in
at most one placement and at most one missing episode at a time; ...), not from the code that
writes the log, so a stage that breaks the pathway shows up here even if its own records agree
with themselves. Each check's docstring names the wrong model it would catch.

``check(events, children, summary, ...)`` returns a list of ``Violation``s (empty when the run
respects every invariant). It is vectorised (pandas groupby and numpy over the whole log), so a
full 2013-2024 historical replicate (about half a million rows) is checked in a few seconds::

    from model.invariants import check_run
    result = run_one(RunSpec(scenario, 0, keep_events=True))
    assert check_run(result, scenario) == []

Positions in the log matter as well as times: the log is sorted by time (stably), so events at
the same moment keep the order they happened in (a move records the old placement's end, the
move, then the new placement).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from model.results import PAYER_METRICS, REGISTRY, year_periods

if TYPE_CHECKING:
    from model.runner import RunResult
    from model.scenario import Scenario

DAY = 1.0  # birthdays and follow-up ends are handled at the first midnight after them
EPS = 1e-9
OPEN_STATES = ("awaiting_rg", "awaiting_reconsideration", "awaiting_cg")
EXPLOITER = ("investigation_opened", "charged", "prosecution_completed", "convicted")
DECISIONS = (
    "rg_decided",
    "cg_decided",
    "disqualified",
    "reconsideration_requested",
    "reconsideration_decided",
)


@dataclass(frozen=True)
class Violation:
    """One broken invariant: its name, the child (-1 for run-level checks) and what was seen."""

    name: str
    child_id: int
    detail: str


@dataclass
class Log:
    """The log prepared once for every check."""

    ev: pd.DataFrame  # every row, with ``pos`` (row position) and ``event`` as str
    nrm: pd.DataFrame  # rows of NRM children (child_id >= 0, episode >= 0)
    kids: pd.DataFrame  # rows of any child (NRM and never-referred hotel children)
    children: pd.DataFrame | None
    day18: pd.Series | None  # by child_id
    horizon_day: float | None
    schedule: Schedule | None = None  # what the scenario puts in force (queue checks)


@dataclass(frozen=True)
class Schedule:
    """What the scenario puts in force, as step functions of the simulation day: step ``k``
    holds from ``days[k]`` (the first is 0) to the next. Built by ``schedule_of``.

    Attributes:
        servers: decision queue (``rg``, ``cg``, ``devolved_pilot``) -> decision-makers.
        places: placement type -> places (``care.capacity_*``).
        rg_evidence_days: days a Home Office RG case waits for evidence before it joins the
            queue (``extra_days_objective_evidence`` under ``nba_objective``, else 0).
        recovery_days, recovery_days_scotland: the minimum recovery period before a CG case
            joins the queue.
        home_office_accommodation: whether the Illegal Migration Act's Home Office housing
            (logged as ``hotel`` but outside the hotel places) can happen in the step.
    """

    days: np.ndarray
    servers: dict[str, np.ndarray]
    places: dict[str, np.ndarray]
    rg_evidence_days: np.ndarray
    recovery_days: np.ndarray
    recovery_days_scotland: np.ndarray
    home_office_accommodation: np.ndarray

    def step(self, t: np.ndarray) -> np.ndarray:
        """Index of the step in force at each time (a change applies from its day on)."""
        return np.clip(np.searchsorted(self.days, t + EPS, side="right") - 1, 0, None)


Check = Callable[[Log], list[Violation]]
CHECKS: dict[str, Check] = {}


def invariant(fn: Check) -> Check:
    CHECKS[fn.__name__.removeprefix("_")] = fn
    return fn


def _violations(name: str, rows: pd.DataFrame, detail: Callable[[Any], str]) -> list[Violation]:
    return [Violation(name, int(r.child_id), detail(r)) for r in rows.itertuples(index=False)]


def _row(r: Any) -> str:
    """A log row in a few words."""
    ep = getattr(r, "episode", "?")
    return f"{r.event} at t={r.t_days:.3f} (episode {ep}, row {r.pos})"


def _is(frame: pd.DataFrame, *names: str) -> np.ndarray:
    return frame["event"].isin(names).to_numpy()


def _col(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A categorical or boolean column as plain objects (missing values as '')."""
    if column not in frame.columns:
        return np.full(len(frame), "", dtype=object)
    return frame[column].astype(object).where(frame[column].notna(), "").to_numpy()


def _positive(frame: pd.DataFrame) -> np.ndarray:
    return frame["positive"].astype("boolean").fillna(False).to_numpy(bool)


def _first_pos(frame: pd.DataFrame, mask: np.ndarray, keys: Sequence[str]) -> pd.Series:
    """Position of the first row matching ``mask`` per key (keys absent: no such row)."""
    return frame[mask].groupby(list(keys), observed=True)["pos"].min()


def _lookup(series: pd.Series, frame: pd.DataFrame, keys: Sequence[str]) -> np.ndarray:
    """``series`` (indexed by keys) read at each row of ``frame``; NaN where absent."""
    if len(keys) == 1:
        index: Any = pd.Index(frame[keys[0]])
    else:
        index = pd.MultiIndex.from_frame(frame[list(keys)])
    return series.reindex(index).to_numpy(dtype=float)


def _alternation(
    name: str,
    frame: pd.DataFrame,
    opens: Sequence[str],
    closes: Sequence[str],
    may_stay_open: bool = True,
) -> list[Violation]:
    """Per child, rows in ``opens`` and ``closes`` alternate, starting with an open."""
    rows = frame[_is(frame, *opens, *closes)]
    if rows.empty:
        return []
    sign = np.where(rows["event"].isin(opens).to_numpy(), 1, -1)
    child = rows["child_id"].to_numpy()
    new_child = np.r_[True, child[1:] != child[:-1]]
    prev = np.r_[0, sign[:-1]]
    prev[new_child] = -1  # before a child's first row: closed
    bad = sign == prev
    return _violations(
        name,
        rows[bad],
        lambda r: (
            f"{_row(r)}: "
            + (
                f"a second {'/'.join(opens)} while one is open"
                if r.event in opens
                else f"{r.event} with none open"
            )
        ),
    )


# --------------------------------------------------------------------------- time
@invariant
def _time_order(log: Log) -> list[Violation]:
    """Per child, times never go backwards along the log.

    Catches: an event recorded with a stale or future clock (a ``record_at`` with the wrong
    time, a callback that fires at the wrong moment), a log sorted or merged wrongly."""
    k = log.kids
    t = k["t_days"].to_numpy()
    child = k["child_id"].to_numpy()
    same = np.r_[False, child[1:] == child[:-1]]
    back = same & (t < np.r_[-np.inf, t[:-1]] - EPS)
    return _violations("time_order", k[back], lambda r: f"{_row(r)} comes after a later event")


@invariant
def _within_run(log: Log) -> list[Violation]:
    """Every row is inside the run: 0 <= t < the run's end day.

    Catches: a process that keeps logging after the run end (a horizon off by one), a negative
    delay (an exponential drawn with the wrong sign)."""
    ev = log.ev
    t = ev["t_days"].to_numpy()
    bad = (t < 0) | ~np.isfinite(t)
    if log.horizon_day is not None:
        bad |= t >= log.horizon_day
    return _violations("within_run", ev[bad], lambda r: f"{_row(r)} outside [0, {log.horizon_day})")


# --------------------------------------------------------------------------- referrals, cases
def _openings(nrm: pd.DataFrame) -> pd.DataFrame:
    kind = _col(nrm, "referral_kind")
    return nrm[_is(nrm, "referred") & np.isin(kind, ["new", "repeat"])]


@invariant
def _first_event_is_a_new_referral(log: Log) -> list[Violation]:
    """A child's first row is a ``referred`` row of kind ``new`` in episode 0.

    Catches: a child agent created without a referral, something happening to a child before
    anyone referred them (a placement or a guardian started at creation), a first referral
    logged as a repeat."""
    nrm = log.nrm
    first = nrm.drop_duplicates("child_id")
    kind = _col(first, "referral_kind")
    ok = _is(first, "referred") & (kind == "new") & (first["episode"].to_numpy() == 0)
    return _violations(
        "first_event_is_a_new_referral", first[~ok], lambda r: f"first row is {_row(r)}"
    )


@invariant
def _every_episode_opened_once_before_its_events(log: Log) -> list[Violation]:
    """Every episode has exactly one opening referral (``new`` for episode 0, ``repeat`` after),
    episodes are numbered 0, 1, 2, ... in time order, and every row of an episode (a decision,
    a closure, a linked referral) comes after the referral that opened it.

    Catches: a decision before its referral, a repeat referral that does not open a new case or
    opens two, an event written to the wrong episode (a stale ``episode`` after a repeat
    referral), an episode number skipped or reused."""
    nrm = log.nrm
    out: list[Violation] = []
    op = _openings(nrm)
    kind = _col(op, "referral_kind")
    wrong_kind = (op["episode"].to_numpy() == 0) != (kind == "new")
    out += _violations(
        "every_episode_opened_once_before_its_events",
        op[wrong_kind],
        lambda r: f"{_row(r)} has referral kind {r.referral_kind}",
    )
    dup = op.duplicated(["child_id", "episode"])
    out += _violations(
        "every_episode_opened_once_before_its_events",
        op[dup],
        lambda r: f"second opening referral of the episode: {_row(r)}",
    )
    # episodes 0..k in order
    first = op[~dup]
    ep = first["episode"].to_numpy()
    child = first["child_id"].to_numpy()
    new_child = np.r_[True, child[1:] != child[:-1]]
    expected = np.where(new_child, 0, np.r_[0, ep[:-1]] + 1)
    out += _violations(
        "every_episode_opened_once_before_its_events",
        first[ep != expected],
        lambda r: f"episode {r.episode} opened out of sequence: {_row(r)}",
    )
    opened = first.set_index(["child_id", "episode"])["pos"]
    at = _lookup(opened, nrm, ["child_id", "episode"])
    before = np.isnan(at) | (nrm["pos"].to_numpy() < at)
    out += _violations(
        "every_episode_opened_once_before_its_events",
        nrm[before],
        lambda r: f"{_row(r)} before (or without) the referral that opens its episode",
    )
    return out


def _closures(nrm: pd.DataFrame) -> pd.Series:
    return _first_pos(nrm, _is(nrm, "case_closed"), ["child_id", "episode"])


@invariant
def _at_most_one_open_case(log: Log) -> list[Violation]:
    """A repeat referral opens a new case only once the previous case has closed; a linked
    referral joins the case that is open (after its referral, before its closure).

    Catches: a re-trafficked child with an open case getting a second, parallel case (two
    decisions racing, issue 6), a linked referral recorded on a closed case instead of opening
    a new one."""
    nrm = log.nrm
    out: list[Violation] = []
    closed = _closures(nrm)
    op = _openings(nrm)
    later = op[op["episode"].to_numpy() > 0]
    prev = later.assign(episode=later["episode"] - 1)
    t_closed = _lookup(closed, prev, ["child_id", "episode"])
    bad = np.isnan(t_closed) | (t_closed > later["pos"].to_numpy())
    out += _violations(
        "at_most_one_open_case",
        later[bad],
        lambda r: f"{_row(r)} opens a case while episode {r.episode - 1} is still open",
    )
    linked = nrm[_is(nrm, "referred") & (_col(nrm, "referral_kind") == "linked")]
    at = _lookup(closed, linked, ["child_id", "episode"])
    bad = ~np.isnan(at) & (linked["pos"].to_numpy() > at)
    out += _violations(
        "at_most_one_open_case",
        linked[bad],
        lambda r: f"linked referral {_row(r)} after its case closed",
    )
    return out


@invariant
def _one_of_each_decision_per_episode(log: Log) -> list[Violation]:
    """Per episode at most one RG decision, one CG decision, one disqualification and one case
    closure; per episode and decision type at most one reconsideration request and decision.

    Catches: a linked referral that restarts the decisions (a second RG for the same case), a
    case closed twice (two processes closing it, e.g. at 18 and at a decision), a
    reconsideration loop."""
    nrm = log.nrm
    rows = nrm[
        _is(
            nrm,
            "rg_decided",
            "cg_decided",
            "disqualified",
            "case_closed",
            "reconsideration_requested",
            "reconsideration_decided",
        )
    ]
    rows = rows.assign(dtype_=_col(rows, "decision_type"))
    dup = rows.duplicated(["child_id", "episode", "event", "dtype_"])
    return _violations(
        "one_of_each_decision_per_episode",
        rows[dup],
        lambda r: f"a second {r.event} {r.dtype_} in the episode: {_row(r)}",
    )


def _episode_positions(nrm: pd.DataFrame) -> pd.DataFrame:
    """Per episode: positions of the first row of each decision-like event (NaN if none)."""
    key = ["child_id", "episode"]
    pos = nrm["pos"].to_numpy()
    positive = _positive(nrm)
    dtype = _col(nrm, "decision_type")
    masks = {
        "rg": _is(nrm, "rg_decided"),
        "rg_pos": _is(nrm, "rg_decided") & positive,
        "rg_neg": _is(nrm, "rg_decided") & ~positive,
        "cg": _is(nrm, "cg_decided"),
        "cg_pos": _is(nrm, "cg_decided") & positive,
        "cg_neg": _is(nrm, "cg_decided") & ~positive,
        "rq_rg": _is(nrm, "reconsideration_requested") & (dtype == "rg"),
        "rq_cg": _is(nrm, "reconsideration_requested") & (dtype == "cg"),
        "rd_rg": _is(nrm, "reconsideration_decided") & (dtype == "rg"),
        "rd_cg": _is(nrm, "reconsideration_decided") & (dtype == "cg"),
        "over_rg": _is(nrm, "reconsideration_decided") & (dtype == "rg") & positive,
        "over_cg": _is(nrm, "reconsideration_decided") & (dtype == "cg") & positive,
        "disq": _is(nrm, "disqualified"),
        "closed": _is(nrm, "case_closed"),
    }
    ep = nrm[_is(nrm, "referred")].groupby(key)["pos"].min().to_frame("opened")
    for name, mask in masks.items():
        ep[name] = (
            pd.Series(pos[mask], index=pd.MultiIndex.from_frame(nrm.loc[mask, key]))
            .groupby(level=[0, 1])
            .min()
        )
    return ep


def _before(a: pd.Series, b: pd.Series) -> pd.Series:
    """a happened, and before b (NaN b: b never happened, so a is before it)."""
    return a.notna() & (b.isna() | (a < b))


@invariant
def _decisions_follow_the_pathway(log: Log) -> list[Violation]:
    """Within an episode, decisions come in the pathway's order:

    * a CG decision only after a positive RG or an RG reconsideration that overturned a
      negative one;
    * a reconsideration request of a decision type only after a negative decision of that
      type, and a reconsideration decision only after its request;
    * a disqualification only after a positive RG (or an overturned one), and it closes the
      case with reason ``disqualified`` at once;
    * nothing decided (RG, CG, disqualification, reconsideration) after the case closed.

    Catches: a CG decided for a case refused at RG, a decision that reads the wrong episode's
    outcome, a reconsideration of a positive decision, a decision process that keeps running
    after the case closed at 18 (``model.active`` check missing)."""
    nrm = log.nrm
    ep = _episode_positions(nrm)
    out: list[Violation] = []

    def report(mask: pd.Series, what: str) -> None:
        for (child, episode), row in ep[mask.to_numpy(bool)].iterrows():
            out.append(
                Violation(
                    "decisions_follow_the_pathway",
                    int(child),
                    f"episode {episode}: {what} (rows: "
                    + ", ".join(f"{k}={int(v)}" for k, v in row.items() if not math.isnan(v))
                    + ")",
                )
            )

    rg_ok = np.fmin(ep["rg_pos"], ep["over_rg"])
    report(ep["cg"].notna() & ~_before(rg_ok, ep["cg"]), "CG decision without a positive RG")
    report(
        ep["rq_rg"].notna() & ~_before(ep["rg_neg"], ep["rq_rg"]),
        "RG reconsideration requested without a negative RG",
    )
    report(
        ep["rq_cg"].notna() & ~_before(ep["cg_neg"], ep["rq_cg"]),
        "CG reconsideration requested without a negative CG",
    )
    report(
        ep["rd_rg"].notna() & ~_before(ep["rq_rg"], ep["rd_rg"]),
        "RG reconsideration decided before it was requested",
    )
    report(
        ep["rd_cg"].notna() & ~_before(ep["rq_cg"], ep["rd_cg"]),
        "CG reconsideration decided before it was requested",
    )
    report(ep["disq"].notna() & ~_before(rg_ok, ep["disq"]), "disqualified without a positive RG")
    report(
        ep["disq"].notna() & ~_before(ep["disq"], ep["closed"])
        | (ep["disq"].notna() & ep["closed"].isna()),
        "disqualified but the case did not close",
    )
    last = ep[["rg", "cg", "rq_rg", "rq_cg", "rd_rg", "rd_cg", "disq"]].max(axis=1)
    report(ep["closed"].notna() & (last > ep["closed"]), "a decision after the case closed")
    return out


@invariant
def _closure_reason_matches_the_pathway(log: Log) -> list[Violation]:
    """A case closes with a reason its episode earned: ``confirmed`` after a positive CG (or an
    overturned negative CG), ``not_confirmed`` after a negative RG or CG that was not
    overturned, ``disqualified`` after a disqualification, ``withdrawn`` / ``suspended`` with a
    ``withdrawn`` / ``suspended`` row of the child at that moment, ``followup_ended`` with the
    child's follow-up ending then.

    Catches: a case counted as confirmed without a CG decision (a closure reason mixed up), a
    negative reconsideration closing as confirmed, a case closed at 18 without the withdrawal
    that closed it."""
    nrm = log.nrm
    ep = _episode_positions(nrm)
    closed = nrm[_is(nrm, "case_closed")].drop_duplicates(["child_id", "episode"])
    reason = pd.Series(
        _col(closed, "reason"), index=pd.MultiIndex.from_frame(closed[["child_id", "episode"]])
    )
    ep = ep.join(reason.rename("reason"), how="inner")
    t_closed = pd.Series(closed["t_days"].to_numpy(), index=reason.index)
    cg_yes = np.fmin(ep["cg_pos"], ep["over_cg"])
    rg_no = ep["rg_neg"].notna() & ep["rg_pos"].isna() & ep["over_rg"].isna()
    cg_no = ep["cg_neg"].notna() & ep["over_cg"].isna()
    ok = pd.Series(True, index=ep.index)
    r = ep["reason"]
    ok[r == "confirmed"] = _before(cg_yes, ep["closed"])[r == "confirmed"]
    ok[r == "not_confirmed"] = (rg_no | cg_no)[r == "not_confirmed"]
    ok[r == "disqualified"] = ep["disq"].notna()[r == "disqualified"]
    # reasons that need a row of the child at the closing moment
    for name in ("withdrawn", "suspended", "followup_ended"):
        rows = nrm[_is(nrm, name)]
        have = pd.MultiIndex.from_arrays([rows["child_id"], rows["t_days"].round(9)])
        want = pd.MultiIndex.from_arrays(
            [ep.index.get_level_values(0), t_closed.reindex(ep.index).round(9)]
        )
        ok[r == name] = want.isin(have)[(r == name).to_numpy()]
    ok &= r.isin(
        ["confirmed", "not_confirmed", "disqualified", "withdrawn", "suspended", "followup_ended"]
    )
    return [
        Violation(
            "closure_reason_matches_the_pathway",
            int(child),
            f"episode {episode} closed as {row.reason!r} at row {int(row.closed)} "
            f"(rg+ {row.rg_pos}, rg- {row.rg_neg}, cg+ {row.cg_pos}, cg- {row.cg_neg}, "
            f"overturned rg {row.over_rg}, cg {row.over_cg}, disqualified {row.disq})",
        )
        for (child, episode), row in ep[~ok.to_numpy(bool)].iterrows()
    ]


@invariant
def _leave_only_after_confirmation(log: Log) -> list[Violation]:
    """Victim leave is granted only for an episode confirmed before the grant.

    Catches: leave granted at a negative CG or before the decision, leave written to a later
    (unconfirmed) episode."""
    nrm = log.nrm
    ep = _episode_positions(nrm)
    cg_yes = np.fmin(ep["cg_pos"], ep["over_cg"])
    grants = nrm[_is(nrm, "leave_granted")]
    at = _lookup(cg_yes, grants, ["child_id", "episode"])
    bad = np.isnan(at) | (at > grants["pos"].to_numpy())
    return _violations(
        "leave_only_after_confirmation", grants[bad], lambda r: f"{_row(r)} without a positive CG"
    )


# --------------------------------------------------------------------------- care, missing
def _care_rows(log: Log) -> pd.DataFrame:
    """Placement and missing rows of every child; a never-referred hotel child's arrival is
    its placement."""
    k = log.kids
    rows = k[
        _is(
            k,
            "placed",
            "hotel_arrived",
            "placement_ended",
            "placement_moved",
            "went_missing",
            "returned",
            "not_found",
        )
    ].copy()
    rows["event"] = rows["event"].replace({"hotel_arrived": "placed"})
    return rows


@invariant
def _one_placement_at_a_time(log: Log) -> list[Violation]:
    """Per child, ``placed`` and ``placement_ended`` alternate (a child is in at most one
    placement at a time), and a ``placement_moved`` sits between the old placement's end and
    the new placement, at the same moment.

    Catches: a second care process started for a child already in care (a linked referral
    that starts care again), a placement ended twice or never started, a move logged without
    ending the old placement."""
    rows = _care_rows(log)
    out = _alternation("one_placement_at_a_time", rows, ["placed"], ["placement_ended"])
    seq = rows[_is(rows, "placed", "placement_ended", "placement_moved")]
    ev = seq["event"].to_numpy()
    child = seq["child_id"].to_numpy()
    t = seq["t_days"].to_numpy()
    moved = np.flatnonzero(ev == "placement_moved")
    ok = (moved > 0) & (moved < len(ev) - 1)
    prev, nxt = np.clip(moved - 1, 0, None), np.clip(moved + 1, None, len(ev) - 1)
    ok &= (ev[prev] == "placement_ended") & (ev[nxt] == "placed")
    ok &= (child[prev] == child[moved]) & (child[nxt] == child[moved])
    ok &= (np.abs(t[prev] - t[moved]) < EPS) & (np.abs(t[nxt] - t[moved]) < EPS)
    out += _violations(
        "one_placement_at_a_time",
        seq.iloc[moved[~ok]],
        lambda r: f"{_row(r)} not between a placement's end and the next placement",
    )
    return out


@invariant
def _one_missing_episode_at_a_time(log: Log) -> list[Violation]:
    """Per child, ``went_missing`` is followed by ``returned`` or ``not_found`` before the next
    ``went_missing``; ``returned`` and ``not_found`` only while missing.

    Catches: two placement processes for one child (overlapping missing episodes), a child
    going missing while already missing, a return logged for a child who never went."""
    return _alternation(
        "one_missing_episode_at_a_time",
        _care_rows(log),
        ["went_missing"],
        ["returned", "not_found"],
    )


@invariant
def _exploited_until_identified_again(log: Log) -> list[Violation]:
    """Per child, re-trafficking as a child (``re_trafficked``, reason not ``after_18``) and
    the referral that identifies the child again (``referred``, kind ``repeat`` or
    ``linked``) alternate: a child already exploited and not yet identified is not exploited
    again, and is not placed in care, until a referral brings them back.

    Catches: a child counted as re-trafficked twice for one spell (lost from a placement
    that started while they were with their exploiters), a placement that waited for a
    free place and went ahead after the child was re-trafficked, a repeat referral with no
    re-trafficking before it."""
    nrm = log.nrm
    reason = _col(nrm, "reason")
    kind = _col(nrm, "referral_kind")
    spell = nrm[
        (_is(nrm, "re_trafficked") & (reason != "after_18"))
        | (_is(nrm, "referred") & np.isin(kind, ["repeat", "linked"]))
    ]
    out = _alternation("exploited_until_identified_again", spell, ["re_trafficked"], ["referred"])
    rows = _care_rows(log)
    rows = pd.concat([spell, rows[_is(rows, "placed")]]).sort_values(
        ["child_id", "pos"], kind="stable"
    )
    ev = rows["event"].to_numpy()
    child = rows["child_id"].to_numpy()
    delta = np.where(ev == "re_trafficked", 1, np.where(ev == "referred", -1, 0))
    depth = pd.Series(delta).groupby(child).cumsum().to_numpy()
    out += _violations(
        "exploited_until_identified_again",
        rows[(ev == "placed") & (depth > 0)],
        lambda r: f"{_row(r)} while re-trafficked and not yet identified again",
    )
    return out


@invariant
def _missing_only_from_a_placement(log: Log) -> list[Violation]:
    """A child goes missing, returns or is not found only while in a placement (the model's
    missing episodes are episodes of going missing *from care*), and ``not_found`` ends the
    placement: the child's next care row is ``placement_ended`` at the same moment.

    Catches: a missing hazard that keeps running after the placement ended (at 18, on return
    home), a child lost while missing who stays in care (a place never given back)."""
    rows = _care_rows(log)
    rows = rows[_is(rows, "placed", "placement_ended", "went_missing", "returned", "not_found")]
    ev = rows["event"].to_numpy()
    child = rows["child_id"].to_numpy()
    delta = np.where(ev == "placed", 1, np.where(ev == "placement_ended", -1, 0))
    depth = pd.Series(delta).groupby(child).cumsum().to_numpy()
    missing_like = np.isin(ev, ["went_missing", "returned", "not_found"])
    out = _violations(
        "missing_only_from_a_placement",
        rows[missing_like & (depth != 1)],
        lambda r: f"{_row(r)} while not in a placement",
    )
    lost = np.flatnonzero(ev == "not_found")
    nxt = lost + 1
    ok = nxt < len(ev)
    nxt = np.clip(nxt, None, len(ev) - 1)
    t = rows["t_days"].to_numpy()
    ok &= (child[nxt] == child[lost]) & (ev[nxt] == "placement_ended")
    ok &= np.abs(t[nxt] - t[lost]) < EPS
    out += _violations(
        "missing_only_from_a_placement",
        rows.iloc[lost[~ok]],
        lambda r: f"{_row(r)} does not end the placement",
    )
    return out


# --------------------------------------------------------------------------- guardianship
@invariant
def _guardian_after_request(log: Log) -> list[Violation]:
    """A guardian is allocated only to a child with a request not yet answered, and only while
    no guardian is active; support ends only while active (``guardian_allocated`` and
    ``guardian_ended`` alternate).

    Catches: a guardian allocated with no referral to the service (a caseload place taken by
    nobody's request), two guardians at once, an end of support logged twice (a stale
    end-of-support callback)."""
    nrm = log.nrm
    out = _alternation("guardian_after_request", nrm, ["guardian_allocated"], ["guardian_ended"])
    rows = nrm[_is(nrm, "guardian_requested", "guardian_allocated")]
    req = _is(rows, "guardian_requested").astype(int)
    alloc = _is(rows, "guardian_allocated").astype(int)
    child = rows["child_id"].to_numpy()
    n_req = pd.Series(req).groupby(child).cumsum().to_numpy()
    n_alloc = pd.Series(alloc).groupby(child).cumsum().to_numpy()
    bad = (alloc == 1) & (n_alloc > n_req)
    out += _violations(
        "guardian_after_request", rows[bad], lambda r: f"{_row(r)} without an open request"
    )
    return out


# --------------------------------------------------------------------------- 18 and after
def _day18(log: Log, frame: pd.DataFrame) -> np.ndarray:
    if log.day18 is None:
        return np.full(len(frame), np.nan)
    return log.day18.reindex(frame["child_id"]).to_numpy(dtype=float)


@invariant
def _turned_18_once_on_the_birthday(log: Log) -> list[Violation]:
    """``turned_18`` at most once per child, on the 18th birthday (handled at the first midnight
    after it), with the child's latest case open at that moment, and answered at once by
    ``withdrawn``, ``suspended`` or ``continued_as_adult``.

    Catches: a birthday handled twice (a repeat referral scheduling it again), a birthday
    computed from the age at a repeat referral, a child with no open case counted as aged out
    without a decision, a consent decision at 18 that is never made."""
    nrm = log.nrm
    rows = nrm[_is(nrm, "turned_18")]
    out = _violations(
        "turned_18_once_on_the_birthday",
        rows[rows.duplicated("child_id")],
        lambda r: f"a second {_row(r)}",
    )
    day18 = log.day18
    if day18 is not None:
        d18 = _day18(log, rows)
        t = rows["t_days"].to_numpy()
        bad = ~((t >= d18 - EPS) & (t <= d18 + DAY + EPS))
        out += _violations(
            "turned_18_once_on_the_birthday",
            rows[bad],
            lambda r: f"{_row(r)} but day18 = {day18.get(r.child_id)}",
        )
    # the child's latest episode at that moment is open
    closed = _closures(nrm)
    at = _lookup(closed, rows, ["child_id", "episode"])
    latest = nrm[_is(nrm, "referred")].groupby("child_id")["episode"].max()
    later_episode = _lookup(latest, rows, ["child_id"]) > rows["episode"].to_numpy()
    opening = _first_pos(
        _openings(nrm), np.ones(len(_openings(nrm)), bool), ["child_id", "episode"]
    )
    next_open = _lookup(opening, rows.assign(episode=rows["episode"] + 1), ["child_id", "episode"])
    reopened_before = ~np.isnan(next_open) & (next_open < rows["pos"].to_numpy())
    bad = (~np.isnan(at) & (at < rows["pos"].to_numpy())) | (later_episode & reopened_before)
    out += _violations(
        "turned_18_once_on_the_birthday",
        rows[bad],
        lambda r: f"{_row(r)} with no case open",
    )
    # answered at once
    answers = nrm[_is(nrm, "withdrawn", "suspended", "continued_as_adult")]
    have = pd.MultiIndex.from_arrays([answers["child_id"], answers["t_days"].round(9)])
    want = pd.MultiIndex.from_arrays([rows["child_id"], rows["t_days"].round(9)])
    out += _violations(
        "turned_18_once_on_the_birthday",
        rows[~want.isin(have)],
        lambda r: f"{_row(r)} with no consent decision at 18",
    )
    return out


@invariant
def _adult_events_after_18_child_events_before(log: Log) -> list[Violation]:
    """Events of young adults (``continued_as_adult``, MSVCC, ``removed_at_18``, re-trafficking
    ``after_18``) happen on or after the 18th birthday; referrals after the first
    (repeat, linked, duplicate) and re-trafficking as a child before it (within the day the
    birthday is handled).

    Catches: a birthday computed wrongly, an adult re-referred into the children's NRM, a
    child's re-trafficking counted as after 18 (or the reverse)."""
    day18 = log.day18
    if day18 is None:
        return []
    nrm = log.nrm
    d18 = _day18(log, nrm)
    t = nrm["t_days"].to_numpy()
    reason = _col(nrm, "reason")
    kind = _col(nrm, "referral_kind")
    adult = _is(nrm, "continued_as_adult", "msvcc_referred", "msvcc_supported", "removed_at_18") | (
        _is(nrm, "re_trafficked") & (reason == "after_18")
    )
    child_only = (_is(nrm, "referred") & (kind != "new")) | (
        _is(nrm, "re_trafficked") & (reason != "after_18")
    )
    bad = (adult & (t < d18 - EPS)) | (child_only & (t > d18 + DAY + EPS))
    return _violations(
        "adult_events_after_18_child_events_before",
        nrm[bad],
        lambda r: (
            f"{_row(r)} (reason {getattr(r, 'reason', '')}) but day18 = {day18.get(r.child_id)}"
        ),
    )


@invariant
def _nothing_after_followup_ended(log: Log) -> list[Violation]:
    """``followup_ended`` at most once per child, not before 18 (except at a removal under the
    Illegal Migration Act, which is at 18), and nothing of the child after it (investigations
    of the exploiter are not the child's events and may come later).

    Catches: a process that outlives the child (a hazard clock, a guardian, a placement or a
    decision still running), a follow-up that ends before 18."""
    nrm = log.nrm
    ended = nrm[_is(nrm, "followup_ended")]
    out = _violations(
        "nothing_after_followup_ended",
        ended[ended.duplicated("child_id")],
        lambda r: f"a second {_row(r)}",
    )
    first = ended.drop_duplicates("child_id")
    if log.day18 is not None:
        d18 = _day18(log, first)
        bad = first["t_days"].to_numpy() < d18 - EPS
        out += _violations(
            "nothing_after_followup_ended", first[bad], lambda r: f"{_row(r)} before 18"
        )
    end_pos = first.set_index("child_id")["pos"]
    own = nrm[~_is(nrm, *EXPLOITER)]
    at = _lookup(end_pos, own, ["child_id"])
    bad = ~np.isnan(at) & (own["pos"].to_numpy() > at)
    out += _violations(
        "nothing_after_followup_ended", own[bad], lambda r: f"{_row(r)} after the follow-up ended"
    )
    return out


# --------------------------------------------------------------------------- queues, capacity
QUEUES = ("rg", "cg", "devolved_pilot")


def _decision_jobs(log: Log, schedule: Schedule) -> pd.DataFrame:
    """The decisions whose queue and time of joining it the log shows, one row each:
    ``queue``, ``child_id``, ``episode``, ``joined``, ``decided``, ``pos``.

    A case joins its queue (``model.stages.wait_for_decision``):

    * RG: at the referral that opened the episode, on the route recorded with the decision
      (``home_office``: the RG queue, after ``rg_evidence_days`` if that is in force at the
      referral; ``devolved_pilot``: the panel queue);
    * CG, Home Office route: at the positive RG (or the RG reconsideration that overturned a
      negative one) plus the recovery period in force then (Scotland's for a child whose
      ``nation`` in the children table is Scotland).

    Left out, because the log cannot place them: the panel's CG decisions (some are taken at
    the same meeting as the RG, after a delay, without queueing, and the log does not say
    which) and, without a children table with ``nation``, every CG decision.
    """
    nrm = log.nrm
    key = ["child_id", "episode"]
    opened = _openings(nrm).drop_duplicates(key).set_index(key)["t_days"]
    route = _col(nrm, "route")
    rg = nrm[_is(nrm, "rg_decided") & np.isin(route, ["home_office", "devolved_pilot"])]
    rg_route = _col(rg, "route")
    joined = _lookup(opened, rg, key)
    steps = schedule.step(np.nan_to_num(joined))
    joined = joined + np.where(rg_route == "home_office", schedule.rg_evidence_days[steps], 0.0)
    parts = [
        pd.DataFrame(
            {
                "queue": np.where(rg_route == "home_office", "rg", "devolved_pilot"),
                "child_id": rg["child_id"].to_numpy(),
                "episode": rg["episode"].to_numpy(),
                "joined": joined,
                "decided": rg["t_days"].to_numpy(),
                "pos": rg["pos"].to_numpy(),
            }
        )
    ]
    ch = log.children
    if ch is not None and "nation" in ch.columns:
        positive = _positive(nrm)
        dtype = _col(nrm, "decision_type")
        rg_yes = (_is(nrm, "rg_decided") & positive) | (
            _is(nrm, "reconsideration_decided") & (dtype == "rg") & positive
        )
        passed = nrm[rg_yes].groupby(key)["t_days"].min()
        cg = nrm[_is(nrm, "cg_decided") & (route == "home_office")]
        t_rg = _lookup(passed, cg, key)
        steps = schedule.step(np.nan_to_num(t_rg))
        scotland = ch.set_index("child_id")["nation"].astype(str).reindex(cg["child_id"])
        scotland_ = (scotland == "scotland").to_numpy()
        recovery = np.where(
            scotland_,
            schedule.recovery_days_scotland[steps],
            schedule.recovery_days[steps],
        )
        parts.append(
            pd.DataFrame(
                {
                    "queue": "cg",
                    "child_id": cg["child_id"].to_numpy(),
                    "episode": cg["episode"].to_numpy(),
                    "joined": t_rg + recovery,
                    "decided": cg["t_days"].to_numpy(),
                    "pos": cg["pos"].to_numpy(),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def _overtaken(joined: np.ndarray, decided: np.ndarray) -> np.ndarray:
    """Per job, how many jobs that joined the queue strictly before it are decided strictly
    after it (a Fenwick tree over the decision times, in order of joining; jobs that joined at
    the same moment are not counted against each other: their order is not in the log)."""
    n = len(joined)
    order = np.lexsort((decided, joined))
    values = np.unique(decided)
    rank = np.searchsorted(values, decided + EPS, side="right")  # jobs decided <= t + EPS
    tree = np.zeros(len(values) + 1, dtype=np.int64)
    out = np.zeros(n, dtype=np.int64)
    inserted = 0
    i = 0
    while i < n:
        j = i
        while j < n and joined[order[j]] - joined[order[i]] <= EPS:
            j += 1
        for k in order[i:j]:  # query the group before inserting it
            r, le = int(rank[k]), 0
            while r > 0:
                le += int(tree[r])
                r -= r & -r
            out[k] = inserted - le
        for k in order[i:j]:
            r = int(np.searchsorted(values, decided[k])) + 1
            while r <= len(values):
                tree[r] += 1
                r += r & -r
        inserted += j - i
        i = j
    return out


def _max_over(schedule: Schedule, series: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The largest value of a step series in force at some time in each [a, b]."""
    first, last = schedule.step(a), schedule.step(b)
    out = np.full(len(a), -np.inf)
    for k, value in enumerate(series):
        hit = (first <= k) & (last >= k)
        out[hit] = np.maximum(out[hit], value)
    return out


@invariant
def _decisions_first_come_first_served_within_capacity(log: Log) -> list[Violation]:
    """Each decision queue (Home Office RG, Home Office CG, the devolved panels) serves cases
    first come, first served with the decision-makers in force (``model.queues.DecisionQueue``).

    The log has when a case joined its queue (see ``_decision_jobs``) and when it was decided,
    but not when work on it started or how long the work took, so first come, first served
    cannot be checked as an order of decisions (a case may take longer than one that joined
    after it). What it implies, and the log can show: (1) no case is decided before it joined
    its queue; (2) a case is overtaken (decided before it) by at most ``servers - 1`` cases
    that joined the queue before it, ``servers`` being the most decision-makers in force while
    it was in the queue. Every case that joined before a case ``j`` started before ``j``; one
    decided after ``j`` was therefore still being worked when ``j`` started, and ``j`` started
    only when a decision-maker was free, so those cases and ``j`` together numbered at most
    ``servers``. (2) thus bounds at once the order of service and the number of cases worked
    at a time.

    Catches: a queue served last come first served or by a priority the model does not
    define (a newer case jumping many older ones), more cases worked at once than
    decision-makers (a server count not reduced, a busy count that leaks), a case that skips
    the evidence wait or the recovery period, a decision logged at the wrong time. A case that
    overtakes fewer than ``servers`` others is not detected (the log cannot separate it from a
    long piece of work), nor a queue on which the log shows fewer cases than it held."""
    if log.schedule is None:
        return []
    jobs = _decision_jobs(log, log.schedule)
    jobs = jobs[np.isfinite(jobs["joined"].to_numpy())]
    out: list[Violation] = []
    early = jobs[jobs["decided"].to_numpy() < jobs["joined"].to_numpy() - EPS]
    out += [
        Violation(
            "decisions_first_come_first_served_within_capacity",
            int(r.child_id),
            f"{r.queue} decision at t={r.decided:.3f} (episode {r.episode}, row {r.pos}) "
            f"before the case joined the queue at t={r.joined:.3f}",
        )
        for r in early.itertuples(index=False)
    ]
    for queue, q in jobs.groupby("queue", sort=False):
        joined, decided = q["joined"].to_numpy(), q["decided"].to_numpy()
        over = _overtaken(joined, decided)
        servers = _max_over(log.schedule, log.schedule.servers[str(queue)], joined, decided)
        bad = over >= servers
        out += [
            Violation(
                "decisions_first_come_first_served_within_capacity",
                int(r.child_id),
                f"{queue} decision at t={r.decided:.3f} (episode {r.episode}, row {r.pos}), "
                f"joined at t={r.joined:.3f}, overtook {n} cases that joined before it, with "
                f"at most {s:g} decision-makers in force",
            )
            for r, n, s in zip(q[bad].itertuples(index=False), over[bad], servers[bad], strict=True)
        ]
    return out


@invariant
def _placements_within_capacity(log: Log) -> list[Violation]:
    """No child is placed in a placement type that is full (children there, counted from
    ``placed`` and ``placement_ended`` rows, more than its ``care.capacity_*`` in force),
    except where ``model.stages.care`` allows it: a forced move out of a hotel when every type
    is full (an emergency placement, over capacity), and a move to another placement of the
    same type (the count does not change). After a capacity cut a type may stay over capacity
    until children leave; only new placements are checked.

    Hotels are checked only where the Illegal Migration Act's Home Office accommodation
    cannot happen (it is logged as a ``hotel`` placement but uses no hotel place, and the log
    does not mark it); never-referred hotel children (``hotel_arrived``) use no place.

    Catches: a placement taken without a free place (``try_take`` or a waiter's ``take``
    ignoring the capacity, a give-back lost so places leak the other way), a capacity change
    not applied, an over-capacity placement outside a forced move."""
    if log.schedule is None:
        return []
    ev = log.ev
    rows = ev[(ev["child_id"].to_numpy() >= 0) & _is(ev, "placed", "placement_ended")]
    if rows.empty:
        return []
    kind = _col(rows, "placement_type")
    event = rows["event"].to_numpy()
    t = rows["t_days"].to_numpy()
    step = log.schedule.step(t)
    # the move before a placement: the same child's ``placement_ended`` just before it in the
    # log (a move writes ended, moved, placed at one moment)
    pos = rows["pos"].to_numpy()
    prev = np.clip(pos - 2, 0, None)
    ev_event = ev["event"].to_numpy()
    ev_child = ev["child_id"].to_numpy()
    ev_kind = _col(ev, "placement_type")
    is_move = (
        (event == "placed")
        & (pos >= 2)
        & (ev_event[np.clip(pos - 1, 0, None)] == "placement_moved")
        & (ev_event[prev] == "placement_ended")
        & (ev_child[prev] == rows["child_id"].to_numpy())
    )
    moved_from = np.where(is_move, ev_kind[prev], "")
    out: list[Violation] = []
    ho = log.schedule.home_office_accommodation
    for k, capacity in log.schedule.places.items():
        if k == "hotel" and ho.any():
            continue
        mine = kind == k
        if not mine.any():
            continue
        delta = np.where(event[mine] == "placed", 1, -1)
        count = np.cumsum(delta)
        placed = event[mine] == "placed"
        exempt = (moved_from[mine] == k) | (moved_from[mine] == "hotel")
        over = placed & ~exempt & (count > capacity[step[mine]])
        sub = rows[mine][over]
        out += [
            Violation(
                "placements_within_capacity",
                int(r.child_id),
                f"{_row(r)}: {n} children in {k}, {c:g} places",
            )
            for r, n, c in zip(
                sub.itertuples(index=False),
                count[over],
                capacity[step[mine]][over],
                strict=True,
            )
        ]
    return out


# --------------------------------------------------------------------------- the children table
@invariant
def _children_table_matches_the_log(log: Log) -> list[Violation]:
    """One row per NRM child in the log and no other; ``referrals`` equals the child's
    ``referred`` rows; ``final_state`` is the closure reason of the child's latest episode, or
    an open state if it has not closed; ``confirmed`` is true exactly when some episode closed
    confirmed.

    Catches: a child's state left behind by a repeat referral (the new episode open but the
    state still closed), a referral counter that misses linked or duplicate referrals, a
    ``confirmed`` flag lost when a later episode closes otherwise."""
    ch = log.children
    if ch is None:
        return []
    nrm = log.nrm
    out: list[Violation] = []
    in_log = pd.Index(nrm["child_id"].unique())
    table = ch.set_index("child_id")
    for child in in_log.difference(table.index):
        out.append(Violation("children_table_matches_the_log", int(child), "not in the table"))
    for child in table.index.difference(in_log):
        out.append(Violation("children_table_matches_the_log", int(child), "not in the log"))
    table = table.loc[table.index.intersection(in_log)]
    n_ref = nrm[_is(nrm, "referred")].groupby("child_id").size()
    bad = table["referrals"].to_numpy() != n_ref.reindex(table.index).fillna(0).to_numpy()
    out += [
        Violation(
            "children_table_matches_the_log",
            int(c),
            f"referrals {n} in the table, {int(n_ref.get(c, 0))} in the log",
        )
        for c, n in table.loc[bad, "referrals"].items()
    ]
    latest = nrm[_is(nrm, "referred")].groupby("child_id")["episode"].max()
    closed = nrm[_is(nrm, "case_closed")].drop_duplicates(["child_id", "episode"])
    reason = pd.Series(
        _col(closed, "reason"), index=pd.MultiIndex.from_frame(closed[["child_id", "episode"]])
    )
    last_reason = reason.reindex(pd.MultiIndex.from_arrays([latest.index, latest.to_numpy()]))
    last_reason.index = latest.index
    final = table["final_state"].astype(str)
    expected = last_reason.reindex(final.index)
    open_now = expected.isna()
    bad = (open_now & ~final.isin(OPEN_STATES)) | (~open_now & (final != expected.astype(str)))
    out += [
        Violation(
            "children_table_matches_the_log",
            int(c),
            f"final_state {final[c]!r}, latest episode's closure {expected[c]!r}",
        )
        for c in final.index[bad.to_numpy(bool)]
    ]
    if "confirmed" in table.columns:
        conf = pd.Index(closed.loc[_col(closed, "reason") == "confirmed", "child_id"].unique())
        want = table.index.isin(conf)
        got = table["confirmed"].astype(bool).to_numpy()
        out += [
            Violation(
                "children_table_matches_the_log",
                int(c),
                f"confirmed {g} in the table, {w} from the log",
            )
            for c, g, w in zip(
                table.index[got != want], got[got != want], want[got != want], strict=True
            )
        ]
    return out


# --------------------------------------------------------------------------- the summary
def _counts_from_log(nrm: pd.DataFrame) -> dict[str, tuple[np.ndarray, bool]]:
    """Metric -> (mask of the rows it counts, count distinct children?)."""
    kind = _col(nrm, "referral_kind")
    reason = _col(nrm, "reason")
    gkind = _col(nrm, "guardian_kind")
    ref = _is(nrm, "referred")
    retraf = _is(nrm, "re_trafficked")
    return {
        "referrals": (ref, False),
        "repeat_referrals": (ref & np.isin(kind, ["repeat", "linked", "duplicate"]), False),
        "linked_referrals": (ref & np.isin(kind, ["linked", "duplicate"]), False),
        "duplicate_referrals": (ref & (kind == "duplicate"), False),
        "children_re_referred": (ref & np.isin(kind, ["repeat", "linked", "duplicate"]), True),
        "rg_decisions": (_is(nrm, "rg_decided"), False),
        "cg_decisions": (_is(nrm, "cg_decided"), False),
        "disqualifications": (_is(nrm, "disqualified"), False),
        "reconsideration_requests": (_is(nrm, "reconsideration_requested"), False),
        "reconsideration_decisions": (_is(nrm, "reconsideration_decided"), False),
        "placement_moves": (_is(nrm, "placement_moved"), False),
        "missing_episodes": (_is(nrm, "went_missing"), False),
        "children_gone_missing": (_is(nrm, "went_missing"), True),
        "children_not_found": (_is(nrm, "not_found"), True),
        "ictg_direct_referrals": (_is(nrm, "guardian_requested") & (gkind == "ictg_direct"), False),
        "ictg_indirect_referrals": (
            _is(nrm, "guardian_requested") & (gkind == "ictg_indirect"),
            False,
        ),
        "guardian_allocations": (_is(nrm, "guardian_allocated"), False),
        "aged_out_without_decision": (_is(nrm, "turned_18"), False),
        "turned_18_in_process": (_is(nrm, "turned_18"), False),
        "msvcc_referrals": (_is(nrm, "msvcc_referred"), False),
        "msvcc_supported": (_is(nrm, "msvcc_supported"), False),
        "removed_at_18": (_is(nrm, "removed_at_18"), False),
        "leave_grants": (_is(nrm, "leave_granted"), False),
        "re_trafficked": (retraf & (reason != "after_18"), False),
        "re_trafficked_after_18": (retraf & (reason == "after_18"), False),
        "children_criminalised": (_is(nrm, "criminalised"), False),
        "trafficker_investigations": (_is(nrm, "investigation_opened"), False),
        "prosecutions_completed": (_is(nrm, "prosecution_completed"), False),
        "convictions": (_is(nrm, "convicted"), False),
    }


def check_summary(
    events: pd.DataFrame,
    summary: pd.DataFrame,
    sim_start: dt.date,
    start: dt.date,
    end: dt.date,
) -> list[Violation]:
    """Counts in ``summary`` (group ``all``, per year) equal counts recomputed from the log,
    and the costs by payer sum to ``public_cost_gbp`` in every year and group.

    Catches: a metric that filters the wrong rows (a reason or referral kind mixed up), a
    period boundary off by a day, a payer left out of (or counted twice in) the total cost."""
    out: list[Violation] = []
    ev = events.reset_index(drop=True)
    nrm = ev[(ev["child_id"] >= 0) & (ev["episode"] >= 0)]
    nrm = nrm.assign(event=nrm["event"].astype(str))
    counts = _counts_from_log(nrm)
    rows = summary[summary["group_by"] == "all"]
    if "replicate" in rows.columns and rows["replicate"].nunique() > 1:
        raise ValueError("check_summary takes one replicate's summary")
    table = rows.set_index(["year", "metric"])["value"]
    t = nrm["t_days"].to_numpy()
    child = nrm["child_id"].to_numpy()
    for year, a, b in year_periods(sim_start, start, end):
        inside = (t >= a) & (t < b)
        for name, (mask, distinct) in counts.items():
            if name not in REGISTRY or (year, name) not in table.index:
                continue
            hit = mask & inside
            want = float(len(np.unique(child[hit]))) if distinct else float(hit.sum())
            got = float(table[(year, name)])
            if got != want:
                out.append(
                    Violation("summary_counts", -1, f"{name} {year}: summary {got:g}, log {want:g}")
                )
    costs = summary[summary["metric"].isin([*PAYER_METRICS, "public_cost_gbp"])]
    if not costs.empty:
        wide = costs.pivot_table(
            index=["year", "group_by", "group"],
            columns="metric",
            values="value",
            aggfunc="sum",
            observed=True,
        )
        payers = [m for m in PAYER_METRICS if m in wide.columns]
        if "public_cost_gbp" in wide.columns and payers:
            total = wide["public_cost_gbp"].fillna(0.0)
            parts = wide[payers].fillna(0.0).sum(axis=1)
            bad = ~np.isclose(parts, total, rtol=1e-9, atol=1e-6)
            for (year, group_by, group), p, tot in zip(
                wide.index[bad], parts[bad], total[bad], strict=True
            ):
                out.append(
                    Violation(
                        "cost_by_payer_sums_to_total",
                        -1,
                        f"{year} {group_by}={group}: payers {p:.2f}, public_cost_gbp {tot:.2f}",
                    )
                )
    return out


# --------------------------------------------------------------------------- entry points
def prepare(
    events: pd.DataFrame,
    children: pd.DataFrame | None,
    horizon_day: float | None,
    schedule: Schedule | None = None,
) -> Log:
    ev = events.reset_index(drop=True)
    ev = ev.assign(pos=np.arange(len(ev)), event=ev["event"].astype(str))
    kids = ev[ev["child_id"] >= 0].sort_values(["child_id", "pos"], kind="stable")
    nrm = kids[kids["episode"] >= 0]
    day18 = None
    if children is not None and "day18" in children.columns:
        day18 = children.set_index("child_id")["day18"].astype(float)
    return Log(ev, nrm, kids, children, day18, horizon_day, schedule)


def check(
    events: pd.DataFrame,
    children: pd.DataFrame | None = None,
    summary: pd.DataFrame | None = None,
    *,
    horizon_day: float | None = None,
    sim_start: dt.date | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    only: Sequence[str] | None = None,
    schedule: Schedule | None = None,
) -> list[Violation]:
    """Every invariant (or those named in ``only``) over one replicate's log.

    Args:
        events: the event log (``EventLog.to_frame()`` or ``events.parquet`` of one replicate).
        children: the children table (for birthdays and the table's own invariants).
        summary: the replicate's ``summary.csv`` rows (needs ``sim_start``, ``start``,
            ``end``: the days are counted from ``sim_start``).
        horizon_day: the run's end day (``NRMModel.end_day``); rows must be before it.
        schedule: decision-makers, places and waits in force (``schedule_of(scenario)``),
            for the queue and capacity invariants (skipped without it).
    """
    if "replicate" in events.columns and events["replicate"].nunique() > 1:
        raise ValueError("check takes one replicate's events")
    log = prepare(events, children, horizon_day, schedule)
    out: list[Violation] = []
    for name, fn in CHECKS.items():
        if only is None or name in only:
            out += fn(log)
    if (
        summary is not None
        and sim_start
        and start
        and end
        and (only is None or {"summary_counts", "cost_by_payer_sums_to_total"} & set(only))
    ):
        out += check_summary(events, summary, sim_start, start, end)
    return out


def horizon_of(scenario: Scenario) -> float:
    """The run's end day (as ``NRMModel.end_day``: the end date is included)."""
    return float((scenario.end - scenario.sim_start).days) + 1.0


def schedule_of(scenario: Scenario) -> Schedule:
    """What ``scenario`` puts in force from day 0 and at each timeline entry, computed as
    ``NRMModel._derive`` and ``_apply`` do (decision-makers by Little's law from the capacity
    and the mean work time)."""
    from model.calendar import Calendar
    from model.stages import cg_decision, rg_decision

    calendar = Calendar(scenario.sim_start)
    days, params = [0.0], [scenario.initial_params()]
    for item in scenario.future_timeline():
        days.append(float(calendar.day(item.date)))
        params.append(params[-1].with_values(item.changes))

    def servers(p: Any) -> dict[str, int]:
        rg = p.rg_decision.capacity_ratio_to_referrals * p.identification.child_referrals_per_year
        panel = p.devolved_pilot.capacity_per_year_per_la * p.devolved_pilot.la_count
        return {
            "rg": rg_decision.servers_for(rg, p.rg_decision.mean_work_days),
            "cg": cg_decision.servers_for_cg(cg_decision.capacity_per_year(p), p),
            "devolved_pilot": rg_decision.servers_for(
                panel, 2.0 * rg_decision.panel_scale_days(p.devolved_pilot)
            ),
        }

    by_step = [servers(p) for p in params]
    from model.params import PLACEMENT_TYPES

    return Schedule(
        days=np.asarray(days),
        servers={q: np.asarray([s[q] for s in by_step], dtype=float) for q in QUEUES},
        places={
            k: np.asarray([getattr(p.care, f"capacity_{k}") for p in params], dtype=float)
            for k in PLACEMENT_TYPES
        },
        rg_evidence_days=np.asarray(
            [
                p.rg_decision.extra_days_objective_evidence
                if p.policy.decision_regime == "nba_objective"
                else 0.0
                for p in params
            ]
        ),
        recovery_days=np.asarray([p.cg_decision.min_recovery_days for p in params]),
        recovery_days_scotland=np.asarray(
            [p.cg_decision.min_recovery_days_scotland for p in params]
        ),
        home_office_accommodation=np.asarray([bool(p.policy.ima_in_force) for p in params]),
    )


def check_run(result: RunResult, scenario: Scenario) -> list[Violation]:
    """``check`` over a ``run_one`` result made with ``keep_events=True``."""
    if result.events is None or result.children is None:
        raise ValueError("run with keep_events=True to check invariants")
    return check(
        result.events,
        result.children,
        result.summary,
        horizon_day=horizon_of(scenario),
        sim_start=scenario.sim_start,
        start=scenario.start,
        end=scenario.end,
        schedule=schedule_of(scenario),
    )


def describe(violations: Sequence[Violation], limit: int = 20) -> str:
    """A readable list: counts per invariant and the first ``limit`` violations."""
    if not violations:
        return "no violations"
    by_name: dict[str, int] = {}
    for v in violations:
        by_name[v.name] = by_name.get(v.name, 0) + 1
    lines = [f"{n}: {k}" for n, k in sorted(by_name.items())]
    lines += [f"  child {v.child_id}: [{v.name}] {v.detail}" for v in violations[:limit]]
    return "\n".join(lines)
