"""The child: a Mesa agent carrying attributes and current status, nothing else.

What happens to a child lives in the stage modules (``model/stages/``); this class only
holds the state they read and write.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import TYPE_CHECKING

import mesa

if TYPE_CHECKING:
    from model.queues import Job
    from model.simulation import NRMModel

# Where a referral episode can be. "Awaiting" states are open; the rest are closed.
OPEN_STATES = (
    "awaiting_rg",
    "awaiting_reconsideration",
    "awaiting_cg",
)  # awaiting_cg includes recovery
CLOSED_STATES = ("confirmed", "not_confirmed", "disqualified", "withdrawn", "suspended")
STATES = OPEN_STATES + CLOSED_STATES


class Child(mesa.Agent):
    """A child referred to the NRM (one agent per person; repeat referrals are new episodes).

    Attributes are drawn once at the first referral; ``age_years`` is the age then.
    Times are simulation days (``model.env.now``).
    """

    def __init__(self, model: NRMModel, index: int) -> None:
        super().__init__(model)
        self.index = index  # n-th new child: row of the per-stage draw tables
        self.r = index  # row for the current episode (first referrals and repeats differ)
        self.episode = 0  # 0 = first referral, 1.. = repeat referrals
        self.sex = ""
        self.age_years = 0.0
        self.day18 = 0.0  # simulation day of the 18th birthday
        self.nationality_group = ""
        self.exploitation_type = ""  # primary category; "mixed" if more than one
        self.exploitation_types = ""  # "+"-joined list of all types
        self.nation = ""
        self.local_authority = 0
        self.has_parental_responsibility = False
        self.exploited_overseas = False
        self.route = 0  # index into events.ROUTES
        self.state = "awaiting_rg"
        self.job: Job | None = None  # case currently queued with a decision-maker
        self.criminalised = False
        self.placement_type = ""
        self.in_care = False
        self.guardian_kind = ""  # set when a guardian is requested; kept after support ends
        self.ictg_active = False  # currently supported by a direct ICTG
        self.referred_at = 0.0
        self.u: Sequence[
            float
        ] = ()  # this episode's uniforms for every stage (model.row slices it)
        self.episode_starts: list[float] = []  # referral time of each episode
        self.seeking_placement = False  # waiting for a place (not yet placed)

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    def episode_at(self, t_days: float) -> int:
        """The referral episode in force at ``t_days`` (the latest referral at or before it)."""
        return max(0, bisect.bisect_right(self.episode_starts, t_days) - 1)
