"""The agents: children referred to the NRM, and unaccompanied children in Home Office hotels
who were never referred. Mesa agents carrying attributes and current status, nothing else.

What happens to a child lives in the stage modules (``model/stages/``); these classes only
hold the state the stages read and write.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import mesa

from model.common import DAYS_PER_YEAR

if TYPE_CHECKING:
    from model.hazard import HazardClock
    from model.queues import Job
    from model.simulation import NRMModel

# Where a referral episode can be. "Awaiting" states are open; the rest are closed.
OPEN_STATES = ("awaiting_rg", "awaiting_reconsideration", "awaiting_cg")  # cg includes recovery
CLOSED_STATES = (
    "confirmed",
    "not_confirmed",
    "disqualified",
    "withdrawn",
    "suspended",
    "followup_ended",
)
STATES = OPEN_STATES + CLOSED_STATES


class Child(mesa.Agent):
    """A child referred to the NRM (one agent per person; repeat referrals are new episodes
    or are linked to the open case).

    Attributes are drawn once at the first referral; ``age_years`` is the age then. Times are
    simulation days (``model.env.now``). The child stays in the model until the end of the
    follow-up after 18 (``followup_end``).
    """

    # Slots, not a per-child dict: a third of the memory of a run at volume (the base class
    # keeps its own small dict for Mesa's attributes; any other attribute still works).
    __slots__ = (
        "adult",
        "age_assessed_at",
        "age_disputed",
        "age_years",
        "arrived_irregularly",
        "care_wait",
        "confirmed",
        "crime_clock",
        "criminalised",
        "day18",
        "episode",
        "episode_starts",
        "exploitation_type",
        "exploitation_types",
        "exploited",
        "exploited_overseas",
        "followup_end",
        "found_child",
        "guardian_active",
        "guardian_kind",
        "guardian_since",
        "guardian_token",
        "guardian_until",
        "has_parental_responsibility",
        "in_adult_settings",
        "in_care",
        "index",
        "job",
        "leave_until",
        "left_model",
        "legal_advice",
        "local_authority",
        "missing",
        "missing_long_term",
        "missing_prone_u",
        "missing_u",
        "msvcc_until",
        "n_clock_resets",
        "n_referrals",
        "nation",
        "nationality_group",
        "placement_type",
        "pod_considered",
        "referred_at",
        "removed",
        "retraffic_clock",
        "retrafficked_as_adult",
        "route",
        "seeking_placement",
        "sex",
        "side_u",
        "state",
        "u",
    )

    def __init__(self, model: NRMModel, index: int) -> None:
        super().__init__(model)
        self.index = index  # n-th new child: row of the per-stage draw tables
        self.episode = 0  # 0 = first referral, 1.. = repeat referrals that opened a new case
        self.sex = ""
        self.age_years = 0.0
        self.day18 = 0.0  # simulation day of the 18th birthday
        self.followup_end = math.inf  # day the child leaves the model (18 + follow-up)
        self.nationality_group = ""
        self.exploitation_type = ""  # primary category; "mixed" if more than one
        self.exploitation_types = ""  # "+"-joined list of all types
        self.nation = ""
        self.local_authority = 0
        self.has_parental_responsibility = False
        self.exploited_overseas = False
        self.arrived_irregularly = False
        self.legal_advice = False  # advised before the RG decision (this episode)
        self.route = 0  # index into events.ROUTES
        self.state = "awaiting_rg"
        self.job: Job | None = None  # case currently queued with a decision-maker
        self.criminalised = False
        self.pod_considered = False
        self.confirmed = False  # a positive CG in any episode
        self.placement_type = ""
        self.in_care = False
        self.missing = False  # on a missing episode now
        self.missing_long_term = False  # not found: exploited again, out of care
        self.exploited = False  # re-exploited and not yet identified again
        self.guardian_kind = ""  # set when a guardian is requested; kept after support ends
        self.guardian_active = False
        self.guardian_until = math.inf  # day support ends (direct: fixed at allocation)
        self.guardian_since = math.inf  # day the current support started
        self.guardian_token = 0  # counts allocations; a stale end-of-support callback is ignored
        self.leave_until = -math.inf  # valid leave while now < leave_until
        self.msvcc_until = -math.inf  # MSVCC support while now < msvcc_until
        self.adult = False  # turned 18
        self.removed = False  # removed from the UK at 18 (IMA)
        self.left_model = False  # follow-up over: nothing more is recorded
        self.retrafficked_as_adult = False
        self.referred_at = 0.0
        self.u: Sequence[float] = ()  # this case's uniforms for every stage
        # the current referral's uniforms for what it (re)starts beside the case (care,
        # guardian): the case's row at the referral that opens it, fresh at a linked one
        self.side_u: Sequence[float] = ()
        self.missing_u: Sequence[float] | None = None  # missing episodes of the current stay
        self.missing_prone_u = 1.0  # a trait: drawn once, at the first referral
        self.age_disputed = False  # treated as an adult on arrival (stages/age_dispute.py)
        self.age_assessed_at = math.inf  # day of the local authority's age assessment
        self.found_child = True  # the assessment's finding
        self.in_adult_settings = False  # housed as an adult now
        self.episode_starts: list[float] = []  # referral time of each episode
        self.seeking_placement = False  # waiting for a place (not yet placed)
        # the wait's token (stages/care.py): a place is handed over only while it is current
        self.care_wait: object | None = None
        self.retraffic_clock: HazardClock | None = None
        self.crime_clock: HazardClock | None = None
        self.n_clock_resets = 0
        self.n_referrals = 0  # referred events, including linked and duplicate ones

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    def age_at(self, t_days: float) -> float:
        return 18.0 - (self.day18 - t_days) / DAYS_PER_YEAR

    def episode_at(self, t_days: float) -> int:
        """The referral episode in force at ``t_days`` (the latest referral at or before it)."""
        return max(0, bisect.bisect_right(self.episode_starts, t_days) - 1)


class UnaccompaniedChild(mesa.Agent):
    """A child in a Home Office hotel who was never referred to the NRM (2021-2024).

    Lives only while in the hotel: the local authority takes over after the stay, and a child
    who goes missing and is not found leaves the model (counted as unfound).
    """

    def __init__(self, model: NRMModel, index: int) -> None:
        super().__init__(model)
        self.index = index
        self.arrived = 0.0
        self.episode = -1  # marks rows of children outside the NRM
        self.route = 0
