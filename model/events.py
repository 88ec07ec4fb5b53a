"""The one event log. Processes append rows; summaries and targets are computed from it.

Event names are past tense and documented in README.md. Each row is
``(t_days, child_id, episode, event, positive, route, detail, value)``; ``detail`` holds the
event's category (placement type, guardian kind, reason, regime) and ``to_frame`` spreads it
into named columns.
"""

from __future__ import annotations

import math
from enum import StrEnum

import numpy as np
import pandas as pd


class Event(StrEnum):
    """Everything that can happen to a child (or to a case about a child), plus a few system
    rows (``child_id = -1``) that record series the metrics need."""

    REFERRED = "referred"  # detail: referral kind (new | repeat | linked | duplicate)
    RG_DECIDED = "rg_decided"  # positive; detail: decision regime
    DISQUALIFIED = "disqualified"  # public-order disqualification; detail: policy
    CG_DECIDED = "cg_decided"  # positive; detail: decision regime
    RECONSIDERATION_REQUESTED = "reconsideration_requested"  # detail: rg | cg
    RECONSIDERATION_DECIDED = "reconsideration_decided"  # positive = overturned
    PLACED = "placed"  # detail: placement type
    PLACEMENT_ENDED = "placement_ended"  # detail: placement type; value: days placed
    PLACEMENT_MOVED = "placement_moved"  # detail: new placement type
    WENT_MISSING = "went_missing"  # detail: placement type
    RETURNED = "returned"  # value: days missing
    NOT_FOUND = "not_found"  # a missing child who is not found (long-term missing)
    RE_TRAFFICKED = "re_trafficked"  # detail: where (community | missing | after_18)
    GUARDIAN_REQUESTED = "guardian_requested"  # referred to a guardian service; detail: kind
    GUARDIAN_ALLOCATED = "guardian_allocated"  # detail: guardian kind; value: days to contact
    GUARDIAN_ENDED = "guardian_ended"  # support ends; detail: guardian kind
    TURNED_18 = "turned_18"  # while awaiting a decision
    WITHDRAWN = "withdrawn"  # detail: reason
    SUSPENDED = "suspended"  # detail: reason
    CONTINUED_AS_ADULT = "continued_as_adult"  # consented at 18, case goes on
    MSVCC_REFERRED = "msvcc_referred"  # referred to adult support (MSVCC)
    MSVCC_SUPPORTED = "msvcc_supported"  # receives MSVCC support; value: days
    LEAVE_GRANTED = "leave_granted"  # value: days of leave granted
    CRIMINALISED = "criminalised"  # child arrested/charged for exploitation-related offence
    LEGAL_ADVICE = "legal_advice"  # legal advice before the RG decision
    INVESTIGATION_OPENED = "investigation_opened"  # trafficker investigation about this child
    CHARGED = "charged"  # trafficker charged
    PROSECUTION_COMPLETED = "prosecution_completed"  # positive = convicted
    CONVICTED = "convicted"  # trafficker convicted
    CASE_CLOSED = "case_closed"  # the episode's case closes; detail: final state
    SUPERSEDED = "superseded"  # no longer produced: repeat referrals are linked (issue 6)
    REMOVED_AT_18 = "removed_at_18"  # Illegal Migration Act duty to remove
    FOLLOWUP_ENDED = "followup_ended"  # the child leaves the model
    HOTEL_ARRIVED = "hotel_arrived"  # a never-referred child placed in a hotel (episode -1)
    POOL_SIZE = "pool_size"  # system: exploited children not yet identified, one row a day
    CAPACITY = "capacity"  # system: decisions a year in force (detail: rg | cg | panel)
    UNIT_COST = "unit_cost"  # system: a unit cost in force (detail: cost key)
    AGE_DISPUTED = "age_disputed"  # treated as an adult on arrival; detail: where housed
    AGE_ASSESSED = "age_assessed"  # positive: found to be a child; value: days since referral
    ADULT_SETTINGS_ENTERED = "adult_settings_entered"  # housed as an adult; detail: why
    ADULT_SETTINGS_LEFT = "adult_settings_left"  # detail: found_child | turned_18


EVENTS: tuple[Event, ...] = tuple(Event)
ROUTES = ("", "home_office", "devolved_pilot")
REFERRAL_KINDS = ("new", "repeat", "linked", "duplicate")  # linked and duplicate: no new case
EXPLOITER_EVENTS = (
    Event.INVESTIGATION_OPENED,
    Event.CHARGED,
    Event.PROSECUTION_COMPLETED,
    Event.CONVICTED,
)
SYSTEM_EVENTS = (Event.POOL_SIZE, Event.CAPACITY, Event.UNIT_COST)
DETAIL_COLUMNS = {
    Event.PLACED: "placement_type",
    Event.PLACEMENT_ENDED: "placement_type",
    Event.PLACEMENT_MOVED: "placement_type",
    Event.WENT_MISSING: "placement_type",
    Event.RETURNED: "placement_type",
    Event.NOT_FOUND: "placement_type",
    Event.HOTEL_ARRIVED: "placement_type",
    Event.GUARDIAN_REQUESTED: "guardian_kind",
    Event.GUARDIAN_ALLOCATED: "guardian_kind",
    Event.GUARDIAN_ENDED: "guardian_kind",
    Event.RG_DECIDED: "regime",
    Event.CG_DECIDED: "regime",
    Event.DISQUALIFIED: "regime",
    Event.RECONSIDERATION_REQUESTED: "decision_type",
    Event.RECONSIDERATION_DECIDED: "decision_type",
    Event.WITHDRAWN: "reason",
    Event.SUSPENDED: "reason",
    Event.RE_TRAFFICKED: "reason",
    Event.REFERRED: "referral_kind",
    Event.CASE_CLOSED: "reason",
    Event.CAPACITY: "reason",
    Event.UNIT_COST: "reason",
    Event.AGE_DISPUTED: "reason",
    Event.ADULT_SETTINGS_ENTERED: "reason",
    Event.ADULT_SETTINGS_LEFT: "reason",
}
NAN = math.nan
# a row of the log (``EventLog.rows``) as a record: positive is -1 (none), 0 or 1
ROW_DTYPE = np.dtype(
    [
        ("t_days", np.float64),
        ("child_id", np.int64),
        ("episode", np.int32),
        ("event", np.int16),
        ("positive", np.int8),
        ("route", np.int8),
        ("detail", object),
        ("value", np.float64),
    ]
)


def _code_of(values: np.ndarray, value: str) -> int:
    """The factorised code of ``value`` (-2, matching nothing, if absent)."""
    hits = np.flatnonzero(values == value)
    return int(hits[0]) if len(hits) else -2


class EventLog:
    """Append-only list of row tuples; one ``append`` per event keeps the hot path cheap."""

    __slots__ = ("rows",)

    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def __len__(self) -> int:
        return len(self.rows)

    def to_frame(self) -> pd.DataFrame:
        """Columns: t_days, child_id, episode, event, positive, route, is_repeat, linked,
        referrer, detail columns (placement_type, guardian_kind, regime, decision_type, reason,
        referral_kind), value.

        Rows are sorted by time (stable), since a few events are recorded retrospectively.
        """
        # one pass over the row tuples, in C, into a record array sorted by time
        records = np.fromiter(self.rows, dtype=ROW_DTYPE, count=len(self.rows))
        records = records[np.argsort(records["t_days"], kind="stable")]
        event_codes = records["event"]
        pos = records["positive"]
        detail = records["detail"]
        df = pd.DataFrame(
            {
                "t_days": records["t_days"],
                "child_id": records["child_id"],
                "episode": records["episode"],
                "event": pd.Categorical.from_codes(
                    event_codes, categories=[e.value for e in EVENTS]
                ),
                "positive": pd.array(np.where(pos < 0, None, pos == 1), dtype="boolean"),
                "route": pd.Categorical.from_codes(records["route"], categories=list(ROUTES)),
            }
        )
        # one factorisation of the detail strings serves every detail column
        detail_codes, detail_values = pd.factorize(detail)
        detail_values = np.asarray(detail_values, dtype=object)
        referred = event_codes == EVENTS.index(Event.REFERRED)
        new_code = _code_of(detail_values, "new")
        linked_codes = [_code_of(detail_values, k) for k in ("linked", "duplicate")]
        repeat = pd.array(detail_codes != new_code, dtype="boolean")
        linked = pd.array(np.isin(detail_codes, linked_codes), dtype="boolean")
        repeat[~referred] = pd.NA
        linked[~referred] = pd.NA
        df["is_repeat"] = repeat
        df["linked"] = linked
        df["referrer"] = pd.Categorical.from_codes(
            np.where(referred, 0, -1), categories=["first_responder"]
        )
        for column in sorted(set(DETAIL_COLUMNS.values())):
            codes = [EVENTS.index(e) for e, c in DETAIL_COLUMNS.items() if c == column]
            mine = np.isin(event_codes, codes) & (detail_codes >= 0)
            used = np.unique(detail_codes[mine])
            remap = np.full(len(detail_values) + 1, -1, dtype=np.int64)
            remap[used] = np.arange(len(used))
            column_codes = np.where(mine, remap[detail_codes], -1)
            df[column] = pd.Categorical.from_codes(
                column_codes, categories=pd.Index(detail_values[used].astype(str), dtype=object)
            )
        df["value"] = records["value"]
        return df
